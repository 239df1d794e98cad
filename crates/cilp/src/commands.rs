//! One function per subcommand.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cilp_track::run::CreateMode;
use cilp_train::{RunOptions, SplitConfig, TrainConfig};

use crate::assess_cmd::{AssessArgs, DEFAULT_VAL_FRACTION, LossArg, VariantArg};
use crate::studies_cmd::{self, AblationArgs, DEFAULT_SPLIT_SEED, FusionArgs, StudyFlags};
use crate::{
    DEFAULT_GALLERY, ExploreArgs, GenerateArgs, InfoArgs, ModelsArgs, PredictArgs, Preset, ReportArgs, RunArgs, RunPreset, RunsCommand,
    SplitKind, TrainArgs, assess_cmd, secs,
};

/// The default dataset location of `cilp run`.
pub const DEFAULT_DATA: &str = "data/default";

pub fn generate(a: GenerateArgs) -> Result<()> {
    let mut opts = cilp_synth::GenerateOptions::preset(&a.preset).map_err(|e| anyhow::anyhow!("{e}"))?;
    opts.per_class = a.per_class;
    opts.seed = a.seed;
    opts.overwrite = a.force;
    let t = Instant::now();
    let report = cilp_synth::generate(&a.out, &opts)?;
    let classes: Vec<&str> = report.classes.iter().map(|c| c.name()).collect();
    eprintln!(
        "generated {} pairs ({} per class: {}) in {} in {:.1}s ({:.1} MiB)",
        report.samples,
        report.per_class,
        classes.join(", "),
        report.out.display(),
        secs(t),
        report.bytes as f64 / (1u64 << 20) as f64
    );
    Ok(())
}

fn load_summary(data: &Path, limit: Option<usize>) -> Result<serde_json::Value> {
    let t = Instant::now();
    let opts = cilp_data::dataset::LoadOptions { limit_per_class: limit, ..Default::default() };
    let (ds, report) = cilp_data::dataset::Dataset::open(data, &opts)?;
    let seconds = secs(t);
    let mut per_class = serde_json::Map::new();
    for (c, name) in ds.classes().iter().enumerate() {
        let n = (0..ds.len()).filter(|&i| ds.sample(i).class == c).count();
        per_class.insert(name.clone(), n.into());
    }
    Ok(serde_json::json!({
        "data": data.display().to_string(),
        "pairs": ds.len(),
        "classes": ds.classes(),
        "pairs_per_class": per_class,
        "report": report,
        "load_seconds": seconds,
        "pairs_per_second": ds.len() as f64 / seconds.max(1e-9),
        "memory_bytes": ds.memory_bytes(),
    }))
}

fn print_summary(v: &serde_json::Value) {
    println!("dataset   {}", v["data"].as_str().unwrap_or_default());
    println!("pairs     {}", v["pairs"]);
    if let Some(m) = v["pairs_per_class"].as_object() {
        for (k, n) in m {
            println!("  {k:<10} {n}");
        }
    }
    println!(
        "loaded in {:.2}s ({:.0} pairs/s, {:.0} MiB in memory)",
        v["load_seconds"].as_f64().unwrap_or(0.0),
        v["pairs_per_second"].as_f64().unwrap_or(0.0),
        v["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 20) as f64
    );
    print_load_report(&v["report"]);
}

/// The load report in words: the library's warnings (unpaired, ignored and skipped files and
/// folders, with examples; `--json` has all of it), or one line saying there were none.
fn print_load_report(r: &serde_json::Value) {
    let warnings: Vec<&str> = r["warnings"].as_array().into_iter().flatten().filter_map(|w| w.as_str()).collect();
    for w in &warnings {
        println!("warning: {}", crate::terminal_safe(w));
    }
    if warnings.is_empty() {
        println!("every file paired, nothing skipped (--json: the full load report)");
    } else {
        println!("(--json: the full load report)");
    }
}

pub fn info(a: InfoArgs) -> Result<()> {
    let v = load_summary(&a.data, a.limit_per_class)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_summary(&v);
    }
    Ok(())
}

pub fn explore(a: ExploreArgs) -> Result<()> {
    let load = cilp_data::dataset::LoadOptions { limit_per_class: a.limit_per_class, ..Default::default() };
    if let Some(out) = &a.out {
        let opts = cilp_report::ExploreOptions { load: load.clone(), gallery_per_class: a.gallery, ..Default::default() };
        let s = cilp_report::explore(&a.data, out, &opts)?;
        // As `info` and `run` do: unpaired or skipped files are said on the terminal too.
        for w in &s.stats.warnings {
            eprintln!("warning: {}", crate::terminal_safe(w));
        }
        println!("{}", s.index_html.display());
    }
    if let Some(fo) = &a.fiftyone {
        let opts = cilp_report::ExportOptions { load, ..Default::default() };
        let s = cilp_report::export_fiftyone(&a.data, fo, &opts)?;
        eprintln!(
            "exported {} samples ({} train / {} val, {} points) for FiftyOne; load them with: python {}",
            s.samples,
            s.train,
            s.val,
            s.points,
            s.script.display()
        );
        println!("{}", s.out.display());
    }
    Ok(())
}

pub fn report(a: ReportArgs) -> Result<()> {
    let opts = cilp_report::ReportOptions { explore_dir: a.explore.clone(), ..Default::default() };
    cilp_report::report(&a.runs, &a.out, &opts)?;
    println!("{}", a.out.display());
    Ok(())
}

pub fn models(a: ModelsArgs) -> Result<()> {
    let cat = cilp_models::catalog();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cat)?);
        return Ok(());
    }
    let w = cat.iter().map(|m| m.name.len()).max().unwrap_or(4);
    println!("{:<w$}  {:>12}  {:<18}  description", "name", "parameters", "inputs");
    for m in &cat {
        let inputs: Vec<String> = m.inputs.iter().map(|k| k.name().to_string()).collect();
        println!("{:<w$}  {:>12}  {:<18}  {}", m.name, group(m.parameters as u64), inputs.join("+"), m.description);
    }
    Ok(())
}

use cilp_track::compare::format_thousands as group;

/// Reads a training config (a run's `config.toml` works), bounded like every run file.
fn read_train_config(path: &Path) -> Result<TrainConfig> {
    let text = cilp_data::io::read_bounded_to_string(path, cilp_track::run::MAX_RUN_FILE_BYTES, "a training config (TOML)")?;
    toml::from_str::<TrainConfig>(&text).with_context(|| format!("{}: not a valid training config", path.display()))
}

/// Flags over config file over defaults.
fn resolve_train_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = match &a.config {
        Some(path) => read_train_config(path)?,
        None => {
            let model = a.model.clone().context("--model NAME is required (or --config FILE); see `cilp models`")?;
            let data = a.data.clone().context("--data DIR is required (or --config FILE)")?;
            TrainConfig::new(model, data)
        }
    };
    apply_train_flags(&mut cfg, a)?;
    Ok(cfg)
}

/// The flags given on top of `cfg` (a config file, the defaults, or a resumed run's saved
/// config). The data folder is saved absolute, so that a run resumes from any directory.
fn apply_train_flags(cfg: &mut TrainConfig, a: &TrainArgs) -> Result<()> {
    if let Some(m) = &a.model {
        cfg.model = m.clone();
    }
    if let Some(d) = &a.data {
        cfg.data.dir = d.clone();
    }
    cfg.data.dir =
        std::path::absolute(&cfg.data.dir).with_context(|| format!("{}: cannot make the data path absolute", cfg.data.dir.display()))?;
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.lr_schedule {
        cfg.lr_schedule = v.into();
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.device {
        cfg.device = v;
    }
    if let Some(v) = a.limit_per_class {
        cfg.data.limit_per_class = Some(v);
    }
    if let Some(v) = a.xyza {
        cfg.data.xyza = v;
    }
    match (a.split, a.val_fraction) {
        (Some(SplitKind::Nvidia), None) => cfg.data.split = SplitConfig::Nvidia,
        (Some(SplitKind::Nvidia), Some(_)) => bail!("--val-fraction applies to --split ratio, not nvidia"),
        (Some(SplitKind::Ratio) | None, Some(f)) => cfg.data.split = SplitConfig::Ratio { val_fraction: f },
        (Some(SplitKind::Ratio), None) => {
            if !matches!(cfg.data.split, SplitConfig::Ratio { .. }) {
                cfg.data.split = SplitConfig::Ratio { val_fraction: 0.2 };
            }
        }
        (None, None) => {}
    }
    if a.drop_last {
        cfg.drop_last = true;
    }
    if let Some(e) = a.adam_epsilon {
        cfg.adam_epsilon = Some(e);
    }
    if let Some(p) = &a.init {
        cfg.init = Some(std::path::absolute(p).with_context(|| format!("{}: cannot make the --init path absolute", p.display()))?);
    }
    cilp_models::model_info(&cfg.model)?;
    cfg.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(())
}

pub fn train(a: TrainArgs) -> Result<()> {
    let name = a.name.clone().or_else(|| a.model.clone());
    let cfg = if a.resume {
        let name = name.clone().context("--resume needs --name or --model to find the run directory")?;
        let path = a.out.join(&name).join(cilp_track::run::CONFIG_TOML);
        if !path.is_file() {
            bail!("{}: no run to resume here (expected its config.toml); start it without --resume", path.display());
        }
        // The saved config, with the flags given on top; the training engine refuses the ones a
        // resumed run cannot change (naming them) and records the ones it can.
        let saved = read_train_config(&path).context("cannot resume")?;
        let mut cfg = saved.clone();
        apply_train_flags(&mut cfg, &a)?;
        // Refused flags are named before the data is even loaded (the engine checks again,
        // with the epochs already trained).
        saved.resume_changes(&cfg, 0).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        cfg
    } else {
        resolve_train_config(&a)?
    };
    if a.dry_run {
        print!("{}", toml::to_string(&cfg)?);
        return Ok(());
    }
    let mut opts = RunOptions::new(&a.out);
    opts.name = name;
    opts.hooks = crate::switches::hooks();
    if cfg.init.is_some() {
        opts.init_loader = Some(crate::export_cmd::init_loader(&cfg.model)?);
    }
    opts.mode = if a.resume {
        CreateMode::Resume
    } else if a.force {
        CreateMode::Force
    } else {
        CreateMode::New
    };
    let (data, report) = cilp_train::data::prepare(&cfg.data, cfg.seed)?;
    report_unpaired(&report);
    eprintln!(
        "training {} on {} samples ({} train / {} val) for {} epochs on {}",
        cfg.model,
        data.dataset.len(),
        data.split.train.len(),
        data.split.val.len(),
        cfg.epochs,
        cfg.device
    );
    let out = cilp_train::train(&cfg, &data, &opts)?;
    println!("{}", out.run_dir.display());
    Ok(())
}

fn report_unpaired(report: &cilp_data::dataset::LoadReport) {
    let text = report.to_string();
    if !text.is_empty() {
        eprintln!("{}", crate::terminal_safe(&text));
    }
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let device = cilp_train::device::device(a.device)?;
    use cilp_train::predict::{WeightsSource, load_classifier};
    let model_name = a.model.as_deref();
    let (model, name, xyza) = match (&a.checkpoint, &a.weights) {
        (Some(c), None) => load_classifier(model_name, &WeightsSource::Checkpoint(c.clone()), &device)?,
        (None, Some(w)) if crate::export_cmd::is_nvidia_pt(w, model_name)? => {
            load_classifier(model_name, &WeightsSource::PyTorch(w.clone()), &device)?
        }
        (None, Some(w)) => {
            // Any zoo classifier by its PyTorch names; the sidecar names the model and its XYZA.
            let l = cilp_interop::open_classifier(w, model_name, &device)?;
            (l.model, l.name, l.sidecar.as_ref().and_then(|s| s.xyza()).unwrap_or_default())
        }
        _ => bail!("give exactly one of --checkpoint or --weights"),
    };
    let preds = cilp_train::predict::predict_files(&model, xyza, &a.inputs, &device)?;
    for p in preds {
        if a.json {
            println!("{}", serde_json::to_string(&p)?);
        } else {
            println!("{}\t{}\t{:.4}\t({name})", p.input, p.prediction, p.probability);
        }
    }
    Ok(())
}

pub fn runs(cmd: RunsCommand) -> Result<()> {
    match cmd {
        RunsCommand::List { dir, json } => {
            let records = cilp_track::compare::list_runs(&dir)?;
            if records.is_empty() {
                bail!("{}: no run directories found", dir.display());
            }
            print_runs(&records, json)
        }
        RunsCommand::Compare { runs, json } => {
            // A typo must not print a table of one "unreadable" row and exit 0.
            for r in &runs {
                if !r.is_dir() {
                    let found = if r.exists() { "is not a folder" } else { "does not exist" };
                    bail!("{}: {found}; expected a run folder (one holding config.toml and metrics.jsonl)", r.display());
                }
            }
            let records: Vec<_> = runs
                .iter()
                .map(|r| {
                    let name = r.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| r.display().to_string());
                    cilp_track::compare::load_run(r, &name)
                })
                .collect();
            if json {
                println!("{}", cilp_track::compare::render_json(&records)?);
            } else {
                print!("{}", cilp_track::compare::render_table(&records, &cilp_track::compare::Column::ALL));
                println!();
                print!("{}", cilp_track::compare::render_comparison(&records));
            }
            Ok(())
        }
    }
}

fn print_runs(records: &[cilp_track::compare::RunRecord], json: bool) -> Result<()> {
    if json {
        println!("{}", cilp_track::compare::render_json(records)?);
    } else {
        print!("{}", cilp_track::compare::render_table(records, &cilp_track::compare::Column::ALL));
    }
    Ok(())
}

/// The assessment's output in `cilp run --out` when it runs beside the studies.
pub const ASSESS_LOG: &str = "assess.log";

/// Pairs per class each stage of `cilp run --preset smoke` loads (5 graded batches of 8 at a
/// 50% validation split).
const SMOKE_PAIRS: usize = 40;

/// The main job: data (generated if missing), exploration, the fusion study, the ablation, the
/// assessment and the HTML report, each through its own subcommand so that they behave exactly as
/// when run by hand. Studies already in `--out` are resumed (a completed one is reused as it is);
/// `--force` redoes everything.
pub fn run(a: RunArgs) -> Result<()> {
    let t = Instant::now();
    // Before anything is generated or trained: the output folder must take files.
    ensure_writable(&a.out)?;
    let data = a.data.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    if a.data.is_none() && !data.join("cubes").exists() {
        eprintln!("no dataset at {}: generating the default synthetic set (2 x 9,999 pairs)", data.display());
        generate(GenerateArgs { out: data.clone(), per_class: 9999, seed: 51, preset: "default".into(), force: false })?;
    }
    let summary = load_summary(&data, None)?;
    print_summary(&summary);
    // The studies' preset; the smoke preset overrides sizes so that every stage takes seconds.
    let smoke = a.preset == RunPreset::Smoke;
    let preset = if a.preset == RunPreset::Full { Preset::Full } else { Preset::Quick };
    let out = &a.out;
    // A run killed anywhere (SIGKILL included) may have left half-written temporary files;
    // those of dead processes go now, also in the stages that are reused without being reopened.
    let stale = cilp_track::atomic::remove_stale_temp_files_below(out);
    if stale > 0 {
        eprintln!("removed {stale} temporary file(s) left in {} by an earlier, interrupted run", out.display());
    }
    // Each stage is the subcommand's own function called with typed arguments (paths stay
    // `PathBuf`s, whatever their bytes), so it behaves exactly as when run by hand.
    let explore_dir = out.join("explore");

    // Two runs at once where there are two cores: a quick run's small batches keep one core
    // busy far better than two (docs/performance.md); the runs are the same either way.
    let jobs = a.jobs.unwrap_or_else(|| crate::default_jobs(a.device));
    // The assessment: after the studies in this process with one job; with more, in a process of
    // its own beside the studies from the start (it takes one of their jobs while it runs, and
    // its stages are bit-identical at any thread count).
    let assess_dir = out.join("assess");
    let assess_done = assess_dir.join("summary.json").exists() && !a.force;
    let stage = |epochs: usize| smoke.then_some(epochs);
    let assess_args = AssessArgs {
        data: data.clone(),
        out: assess_dir.clone(),
        lidar_classifier: a.lidar_classifier.clone(),
        variant: VariantArg::Nvidia,
        loss: Some(LossArg::Nvidia),
        preset,
        limit_per_class: smoke.then_some(SMOKE_PAIRS),
        split: smoke.then_some(crate::SplitKind::Ratio),
        val_fraction: if smoke { 0.5 } else { DEFAULT_VAL_FRACTION },
        cilp_epochs: stage(1),
        cilp_lr: None,
        lidar_epochs: stage(1),
        lidar_lr: None,
        projector_epochs: stage(1),
        projector_lr: None,
        finetune_epochs: stage(1),
        finetune_lr: None,
        finetune_frozen: None,
        finetune_schedule: None,
        cilp_schedule: None,
        lidar_schedule: None,
        projector_schedule: None,
        selection_fraction: None,
        batch_size: smoke.then_some(8),
        adam_epsilon: None,
        seed: None,
        device: a.device,
        force: a.force,
        // An assessment cut off half-way continues from its stages' last epochs.
        resume: !a.force && assess_dir.exists(),
        dry_run: false,
        quiet: false,
        start_threads: None,
    };
    let companion = if jobs > 1 && !assess_done {
        let log = out.join(ASSESS_LOG);
        let all = cilp_bench::threads();
        let threads = (all / jobs).max(1);
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cilp")));
        // One job's threads while the studies run, all of them once they have ended (its stdin
        // closes then, `Companion::close_stdin`): otherwise a core idles whenever the studies
        // end first (about 60 s of a quick run on 2 cores, session 29).
        let args = AssessArgs { start_threads: Some(threads), ..assess_args.clone() };
        cmd.args(args.to_argv()).env("RAYON_NUM_THREADS", all.to_string());
        studies_cmd::die_with_parent(&mut cmd);
        let c = cilp_studies::Companion::start("the assessment", cmd, &log)?;
        eprintln!(
            "assess: started beside the studies in a process of its own ({threads} thread(s), {all} once they end); its output: {}",
            log.display()
        );
        Some(std::sync::Arc::new(c))
    } else {
        None
    };
    // The exploration page while the assessment starts beside it (1-2 s here, about 9 s with
    // the data summary on a cold page cache; the summary stays first: it refuses bad data
    // before anything starts).
    explore(ExploreArgs {
        data: data.clone(),
        out: Some(explore_dir.clone()),
        fiftyone: None,
        gallery: DEFAULT_GALLERY,
        limit_per_class: None,
    })?;
    // Studies already in --out are resumed (a completed one is reused); --force redoes them.
    let study = |dir: &Path| StudyFlags {
        data: data.clone(),
        preset,
        seeds: if smoke { vec![51] } else { Vec::new() },
        epochs: smoke.then_some(1),
        limit_per_class: smoke.then_some(SMOKE_PAIRS),
        lr: None,
        batch_size: None,
        lr_schedule: None,
        split_seed: DEFAULT_SPLIT_SEED,
        device: a.device,
        force: a.force,
        resume: !a.force && dir.exists(),
        quiet: false,
        plan: false,
        task_index: None,
        collect: false,
        jobs: Some(jobs),
        companion: companion.clone(),
    };
    let fusion_dir = out.join("fusion");
    studies_cmd::fusion(FusionArgs {
        study: study(&fusion_dir),
        out: fusion_dir.clone(),
        models: Vec::new(),
        lrs: Vec::new(),
        lr_schedules: Vec::new(),
    })?;
    let ablation_dir = out.join("ablation");
    studies_cmd::ablation(AblationArgs {
        study: study(&ablation_dir),
        out: ablation_dir.clone(),
        model: None,
        fusion: Some(fusion_dir.clone()),
    })?;

    if let Some(c) = &companion {
        // The studies have ended: their cores are the assessment's.
        c.close_stdin();
    }
    if assess_done {
        eprintln!("assess: reusing the finished assessment in {} (pass --force to redo it)", assess_dir.display());
    } else if let Some(c) = companion {
        if c.running() {
            eprintln!("assess: waiting for the assessment (output: {})", c.log().display());
        }
        c.wait()?;
        // Its table, as `cilp assess` prints it.
        let text = cilp_data::io::read_bounded_to_string(c.log(), 1 << 20, "the assessment's log").unwrap_or_default();
        let table: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        println!("{}", table.join("\n"));
    } else {
        assess_cmd::assess(assess_args)?;
    }

    // Once more at the end: a worker of a run killed just before this one started dies of its
    // parent's death asynchronously, so it can still have been alive at the first sweep and have
    // left a temporary file after it.
    cilp_track::atomic::remove_stale_temp_files_below(out);

    let html = out.join("report.html");
    let ropts = cilp_report::ReportOptions { explore_dir: Some(explore_dir), ..Default::default() };
    cilp_report::report(out, &html, &ropts)?;
    eprintln!("done in {:.0}s; runs in {}", secs(t), out.display());
    println!("report: {}", html.display());
    // What the studies found, one sentence each.
    for dir in [&fusion_dir, &ablation_dir] {
        let path = dir.join(cilp_track::run::SUMMARY_JSON);
        let text = cilp_data::io::read_bounded_to_string(&path, cilp_track::run::MAX_RUN_FILE_BYTES, "a study summary (JSON)")?;
        let s: cilp_track::study::StudySummary =
            serde_json::from_str(&text).with_context(|| format!("{}: not a study summary", path.display()))?;
        println!("{}", cilp_studies::finding(&s));
    }
    let summary_path = assess_dir.join("summary.json");
    let text = cilp_data::io::read_bounded_to_string(&summary_path, cilp_track::run::MAX_RUN_FILE_BYTES, "an assessment summary (JSON)")?;
    let summary: cilp_assess::AssessSummary =
        serde_json::from_str(&text).with_context(|| format!("{}: not an assessment summary", summary_path.display()))?;
    let failed: Vec<&str> = summary.thresholds.iter().filter(|r| !r.passed).map(|r| r.metric.as_str()).collect();
    let verdict = assessment_verdict(summary.all_passed, &failed, &summary.margins_line(), a.preset, a.allow_fail);
    println!("{}", verdict.line);
    if verdict.fail {
        bail!("the assessment failed NVIDIA's thresholds (see {}); pass --allow-fail to exit 0 anyway", summary_path.display());
    }
    Ok(())
}

/// Creates `dir` if needed and checks that a file can be written in it (a probe file,
/// removed at once), so that a job fails before its first hour rather than after it.
fn ensure_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    let probe = dir.join(format!(".cilp-write-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("{}: the output folder is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The last line of `cilp run` and whether it exits non-zero.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub line: String,
    pub fail: bool,
}

/// Grades the main job on its assessment: a failed threshold fails the job unless `allow_fail`
/// or the smoke preset (whose numbers mean nothing, so it never grades).
pub fn assessment_verdict(all_passed: bool, failed: &[&str], margins: &str, preset: RunPreset, allow_fail: bool) -> Verdict {
    if preset == RunPreset::Smoke {
        return Verdict { line: format!("assessment: not graded (smoke preset, its numbers mean nothing): {margins}"), fail: false };
    }
    if all_passed {
        return Verdict { line: format!("assessment: PASSED all NVIDIA thresholds; margins: {margins}"), fail: false };
    }
    Verdict {
        line: format!(
            "assessment: FAILED {} ({margins}){}",
            failed.join(", "),
            if allow_fail { "; exit 0 because of --allow-fail" } else { "" }
        ),
        fail: !allow_fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_threshold_fails_the_main_job_unless_allowed_or_smoke() {
        let failed = ["classifier accuracy (min of 5 batches of 32)"];
        let v = assessment_verdict(false, &failed, "m", RunPreset::Quick, false);
        assert!(v.fail && v.line.starts_with("assessment: FAILED classifier accuracy"), "{v:?}");
        let v = assessment_verdict(false, &failed, "m", RunPreset::Full, true);
        assert!(!v.fail && v.line.contains("--allow-fail"), "{v:?}");
        let v = assessment_verdict(false, &failed, "m", RunPreset::Smoke, false);
        assert!(!v.fail && v.line.contains("not graded"), "{v:?}");
        let v = assessment_verdict(true, &[], "CILP loss 3.0 (+0.2)", RunPreset::Quick, false);
        assert!(!v.fail && v.line.contains("PASSED") && v.line.contains("+0.2"), "{v:?}");
    }
}
