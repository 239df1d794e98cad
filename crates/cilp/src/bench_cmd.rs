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
    /// Device to measure: cpu, or wgpu in a build with `--features wgpu`.
    #[arg(long, default_value_t = cilp_train::device::DeviceSpec::Cpu)]
    pub device: cilp_train::device::DeviceSpec,
}

/// `cilp device-check`: does a model compute the same on a GPU as on the CPU?
#[derive(Args, Debug)]
pub struct DeviceCheckArgs {
    /// The device to compare with the CPU (wgpu in a build with `--features wgpu`).
    #[arg(long, default_value = "wgpu")]
    pub device: cilp_train::device::DeviceSpec,
    /// Comma-separated zoo models (default: every model of `cilp models`).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Samples in the batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only list the adapters this machine has, then exit.
    #[arg(long)]
    pub adapters: bool,
}

/// Compares the device with the CPU for every model; exits non-zero when one differs.
pub fn device_check(a: DeviceCheckArgs) -> Result<()> {
    if a.adapters {
        println!("{}: {}", a.device, cilp_train::device::adapter(a.device).unwrap_or_else(|| "no adapter found".into()));
        return Ok(());
    }
    let mut cfg = bench::agreement::AgreementConfig { batch_size: a.batch_size, ..Default::default() };
    if !a.models.is_empty() {
        cfg.models = a.models.clone();
    }
    eprintln!(
        "comparing {} model(s) on {} ({}) with the CPU ...",
        cfg.models.len(),
        a.device,
        cilp_train::device::adapter(a.device).unwrap_or_else(|| "adapter unknown".into())
    );
    let report = bench::agreement::check(a.device, &cfg, |r| {
        eprintln!("  {:<36} {:>6.1} s  {}", r.model, r.device_seconds, if r.ok { "ok" } else { "DIFFERS" })
    })?;
    if let Some(out) = &a.out {
        let text = serde_json::to_string_pretty(&report)?;
        cilp_track::write_atomic_str(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    print!("{}", report.table());
    anyhow::ensure!(report.ok(), "{} does not agree with the CPU (table above)", a.device);
    Ok(())
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
            device: a.device,
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
