//! `cilp`: the command-line front end. Thin by design: it parses flags, resolves settings
//! (flags over config file over defaults) and makes one library call per subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod alloc;
mod assess_cmd;
mod bench_cmd;
mod commands;
mod export_cmd;
mod studies_cmd;
mod switches;

#[derive(Parser, Debug)]
#[command(name = "cilp", version, about = "Multimodal RGB + LiDAR deep learning: data, fusion studies, CILP assessment, tracking")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The main job: generate the default data if missing, summarise it, train the quick study, list the runs.
    Run(RunArgs),
    /// Generate a synthetic cubes/spheres dataset in the real dataset's exact layout.
    Generate(GenerateArgs),
    /// Load a dataset and print its summary (pairs, unpaired files, load time).
    Info(InfoArgs),
    /// List the model zoo with exact parameter counts.
    Models(ModelsArgs),
    /// Train one model from the zoo; writes a run directory.
    Train(TrainArgs),
    /// Classify RGB PNGs or LiDAR .npy depth maps with a trained model or PyTorch weights.
    Predict(PredictArgs),
    /// Write a trained run as .safetensors with the original PyTorch state-dict names, or as an ONNX graph (and FILE.json).
    Export(export_cmd::ExportArgs),
    /// Explore a dataset: statistics and a self-contained HTML page (the FiftyOne part).
    Explore(ExploreArgs),
    /// Write one self-contained HTML report comparing every run under a directory.
    Report(ReportArgs),
    /// The fusion study: early, late and intermediate (concat/add/Hadamard) fusion compared over seeds.
    Fusion(studies_cmd::FusionArgs),
    /// The ablation: MaxPool2d vs strided-convolution downsampling on the best fusion model.
    Ablation(studies_cmd::AblationArgs),
    /// NVIDIA's assessment: CILP pretraining, projector, RGB classification through the LiDAR classifier
    /// (`--variant seed`: the seed's own assessment, REFERENCE §7).
    Assess(assess_cmd::AssessArgs),
    /// Measure training and inference samples/second of every architecture.
    Bench(bench_cmd::BenchArgs),
    /// Check that a GPU device (wgpu) computes what the CPU computes: outputs, loss, gradients
    /// and one Adam step of every zoo model, within stated tolerances.
    DeviceCheck(bench_cmd::DeviceCheckArgs),
    /// List and compare run directories.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// One run of a study trained in a worker process (what `--jobs N` starts; not for hand use).
    #[command(hide = true)]
    StudyWorker(studies_cmd::WorkerArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Dataset to use; by default `data/default`, generated if missing.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where run directories go.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// quick (minutes on 2 cores), full (all data, the original epochs) or smoke (seconds: a few
    /// pairs, one epoch and one seed per stage; checks the whole pipeline, its numbers mean nothing).
    #[arg(long, value_enum, default_value_t = RunPreset::Quick)]
    pub preset: RunPreset,
    /// Compute device.
    #[arg(long, default_value_t = cilp_train::device::DeviceSpec::Cpu)]
    pub device: cilp_train::device::DeviceSpec,
    /// Redo every study from scratch, replacing earlier results in --out.
    #[arg(long)]
    pub force: bool,
    /// NVIDIA's pretrained lidar_cnn.pt for the assessment (otherwise a LiDAR classifier is trained first).
    #[arg(long)]
    pub lidar_classifier: Option<PathBuf>,
    /// Exit 0 even when the assessment fails one of NVIDIA's thresholds (by default that exits
    /// 1; the smoke preset never grades, its numbers mean nothing).
    #[arg(long)]
    pub allow_fail: bool,
    /// Train N runs of each study at once, each in a worker process with its share of the
    /// compute threads (see `cilp fusion --jobs`); the results are the same at any N. Default: 2
    /// on the CPU device with 2 or more cores (or `RAYON_NUM_THREADS` >= 2), else 1.
    #[arg(long, value_parser = positive_jobs)]
    pub jobs: Option<usize>,
}

/// `--preset` of the studies and the assessment: parsed once here, mapped to each library's own.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Quick,
    Full,
}

impl From<Preset> for cilp_studies::StudyPreset {
    fn from(p: Preset) -> Self {
        match p {
            Preset::Quick => cilp_studies::StudyPreset::Quick,
            Preset::Full => cilp_studies::StudyPreset::Full,
        }
    }
}

impl From<Preset> for cilp_assess::AssessPreset {
    fn from(p: Preset) -> Self {
        match p {
            Preset::Quick => cilp_assess::AssessPreset::Quick,
            Preset::Full => cilp_assess::AssessPreset::Full,
        }
    }
}

/// `--split`: how the pairs are split into training and validation samples.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKind {
    /// Seeded, per-class stratified; `--val-fraction` is held out.
    Ratio,
    /// NVIDIA's per-class index split.
    Nvidia,
}

/// Presets of `cilp run`: the studies' two plus a smoke test of the whole pipeline.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunPreset {
    Quick,
    Full,
    /// Seconds: 24 pairs per class, one epoch, one seed; checks that every stage runs.
    Smoke,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Output dataset root (gets cubes/ and spheres/).
    #[arg(long)]
    pub out: PathBuf,
    /// Pairs per class (the original has 9,999).
    #[arg(long, default_value_t = 9999, value_parser = positive_count)]
    pub per_class: usize,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 51)]
    pub seed: u64,
    /// Scene preset: `default` (faithful to the real data) or `hard` (noise, occlusion, more classes).
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// Write into a non-empty directory.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Dataset root.
    #[arg(long)]
    pub data: PathBuf,
    /// Load at most N pairs per class.
    #[arg(long)]
    pub limit_per_class: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A learning-rate schedule on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleArg {
    /// The same rate at every step.
    Constant,
    /// PyTorch's CosineAnnealingLR(T_max = epochs) stepped once per epoch (the original study's).
    Cosine,
    /// Linear warm-up over the first 10% of the steps, then cosine decay towards 0, per step.
    WarmupCosine,
}

impl From<ScheduleArg> for cilp_train::LrSchedule {
    fn from(s: ScheduleArg) -> Self {
        match s {
            ScheduleArg::Constant => cilp_train::LrSchedule::Constant,
            ScheduleArg::Cosine => cilp_train::LrSchedule::Cosine,
            ScheduleArg::WarmupCosine => cilp_train::LrSchedule::WarmupCosine,
        }
    }
}

/// Gallery samples per class of `cilp explore`.
pub const DEFAULT_GALLERY: usize = 4;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Dataset root.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for stats.json and index.html.
    #[arg(long, required_unless_present = "fiftyone")]
    pub out: Option<PathBuf>,
    /// Also (or only) export the dataset for FiftyOne into this folder: PNGs, PCD point clouds, labels, a loader script.
    #[arg(long)]
    pub fiftyone: Option<PathBuf>,
    /// Gallery samples per class.
    #[arg(long, default_value_t = DEFAULT_GALLERY)]
    pub gallery: usize,
    /// Load at most N pairs per class.
    #[arg(long)]
    pub limit_per_class: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Directory holding run directories.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Output HTML file.
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
    /// An exploration folder (from `cilp explore --out`) to include.
    #[arg(long)]
    pub explore: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Zoo model name (see `cilp models`).
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset root.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Parent directory for run directories.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Run directory name (default: the model name).
    #[arg(long)]
    pub name: Option<String>,
    /// A TOML config file (a run's config.toml works); flags override it.
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    #[arg(long, allow_negative_numbers = true, value_parser = non_negative_count)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// How the learning rate moves over the run (default: constant; recorded in metrics.jsonl
    /// and TensorBoard per epoch).
    #[arg(long, value_enum)]
    pub lr_schedule: Option<ScheduleArg>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu (default) or wgpu (builds with --features wgpu).
    #[arg(long)]
    pub device: Option<cilp_train::device::DeviceSpec>,
    /// ratio (seeded stratified, see --val-fraction) or nvidia (per-class index split).
    #[arg(long, value_enum)]
    pub split: Option<SplitKind>,
    #[arg(long)]
    pub val_fraction: Option<f64>,
    #[arg(long)]
    pub limit_per_class: Option<usize>,
    /// Depth-to-XYZA convention: seed, spherical or nvidia.
    #[arg(long)]
    pub xyza: Option<cilp_data::tensorize::XyzaConvention>,
    /// Drop the last incomplete batch.
    #[arg(long)]
    pub drop_last: bool,
    /// Continue an interrupted run from its last checkpoint, with its saved config. --epochs
    /// (more), --lr, --data (a moved dataset) and --device may change and are recorded in the
    /// run's config; any other flag that differs from the saved config is refused.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Overwrite an existing run directory of the same name.
    #[arg(long)]
    pub force: bool,
    /// Start from these weights instead of the seeded initialisation: a `cilp export`
    /// .safetensors or a PyTorch .pt with the model's PyTorch names (recorded in the run's config).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Adam's epsilon (default burn's 1e-5; PyTorch's default, which the original study used, is
    /// 1e-8). Recorded in the run's config when given.
    #[arg(long)]
    pub adam_epsilon: Option<f64>,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Zoo model name (optional with a run directory, whose config names it).
    #[arg(long)]
    pub model: Option<String>,
    /// A run directory or a .bpk checkpoint file.
    #[arg(long, conflicts_with = "weights", required_unless_present = "weights")]
    pub checkpoint: Option<PathBuf>,
    /// Weights with PyTorch names: a `cilp export` .safetensors (its FILE.json names the model
    /// and the XYZA convention) or a PyTorch .pt, e.g. NVIDIA's lidar_cnn.pt.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// One JSON object per input line.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = cilp_train::device::DeviceSpec::Cpu)]
    pub device: cilp_train::device::DeviceSpec,
    /// RGB .png or LiDAR .npy files (fusion models find the paired file in the sibling folder).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Table of the runs under a directory.
    List {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Side-by-side comparison of runs.
    Compare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// SIGINT (Ctrl-C) and SIGTERM (`kill`, Slurm, Kubernetes): every run being written is marked
/// `interrupted` in its `summary.json` (see `cilp_track::interrupt`), one line says so, and the
/// process exits 128 + the signal number. Checkpoints need nothing: they are committed
/// atomically, and `--resume` continues from the last one.
fn handle_interrupts() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: cannot handle SIGINT/SIGTERM ({e}); an interrupted run will read `running`");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            // A study's worker processes (`--jobs N`) get the signal too (a terminal's Ctrl-C
            // reaches them anyway; `kill`, Slurm or Kubernetes may signal this process alone),
            // and a few seconds to mark their runs interrupted.
            let workers = cilp_studies::workers::for_each_live_worker(|pid| send_signal(pid, sig));
            let t = Instant::now();
            while cilp_studies::workers::live_worker_count() > 0 && t.elapsed().as_secs() < 10 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if workers > 0 {
                eprintln!(
                    "interrupted by {name}: stopped {workers} study worker(s), each marks its run interrupted; continue with --resume"
                );
            }
            // Held until exit: no summary write can follow the marks.
            let marked = cilp_track::interrupt::mark_interrupted(name);
            let list: Vec<String> = marked.runs.iter().map(|p| p.display().to_string()).collect();
            if list.is_empty() {
                eprintln!("interrupted by {name}");
            } else {
                eprintln!("interrupted by {name}: marked {} interrupted; continue with --resume", list.join(", "));
            }
            std::process::exit(128 + sig);
        }
    });
}

/// Sends `sig` to process `pid` (a study worker this process started).
#[allow(unsafe_code)]
fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects in this process; `pid` is a worker that has not been
    // reaped (see `cilp_studies::workers::for_each_live_worker`).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn main() -> ExitCode {
    switches::init();
    handle_interrupts();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", terminal_safe(&error_line(&e)));
            ExitCode::FAILURE
        }
    }
}

/// `s` with control characters (ESC, CR, BEL, ...) written as escapes (`\u{1b}`), so that a
/// file name cannot drive the terminal; newlines are kept.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars().map(|c| if c.is_control() && c != '\n' { c.escape_debug().to_string() } else { c.to_string() }).collect(),
    )
}

/// The error and its causes on one line, each cause once: many errors already quote their
/// source (`cannot create directory X: <os error>`), which `{:#}` would repeat.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !line.contains(&c) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&c);
        }
    }
    line
}

fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Run(a) => commands::run(a),
        Command::Generate(a) => commands::generate(a),
        Command::Info(a) => commands::info(a),
        Command::Models(a) => commands::models(a),
        Command::Train(a) => commands::train(a),
        Command::Predict(a) => commands::predict(a),
        Command::Export(a) => export_cmd::export(a),
        Command::Explore(a) => commands::explore(a),
        Command::Report(a) => commands::report(a),
        Command::Fusion(a) => studies_cmd::fusion(a),
        Command::Ablation(a) => studies_cmd::ablation(a),
        Command::Assess(a) => assess_cmd::assess(a),
        Command::Bench(a) => bench_cmd::bench(a),
        Command::DeviceCheck(a) => bench_cmd::device_check(a),
        Command::Runs { command } => commands::runs(command),
        Command::StudyWorker(a) => studies_cmd::worker(a),
    }
}

/// Seconds since `t`, for messages.
/// clap parser for a count that may be 0 (`--epochs`): a negative number is an invalid value
/// with a clear message, not "unexpected argument".
fn non_negative_count(s: &str) -> std::result::Result<usize, String> {
    s.trim().parse::<usize>().map_err(|_| format!("must be a non-negative integer, got '{s}'"))
}

/// Runs trained at once when `--jobs` is not given (`cilp run`, `cilp fusion`, `cilp ablation`):
/// 2 on the CPU device with 2 or more compute threads (`RAYON_NUM_THREADS`, else every core),
/// else 1. Two one-thread runs beat one two-thread run on 2 cores (1.2x on the full fusion
/// study, more on the quick one; docs/performance.md); one GPU gets one process.
fn default_jobs(device: cilp_train::device::DeviceSpec) -> usize {
    if device == cilp_train::device::DeviceSpec::Cpu && cilp_bench::threads() >= 2 { 2 } else { 1 }
}

/// clap parser for `--jobs`: at least 1.
fn positive_jobs(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (runs trained at once)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("must be a positive integer, got '{s}'")),
    }
}

/// clap parser for a count of at least 1 (`--per-class`).
fn positive_count(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (a dataset needs samples of every class)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("must be a positive integer, got '{s}'")),
    }
}

pub fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Errors if `p` does not exist, naming it.
pub fn must_exist(p: &Path, what: &str) -> Result<()> {
    if !p.exists() {
        bail!("{}: {what} not found", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_line_names_each_cause_once() {
        let os = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        #[derive(Debug)]
        struct Quoting(std::io::Error);
        impl std::fmt::Display for Quoting {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot create directory /x: {}", self.0)
            }
        }
        impl std::error::Error for Quoting {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Quoting(os)).context("cannot start");
        assert_eq!(error_line(&e), "cannot start: cannot create directory /x: No such file or directory (os error 2)");
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        assert_eq!(terminal_safe("data/\u{1b}[31mred.npy\r\x07"), "data/\\u{1b}[31mred.npy\\r\\u{7}");
        assert_eq!(terminal_safe("two\nlines"), "two\nlines");
        assert!(matches!(terminal_safe("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
