//! `cilp assess`: NVIDIA's graded assessment (CILP pretraining, LiDAR classifier, projector,
//! RGB -> LiDAR classifier), with the thresholds table on stdout; or, with `--variant seed`,
//! the seed's own assessment (REFERENCE §7) with the original's numbers beside ours.

use std::path::PathBuf;

use anyhow::{Result, bail};
use cilp_assess::seed::{SeedAssessConfig, run_seed_assessment};
use cilp_assess::{AssessConfig, AssessOptions, FinetuneFrozen, run_assessment};
use cilp_models::CilpLoss;

use cilp_train::config::{DataConfig, SplitConfig};
use clap::{Args, ValueEnum};

use crate::{Preset, ScheduleArg};

/// `--variant`: which assessment.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantArg {
    /// NVIDIA's graded assessment (the default).
    Nvidia,
    /// The seed's own assessment (REFERENCE §7): LiDAR classifier on XYZA, CILP with the CLIP
    /// loss, projector onto the classifier's features, the chain without fine-tuning.
    Seed,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossArg {
    /// NVIDIA's loss: (cos + 1) / 2 logits, no temperature.
    Nvidia,
    /// CLIP's loss: exp(s) * cos with a learnable logit scale s, clamped to ln(100).
    Clip,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrozenArg {
    /// Train the whole chain (NVIDIA).
    None,
    /// Keep the projector and the LiDAR head fixed; train the image encoder.
    ProjectorHead,
    /// Keep the image encoder fixed; train the projector and the head.
    Encoder,
}

/// The validation share of `--split ratio` unless `--val-fraction` says otherwise.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;

#[derive(Args, Debug, Clone)]
pub struct AssessArgs {
    /// Dataset root (cubes/ and spheres/).
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory: a group of stage runs plus summary.json and study_table.json.
    #[arg(long, default_value = "runs/assess")]
    pub out: PathBuf,
    /// nvidia (NVIDIA's graded assessment) or seed (the seed's own: no thresholds, the original's
    /// numbers beside ours). The seed variant refuses the NVIDIA-only flags --lidar-classifier,
    /// --loss, --finetune-*, --selection-fraction; the others apply to both (its stages: lidar,
    /// cilp, projector).
    #[arg(long, value_enum, default_value_t = VariantArg::Nvidia)]
    pub variant: VariantArg,
    /// NVIDIA's pretrained LiDAR classifier (lidar_cnn.pt); without it one is trained on LiDAR first.
    #[arg(long)]
    pub lidar_classifier: Option<PathBuf>,
    /// Contrastive loss variant (default nvidia; NVIDIA's variant only).
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// quick (3,000 pairs per class, short stages, fine-tuning with the projector and head fixed;
    /// about 7 minutes on 2 cores) or full (all data, NVIDIA's epochs and fine-tuning; about an hour).
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    /// Load at most N pairs per class (overrides the preset; 0 = all).
    #[arg(long)]
    pub limit_per_class: Option<usize>,
    /// nvidia (NVIDIA's per-class index split; the full preset's) or ratio (seeded stratified, see --val-fraction; the quick preset's, 0.1).
    #[arg(long, value_enum)]
    pub split: Option<crate::SplitKind>,
    /// Validation fraction of --split ratio.
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    pub val_fraction: f64,
    #[arg(long)]
    pub cilp_epochs: Option<usize>,
    #[arg(long)]
    pub cilp_lr: Option<f64>,
    /// Epochs of the LiDAR classifier (only without --lidar-classifier).
    #[arg(long)]
    pub lidar_epochs: Option<usize>,
    #[arg(long)]
    pub lidar_lr: Option<f64>,
    #[arg(long)]
    pub projector_epochs: Option<usize>,
    #[arg(long)]
    pub projector_lr: Option<f64>,
    /// Fine-tuning epochs of the RGB -> LiDAR classifier (0: evaluate the assembled chain as is).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    #[arg(long)]
    pub finetune_lr: Option<f64>,
    /// Parts of the RGB -> LiDAR chain kept fixed while fine-tuning (default: the preset's).
    #[arg(long, value_enum)]
    pub finetune_frozen: Option<FrozenArg>,
    /// Fine-tuning learning-rate schedule (default: the preset's; quick warmup-cosine, full
    /// constant).
    #[arg(long, value_enum)]
    pub finetune_schedule: Option<ScheduleArg>,
    /// CILP learning-rate schedule (default: constant).
    #[arg(long, value_enum)]
    pub cilp_schedule: Option<ScheduleArg>,
    /// LiDAR classifier learning-rate schedule (default: constant).
    #[arg(long, value_enum)]
    pub lidar_schedule: Option<ScheduleArg>,
    /// Projector learning-rate schedule (default: constant).
    #[arg(long, value_enum)]
    pub projector_schedule: Option<ScheduleArg>,
    /// Share of each class's training pairs held out of fine-tuning to choose the graded epoch
    /// (0: grade the last epoch). Never the graded validation batches.
    #[arg(long)]
    pub selection_fraction: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam's epsilon in every stage of the seed variant (default PyTorch's 1e-8, as the
    /// original; burn's default is 1e-5).
    #[arg(long)]
    pub adam_epsilon: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu (default) or wgpu (builds with --features wgpu).
    #[arg(long, default_value_t = cilp_train::device::DeviceSpec::Cpu)]
    pub device: cilp_train::device::DeviceSpec,
    /// Replace a previous assessment in --out.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Keep --out and reuse its completed CILP stage if its config is this one's (the later
    /// stages are trained again).
    #[arg(long)]
    pub resume: bool,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// No per-epoch progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Compute on this many threads until stdin reaches end of file, then on all of them
    /// (`RAYON_NUM_THREADS`): `cilp run` starts its assessment so beside the studies and closes
    /// its stdin when they end. Results are the same at any thread count.
    #[arg(long, hide = true, value_parser = crate::positive_count)]
    pub start_threads: Option<usize>,
}

/// A value-enum argument as its command-line name.
pub(crate) fn flag_name<V: ValueEnum>(v: &V) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

impl AssessArgs {
    /// The arguments of `cilp assess` that parse back into these (for running the assessment
    /// in a process of its own: `cilp run` with two or more jobs).
    pub fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["assess".into()];
        let mut flag = |name: &str, value: Option<std::ffi::OsString>| {
            if let Some(value) = value {
                v.push(format!("--{name}").into());
                v.push(value);
            }
        };
        let text = |x: &dyn std::fmt::Display| Some(std::ffi::OsString::from(x.to_string()));
        flag("data", Some(self.data.clone().into_os_string()));
        flag("out", Some(self.out.clone().into_os_string()));
        flag("variant", Some(flag_name(&self.variant).into()));
        flag("lidar-classifier", self.lidar_classifier.clone().map(|p| p.into_os_string()));
        flag("loss", self.loss.map(|l| flag_name(&l).into()));
        flag("preset", Some(flag_name(&self.preset).into()));
        flag("limit-per-class", self.limit_per_class.and_then(|x| text(&x)));
        flag("split", self.split.map(|x| flag_name(&x).into()));
        flag("val-fraction", text(&self.val_fraction));
        flag("cilp-epochs", self.cilp_epochs.and_then(|x| text(&x)));
        flag("cilp-lr", self.cilp_lr.and_then(|x| text(&x)));
        flag("lidar-epochs", self.lidar_epochs.and_then(|x| text(&x)));
        flag("lidar-lr", self.lidar_lr.and_then(|x| text(&x)));
        flag("projector-epochs", self.projector_epochs.and_then(|x| text(&x)));
        flag("projector-lr", self.projector_lr.and_then(|x| text(&x)));
        flag("finetune-epochs", self.finetune_epochs.and_then(|x| text(&x)));
        flag("finetune-lr", self.finetune_lr.and_then(|x| text(&x)));
        flag("finetune-frozen", self.finetune_frozen.map(|x| flag_name(&x).into()));
        flag("finetune-schedule", self.finetune_schedule.map(|x| flag_name(&x).into()));
        flag("cilp-schedule", self.cilp_schedule.map(|x| flag_name(&x).into()));
        flag("lidar-schedule", self.lidar_schedule.map(|x| flag_name(&x).into()));
        flag("projector-schedule", self.projector_schedule.map(|x| flag_name(&x).into()));
        flag("selection-fraction", self.selection_fraction.and_then(|x| text(&x)));
        flag("batch-size", self.batch_size.and_then(|x| text(&x)));
        flag("adam-epsilon", self.adam_epsilon.and_then(|x| text(&x)));
        flag("seed", self.seed.and_then(|x| text(&x)));
        flag("device", text(&self.device));
        flag("start-threads", self.start_threads.and_then(|x| text(&x)));
        for (on, name) in [(self.force, "--force"), (self.resume, "--resume"), (self.dry_run, "--dry-run"), (self.quiet, "--quiet")] {
            if on {
                v.push(name.into());
            }
        }
        v
    }
}

/// `--limit-per-class` and `--split` / `--val-fraction` over a preset's data (both variants).
fn apply_data_flags(a: &AssessArgs, data: &mut DataConfig) {
    if let Some(l) = a.limit_per_class {
        data.limit_per_class = (l > 0).then_some(l);
    }
    match a.split {
        None => {}
        Some(crate::SplitKind::Nvidia) => data.split = SplitConfig::Nvidia,
        Some(crate::SplitKind::Ratio) => data.split = SplitConfig::Ratio { val_fraction: a.val_fraction },
    }
}

/// The resolved config: preset, then flags.
pub fn resolve(a: &AssessArgs) -> Result<AssessConfig> {
    if a.adam_epsilon.is_some() {
        bail!(
            "--adam-epsilon applies to the seed variant only (--variant seed); NVIDIA's assessment keeps the recipe its thresholds were measured with"
        );
    }
    let mut c = AssessConfig::preset(a.preset.into(), &a.data);
    c.loss = match a.loss.unwrap_or(LossArg::Nvidia) {
        LossArg::Nvidia => CilpLoss::Nvidia,
        LossArg::Clip => CilpLoss::Clip,
    };
    if let Some(f) = a.finetune_frozen {
        c.finetune_frozen = match f {
            FrozenArg::None => FinetuneFrozen::None,
            FrozenArg::ProjectorHead => FinetuneFrozen::ProjectorHead,
            FrozenArg::Encoder => FinetuneFrozen::Encoder,
        };
    }
    for (stage, schedule) in [
        (&mut c.cilp, a.cilp_schedule),
        (&mut c.lidar, a.lidar_schedule),
        (&mut c.projector, a.projector_schedule),
        (&mut c.finetune, a.finetune_schedule),
    ] {
        if let Some(s) = schedule {
            stage.schedule = s.into();
        }
    }
    if let Some(f) = a.selection_fraction {
        c.selection_fraction = f;
    }
    c.lidar_classifier = a.lidar_classifier.clone();
    c.device = a.device;
    apply_data_flags(a, &mut c.data);
    let set = |s: &mut cilp_assess::StageConfig, e: Option<usize>, lr: Option<f64>| {
        if let Some(e) = e {
            s.epochs = e;
        }
        if let Some(lr) = lr {
            s.lr = lr;
        }
    };
    set(&mut c.cilp, a.cilp_epochs, a.cilp_lr);
    set(&mut c.lidar, a.lidar_epochs, a.lidar_lr);
    set(&mut c.projector, a.projector_epochs, a.projector_lr);
    set(&mut c.finetune, a.finetune_epochs, a.finetune_lr);
    if let Some(b) = a.batch_size {
        c.batch_size = b;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    Ok(c)
}

/// The flags only NVIDIA's variant has, given on the command line.
fn nvidia_only_flags(a: &AssessArgs) -> Vec<&'static str> {
    [
        ("--lidar-classifier", a.lidar_classifier.is_some()),
        ("--loss", a.loss.is_some()),
        ("--finetune-epochs", a.finetune_epochs.is_some()),
        ("--finetune-lr", a.finetune_lr.is_some()),
        ("--finetune-frozen", a.finetune_frozen.is_some()),
        ("--finetune-schedule", a.finetune_schedule.is_some()),
        ("--selection-fraction", a.selection_fraction.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// The resolved seed-variant config: its preset, then the flags both variants share.
pub fn resolve_seed(a: &AssessArgs) -> Result<SeedAssessConfig> {
    let refused = nvidia_only_flags(a);
    if !refused.is_empty() {
        bail!(
            "{} only apply to NVIDIA's assessment; the seed variant trains its own LiDAR classifier on XYZA, uses the CLIP loss and fine-tunes nothing (drop {} or use --variant nvidia)",
            refused.join(", "),
            if refused.len() == 1 { "it" } else { "them" }
        );
    }
    let mut c = SeedAssessConfig::preset(a.preset.into(), &a.data);
    c.device = a.device;
    apply_data_flags(a, &mut c.data);
    for (stage, epochs, lr, schedule) in [
        (&mut c.lidar, a.lidar_epochs, a.lidar_lr, a.lidar_schedule),
        (&mut c.cilp, a.cilp_epochs, a.cilp_lr, a.cilp_schedule),
        (&mut c.projector, a.projector_epochs, a.projector_lr, a.projector_schedule),
    ] {
        if let Some(e) = epochs {
            stage.epochs = e;
        }
        if let Some(lr) = lr {
            stage.lr = lr;
        }
        if let Some(s) = schedule {
            stage.schedule = s.into();
        }
    }
    if let Some(b) = a.batch_size {
        c.batch_size = b;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    if let Some(e) = a.adam_epsilon {
        c.adam_epsilon = e;
    }
    Ok(c)
}

/// `--dry-run` prints the resolved config (and gives `None`); otherwise the config is checked and
/// the options of the run come back.
fn options<C: serde::Serialize>(a: &AssessArgs, cfg: &C, valid: std::result::Result<(), String>) -> Result<Option<AssessOptions>> {
    if a.dry_run {
        print!("{}", toml::to_string_pretty(cfg)?);
        return Ok(None);
    }
    if let Err(e) = valid {
        bail!("{e}");
    }
    crate::must_exist(&a.data, "dataset")?;
    Ok(Some(AssessOptions {
        out: a.out.clone(),
        force: a.force,
        resume: a.resume,
        quiet: a.quiet,
        hooks: crate::switches::hooks(),
        control: Default::default(),
    }))
}

/// The table, then the per-batch accuracies and the retrieval lines both variants print.
fn print_results(table: &str, batch_accuracies: &[f64], retrieval: &cilp_assess::retrieval::CrossModalRetrieval) {
    println!("{table}");
    println!("batch accuracies: {}", batch_accuracies.iter().map(|a| format!("{:.2}%", 100.0 * a)).collect::<Vec<_>>().join(", "));
    println!("retrieval (all {} validation pairs): {}", retrieval.samples, retrieval);
}

fn assess_seed(a: AssessArgs) -> Result<()> {
    let cfg = resolve_seed(&a)?;
    let Some(opts) = options(&a, &cfg, cfg.validate())? else { return Ok(()) };
    let outcome = run_seed_assessment(&cfg, &opts)?;
    let s = &outcome.summary;
    print_results(&s.table(), &s.classifier_batch_accuracies, &s.retrieval);
    println!(
        "seed assessment ({} train / {} val; losses are means of per-batch means; no thresholds) in {:.0}s; summary: {}",
        s.train_samples,
        s.val_samples,
        s.wall_seconds,
        outcome.out.join("summary.json").display()
    );
    Ok(())
}

pub fn assess(a: AssessArgs) -> Result<()> {
    if let Some(narrow) = a.start_threads {
        let all = cilp_bench::threads();
        cilp_train::cores::start_narrow(narrow, all).map_err(anyhow::Error::msg)?;
        let quiet = a.quiet;
        // Whatever ends stdin (the main job closing it, or its death) frees the cores.
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            while matches!(std::io::Read::read(&mut std::io::stdin(), &mut sink), Ok(n) if n > 0) {}
            cilp_train::cores::widen();
            if !quiet && all > narrow {
                eprintln!("assess: the studies beside it have ended; computing on {all} threads from the next step");
            }
        });
        return cilp_train::cores::run(|| assess_here(a));
    }
    assess_here(a)
}

/// [`assess`] on the compute threads in force.
fn assess_here(a: AssessArgs) -> Result<()> {
    if a.variant == VariantArg::Seed {
        return assess_seed(a);
    }
    let cfg = resolve(&a)?;
    let Some(opts) = options(&a, &cfg, cfg.validate())? else { return Ok(()) };
    let outcome = run_assessment(&cfg, &opts)?;
    let s = &outcome.summary;
    print_results(&s.table(), &s.classifier_batch_accuracies, &s.retrieval);
    if let Some(sel) = &s.finetune_selection
        && sel.samples > 0
    {
        println!(
            "graded model: fine-tuning epoch {} (best of epochs 0-{} on {} held-out training pairs: {})",
            sel.epoch,
            sel.accuracies.len().saturating_sub(1),
            sel.samples,
            sel.accuracies.iter().map(|a| format!("{:.2}%", 100.0 * a)).collect::<Vec<_>>().join(", ")
        );
    }
    println!("margins: {}", s.margins_line());
    println!(
        "{} in {:.0}s; summary: {}",
        if s.all_passed { "all NVIDIA thresholds passed" } else { "NOT all NVIDIA thresholds passed" },
        s.wall_seconds,
        outcome.out.join("summary.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Assess(AssessArgs),
    }

    fn round_trip(a: &AssessArgs) -> AssessArgs {
        let mut argv: Vec<std::ffi::OsString> = vec!["cilp".into()];
        argv.extend(a.to_argv());
        match Cli::try_parse_from(&argv) {
            Ok(Cli { cmd: Sub::Assess(b) }) => b,
            Err(e) => panic!("{argv:?} does not parse: {e}"),
        }
    }

    #[test]
    fn assess_arguments_survive_the_command_line() {
        let plain = Cli::try_parse_from(["cilp", "assess", "--data", "d"]).map(|c| match c.cmd {
            Sub::Assess(a) => a,
        });
        let plain = plain.expect("parses");
        assert_eq!(format!("{:?}", round_trip(&plain)), format!("{plain:?}"));
        let every = AssessArgs {
            data: PathBuf::from("data dir/with space"),
            out: PathBuf::from("o/assess"),
            variant: VariantArg::Seed,
            lidar_classifier: Some(PathBuf::from("x.pt")),
            loss: Some(LossArg::Clip),
            preset: Preset::Full,
            limit_per_class: Some(40),
            split: Some(crate::SplitKind::Ratio),
            val_fraction: 0.5,
            cilp_epochs: Some(1),
            cilp_lr: Some(1.0e-4),
            lidar_epochs: Some(2),
            lidar_lr: Some(3.0e-5),
            projector_epochs: Some(3),
            projector_lr: Some(0.1 + 0.2),
            finetune_epochs: Some(4),
            finetune_lr: Some(5e-7),
            finetune_frozen: Some(FrozenArg::ProjectorHead),
            finetune_schedule: Some(ScheduleArg::Cosine),
            cilp_schedule: Some(ScheduleArg::Cosine),
            lidar_schedule: Some(ScheduleArg::Constant),
            projector_schedule: Some(ScheduleArg::Cosine),
            selection_fraction: Some(0.25),
            batch_size: Some(8),
            adam_epsilon: Some(1e-8),
            seed: Some(53),
            device: cilp_train::device::DeviceSpec::Cpu,
            force: false,
            resume: true,
            dry_run: true,
            quiet: true,
            start_threads: Some(1),
        };
        assert_eq!(format!("{:?}", round_trip(&every)), format!("{every:?}"));
    }
}
