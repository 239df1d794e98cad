//! `cilp fusion` and `cilp ablation`: the studies of cilp_studies, over several seeds; their
//! files are written by cilp_report::study_files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cilp_studies::{self as studies, FinishedStudy, StudyMode, StudyOptions, StudySettings};
use clap::Args;

use crate::{Preset, ScheduleArg};

/// The seed of a study's split unless `--split-seed` says otherwise.
pub const DEFAULT_SPLIT_SEED: u64 = 51;

/// Flags shared by both studies.
#[derive(Args, Debug, Clone)]
pub struct StudyFlags {
    /// Dataset root (cubes/ and spheres/).
    #[arg(long)]
    pub data: PathBuf,
    /// quick: 500 pairs per class, 3 epochs, batch 16, Adam 1e-3, seeds 51-55 (about 8 min on 2
    /// cores; the models learn to 90%+); full: all pairs, 10 epochs, batch 32, Adam 1e-4, seeds
    /// 51,52,53 (the original scale; hours on 2 cores: see docs/studies.md).
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    /// Seeds (comma-separated; default: the preset's, 51-55 quick, 51,52,53 full); each model is trained once per
    /// seed. The split stays fixed.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Override the preset's epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override the preset's pairs per class (0 = all).
    #[arg(long)]
    pub limit_per_class: Option<usize>,
    /// Override the preset's learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the preset's batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// How the learning rate moves over each run (default: constant).
    #[arg(long, value_enum)]
    pub lr_schedule: Option<ScheduleArg>,
    /// Seed of the 80/20 split, the same for every run.
    #[arg(long, default_value_t = DEFAULT_SPLIT_SEED)]
    pub split_seed: u64,
    /// Compute device.
    #[arg(long, default_value_t = cilp_train::device::DeviceSpec::Cpu)]
    pub device: cilp_train::device::DeviceSpec,
    /// Replace existing runs of the study.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Continue an interrupted study: finished runs are read back, unfinished ones resumed.
    #[arg(long)]
    pub resume: bool,
    /// No per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Print the study's runs as JSON (index, run name, full config) and exit: the tasks of an
    /// array job (see --task-index).
    #[arg(long, conflicts_with_all = ["task_index", "collect"])]
    pub plan: bool,
    /// Train exactly run N of --plan into the study folder (one task of an array job; other
    /// workers may share the folder) and exit. Bare --task-index takes N from
    /// SLURM_ARRAY_TASK_ID, else JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). A re-run task
    /// resumes its run; a run another worker holds is refused.
    #[arg(long, num_args = 0..=1, value_name = "N", conflicts_with = "collect")]
    pub task_index: Option<Option<usize>>,
    /// Summarise the study from its run folders without training (after the array job): tables,
    /// charts and summary.json; runs that are not finished are named as missing.
    #[arg(long)]
    pub collect: bool,
    /// Train N runs at once, each in a worker process with its share of the compute threads
    /// (`RAYON_NUM_THREADS` or every core, divided by N), the costliest runs first. The runs are
    /// bit-identical to those of one process; small models and batches finish sooner. Each
    /// worker's output goes to OUT/.workers/RUN.log (kept when one fails). Default: 2 on the CPU
    /// device with 2 or more compute threads, else 1.
    #[arg(long, value_parser = crate::positive_jobs, conflicts_with_all = ["plan", "task_index", "collect"])]
    pub jobs: Option<usize>,
    /// A process beside the study (`cilp run`'s assessment) that takes one of the jobs while
    /// it runs.
    #[arg(skip)]
    pub companion: Option<std::sync::Arc<studies::Companion>>,
}

/// The hidden `cilp study-worker`: one run of a study, started by `--jobs N`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The run's config (TOML), exactly as planned by the study.
    #[arg(long)]
    pub config: PathBuf,
    /// The study folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The run's folder name inside it.
    #[arg(long)]
    pub name: String,
    /// How to open the run's folder.
    #[arg(long, value_enum)]
    pub mode: ModeArg,
}

/// `cilp study-worker --mode`: a [`CreateMode`](cilp_track::run::CreateMode) on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    New,
    Force,
    Resume,
}

impl From<cilp_track::run::CreateMode> for ModeArg {
    fn from(m: cilp_track::run::CreateMode) -> Self {
        match m {
            cilp_track::run::CreateMode::New => ModeArg::New,
            cilp_track::run::CreateMode::Force => ModeArg::Force,
            cilp_track::run::CreateMode::Resume => ModeArg::Resume,
        }
    }
}

impl From<ModeArg> for cilp_track::run::CreateMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::New => cilp_track::run::CreateMode::New,
            ModeArg::Force => cilp_track::run::CreateMode::Force,
            ModeArg::Resume => cilp_track::run::CreateMode::Resume,
        }
    }
}

/// Trains one planned run of a study (see [`WorkerArgs`]).
pub fn worker(a: WorkerArgs) -> Result<()> {
    let text = cilp_data::io::read_bounded_to_string(&a.config, cilp_track::run::MAX_RUN_FILE_BYTES, "a run config (TOML)")?;
    let config: cilp_train::config::TrainConfig =
        toml::from_str(&text).with_context(|| format!("{}: not a valid training config", a.config.display()))?;
    let o = studies::workers::train_worker(&config, &a.out, &a.name, a.mode.into(), crate::switches::hooks(), Default::default())?;
    println!("{} {}", o.run_dir.display(), o.summary.status.as_str());
    Ok(())
}

/// The command `--jobs` starts for one run: this binary's hidden worker command.
fn worker_command(p: &studies::runner::PlannedRun, config: &Path, mode: cilp_track::run::CreateMode, out: &Path) -> std::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cilp"));
    let mode = crate::assess_cmd::flag_name(&ModeArg::from(mode));
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("study-worker").arg("--config").arg(config).arg("--out").arg(out).arg("--name").arg(&p.run).arg("--mode").arg(&mode);
    die_with_parent(&mut cmd);
    cmd
}

/// A worker dies with the study that started it, even when that one is killed with SIGKILL
/// (which it cannot pass on): no orphan keeps training, or holding its run's lock, after the
/// study is gone. Linux (`PR_SET_PDEATHSIG`); elsewhere a killed study's workers run to their end.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
        // getppid(2) and _exit(2), which are async-signal-safe and touch no shared memory.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died between fork and prctl: nobody would signal this worker.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// What a study command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Train every run, then summarise (one machine).
    All,
    Plan,
    Task(usize),
    Collect,
}

/// The environment variables a bare `--task-index` reads, in order.
pub const TASK_INDEX_VARS: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

impl StudyFlags {
    /// Runs trained at once: `--jobs`, else [`default_jobs`](crate::default_jobs).
    fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| crate::default_jobs(self.device))
    }

    fn settings(&self) -> Result<StudySettings> {
        let mut s = StudySettings::preset(self.preset.into(), &self.data);
        let custom = self.epochs.is_some()
            || self.limit_per_class.is_some()
            || self.lr.is_some()
            || self.batch_size.is_some()
            || self.lr_schedule.is_some();
        if let Some(v) = self.lr_schedule {
            s.lr_schedule = v.into();
        }
        if let Some(e) = self.epochs {
            s.epochs = e;
        }
        if let Some(l) = self.limit_per_class {
            s.data.limit_per_class = (l > 0).then_some(l);
        }
        if let Some(lr) = self.lr {
            s.lr = lr;
        }
        if let Some(b) = self.batch_size {
            s.batch_size = b;
        }
        if custom {
            s.preset = format!("{} (overridden)", s.preset);
        }
        if !self.seeds.is_empty() {
            s.seeds = self.seeds.clone();
        }
        s.data.split_seed = Some(self.split_seed);
        s.device = self.device;
        Ok(s)
    }

    fn work(&self) -> Result<Work> {
        Ok(match self.task_index {
            _ if self.plan => Work::Plan,
            _ if self.collect => Work::Collect,
            Some(Some(i)) => Work::Task(i),
            Some(None) => {
                let Some((var, v)) = TASK_INDEX_VARS.iter().find_map(|v| std::env::var(v).ok().map(|x| (*v, x))) else {
                    bail!("--task-index without a number needs {} set (or pass --task-index N)", TASK_INDEX_VARS.join(" or "));
                };
                Work::Task(v.trim().parse().with_context(|| format!("{var}={v:?} is not a task index (0, 1, 2, ...)"))?)
            }
            None => Work::All,
        })
    }

    fn options(&self, out: &Path) -> StudyOptions {
        let mut o = StudyOptions::new(out);
        o.mode = if self.force {
            StudyMode::Force
        } else if self.resume {
            StudyMode::Resume
        } else {
            StudyMode::New
        };
        o.quiet = self.quiet;
        o.hooks = crate::switches::hooks();
        o
    }
}

#[derive(Args, Debug)]
pub struct FusionArgs {
    #[command(flatten)]
    pub study: StudyFlags,
    /// Study folder: run directories <model>-s<seed>/ plus summary.json, results.md/.csv and charts.
    #[arg(long, default_value = "runs/fusion")]
    pub out: PathBuf,
    /// Models to compare (comma-separated; default: the five fusion models). For tests and subsets.
    #[arg(long, value_delimiter = ',', hide = true)]
    pub models: Vec<String>,
    /// A learning-rate grid: train every model at each of these rates (comma-separated, e.g.
    /// 1e-4,1e-5,1e-6, as the original's notebook 02), crossed with --lr-schedules. Each point
    /// is an ordinary run <model>-lr<rate>-<schedule>-s<seed>; the table ranks the points.
    #[arg(long, value_delimiter = ',', conflicts_with = "lr")]
    pub lrs: Vec<f64>,
    /// The schedules of the grid (comma-separated, e.g. constant,cosine), crossed with --lrs.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "lr_schedule")]
    pub lr_schedules: Vec<ScheduleArg>,
}

/// Writes the study's files (under its folder lock, which `done` holds), prints `results.md`.
fn write_and_print(done: FinishedStudy, out: &Path, t: Instant) -> Result<()> {
    let FinishedStudy { mut summary, lock } = done;
    cilp_report::study_files::write(out, &mut summary).with_context(|| format!("writing the study files into {}", out.display()))?;
    drop(lock);
    match std::fs::read_to_string(out.join(cilp_report::study_files::RESULTS_MD)) {
        Ok(md) => println!("{md}"),
        Err(_) => println!("{}", summary.title),
    }
    eprintln!("{} study done in {:.0}s; results in {}", summary.study, t.elapsed().as_secs_f64(), out.display());
    Ok(())
}

pub fn fusion(a: FusionArgs) -> Result<()> {
    let t = Instant::now();
    let mut settings = a.study.settings()?;
    if !a.lrs.is_empty() || !a.lr_schedules.is_empty() {
        if let Some(bad) = a.lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
            bail!("--lrs: {bad} is not a learning rate (a positive number)");
        }
        let schedules: Vec<cilp_train::LrSchedule> = a.lr_schedules.iter().map(|&s| s.into()).collect();
        settings.set_grid(&a.lrs, &schedules);
        if !settings.preset.ends_with("(overridden)") {
            settings.preset = format!("{} (overridden)", settings.preset);
        }
    }
    let models: Vec<String> =
        if a.models.is_empty() { studies::FUSION_MODELS.iter().map(|s| s.to_string()).collect() } else { a.models.clone() };
    run_study(&a.study, a.study.options(&a.out), &settings, &models, studies::fusion_summary, t)
        .with_context(|| format!("fusion study in {}", a.out.display()))
}

/// Runs a study's `models` as `flags` say: all of them, one task of an array job, only the plan,
/// or only the summary of runs trained elsewhere (`summarise` turns runs into the study's summary).
fn run_study(
    flags: &StudyFlags,
    mut opts: StudyOptions,
    settings: &StudySettings,
    models: &[String],
    summarise: fn(&studies::runner::StudyRuns) -> studies::StudySummary,
    t: Instant,
) -> Result<()> {
    let out = opts.out.clone();
    let jobs = flags.jobs();
    match flags.work()? {
        Work::Plan => {
            let plan = studies::runner::plan(settings, models)?;
            let json = serde_json::json!({ "out": out, "tasks": plan.len(), "runs": plan });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Work::Task(i) => {
            // A task re-run after its worker died continues its run (unless --force).
            if opts.mode == StudyMode::New {
                opts.mode = StudyMode::Resume;
            }
            let (p, o) = studies::runner::run_task(settings, models, i, &opts)?;
            println!("task {i}: {} {} in {}", p.run, o.summary.status.as_str(), o.run_dir.display());
        }
        Work::Collect => {
            let st = studies::runner::collect(settings, models, &opts)?;
            let missing = st.missing.len();
            write_and_print(FinishedStudy { summary: summarise(&st), lock: st.lock }, &out, t)?;
            if missing > 0 {
                bail!("{missing} of the study's runs are missing (named in {}/results.md); the summary covers the others", out.display());
            }
        }
        Work::All if jobs > 1 => {
            let command = |p: &studies::runner::PlannedRun, config: &Path, mode| worker_command(p, config, mode, &out);
            let workers = studies::Workers {
                jobs,
                threads_per_job: (cilp_bench::threads() / jobs).max(1),
                command: &command,
                companion: flags.companion.as_deref(),
            };
            let st = studies::run_models_in_workers(settings, models, &opts, &workers)?;
            write_and_print(FinishedStudy { summary: summarise(&st), lock: st.lock }, &out, t)?;
        }
        Work::All => {
            let st = studies::run_models(settings, models, &opts)?;
            write_and_print(FinishedStudy { summary: summarise(&st), lock: st.lock }, &out, t)?;
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct AblationArgs {
    #[command(flatten)]
    pub study: StudyFlags,
    /// Study folder.
    #[arg(long, default_value = "runs/ablation")]
    pub out: PathBuf,
    /// The MaxPool2d model to ablate (a fusion model name). Default: the best model of the fusion
    /// study in --fusion; without one, late-fusion.
    #[arg(long)]
    pub model: Option<String>,
    /// A fusion study folder (or its summary.json) to take the best model from. Default: a
    /// `fusion` folder next to --out, if it holds a fusion summary. Its completed runs of the
    /// ablated model with the same settings are reused as the MaxPool2d baseline instead of
    /// being trained again.
    #[arg(long)]
    pub fusion: Option<PathBuf>,
}

/// The default fusion study of an ablation: a `fusion` folder next to its `--out`.
fn fusion_sibling(out: &Path) -> PathBuf {
    out.parent().map(|p| p.join("fusion")).unwrap_or_else(|| PathBuf::from("fusion"))
}

fn pick_model(a: &AblationArgs) -> Result<String> {
    if let Some(m) = &a.model {
        return Ok(m.clone());
    }
    if let Some(f) = &a.fusion {
        let m = studies::best_fusion_model(f)?;
        eprintln!("ablating {m}, the best model of the fusion study in {}", f.display());
        return Ok(m);
    }
    let sibling = fusion_sibling(&a.out);
    if let Ok(m) = studies::best_fusion_model(&sibling) {
        eprintln!("ablating {m}, the best model of the fusion study in {}", sibling.display());
        return Ok(m);
    }
    eprintln!("no fusion study found at {} (pass --model or --fusion): ablating late-fusion", sibling.display());
    Ok("late-fusion".into())
}

pub fn ablation(a: AblationArgs) -> Result<()> {
    let t = Instant::now();
    let model = pick_model(&a)?;
    if studies::ablation_models(&model).is_err() {
        bail!("{model} has no strided variants in the zoo; pick one of: {}", studies::FUSION_MODELS.join(", "));
    }
    let settings = a.study.settings()?;
    let mut opts = a.study.options(&a.out);
    // The MaxPool2d baseline is the fusion study's run of the same model: reused when its config
    // is the same (see `StudyOptions::reuse_from`), trained otherwise.
    let fusion = match &a.fusion {
        Some(f) if f.is_file() => f.parent().map(Path::to_path_buf),
        Some(f) => Some(f.clone()),
        None => Some(fusion_sibling(&a.out)),
    };
    opts.reuse_from = fusion.filter(|f| f.is_dir());
    let models = studies::ablation_models(&model)?;
    run_study(&a.study, opts, &settings, &models, studies::ablation_summary, t)
        .with_context(|| format!("ablation study in {}", a.out.display()))
}
