//! `cilp bench`: training and inference throughput (samples/s), achieved GFLOP/s and the
//! fraction of the machine's theoretical peak, for every architecture of REFERENCE §2.
//!
//! `bench/pytorch_bench.py` builds the identical architectures in PyTorch and writes the same
//! JSON ([`BenchReport`]), so [`compare_table`] can print the cilp / PyTorch ratio.
//!
//! Method (identical in both tools): random inputs built once; Adam (lr 1e-4) training steps
//! on an autodiff device (forward, loss, backward, optimiser step) at `batch_size`; forward-only
//! inference at `infer_batch_size` on a plain device; `warmup` untimed iterations, then
//! `repeats` timed runs of `steps` iterations each; the best run is reported (the machine is
//! shared, the best run is the least disturbed one).

pub mod agreement;
/// FLOP counts (moved to `cilp-models`, which owns the layer shapes; kept here by name).
pub use cilp_models::flops;
pub mod machine;

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use cilp_kernels::adam::adam_optimizer;
use cilp_models::loss::mse;
use cilp_models::{ModelInputs, ModelSpec, NvidiaEmbedderConfig, ProjectorConfig, build_cilp};
use serde::{Deserialize, Serialize};

use cilp_train::device::DeviceSpec;
use cilp_train::error::{Result, TrainError};
pub use flops::Network;
pub use machine::Machine;

/// Models of the default benchmark (the list).
pub const DEFAULT_MODELS: [&str; 8] = [
    "nvidia-embedder",
    "late-fusion",
    "intermediate-add",
    "intermediate-concat",
    "intermediate-hadamard",
    "early-fusion",
    "nvidia-lidar-classifier",
    "projector",
];

/// Every benchmarkable model (`--models all`): the defaults, the strided variants and CILP.
pub fn all_models() -> Vec<String> {
    let mut v: Vec<String> = DEFAULT_MODELS.iter().map(|s| s.to_string()).collect();
    for suffix in ["-strided", "-strided-conv"] {
        for base in ["late-fusion", "intermediate-add", "intermediate-concat", "intermediate-hadamard", "early-fusion"] {
            v.push(format!("{base}{suffix}"));
        }
    }
    v.push("cilp".into());
    v
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Model names (see [`all_models`]).
    pub models: Vec<String>,
    /// Training batch size.
    pub batch_size: usize,
    /// Inference batch size.
    pub infer_batch_size: usize,
    /// Untimed iterations before timing.
    pub warmup: usize,
    /// Iterations per timed run.
    pub steps: usize,
    /// Timed runs; the best is reported.
    pub repeats: usize,
    /// Skip training (inference only).
    pub no_train: bool,
    /// Skip inference (training only).
    pub no_infer: bool,
    /// The device measured (`cpu`, or `wgpu` in a build with that feature).
    #[serde(default)]
    pub device: DeviceSpec,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            models: DEFAULT_MODELS.iter().map(|s| s.to_string()).collect(),
            batch_size: 32,
            infer_batch_size: 256,
            warmup: 2,
            steps: 5,
            repeats: 3,
            no_train: false,
            no_infer: false,
            device: DeviceSpec::Cpu,
        }
    }
}

/// One model's figures. Throughputs are `null` in JSON for a skipped phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: String,
    pub parameters: usize,
    /// FLOPs of one training sample (forward + backward; see [`flops`]).
    pub train_flops_per_sample: u64,
    /// FLOPs of one inference sample.
    pub infer_flops_per_sample: u64,
    pub train_samples_per_s: Option<f64>,
    pub infer_samples_per_s: Option<f64>,
    pub train_gflops: Option<f64>,
    pub infer_gflops: Option<f64>,
    /// Achieved / theoretical peak.
    pub train_peak_fraction: Option<f64>,
    pub infer_peak_fraction: Option<f64>,
    /// Every timed run's samples/s (noise estimate).
    #[serde(default)]
    pub train_runs: Vec<f64>,
    #[serde(default)]
    pub infer_runs: Vec<f64>,
    /// The process's peak resident memory while the phase ran (Linux `VmHWM`, reset before it):
    /// the model, its optimizer state, activations and the process itself. Memory an earlier
    /// model left mapped counts too, so measure one model per process to compare models.
    #[serde(default)]
    pub train_peak_rss_bytes: Option<u64>,
    #[serde(default)]
    pub infer_peak_rss_bytes: Option<u64>,
}

/// A whole benchmark run; the JSON both `cilp bench --json` and `bench/pytorch_bench.py`
/// write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// `cilp` or `pytorch`.
    pub tool: String,
    /// Tool version (cilp version / torch version).
    pub version: String,
    /// The GEMM micro-kernels cilp chose per kind of product (`cilp_kernels::gemm_isa::describe`,
    /// e.g. `conv-train avx512, ..., linear-train avx2`); empty for PyTorch and older reports.
    #[serde(default)]
    pub gemm: String,
    /// Compute threads (rayon pool / torch intra-op threads).
    pub threads: usize,
    pub machine: Machine,
    /// The device measured; the peak fractions are the CPU's and are left out on another device.
    #[serde(default)]
    pub device: DeviceSpec,
    /// The adapter of a GPU device (`cilp_train::device::adapter`).
    #[serde(default)]
    pub adapter: Option<String>,
    pub batch_size: usize,
    pub infer_batch_size: usize,
    pub warmup: usize,
    pub steps: usize,
    pub repeats: usize,
    pub results: Vec<ModelResult>,
}

/// A model under test, built for one device.
enum Net {
    Embedder(cilp_models::NvidiaEmbedder),
    Classifier(cilp_models::Classifier),
    Projector(cilp_models::Projector),
    Cilp(cilp_models::Cilp),
}

/// The parsed model kind.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Embedder,
    Classifier(ModelSpec),
    Projector,
    Cilp,
}

fn parse(name: &str) -> Result<Kind> {
    match name {
        "nvidia-embedder" => Ok(Kind::Embedder),
        "projector" => Ok(Kind::Projector),
        "cilp" => Ok(Kind::Cilp),
        other => {
            let spec = ModelSpec::parse(other)
                .map_err(|e| TrainError::Config(format!("{e}\nbench models: nvidia-embedder, projector, cilp or a zoo classifier")))?;
            match spec {
                ModelSpec::LateFusion(_)
                | ModelSpec::Intermediate(..)
                | ModelSpec::Early(_)
                | ModelSpec::Single(_)
                | ModelSpec::LidarClassifier
                | ModelSpec::RgbToLidar => Ok(Kind::Classifier(spec)),
                _ => Err(TrainError::Config(format!("cannot benchmark {other:?}"))),
            }
        }
    }
}

/// The FLOP model of a bench model name.
pub fn network(name: &str) -> Result<Network> {
    use flops::*;
    Ok(match parse(name)? {
        Kind::Embedder => Network { branches: vec![nvidia_embedder(4)], shared: vec![] },
        Kind::Projector => projector(),
        Kind::Cilp => Network { branches: vec![nvidia_embedder(4), nvidia_embedder(1)], shared: vec![] },
        Kind::Classifier(spec) => spec.network().expect("parse keeps only classifiers with a FLOP model"),
    })
}

fn build(kind: Kind, device: &Device) -> Net {
    match kind {
        Kind::Embedder => Net::Embedder(NvidiaEmbedderConfig::new(4).init(device)),
        Kind::Projector => Net::Projector(ProjectorConfig::new().init(device)),
        Kind::Cilp => Net::Cilp(build_cilp("cilp", device).expect("zoo name")),
        Kind::Classifier(spec) => Net::Classifier(spec.build_classifier(device).expect("classifier")),
    }
}

/// Random inputs of a batch (all three image inputs, the embedding input and the targets).
struct Batch {
    inputs: ModelInputs,
    embedding: Tensor<2>,
    targets: Tensor<1, Int>,
    embed_target: Tensor<2>,
    projector_target: Tensor<2>,
}

impl Batch {
    fn new(b: usize, device: &Device) -> Batch {
        let u = Distribution::Default;
        Batch {
            inputs: ModelInputs {
                rgb: Some(Tensor::random([b, 4, 64, 64], u, device)),
                xyza: Some(Tensor::random([b, 4, 64, 64], u, device)),
                depth: Some(Tensor::random([b, 1, 64, 64], Distribution::Uniform(20.0, 50.0), device)),
            },
            embedding: Tensor::random([b, 200], Distribution::Normal(0.0, 1.0), device),
            targets: Tensor::from_data(TensorData::new((0..b as i64).map(|i| i % 2).collect::<Vec<_>>(), [b]), device),
            embed_target: Tensor::random([b, 200], Distribution::Normal(0.0, 0.1), device),
            projector_target: Tensor::random([b, 3200], Distribution::Normal(0.0, 1.0), device),
        }
    }
}

fn rgb(b: &Batch) -> Tensor<4> {
    b.inputs.rgb.clone().expect("rgb")
}
fn depth(b: &Batch) -> Tensor<4> {
    b.inputs.depth.clone().expect("depth")
}

/// Times `repeats` runs of `steps` calls of `f` after `warmup` calls; returns each run's seconds
/// per call.
fn time_runs(cfg: &BenchConfig, device: &Device, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..cfg.warmup {
        f();
    }
    let _ = device.sync();
    (0..cfg.repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..cfg.steps.max(1) {
                f();
            }
            let _ = device.sync();
            t.elapsed().as_secs_f64() / cfg.steps.max(1) as f64
        })
        .collect()
}

/// Adam training loop over a module; `loss` computes the step's loss.
fn train_runs<M: Module>(model: M, cfg: &BenchConfig, device: &Device, loss: impl Fn(&M) -> Tensor<1>) -> Vec<f64> {
    let mut optim = adam_optimizer();
    let mut slot = Some(model);
    time_runs(cfg, device, || {
        let m = slot.take().expect("model");
        let l = loss(&m);
        let grads = GradientsParams::from_grads(l.backward(), &m);
        slot = Some(optim.step(1e-4, m, grads));
    })
}

fn train_seconds(kind: Kind, cfg: &BenchConfig) -> Result<Vec<f64>> {
    let device = cilp_train::device::train_device(cfg.device)?;
    let b = Batch::new(cfg.batch_size, &device);
    Ok(match build(kind, &device) {
        Net::Embedder(m) => train_runs(m, cfg, &device, |m| mse(m.forward(rgb(&b)), b.embed_target.clone())),
        Net::Projector(m) => train_runs(m, cfg, &device, |m| mse(m.forward(b.embedding.clone()), b.projector_target.clone())),
        Net::Cilp(m) => train_runs(m, cfg, &device, |m| {
            let (i, l) = m.forward(rgb(&b), depth(&b));
            m.loss(i, l)
        }),
        Net::Classifier(m) => train_runs(m, cfg, &device, |m| m.loss(m.forward(&b.inputs), b.targets.clone())),
    })
}

fn infer_seconds(kind: Kind, cfg: &BenchConfig) -> Result<Vec<f64>> {
    let device = cilp_train::device::device(cfg.device)?;
    let b = Batch::new(cfg.infer_batch_size, &device);
    let net = build(kind, &device);
    // Reading the output back forces the computation and is what a user does with it.
    let read = |t: Tensor<2>| {
        let _ = t.into_data();
    };
    Ok(time_runs(cfg, &device, || match &net {
        Net::Embedder(m) => read(m.forward(rgb(&b))),
        Net::Projector(m) => read(m.forward(b.embedding.clone())),
        Net::Cilp(m) => {
            let (i, l) = m.forward(rgb(&b), depth(&b));
            read(i);
            read(l);
        }
        Net::Classifier(m) => read(m.forward(&b.inputs)),
    }))
}

fn num_params(kind: Kind) -> usize {
    let device = Device::flex();
    match build(kind, &device) {
        Net::Embedder(m) => m.num_params(),
        Net::Projector(m) => m.num_params(),
        Net::Cilp(m) => m.num_params(),
        Net::Classifier(m) => m.num_params(),
    }
}

/// Compute threads of the CPU backend (rayon's global pool; `RAYON_NUM_THREADS` sets it).
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Run the benchmark; `progress` is called with each finished model's result.
pub fn run(cfg: &BenchConfig, mut progress: impl FnMut(&ModelResult)) -> Result<BenchReport> {
    let kinds = cfg.models.iter().map(|n| parse(n).map(|k| (n.clone(), k))).collect::<Result<Vec<_>>>()?;
    cilp_kernels::flush_denormals(); // as training does (`cilp_train::fit`)
    let machine = Machine::detect();
    let on_cpu = cfg.device == DeviceSpec::Cpu;
    // Fail before the first model when the device is not in this build.
    cilp_train::device::device(cfg.device)?;
    let adapter = if on_cpu { None } else { cilp_train::device::adapter(cfg.device) };
    // One phase's samples/s per timed run and the process's peak memory while it ran.
    let phase = |skip: bool, f: &dyn Fn() -> Result<Vec<f64>>, batch: usize| -> Result<(Vec<f64>, Option<u64>)> {
        if skip {
            return Ok((vec![], None));
        }
        cilp_train::memory::reset_peak();
        let runs = f()?.iter().map(|s| batch as f64 / s).collect();
        Ok((runs, cilp_train::memory::peak_bytes().filter(|_| on_cpu)))
    };
    let threads = threads();
    let peak = machine.peak_for_threads(threads);
    let mut results = Vec::new();
    for (name, kind) in kinds {
        let net = network(&name)?;
        let (tf, inf) = (net.train_flops(), net.forward_flops());
        let (train_runs, train_peak_rss_bytes) = phase(cfg.no_train, &|| train_seconds(kind, cfg), cfg.batch_size)?;
        let (infer_runs, infer_peak_rss_bytes) = phase(cfg.no_infer, &|| infer_seconds(kind, cfg), cfg.infer_batch_size)?;
        let max = |v: &[f64]| v.iter().cloned().reduce(f64::max);
        let train = max(&train_runs);
        let infer = max(&infer_runs);
        let gf = |sps: Option<f64>, flops: u64| sps.map(|s| s * flops as f64 / 1e9);
        let r = ModelResult {
            model: name,
            parameters: num_params(kind),
            train_flops_per_sample: tf,
            infer_flops_per_sample: inf,
            train_samples_per_s: train,
            infer_samples_per_s: infer,
            train_gflops: gf(train, tf),
            infer_gflops: gf(infer, inf),
            train_peak_fraction: gf(train, tf).filter(|_| on_cpu).map(|g| g / peak),
            infer_peak_fraction: gf(infer, inf).filter(|_| on_cpu).map(|g| g / peak),
            train_runs,
            infer_runs,
            train_peak_rss_bytes,
            infer_peak_rss_bytes,
        };
        progress(&r);
        results.push(r);
    }
    Ok(BenchReport {
        tool: "cilp".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        gemm: cilp_kernels::gemm_isa::describe(),
        threads,
        machine,
        device: cfg.device,
        adapter,
        batch_size: cfg.batch_size,
        infer_batch_size: cfg.infer_batch_size,
        warmup: cfg.warmup,
        steps: cfg.steps,
        repeats: cfg.repeats,
        results,
    })
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// Spread of the runs, `(max - min) / max` in percent.
fn spread(runs: &[f64]) -> String {
    let max = runs.iter().cloned().fold(f64::MIN, f64::max);
    let min = runs.iter().cloned().fold(f64::MAX, f64::min);
    if runs.len() < 2 { "-".into() } else { format!("{:.0}%", 100.0 * (max - min) / max) }
}

/// The header lines of a report (the same layout as `bench/pytorch_bench.py`).
pub fn header(r: &BenchReport) -> String {
    let device = match (&r.device, &r.adapter) {
        (DeviceSpec::Cpu, _) => String::new(),
        (d, a) => {
            format!("device {d}: {} (the peak fractions are the CPU's and are left out)\n", a.as_deref().unwrap_or("adapter unknown"))
        }
    };
    device
        + &format!(
            "{} {} | {} | {} ({} logical CPUs, {:.2} GHz, {}-lane f32 SIMD{}), theoretical peak {:.1} GFLOP/s{}\n\
         train batch {}, inference batch {}, {} warm-up + best of {} x {} iterations\n",
            r.tool,
            if r.gemm.is_empty() { r.version.clone() } else { format!("{} (GEMM kernels: {})", r.version, r.gemm) },
            if r.threads == 1 { "1 thread".to_string() } else { format!("{} threads", r.threads) },
            r.machine.cpu,
            r.machine.cores,
            r.machine.ghz,
            r.machine.simd_f32_lanes,
            match r.machine.fma_f32_lanes {
                0 => String::new(),
                n if n == r.machine.simd_f32_lanes => String::new(),
                n => format!(" on {n}-lane FMA units"),
            },
            r.machine.peak_for_threads(r.threads),
            if r.threads < r.machine.cores { format!(" on {} of them", r.threads) } else { String::new() },
            r.batch_size,
            r.infer_batch_size,
            r.warmup,
            r.repeats,
            r.steps
        )
}

/// One table row per model.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!(
        "{:<24} {:>11} {:>10} {:>6} {:>8} {:>6} {:>6} | {:>10} {:>6} {:>8} {:>6} {:>6}\n",
        "model", "params", "train/s", "spread", "GFLOP/s", "peak", "MiB", "infer/s", "spread", "GFLOP/s", "peak", "MiB"
    );
    let mib = |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.0}", b as f64 / (1024.0 * 1024.0)));
    for m in &r.results {
        s += &format!(
            "{:<24} {:>11} {:>10} {:>6} {:>8} {:>6} {:>6} | {:>10} {:>6} {:>8} {:>6} {:>6}\n",
            m.model,
            m.parameters,
            opt(m.train_samples_per_s, 1),
            spread(&m.train_runs),
            opt(m.train_gflops, 1),
            m.train_peak_fraction.map_or("-".into(), |f| format!("{:.1}%", 100.0 * f)),
            mib(m.train_peak_rss_bytes),
            opt(m.infer_samples_per_s, 1),
            spread(&m.infer_runs),
            opt(m.infer_gflops, 1),
            m.infer_peak_fraction.map_or("-".into(), |f| format!("{:.1}%", 100.0 * f)),
            mib(m.infer_peak_rss_bytes),
        );
    }
    s
}

/// Ratio table `ours / theirs` (samples/s), per model present in both (a markdown table).
pub fn compare_table(ours: &BenchReport, theirs: &BenchReport) -> String {
    let mut s = format!(
        "| model | {a} train/s | {b} train/s | train ratio | {a} infer/s | {b} infer/s | infer ratio |\n|---|---:|---:|---:|---:|---:|---:|\n",
        a = ours.tool,
        b = theirs.tool
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    for m in &ours.results {
        let Some(t) = theirs.results.iter().find(|t| t.model == m.model) else { continue };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            m.model,
            opt(m.train_samples_per_s, 1),
            opt(t.train_samples_per_s, 1),
            ratio(m.train_samples_per_s, t.train_samples_per_s),
            opt(m.infer_samples_per_s, 1),
            opt(t.infer_samples_per_s, 1),
            ratio(m.infer_samples_per_s, t.infer_samples_per_s),
        );
    }
    if ours.batch_size != theirs.batch_size || ours.infer_batch_size != theirs.infer_batch_size {
        s += &format!(
            "warning: batch sizes differ ({} / {} vs {} / {})\n",
            ours.batch_size, ours.infer_batch_size, theirs.batch_size, theirs.infer_batch_size
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(models: &[&str]) -> BenchConfig {
        BenchConfig {
            models: models.iter().map(|m| m.to_string()).collect(),
            batch_size: 4,
            infer_batch_size: 4,
            warmup: 0,
            steps: 1,
            repeats: 2,
            ..BenchConfig::default()
        }
    }

    #[test]
    fn a_run_reports_throughput_and_peak_memory_per_phase() {
        let mut seen = Vec::new();
        let r = run(&tiny(&["projector"]), |m| seen.push(m.model.clone())).unwrap();
        assert_eq!(seen, ["projector"]);
        let m = &r.results[0];
        assert_eq!(m.train_runs.len(), 2);
        assert!(m.train_samples_per_s.unwrap() > 0.0 && m.infer_samples_per_s.unwrap() > 0.0);
        if cfg!(target_os = "linux") {
            // The process itself is several MiB; the projector's Adam state alone is 3 x 3 MB.
            let (t, i) = (m.train_peak_rss_bytes.unwrap(), m.infer_peak_rss_bytes.unwrap());
            assert!(t > 8 << 20 && i > 1 << 20, "train {t} / infer {i} bytes");
        }
        let table = table(&r);
        assert!(table.lines().next().unwrap().matches("MiB").count() == 2, "{table}");
        // A skipped phase has neither throughput nor memory.
        let only_infer = run(&BenchConfig { no_train: true, ..tiny(&["projector"]) }, |_| {}).unwrap();
        assert!(only_infer.results[0].train_peak_rss_bytes.is_none() && only_infer.results[0].train_samples_per_s.is_none());
    }
}
