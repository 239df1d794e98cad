//! Running a set of models over several seeds on one dataset, loaded once.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cilp_track::names;
use cilp_track::run::CreateMode;
use serde::{Deserialize, Serialize};

use crate::stats::MetricSummary;
/// The records of a study's runs (plain data, shared with the study files of cilp-report).
pub use cilp_track::study::{Metric, MissingRun, SeedRun, SplitInfo};
use cilp_train::LrSchedule;
use cilp_train::config::{DataConfig, SplitConfig, TrainConfig};
use cilp_train::engine::{RunOptions, TrainOutcome, train};
use cilp_train::error::{Result, TrainError};

/// The seeds of both presets (the seed implementation's 51, and two more).
pub const DEFAULT_SEEDS: [u64; 3] = [51, 52, 53];
/// Quick preset: pairs per class loaded (80/20 split: 800 train, 200 validation samples).
///
/// Sized by measurement (default generated data, `late-fusion`, batch 16, Adam 1e-3): the models
/// sit on a loss plateau at ln 2 for the first ~50-80 optimiser steps whatever the data size,
/// then learn; after 3 epochs 100 pairs per class reach 55-75% validation accuracy (too few
/// samples to generalise), 250-400 reach 75-80%, 500 reach 94.5%.
pub const QUICK_LIMIT_PER_CLASS: usize = 500;
/// Quick preset: epochs (150 optimiser steps at batch 16: the plateau plus ~100 learning steps).
pub const QUICK_EPOCHS: usize = 3;
/// Quick preset: batch size.
pub const QUICK_BATCH_SIZE: usize = 16;
/// Quick preset: Adam learning rate. 5e-4 does not leave the plateau within 60-150 steps; 2e-3
/// stalled at chance in one of two tries; 1e-3 leaves it reliably.
pub const QUICK_LR: f64 = 1e-3;
/// Quick preset: seeds. Five, not three: at 3 seeds the paired test has 2 degrees of freedom
/// and the quick fusion study detected only differences in best validation loss of about 0.4
/// (median; seed noise from when each run leaves the ln 2 plateau); at 5 seeds about 0.16, and
/// a model trained at a 10x too low rate is told apart (p 0.006; measured, docs/studies.md).
pub const QUICK_SEEDS: [u64; 5] = [51, 52, 53, 54, 55];
/// Full preset: the original scale (all pairs, 10 epochs, Adam 1e-4, batch 32).
pub const FULL_EPOCHS: usize = 10;
pub const FULL_LR: f64 = 1e-4;

/// The two sizes of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StudyPreset {
    /// 500 pairs per class, 3 epochs, batch 16, Adam 1e-3, seeds 51 to 55.
    Quick,
    /// All data, 10 epochs, batch 32, Adam 1e-4, seeds 51, 52, 53 (the original's scale).
    Full,
}

impl StudyPreset {
    /// The preset's name (`quick`, `full`).
    pub fn name(self) -> &'static str {
        match self {
            StudyPreset::Quick => "quick",
            StudyPreset::Full => "full",
        }
    }
}

/// Everything that determines a study's runs except the model list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySettings {
    /// The preset's name, `quick` or `full`, with " (overridden)" when flags changed its sizes
    /// (for the record).
    pub preset: String,
    /// Dataset, subset and split. `split_seed` is always set: every seed of every model trains
    /// and validates on the same samples; the seeds vary initialisation and shuffling only.
    pub data: DataConfig,
    pub seeds: Vec<u64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// How the rate moves over each run (left out of summaries when constant).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// A learning-rate grid (`cilp fusion --lrs ... --lr-schedules ...`): every model is trained
    /// at every point, each point an ordinary run `<model>-lr<lr>-<schedule>-s<seed>`, and
    /// `lr` / `lr_schedule` above are not used. Empty: no grid, one arm per model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid: Vec<LrPoint>,
    pub device: cilp_train::device::DeviceSpec,
}

/// One point of a learning-rate grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrPoint {
    pub lr: f64,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
}

impl LrPoint {
    /// `lr1e-4-cosine`: the point in a run name.
    pub fn slug(&self) -> String {
        format!("lr{:e}-{}", self.lr, self.lr_schedule.name())
    }
}

/// What one row of a study trains: a zoo model at one learning rate and schedule. Without a
/// grid an arm is just the model (`name` = `model`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// The arm's name in tables and run names: the model, plus `-<point>` in a grid.
    pub name: String,
    /// The zoo model.
    pub model: String,
    /// The grid point (none without a grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<LrPoint>,
}

/// The zoo model of an arm name (`late-fusion-lr1e-4-cosine` -> `late-fusion`; a plain model
/// name is returned as it is).
pub fn arm_model(name: &str) -> &str {
    // No zoo model name contains "-lr" followed by a digit.
    let b = name.as_bytes();
    (0..b.len().saturating_sub(3)).find(|&i| &b[i..i + 3] == b"-lr" && b[i + 3].is_ascii_digit()).map_or(name, |i| &name[..i])
}

impl StudySettings {
    /// `quick` (500 pairs per class, 3 epochs, batch 16, Adam 1e-3, seeds 51 to 55: the models
    /// clearly learn, see [`QUICK_LIMIT_PER_CLASS`]; minutes on 2 CPU cores for 5 models x 5
    /// seeds) or `full` (all data, the original 10 epochs at Adam 1e-4, batch 32, seeds 51, 52,
    /// 53). Both use an 80/20 split with seed 51.
    pub fn preset(preset: StudyPreset, data_dir: impl Into<PathBuf>) -> StudySettings {
        let (limit, epochs, lr, batch, seeds) = match preset {
            StudyPreset::Quick => (Some(QUICK_LIMIT_PER_CLASS), QUICK_EPOCHS, QUICK_LR, QUICK_BATCH_SIZE, QUICK_SEEDS.to_vec()),
            StudyPreset::Full => (None, FULL_EPOCHS, FULL_LR, 32, DEFAULT_SEEDS.to_vec()),
        };
        let base = TrainConfig::new("late-fusion", data_dir);
        let mut data = base.data;
        data.limit_per_class = limit;
        data.split_seed = Some(cilp_data::split::DEFAULT_SEED);
        StudySettings {
            preset: preset.name().to_owned(),
            data,
            seeds,
            epochs,
            batch_size: batch,
            lr,
            lr_schedule: LrSchedule::Constant,
            grid: Vec::new(),
            device: base.device,
        }
    }

    /// Sets the learning-rate grid to every pair of `lrs` x `schedules` (rates outer); an empty
    /// list stands for the settings' own rate or schedule. A grid of one point just sets the
    /// rate and schedule (no grid).
    pub fn set_grid(&mut self, lrs: &[f64], schedules: &[LrSchedule]) {
        let lrs = if lrs.is_empty() { vec![self.lr] } else { lrs.to_vec() };
        let schedules = if schedules.is_empty() { vec![self.lr_schedule] } else { schedules.to_vec() };
        let grid: Vec<LrPoint> = lrs.iter().flat_map(|&lr| schedules.iter().map(move |&lr_schedule| LrPoint { lr, lr_schedule })).collect();
        if let [p] = grid[..] {
            (self.lr, self.lr_schedule) = (p.lr, p.lr_schedule);
            self.grid.clear();
        } else {
            self.grid = grid;
        }
    }

    /// The arms of `models` under these settings: each model at every grid point (models outer),
    /// or each model once without a grid.
    pub fn arms(&self, models: &[String]) -> Vec<Arm> {
        models
            .iter()
            .flat_map(|m| {
                let points: Vec<Option<LrPoint>> =
                    if self.grid.is_empty() { vec![None] } else { self.grid.iter().copied().map(Some).collect() };
                points.into_iter().map(move |point| Arm {
                    name: point.map_or_else(|| m.clone(), |p| format!("{m}-{}", p.slug())),
                    model: m.clone(),
                    point,
                })
            })
            .collect()
    }

    /// The run config of one arm and seed.
    pub fn arm_config(&self, arm: &Arm, seed: u64) -> TrainConfig {
        let mut c = self.train_config(&arm.model, seed);
        if let Some(p) = arm.point {
            (c.lr, c.lr_schedule) = (p.lr, p.lr_schedule);
        }
        c
    }

    /// The run config of one model and seed.
    pub fn train_config(&self, model: &str, seed: u64) -> TrainConfig {
        let mut c = TrainConfig::new(model, &self.data.dir);
        c.data = self.data.clone();
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.lr = self.lr;
        c.lr_schedule = self.lr_schedule;
        c.seed = seed;
        c.device = self.device;
        c
    }

    /// The seed of the (fixed) split.
    pub fn split_seed(&self) -> u64 {
        self.data.split_seed.unwrap_or(cilp_data::split::DEFAULT_SEED)
    }

    fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() {
            return Err(TrainError::Config("a study needs at least one seed".into()));
        }
        for (i, s) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(s) {
                return Err(TrainError::Config(format!("seed {s} is listed twice")));
            }
        }
        for arm in self.arms(&["late-fusion".to_owned()]) {
            self.arm_config(&arm, self.seeds[0]).validate().map_err(TrainError::Config)?;
        }
        Ok(())
    }
}

/// What to do with run directories that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyMode {
    /// Refuse to start if any of the study's run directories exists.
    New,
    /// Replace existing run directories of the same names.
    Force,
    /// Continue runs that exist (finished ones are just read back), start missing ones.
    Resume,
}

/// Where a study's runs and tables go and how it reports progress.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// The study folder: run directories `<model>-s<seed>/` plus the tables and charts.
    pub out: PathBuf,
    pub mode: StudyMode,
    /// Progress bars (only drawn on a terminal).
    pub progress: bool,
    /// No per-epoch lines on stderr.
    pub quiet: bool,
    /// Another study folder (the ablation's fusion study) whose *completed* runs with exactly
    /// the config this study would train (same model, seed, data, split and settings) are
    /// copied in instead of trained again: training is deterministic on the CPU, so the result
    /// would be the same, and the ablation's MaxPool2d baseline is the fusion study's run.
    /// A run this study already holds is kept (`--resume`) or replaced (`--force`).
    pub reuse_from: Option<PathBuf>,
    /// Test hooks passed to every run (none in a normal study).
    pub hooks: cilp_train::fit::TestHooks,
    /// Progress counters and the stop flag, shared by every run.
    pub control: cilp_train::fit::Control,
}

impl StudyOptions {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        StudyOptions {
            out: out.into(),
            mode: StudyMode::New,
            progress: true,
            quiet: false,
            reuse_from: None,
            hooks: Default::default(),
            control: Default::default(),
        }
    }
}

/// Whether `dir` holds a completed run whose saved config equals `cfg`.
pub(crate) fn reusable(dir: &Path, cfg: &TrainConfig) -> bool {
    cilp_track::run::read_summary(dir).is_ok_and(|s| s.status == cilp_track::run::RunStatus::Completed)
        && cilp_track::run::read_config::<TrainConfig>(dir).is_ok_and(|c| &c == cfg)
}

/// Run directory name of one model and seed inside the study folder.
pub fn run_name(model: &str, seed: u64) -> String {
    format!("{model}-s{seed}")
}

/// The numbers a finished run contributes to the study.
fn seed_run(seed: u64, run: String, o: &TrainOutcome) -> SeedRun {
    let mut val: Vec<_> = o.history.iter().filter(|r| r.split == names::VAL).collect();
    val.sort_by_key(|r| r.epoch);
    let train: Vec<_> = o.history.iter().filter(|r| r.split == names::TRAIN).collect();
    let epoch_secs: Vec<f64> = train.iter().map(|r| r.epoch_seconds).collect();
    let best = val.iter().map(|r| r.loss).filter(|l| l.is_finite()).fold(f64::INFINITY, f64::min);
    // The first epoch reaching the lowest loss (the one `best.bpk` holds).
    let best_epoch = o.summary.best_epoch.or_else(|| val.iter().find(|r| r.loss == best).map(|r| r.epoch));
    let best_epoch_val_accuracy = best_epoch.and_then(|e| val.iter().find(|r| r.epoch == e)).and_then(|r| r.accuracy);
    SeedRun {
        seed,
        run,
        best_val_loss: o.summary.best_val_loss.unwrap_or(best),
        final_val_accuracy: val.last().and_then(|r| r.accuracy).unwrap_or(f64::NAN),
        best_epoch_val_accuracy,
        total_seconds: o.summary.total_seconds,
        seconds_per_epoch: crate::stats::mean(&epoch_secs),
        peak_memory_mb: train.iter().filter_map(|r| r.peak_memory_bytes).max().map(|b| b as f64 / 1048576.0),
        val_loss_curve: val.iter().map(|r| r.loss).collect(),
    }
}

/// All seeds of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRuns {
    /// The arm's name ([`Arm::name`]: the zoo model, with its grid point in a grid).
    pub model: String,
    pub parameters: u64,
    pub runs: Vec<SeedRun>,
    /// The grid point of the arm (none without a grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<LrPoint>,
}

impl ModelRuns {
    /// Per-seed values of a metric (NaN-free: missing values are left out).
    pub fn values(&self, m: Metric) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| match m {
                Metric::BestValLoss => Some(r.best_val_loss),
                Metric::ValAccuracy => Some(r.best_epoch_val_accuracy.unwrap_or(r.final_val_accuracy)),
                Metric::Parameters => Some(self.parameters as f64),
                Metric::TrainingSeconds => Some(r.total_seconds),
                Metric::SecondsPerEpoch => Some(r.seconds_per_epoch),
                Metric::PeakMemoryMb => r.peak_memory_mb,
            })
            .filter(|v| v.is_finite())
            .collect()
    }

    pub fn summary(&self, m: Metric) -> MetricSummary {
        crate::stats::metric_summary(&self.values(m))
    }

    /// Validation loss per epoch, averaged over seeds (epochs every seed reached).
    pub fn mean_val_curve(&self) -> Vec<f64> {
        let n = self.runs.iter().map(|r| r.val_loss_curve.len()).min().unwrap_or(0);
        (0..n).map(|e| crate::stats::mean(&self.runs.iter().map(|r| r.val_loss_curve[e]).collect::<Vec<_>>())).collect()
    }
}

/// Everything run by [`run_models`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRuns {
    pub settings: StudySettings,
    pub split: SplitInfo,
    pub models: Vec<ModelRuns>,
    /// Planned runs that were not finished when the study was collected ([`collect`]); empty
    /// after [`run_models`], which trains them all.
    pub missing: Vec<MissingRun>,
    /// Wall time of the whole study (loading included), seconds.
    pub wall_seconds: f64,
    /// The study folder's lock, taken by [`run_models`] and held as long as this value (or a
    /// clone) lives, so the report written from it is covered too. Not serialised; ignored by
    /// `==`; `Default` (none) for a `StudyRuns` built by hand.
    #[serde(skip)]
    pub lock: StudyLock,
}

impl StudyRuns {
    /// The seeds every model has a finished run for (fewer than the settings' when a collected
    /// study misses runs).
    pub fn seed_count(&self) -> usize {
        self.models.iter().map(|m| m.runs.len()).min().unwrap_or(0)
    }

    /// A study of `models` as if the quick preset had run them on a 320 / 80 split (no training):
    /// for tests and examples of the summaries and their files.
    pub fn example(models: Vec<ModelRuns>) -> StudyRuns {
        StudyRuns {
            settings: StudySettings::preset(StudyPreset::Quick, "data"),
            split: SplitInfo { train: 320, val: 80, split_seed: 51 },
            models,
            missing: Vec::new(),
            wall_seconds: 42.0,
            lock: Default::default(),
        }
    }
}

/// A shared hold on a study folder's [`cilp_track::FolderLock`] (see [`StudyRuns::lock`]).
#[derive(Debug, Clone, Default)]
pub struct StudyLock(Option<std::sync::Arc<cilp_track::FolderLock>>);

impl StudyLock {
    /// Whether a lock is held.
    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

impl PartialEq for StudyLock {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

fn check_out(out: &Path) -> Result<()> {
    if cilp_track::run::holds_run(out) {
        return Err(TrainError::Config(format!("{} is a run directory; a study needs its own folder (e.g. runs/fusion)", out.display())));
    }
    Ok(())
}

/// One run of a study: what `--plan` lists and `--task-index` trains. Runs are numbered in the
/// order a study on one machine trains them (arms outer, seeds inner), from 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRun {
    pub index: usize,
    /// The run directory's name inside the study folder.
    pub run: String,
    /// The arm it belongs to ([`Arm::name`]).
    pub arm: String,
    /// The zoo model.
    pub model: String,
    pub seed: u64,
    /// The run's whole config, as its `config.toml` will hold it.
    pub config: TrainConfig,
}

/// Every run of a study of `models` under `settings`, in training order (no files touched).
pub fn plan(settings: &StudySettings, models: &[String]) -> Result<Vec<PlannedRun>> {
    settings.validate()?;
    if models.is_empty() {
        return Err(TrainError::Config("a study needs at least one model".into()));
    }
    let mut data = settings.data.clone();
    data.split_seed = Some(settings.split_seed());
    let mut out = Vec::new();
    for arm in settings.arms(models) {
        cilp_models::model_info(&arm.model)?;
        for &seed in &settings.seeds {
            let mut config = settings.arm_config(&arm, seed);
            config.data = data.clone();
            out.push(PlannedRun {
                index: out.len(),
                run: run_name(&arm.name, seed),
                arm: arm.name.clone(),
                model: arm.model.clone(),
                seed,
                config,
            });
        }
    }
    Ok(out)
}

/// Loads the study's dataset once (with the fixed split), printing what it loaded.
pub(crate) fn load_data(settings: &StudySettings, opts: &StudyOptions) -> Result<(DataConfig, cilp_train::engine::PreparedData)> {
    let split_seed = settings.split_seed();
    let mut data_cfg = settings.data.clone();
    data_cfg.split_seed = Some(split_seed);
    if !opts.quiet {
        eprintln!("loading {} ...", data_cfg.dir.display());
    }
    let (data, _) = cilp_train::data::prepare(&data_cfg, split_seed)?;
    if !opts.quiet {
        let ds = &data.dataset;
        let per_class: Vec<String> = (0..ds.classes().len()).map(|c| format!("{} {}", ds.class_range(c).len(), ds.classes()[c])).collect();
        let short = match data_cfg.limit_per_class {
            Some(l) if (0..ds.classes().len()).any(|c| ds.class_range(c).len() < l) => {
                format!(" (fewer than the {l} per class asked for)")
            }
            _ => String::new(),
        };
        eprintln!(
            "loaded {} pairs: {}{short}; {} train / {} validation",
            ds.len(),
            per_class.join(", "),
            data.split.train.len(),
            data.split.val.len()
        );
    }
    if data.split.train.is_empty() || data.split.val.is_empty() {
        return Err(TrainError::Config(format!(
            "the split has {} training and {} validation samples; a study needs both (load more pairs per class)",
            data.split.train.len(),
            data.split.val.len()
        )));
    }
    if matches!(data_cfg.split, SplitConfig::Nvidia) && !opts.quiet {
        eprintln!("note: NVIDIA index split; the split does not depend on any seed");
    }
    Ok((data_cfg, data))
}

/// Trains (or resumes, or copies per [`StudyOptions::reuse_from`]) one planned run.
fn train_planned(p: &PlannedRun, data: &cilp_train::engine::PreparedData, opts: &StudyOptions) -> Result<TrainOutcome> {
    let mode = prepare_run(p, opts)?;
    let ropts = RunOptions {
        runs_dir: opts.out.clone(),
        name: Some(p.run.clone()),
        mode,
        progress: opts.progress,
        quiet: opts.quiet,
        hooks: opts.hooks,
        control: opts.control.clone(),
        init_loader: None,
    };
    train(&p.config, data, &ropts)
}

/// How one planned run is to be opened: resumed when the study folder holds it and the study
/// resumes, otherwise created (refusing or replacing a folder per [`StudyOptions::mode`]). A
/// completed run with the same config in [`StudyOptions::reuse_from`] is copied in first and
/// then resumed (read back without training).
pub(crate) fn prepare_run(p: &PlannedRun, opts: &StudyOptions) -> Result<CreateMode> {
    let name = &p.run;
    let mut mode = match opts.mode {
        StudyMode::New => CreateMode::New,
        StudyMode::Force => CreateMode::Force,
        StudyMode::Resume if opts.out.join(name).join("config.toml").is_file() => CreateMode::Resume,
        StudyMode::Resume => CreateMode::Force,
    };
    if let Some(src) = opts.reuse_from.as_ref().map(|d| d.join(name))
        && mode != CreateMode::Resume
        && src != opts.out.join(name)
        && reusable(&src, &p.config)
    {
        cilp_track::run::copy_run(&src, &opts.out.join(name))?;
        if !opts.quiet {
            eprintln!("{name}: reusing the completed run with the same config in {}", src.display());
        }
        mode = CreateMode::Resume;
    }
    Ok(mode)
}

/// Groups finished runs by arm, in plan order.
fn group(settings: &StudySettings, models: &[String], done: Vec<(PlannedRun, SeedRun)>) -> Result<Vec<ModelRuns>> {
    let mut out = Vec::new();
    for arm in settings.arms(models) {
        let parameters = cilp_models::model_info(&arm.model)?.parameters as u64;
        let runs = done.iter().filter(|(p, _)| p.arm == arm.name).map(|(_, r)| r.clone()).collect();
        out.push(ModelRuns { model: arm.name.clone(), parameters, runs, point: arm.point });
    }
    Ok(out)
}

/// Trains every model with every seed (models in order, seeds inner), loading the dataset once
/// and using one split for all runs. Run directories are `opts.out/<model>-s<seed>`.
pub fn run_models(settings: &StudySettings, models: &[String], opts: &StudyOptions) -> Result<StudyRuns> {
    let start = Instant::now();
    let (planned, lock) = open_study(settings, models, opts)?;
    let (data_cfg, data) = load_data(settings, opts)?;
    let mut done = Vec::new();
    for p in &planned {
        if !opts.quiet {
            eprintln!("[{}/{}] {} ({:.0}s elapsed)", p.index + 1, planned.len(), p.run, start.elapsed().as_secs_f64());
        }
        let outcome = train_planned(p, &data, opts)?;
        done.push((p.clone(), seed_run(p.seed, p.run.clone(), &outcome)));
    }
    finish_study(settings, models, (data_cfg, &data), (done, Vec::new()), start, lock)
}

/// The [`StudyRuns`] of a study whose runs were trained or read back (`done`, `missing`), holding
/// its folder's `lock`; its wall time counts from `start`.
pub(crate) fn finish_study(
    settings: &StudySettings,
    models: &[String],
    (data_cfg, data): (DataConfig, &cilp_train::engine::PreparedData),
    (done, missing): ReadBack,
    start: Instant,
    lock: cilp_track::FolderLock,
) -> Result<StudyRuns> {
    Ok(StudyRuns {
        settings: StudySettings { data: data_cfg, ..settings.clone() },
        split: SplitInfo { train: data.split.train.len(), val: data.split.val.len(), split_seed: settings.split_seed() },
        models: group(settings, models, done)?,
        missing,
        wall_seconds: start.elapsed().as_secs_f64(),
        lock: StudyLock(Some(std::sync::Arc::new(lock))),
    })
}

/// Plans a study that trains here and takes its folder: the plan, and the study-folder lock,
/// held for the whole study (and, through the returned StudyRuns, its report): a second study
/// on the same folder is refused at once, naming this process. A new study (no --resume or
/// --force) refuses a folder that already holds any of its runs.
pub(crate) fn open_study(
    settings: &StudySettings,
    models: &[String],
    opts: &StudyOptions,
) -> Result<(Vec<PlannedRun>, cilp_track::FolderLock)> {
    let planned = plan(settings, models)?;
    check_out(&opts.out)?;
    let lock = cilp_track::FolderLock::acquire(&opts.out, "study folder")?;
    if opts.mode == StudyMode::New {
        let existing: Vec<&str> = planned.iter().map(|p| p.run.as_str()).filter(|n| opts.out.join(n).exists()).collect();
        if !existing.is_empty() {
            return Err(TrainError::Config(format!(
                "{} already holds {} of this study's runs ({}{}); pass --force to replace them or --resume to continue",
                opts.out.display(),
                existing.len(),
                existing[..existing.len().min(3)].join(", "),
                if existing.len() > 3 { ", ..." } else { "" }
            )));
        }
    }
    Ok((planned, lock))
}

/// Trains exactly run `index` of the plan into the study folder: one task of an array job
/// (Slurm, a Kubernetes Indexed Job, or processes started by hand), many of which share the
/// folder. Takes no study-folder lock; the run's own folder lock keeps a second worker with the
/// same index out (it fails at once, naming the holder). With [`StudyMode::Resume`] a task
/// re-run after its worker died continues from the last committed epoch, and a completed run is
/// read back without training.
pub fn run_task(settings: &StudySettings, models: &[String], index: usize, opts: &StudyOptions) -> Result<(PlannedRun, TrainOutcome)> {
    let planned = plan(settings, models)?;
    let Some(p) = planned.get(index) else {
        return Err(TrainError::Config(format!(
            "task index {index} is out of range: this study has {} runs (indices 0 to {})",
            planned.len(),
            planned.len() - 1
        )));
    };
    check_out(&opts.out)?;
    std::fs::create_dir_all(&opts.out).map_err(TrainError::io("create the study folder", &opts.out))?;
    let (_, data) = load_data(settings, opts)?;
    if !opts.quiet {
        eprintln!("task {index}: {} (run {} of {})", p.run, index + 1, planned.len());
    }
    let outcome = train_planned(p, &data, opts)?;
    Ok((p.clone(), outcome))
}

/// Why a planned run cannot be read back as a finished run of this study (`None`: it can).
fn not_finished(dir: &Path, p: &PlannedRun) -> Option<String> {
    if !dir.join("config.toml").is_file() {
        return Some("not started".into());
    }
    match cilp_track::run::read_config::<TrainConfig>(dir) {
        Ok(c) if c == p.config => {}
        Ok(_) => return Some("trained with another config than this study's".into()),
        Err(e) => return Some(format!("unreadable config: {e}")),
    }
    match cilp_track::run::read_summary(dir) {
        Ok(s) if s.status == cilp_track::run::RunStatus::Completed => None,
        Ok(s) => Some(format!("{} ({}; last committed epoch {})", s.status.as_str(), dir.display(), last_epoch(dir))),
        Err(_) => Some(format!("running or its worker died before the first summary (last committed epoch {})", last_epoch(dir))),
    }
}

/// The last epoch with a training row in a run's metrics (0 when none).
fn last_epoch(dir: &Path) -> usize {
    cilp_track::run::RunDir::open(dir)
        .and_then(|r| r.read_metrics())
        .map(|rows| rows.iter().filter(|r| r.split == names::TRAIN).map(|r| r.epoch).max().unwrap_or(0))
        .unwrap_or(0)
}

/// The runs [`read_back`] found finished (each with its plan) and the ones it did not.
pub(crate) type ReadBack = (Vec<(PlannedRun, SeedRun)>, Vec<MissingRun>);

/// Reads every planned run back from the study folder: the finished ones, and the others
/// with the reason (named on stderr unless quiet).
pub(crate) fn read_back(planned: &[PlannedRun], opts: &StudyOptions) -> Result<ReadBack> {
    let mut done = Vec::new();
    let mut missing = Vec::new();
    for p in planned {
        let dir = opts.out.join(&p.run);
        if let Some(reason) = not_finished(&dir, p) {
            if !opts.quiet {
                eprintln!("{}: missing ({reason})", p.run);
            }
            missing.push(MissingRun { run: p.run.clone(), reason });
            continue;
        }
        let run = cilp_track::run::RunDir::open(&dir)?;
        let outcome = TrainOutcome { run_dir: dir.clone(), summary: cilp_track::run::read_summary(&dir)?, history: run.read_metrics()? };
        done.push((p.clone(), seed_run(p.seed, p.run.clone(), &outcome)));
    }
    Ok((done, missing))
}

/// Summarises a study from its run folders without training: the collect step after an array
/// job. Every planned run must be a completed run with the study's config; any other is named
/// in [`StudyRuns::missing`] (and the summary) and left out of the statistics, never silently.
pub fn collect(settings: &StudySettings, models: &[String], opts: &StudyOptions) -> Result<StudyRuns> {
    let start = Instant::now();
    let planned = plan(settings, models)?;
    check_out(&opts.out)?;
    let lock = cilp_track::FolderLock::acquire(&opts.out, "study folder")?;
    let (data_cfg, data) = load_data(settings, opts)?;
    let (done, missing) = read_back(&planned, opts)?;
    if done.is_empty() {
        return Err(TrainError::Config(format!(
            "none of the {} runs of this study is finished in {} (run the tasks first: --plan lists them)",
            planned.len(),
            opts.out.display()
        )));
    }
    finish_study(settings, models, (data_cfg, &data), (done, missing), start, lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_crosses_rates_and_schedules_and_names_its_runs() {
        let mut s = StudySettings::preset(StudyPreset::Quick, "data");
        s.set_grid(&[1e-4, 1e-5], &[LrSchedule::Constant, LrSchedule::Cosine]);
        let arms = s.arms(&["late-fusion".into(), "early-fusion".into()]);
        let names: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "late-fusion-lr1e-4-constant",
                "late-fusion-lr1e-4-cosine",
                "late-fusion-lr1e-5-constant",
                "late-fusion-lr1e-5-cosine",
                "early-fusion-lr1e-4-constant",
                "early-fusion-lr1e-4-cosine",
                "early-fusion-lr1e-5-constant",
                "early-fusion-lr1e-5-cosine"
            ]
        );
        for a in &arms {
            assert_eq!(arm_model(&a.name), a.model);
            let c = s.arm_config(a, 52);
            let p = a.point.unwrap();
            assert_eq!((c.lr, c.lr_schedule, c.seed, c.model.as_str()), (p.lr, p.lr_schedule, 52, a.model.as_str()));
        }
        assert_eq!(run_name(&arms[1].name, 51), "late-fusion-lr1e-4-cosine-s51");
        s.validate().unwrap();
        // A bad rate anywhere in the grid is refused.
        s.set_grid(&[1e-4, -1.0], &[]);
        assert!(s.validate().is_err());
    }

    #[test]
    fn a_grid_of_one_point_is_no_grid() {
        let mut s = StudySettings::preset(StudyPreset::Quick, "data");
        s.set_grid(&[3e-4], &[LrSchedule::Cosine]);
        assert!(s.grid.is_empty());
        assert_eq!((s.lr, s.lr_schedule), (3e-4, LrSchedule::Cosine));
        let arms = s.arms(&["late-fusion".into()]);
        assert_eq!((arms[0].name.as_str(), arms[0].point), ("late-fusion", None));
        // Zoo names pass through arm_model unchanged.
        for m in cilp_models::model_names() {
            assert_eq!(arm_model(&m), m);
        }
    }
}
