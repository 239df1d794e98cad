//! `cilp bench`: training and inference samples/s, GFLOP/s and fraction of the theoretical
//! peak per architecture; `--compare` prints the ratio to a `bench/pytorch_bench.py` JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cilp_bench::{self as bench, BenchConfig, BenchReport};
use clap::Args;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated models (`all` for every variant). Default: nvidia-embedder, late-fusion,
    /// intermediate-add, intermediate-concat, intermediate-hadamard, early-fusion,
    /// nvidia-lidar-classifier, projector.
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Training batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 256)]
    pub infer_batch_size: usize,
    /// Iterations per timed run.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed runs; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Only measure inference.
    #[arg(long)]
    pub no_train: bool,
    /// Only measure training.
    #[arg(long)]
    pub no_infer: bool,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A report of `bench/pytorch_bench.py --json` (or of another `cilp bench`) to print the
    /// cilp / other ratio against.
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// Do not measure: load this cilp JSON report instead (with `--compare`, print the ratio of
    /// two saved reports).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

fn load(path: &PathBuf) -> Result<BenchReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing bench report {}", path.display()))
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let theirs = a.compare.as_ref().map(load).transpose()?;
    let report = if let Some(from) = &a.from {
        load(from)?
    } else {
        let models = match a.models.as_slice() {
            [] => bench::DEFAULT_MODELS.iter().map(|s| s.to_string()).collect(),
            [one] if one == "all" => bench::all_models(),
            list => list.to_vec(),
        };
        let cfg = BenchConfig {
            models,
            batch_size: a.batch_size,
            infer_batch_size: a.infer_batch_size,
            warmup: a.warmup,
            steps: a.steps,
            repeats: a.repeats,
            no_train: a.no_train,
            no_infer: a.no_infer,
        };
        if !a.json {
            eprintln!("measuring {} model(s) ...", cfg.models.len());
        }
        let json = a.json;
        bench::run(&cfg, |r| {
            if !json {
                eprintln!(
                    "  {:<24} train {:>8} samples/s, inference {:>8} samples/s",
                    r.model,
                    r.train_samples_per_s.map_or("-".into(), |x| format!("{x:.1}")),
                    r.infer_samples_per_s.map_or("-".into(), |x| format!("{x:.1}"))
                );
            }
        })?
    };
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &a.out {
        cilp_track::write_atomic_str(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    if a.json {
        println!("{text}");
        return Ok(());
    }
    print!("{}", bench::header(&report));
    print!("{}", bench::table(&report));
    if let Some(theirs) = &theirs {
        println!();
        print!("{}", bench::header(theirs));
        print!("{}", bench::table(theirs));
        println!("\nratio {} / {} (samples/s; > 1 means {} is faster):", report.tool, theirs.tool, report.tool);
        print!("{}", bench::compare_table(&report, theirs));
    }
    Ok(())
}
