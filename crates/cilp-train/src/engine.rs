//! Supervised training of every classifier in the zoo, through the one loop, [`crate::fit`].
//!
//! One call to [`train`] runs a complete, resumable run: it writes the resolved config first,
//! then per epoch trains, validates, appends metrics (`metrics.jsonl`/`.csv`), logs TensorBoard
//! scalars, checkpoints atomically and updates `summary.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use cilp_data::batch::Batches;
use cilp_data::dataset::Dataset;
use cilp_kernels::adam::adam_optimizer_with_epsilon;
use cilp_models::{Classifier, InputKind, build_classifier, model_info};
use cilp_track::metrics::EpochMetrics;
use cilp_track::names;
use cilp_track::run::{CreateMode, RunDir, RunStatus, RunSummary};
use indicatif::ProgressBar;

use crate::batching::make_batch;
use crate::config::TrainConfig;
use crate::device::train_device;
use crate::error::{Result, TrainError};
use crate::fit::{EpochReport, FitSettings, RunInfo, StepOutput, TestHooks, TrainStep, Validation, fit, open_run, validation_bar};

/// Where a run goes and how it is shown.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent directory of run directories.
    pub runs_dir: PathBuf,
    /// Run directory name (defaults to the model name).
    pub name: Option<String>,
    /// New run, overwrite (`--force`) or continue (`--resume`).
    pub mode: CreateMode,
    /// Show progress bars (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Print one line per epoch to stderr.
    pub quiet: bool,
    /// Test hooks (none in a normal run).
    pub hooks: TestHooks,
    /// Progress counters and the stop flag for a caller watching from another thread.
    pub control: crate::fit::Control,
    /// Reads the weights a config's `init` names into the freshly built model (the caller
    /// knows the file formats; the engine does not). A config with `init` and no loader is
    /// refused.
    pub init_loader: Option<WeightsLoader>,
}

/// `(model, file) -> model` with the file's weights, or why not.
pub type LoadWeightsFn = dyn Fn(Classifier, &Path) -> std::result::Result<Classifier, String> + Send + Sync;

/// Loads a weights file into a zoo classifier ([`LoadWeightsFn`]).
#[derive(Clone)]
pub struct WeightsLoader(pub Arc<LoadWeightsFn>);

impl std::fmt::Debug for WeightsLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeightsLoader(..)")
    }
}

/// `model` with the weights of `cfg.init` (unchanged when the config names none).
fn apply_init(model: Classifier, cfg: &TrainConfig, opts: &RunOptions, name: &str) -> Result<Classifier> {
    let Some(path) = &cfg.init else { return Ok(model) };
    let loader = opts.init_loader.as_ref().ok_or_else(|| {
        TrainError::Config(format!("the config starts from the weights {} (init), but no weights loader was given", path.display()))
    })?;
    let model = (loader.0)(model, path).map_err(|e| TrainError::Config(format!("--init {}: {e}", path.display())))?;
    if !opts.quiet {
        eprintln!("{name}: starting from the weights in {}", path.display());
    }
    Ok(model)
}

impl RunOptions {
    pub fn new(runs_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            runs_dir: runs_dir.into(),
            name: None,
            mode: CreateMode::New,
            progress: true,
            quiet: false,
            hooks: TestHooks::default(),
            control: Default::default(),
            init_loader: None,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub summary: RunSummary,
    pub history: Vec<EpochMetrics>,
}

pub use crate::data::PreparedData;

/// Mean loss and accuracy of one pass.
struct PassStats {
    loss: f64,
    accuracy: f64,
    samples: usize,
}

/// Counts correct predictions in a batch of logits `[B, 1 | C]`.
fn count_correct(logits: &Tensor<2>, targets: &[i64]) -> usize {
    let [b, c] = logits.dims();
    let values: Vec<f32> = logits.to_data().try_to_vec().expect("logits are f32");
    (0..b)
        .filter(|&i| {
            let row = &values[i * c..(i + 1) * c];
            let pred = if c == 1 {
                (row[0] > 0.0) as i64
            } else {
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (j, &v)| if v > best.1 { (j, v) } else { best }).0 as i64
            };
            pred == targets[i]
        })
        .count()
}

/// Evaluates a model (without autodiff) on `indices`.
pub fn evaluate(model: &Classifier, data: &Dataset, indices: &[usize], cfg: &TrainConfig, device: &Device) -> (f64, f64) {
    let s = eval_pass(model, data, indices, cfg, device, None);
    (s.loss, s.accuracy)
}

/// Smallest batch of an evaluation pass (validation, `cilp evaluate`). Evaluation keeps no
/// activations for a backward pass, so a batch larger than training's costs little memory and
/// runs faster per sample: 1.1-1.4x at batch 64 over batch 16 on one thread (docs/performance.md,
/// session 18). Each sample's logits do not depend on the batch; the mean loss is summed in
/// another grouping, so it can differ from a training-batch pass in its last bits.
pub const EVAL_BATCH: usize = 64;

/// The batch size of an evaluation pass for a run trained at `train_batch`.
pub fn eval_batch_size(train_batch: usize) -> usize {
    train_batch.max(EVAL_BATCH)
}

fn eval_pass(
    model: &Classifier,
    data: &Dataset,
    indices: &[usize],
    cfg: &TrainConfig,
    device: &Device,
    pb: Option<&ProgressBar>,
) -> PassStats {
    let kinds = model.inputs();
    let (mut loss_sum, mut correct, mut n) = (0f64, 0usize, 0usize);
    let batches = Batches::new(indices, eval_batch_size(cfg.batch_size), None, 0, false);
    for batch in batches.iter() {
        let (inputs, targets, target_vals) = make_batch(data, batch, &kinds, cfg.data.xyza, device);
        let logits = model.forward(&inputs);
        let loss: f32 = model.loss(logits.clone(), targets).into_scalar();
        loss_sum += loss as f64 * batch.len() as f64;
        correct += count_correct(&logits, &target_vals);
        n += batch.len();
        if let Some(pb) = pb {
            pb.inc(1);
        }
    }
    PassStats {
        loss: if n > 0 { loss_sum / n as f64 } else { f64::NAN },
        accuracy: if n > 0 { correct as f64 / n as f64 } else { f64::NAN },
        samples: n,
    }
}

/// A zoo classifier as [`fit`] trains it: cross-entropy (or BCE) on the dataset's samples.
struct ClassifierStep<'a> {
    cfg: &'a TrainConfig,
    data: &'a PreparedData,
    kinds: Vec<InputKind>,
    device: Device,
    eval_device: Device,
    name: String,
    progress: bool,
}

impl TrainStep for ClassifierStep<'_> {
    type Model = Classifier;

    fn train_indices(&self) -> &[usize] {
        &self.data.split.train
    }

    fn step(&mut self, model: &Classifier, batch: &[usize]) -> Option<StepOutput> {
        let (inputs, targets, target_vals) = make_batch(&self.data.dataset, batch, &self.kinds, self.cfg.data.xyza, &self.device);
        let logits = model.forward(&inputs);
        let loss = model.loss(logits.clone(), targets);
        Some(StepOutput { loss, correct: Some(count_correct(&logits, &target_vals)) })
    }

    fn validate(&mut self, model: &Classifier, _epoch: usize) -> Result<Validation> {
        let vpb = validation_bar(self.progress, self.data.split.val.len().div_ceil(eval_batch_size(self.cfg.batch_size)));
        let s = eval_pass(model, &self.data.dataset, &self.data.split.val, self.cfg, &self.eval_device, Some(&vpb));
        vpb.finish_and_clear();
        Ok(Validation::by_loss(s.loss, Some(s.accuracy), s.samples))
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        Some(format!(
            "{}: epoch {}/{}  train loss {:.4} acc {:.2}%  val loss {:.4} acc {:.2}%  {:.1}s ({:.0} samples/s){}",
            self.name,
            r.epoch,
            r.epochs,
            r.train_loss,
            100.0 * r.train_accuracy.unwrap_or(f64::NAN),
            r.val.loss,
            100.0 * r.val.accuracy.unwrap_or(f64::NAN),
            r.seconds,
            r.train_samples_per_s,
            if r.improved { "  *best" } else { "" }
        ))
    }
}

/// Runs (or resumes) one supervised training run and returns its summary.
pub fn train(cfg: &TrainConfig, data: &PreparedData, opts: &RunOptions) -> Result<TrainOutcome> {
    cfg.validate().map_err(TrainError::Config)?;
    let info = model_info(&cfg.model)?;
    // Settings that would fail later are refused before the run folder is created: a failed
    // try must not leave a folder holding only a config, which blocks the next try.
    if info.task != cilp_models::ModelTask::Classification {
        return Err(cilp_models::ModelError::NotAClassifier { name: cfg.model.clone(), task: info.task }.into());
    }
    let device = train_device(cfg.device)?;
    let name = opts.name.clone().unwrap_or_else(|| cfg.model.clone());
    let eval_device = device.clone().without_autodiff();
    let mut model = crate::device::init_seeded(&device, cfg.seed, |d| Ok(build_classifier(&cfg.model, d)?))?;
    // A new run reads its init weights before its folder exists: a file that does not fit
    // leaves nothing behind. A resumed run reads them only when it restarts from epoch 1.
    if opts.mode != CreateMode::Resume {
        model = apply_init(model, cfg, opts, &name)?;
    }
    let open = open_run(&opts.runs_dir, &name, opts.mode, cfg, &[names::VAL_LOSS, names::VAL_ACCURACY, names::TRAIN_LOSS])?;
    if opts.mode == CreateMode::Resume {
        // A resumed run keeps its experiment; only what `resume_changes` allows may differ, and
        // is then recorded in its config. The config (and the summary) of a run whose first
        // epoch never committed still apply: that run starts again from epoch 1.
        let run = &open.run;
        let saved: TrainConfig = run.read_config()?;
        let done = open.resumed.as_ref().map_or(0, |s| s.epoch);
        let changes = saved
            .resume_changes(cfg, done)
            .map_err(|e| TrainError::Config(format!("{}: {e}", run.path().join(cilp_track::run::CONFIG_TOML).display())))?;
        if !changes.is_empty() {
            run.write_config(cfg)?;
            if !opts.quiet {
                let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
                eprintln!("{name}: resuming with {} (recorded in its config.toml)", list.join(", "));
            }
        }
        if let Some(st) = &open.resumed {
            let completed = run.read_summary().ok().filter(|s| s.status == RunStatus::Completed);
            if st.epoch >= cfg.epochs
                && let Some(summary) = completed
            {
                if !opts.quiet {
                    eprintln!(
                        "{name}: already completed all {} epochs in {}; nothing to resume (pass --epochs N to train further)",
                        cfg.epochs,
                        run.path().display()
                    );
                }
                let history = run.read_metrics()?;
                return Ok(TrainOutcome { run_dir: run.path().to_path_buf(), summary, history });
            }
        }
    }

    if opts.mode == CreateMode::Resume && open.resumed.is_none() {
        model = apply_init(model, cfg, opts, &name)?;
    }
    let mut step = ClassifierStep { cfg, data, kinds: model.inputs(), device, eval_device, name: name.clone(), progress: opts.progress };
    let run_info = RunInfo {
        name: &name,
        kind: "train",
        model: &cfg.model,
        parameters: info.parameters as u64,
        device: cfg.device.to_string(),
        seed: cfg.seed,
    };
    let settings = FitSettings {
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        drop_last: cfg.drop_last,
        lr: cfg.lr,
        schedule: cfg.lr_schedule,
        progress: opts.progress,
        quiet: opts.quiet,
        hooks: opts.hooks,
        control: opts.control.clone(),
        commit_every: crate::fit::commit_every(),
    };
    let optim = adam_optimizer_with_epsilon(cfg.adam_epsilon.unwrap_or(cilp_kernels::adam::BURN_EPSILON));
    let fitted = fit(open, &run_info, &settings, &mut step, model, optim)?;
    Ok(TrainOutcome { run_dir: fitted.run.path().to_path_buf(), summary: fitted.summary, history: fitted.history })
}

/// Like [`train`], but idempotent, for pipelines such as `cilp run`: a run directory that
/// already holds a *completed* run of the same config is reused as it is, an interrupted one
/// with the same config is resumed, and one with a different config is an error (unless
/// `opts.mode` is `Force`, which retrains from scratch).
pub fn train_or_reuse(cfg: &TrainConfig, data: &PreparedData, opts: &RunOptions) -> Result<TrainOutcome> {
    let name = opts.name.clone().unwrap_or_else(|| cfg.model.clone());
    let dir = opts.runs_dir.join(&name);
    if opts.mode == CreateMode::Force || !cilp_track::run::holds_run(&dir) {
        let mut o = opts.clone();
        if o.mode == CreateMode::Resume {
            o.mode = CreateMode::New;
        }
        return train(cfg, data, &o);
    }
    let existing = RunDir::open(&dir)?;
    let saved: Option<TrainConfig> = existing.read_config().ok();
    if saved.as_ref() != Some(cfg) {
        return Err(TrainError::Config(format!("{}: holds a run with a different config; pass --force to replace it", dir.display())));
    }
    if let Ok(summary) = existing.read_summary()
        && summary.status == RunStatus::Completed
    {
        // Reused without being reopened: drop what a killed writer left half-written.
        cilp_track::atomic::remove_stale_temp_files(&dir);
        cilp_track::atomic::remove_stale_temp_files(&existing.checkpoints_dir());
        if !opts.quiet {
            eprintln!("{name}: reusing the completed run in {}", dir.display());
        }
        let history = existing.read_metrics()?;
        return Ok(TrainOutcome { run_dir: dir, summary, history });
    }
    let mut o = opts.clone();
    o.mode = CreateMode::Resume;
    train(cfg, data, &o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_batches_are_never_smaller_than_training_ones_nor_than_eval_batch() {
        assert_eq!(eval_batch_size(16), EVAL_BATCH, "the quick studies' batch 16 validates at 64");
        assert_eq!(eval_batch_size(1), EVAL_BATCH);
        assert_eq!(eval_batch_size(256), 256, "a larger training batch is kept");
    }
}
