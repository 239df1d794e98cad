//! `cilp export`, and the weights files `cilp predict --weights` and `cilp train --init` read
//! (through `cilp-interop`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use cilp_interop::{ExportOptions, RunProvenance, WeightsFormat};
use cilp_models::ModelSpec;
use cilp_train::predict::RunEpoch;
use clap::{Args, ValueEnum};

/// `--epoch` of `cilp export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochArg {
    /// The epoch the run's best-model rule chose (`best.bpk`).
    Best,
    /// The last committed epoch.
    Last,
}

/// `--format` of `cilp export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Hugging Face safetensors, float32, the original PyTorch state-dict names.
    Safetensors,
    /// An ONNX graph (opset 17) with the weights as initializers (PyTorch names), inputs named
    /// rgb / xyza / depth with a dynamic batch axis N, output `logits`.
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A training run directory (from `cilp train`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Which of the run's checkpoints.
    #[arg(long, value_enum, default_value_t = EpochArg::Best)]
    pub epoch: EpochArg,
    /// `safetensors` (the weights, for PyTorch or `cilp predict --weights`) or `onnx` (the whole
    /// network, for onnxruntime and other ONNX runtimes).
    #[arg(long, value_enum, default_value_t = FormatArg::Safetensors)]
    pub format: FormatArg,
    /// The file to write; its sidecar goes beside it as FILE.json (`m.safetensors` -> `m.safetensors.json`,
    /// `m.onnx` -> `m.onnx.json`).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace FILE (and FILE.json) if they exist.
    #[arg(long)]
    pub force: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let which = match a.epoch {
        EpochArg::Best => RunEpoch::Best,
        EpochArg::Last => RunEpoch::Last,
    };
    let device = cilp_models::cpu_device();
    let run = cilp_train::predict::load_run_checkpoint(&a.checkpoint, which, &device)
        .with_context(|| format!("cannot export the run in {}", a.checkpoint.display()))?;
    let spec = ModelSpec::parse(&run.config.model)?;
    let run_dir = std::path::absolute(&a.checkpoint).unwrap_or_else(|_| a.checkpoint.clone());
    let opts = ExportOptions {
        overwrite: a.force,
        xyza: Some(run.config.data.xyza),
        run: Some(RunProvenance { dir: run_dir, which: which.name().into(), epoch: run.epoch, config_sha256: None }),
    };
    let report = match a.format {
        FormatArg::Safetensors => cilp_interop::export_safetensors(&run.model, spec, &a.out, &opts)?,
        FormatArg::Onnx => cilp_interop::export_onnx(&run.model, spec, &a.out, &opts)?,
    };
    let names = match &report.info.pytorch_class {
        Some(class) => format!("the original's names for {class}"),
        None => format!("{} names (docs/interop.md)", report.info.key_names),
    };
    let what = match &report.info.onnx {
        Some(onnx) => format!(
            "an ONNX graph (opset {}, inputs {}, output {} [{}, {}]) with {} weight tensors",
            onnx.opset,
            onnx.inputs.join(", "),
            onnx.output,
            onnx.batch_axis,
            spec.outputs(),
            report.info.state_dict.len()
        ),
        None => format!("{} tensors", report.info.state_dict.len()),
    };
    eprintln!(
        "exported {} at its {} epoch ({}, from {}) to {}: {}, {}; sidecar {}",
        spec.name(),
        which.name(),
        run.epoch,
        run.file.display(),
        report.path.display(),
        what,
        names,
        report.sidecar.display()
    );
    println!("{}", report.path.display());
    Ok(())
}

/// The loader `cilp train --init FILE` hands the engine: the run's zoo model with FILE's
/// weights (`.safetensors` or `.pt`, PyTorch names).
pub fn init_loader(model: &str) -> Result<cilp_train::WeightsLoader> {
    let spec = ModelSpec::parse(model)?;
    Ok(cilp_train::WeightsLoader(Arc::new(move |m, path: &Path| cilp_interop::load_weights(m, spec, path).map_err(|e| e.to_string()))))
}

/// Whether `cilp predict --weights FILE` reads FILE the way it always has (NVIDIA's
/// `lidar_cnn.pt` into `nvidia-lidar-classifier`, or its head into `rgb-to-lidar`): a PyTorch
/// file without a sidecar, for one of those two models (or no `--model`). Everything else goes
/// through `cilp-interop` (any zoo classifier, its PyTorch names).
pub fn is_nvidia_pt(weights: &Path, model: Option<&str>) -> Result<bool> {
    let nvidia = matches!(model, None | Some("nvidia-lidar-classifier") | Some("rgb-to-lidar"));
    Ok(nvidia && !cilp_interop::sidecar_path(weights).exists() && cilp_interop::weights_format(weights)? == WeightsFormat::PyTorch)
}
