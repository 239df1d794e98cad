//! # cilp-interop
//!
//! Weights in and out of cilp with the **original PyTorch names**: a zoo model exports to a
//! `.safetensors` file whose keys and shapes are exactly those of the original study's
//! `state_dict()` (`seed_state_dicts.json`; NVIDIA's names for NVIDIA's LiDAR classifier), with
//! a JSON sidecar (`FILE.json`) saying how to feed it; the same files (and PyTorch `.pt` state
//! dicts, read without executing any code) load back into any zoo model.
//!
//! - [`keymap`]: the per-model map burn parameter path <-> PyTorch key ([`KeyMap::of`]).
//! - [`export_safetensors`]: write a model and its sidecar ([`Sidecar`]).
//! - [`export_onnx`]: write a zoo classifier as an ONNX graph (opset 17) with its weights and
//!   the same sidecar ([`onnx`]).
//! - [`load_weights`] / [`load_classifier`]: read a `.safetensors` or `.pt` file into a model;
//!   every missing, unexpected, mis-shaped or non-float key is named in one
//!   [`InteropError::Mismatch`].
//!
//! Layout: burn stores a Linear weight `[in, out]`, PyTorch `[out, in]`; burn-store's
//! `BurnToPyTorchAdapter` / `PyTorchToBurnAdapter` transpose them. Conv2d weights have the same
//! layout in both. The file holds float32 tensors; float64/float16/bfloat16 files are cast to
//! float32 on import.
//!
//! Dependency direction: `cilp-models` <- `cilp-interop` <- `cilp` (the binary). The training
//! engine does not know this crate; `cilp train --init` hands it a loader.
//!
//! ```no_run
//! use burn::prelude::*;
//! use cilp_interop::{ExportOptions, export_safetensors, load_classifier};
//! use cilp_models::{ModelSpec, build_classifier};
//!
//! let device = Device::flex();
//! let model = build_classifier("late-fusion", &device).unwrap();
//! let spec = ModelSpec::parse("late-fusion").unwrap();
//! export_safetensors(&model, spec, "late-fusion.safetensors".as_ref(), &ExportOptions::default()).unwrap();
//! let back = load_classifier("late-fusion", "late-fusion.safetensors".as_ref(), &device).unwrap();
//! ```

use std::path::PathBuf;

pub mod keymap;
pub mod onnx;
mod sidecar;
mod weights;

pub use keymap::{KeyMap, KeyPair, NameSource};
pub use onnx::{ONNX_OPSET, OnnxInfo, export_onnx};
pub use sidecar::{InputSpec, RunProvenance, SIDECAR_FORMAT, Sidecar, read_sidecar, sidecar_path};
pub use weights::{
    ExportOptions, ExportReport, LoadedClassifier, MAX_WEIGHTS_BYTES, WeightsFormat, export_safetensors, load_classifier, load_weights,
    open_classifier, read_weights, state_dict_shapes, weights_format,
};

/// Errors of this crate; each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The file does not exist.
    #[error("weights file not found: {}", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Not a regular file, over [`MAX_WEIGHTS_BYTES`], or unreadable (nothing was parsed).
    #[error(transparent)]
    Read(#[from] cilp_data::io::ReadError),
    /// The file is not a valid safetensors / PyTorch file.
    #[error("{}: not a valid {format} file: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What it was read as.
        format: WeightsFormat,
        /// The reader's message.
        message: String,
    },
    /// The file's keys do not fit the model. Every problem is listed, not only the first.
    #[error("{}: does not fit model '{model}' ({}): {}", path.display(), problem_count(.missing, .unexpected, .mismatched), describe(.missing, .unexpected, .mismatched))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The zoo model.
        model: String,
        /// Keys the model needs that the file lacks, with the shape needed.
        missing: Vec<(String, Vec<usize>)>,
        /// Keys in the file that the model does not have.
        unexpected: Vec<String>,
        /// Keys present with the wrong shape or a non-float dtype: `(key, what)`.
        mismatched: Vec<(String, String)>,
    },
    /// Writing the export failed.
    #[error("cannot write {}: {message}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A sidecar (`FILE.json`) that cannot be read.
    #[error("{}: not a cilp export sidecar: {message}", path.display())]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The module handed in is not the zoo model named with it (a programming error), or
    /// loading failed after the keys were checked.
    #[error("model '{model}': {message}")]
    Model {
        /// The zoo model.
        model: String,
        /// What differs.
        message: String,
    },
    /// Unknown model name and the like.
    #[error(transparent)]
    Zoo(#[from] cilp_models::ModelError),
}

fn problem_count(missing: &[(String, Vec<usize>)], unexpected: &[String], mismatched: &[(String, String)]) -> String {
    let n = missing.len() + unexpected.len() + mismatched.len();
    if n == 1 { "1 problem".into() } else { format!("{n} problems") }
}

/// Every problem of a [`InteropError::Mismatch`] in one line.
fn describe(missing: &[(String, Vec<usize>)], unexpected: &[String], mismatched: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(k, s)| format!("{k} {s:?}")).collect();
        parts.push(format!("missing {} ({})", plural(missing.len(), "key"), list.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected {} ({})", plural(unexpected.len(), "key"), unexpected.join(", ")));
    }
    if !mismatched.is_empty() {
        let list: Vec<String> = mismatched.iter().map(|(k, why)| format!("{k}: {why}")).collect();
        parts.push(format!("{} ({})", plural(mismatched.len(), "mismatched key"), list.join("; ")));
    }
    parts.join("; ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Result of this crate.
pub type Result<T, E = InteropError> = std::result::Result<T, E>;
