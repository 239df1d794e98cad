//! # cilp-models
//!
//! The neural networks of **cilp** (cubes vs spheres from paired RGB images and LiDAR depth),
//! written with burn 0.22: modules, losses, a model zoo and PyTorch weight import.
//!
//! - [`blocks`]: 3x3 conv blocks with a choice of [`Downsample`] (max-pool, extra strided conv,
//!   strided main conv), conv trunks and MLPs.
//! - [`seed`]: the seed implementation's [`Embedder`] and the [`LateFusion`],
//!   [`IntermediateFusion`] (concat / add / Hadamard) and [`EarlyFusion`] classifiers.
//! - [`nvidia`]: NVIDIA's CILP [`NvidiaEmbedder`] and [`Cilp`] dual encoder, the pretrained
//!   [`LidarClassifier`], the [`Projector`] and the [`RgbToLidar`] classifier.
//! - [`seed_assess`]: the models of the seed's own assessment (REFERENCE §7): the
//!   `EmbedderStrided` LiDAR classifier, [`SeedCilp`] (logit scale never clamped), the seed
//!   projector and the [`SeedRgbToLidar`] chain.
//! - [`loss`]: cross-entropy, BCE-with-logits, MSE and the two contrastive losses (NVIDIA and
//!   CLIP) as pure functions.
//! - [`zoo`]: the catalogue ([`catalog`]) of named models with their inputs, outputs and
//!   parameter counts, and the [`Classifier`] enum a generic training loop drives
//!   ([`build_classifier`]).
//! - [`pytorch`]: [`load_lidar_classifier_pt`] reads NVIDIA's `lidar_cnn.pt` (without executing
//!   any code from the pickle).
//!
//! Models have no backend type parameter: tensors live on a runtime [`Device`]
//! (`Device::flex()` for the pure-Rust CPU backend, `device.autodiff()` to train).
//!
//! ```no_run
//! use burn::prelude::*;
//! use cilp_models::{build_classifier, ModelInputs, predict};
//!
//! let device = Device::flex();
//! let model = build_classifier("nvidia-lidar-classifier", &device).unwrap();
//! let depth = Tensor::<4>::ones([2, 1, 64, 64], &device).mul_scalar(50.0);
//! let logits = model.forward(&ModelInputs { depth: Some(depth), ..Default::default() });
//! for p in predict(logits) {
//!     println!("class {} with probability {:.3}", p.class, p.probability);
//! }
//! ```

use std::path::PathBuf;

use burn::prelude::Device;

pub mod blocks;
pub mod flops;
pub mod loss;
pub mod nvidia;
pub mod pytorch;
pub mod seed;
pub mod seed_assess;
pub mod zoo;

pub use blocks::{ConvBlock, ConvTrunk, Downsample, Mlp};
pub use nvidia::{
    Cilp, CilpConfig, CilpLoss, LidarClassifier, LidarHead, NvidiaEmbedder, NvidiaEmbedderConfig, Projector, ProjectorConfig, RgbToLidar,
};
pub use pytorch::{load_lidar_classifier_pt, load_pytorch_weights};
pub use seed::{
    EarlyFusion, EarlyFusionConfig, Embedder, EmbedderConfig, FusionMode, IntermediateFusion, IntermediateFusionConfig, LateFusion,
    LateFusionConfig,
};
pub use seed_assess::{SeedCilp, SeedCilpConfig, SeedRgbToLidar};
pub use zoo::{
    Classifier, InputKind, ModelInfo, ModelInputs, ModelSpec, ModelTask, Prediction, build_cilp, build_classifier, build_seed_cilp,
    catalog, classifier_names, materialize, model_info, model_names, predict, predicted_classes, sphere_probability,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model name that is not in the zoo.
    #[error("unknown model '{name}'; valid names: {valid}")]
    UnknownModel {
        /// The requested name.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// A zoo model that is not a classifier was requested as one.
    #[error("model '{name}' is a {task:?} model, not a classifier; classifiers: {}", zoo::classifier_names().join(", "))]
    NotAClassifier {
        /// The requested name.
        name: String,
        /// Its task.
        task: ModelTask,
    },
    /// A zoo model of another task was requested.
    #[error("model '{name}' is a {found:?} model; expected a {expected:?} model")]
    WrongTask {
        /// The requested name.
        name: String,
        /// The task the caller needs.
        expected: ModelTask,
        /// The model's task.
        found: ModelTask,
    },
    /// A model was run without one of its inputs.
    #[error("model '{model}' needs the '{input}' input, but ModelInputs.{input} is None")]
    MissingInput {
        /// The model.
        model: String,
        /// The missing input.
        input: InputKind,
    },
    /// A weights file does not exist.
    #[error("weights file not found: {path}")]
    FileNotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A weights file is not a regular file (a FIFO, a device such as `/dev/zero`, a folder)
    /// or is larger than [`pytorch::MAX_PT_BYTES`]; nothing was read.
    #[error(transparent)]
    Read(#[from] cilp_data::io::ReadError),
    /// A weights file could not be parsed or read.
    #[error("cannot read PyTorch file {path}: {message}")]
    PyTorch {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A state-dict key the model needs is absent.
    #[error("{path}: missing key '{key}' (file has: {available})")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: String,
        /// Keys present in the file.
        available: String,
    },
    /// A state-dict tensor has the wrong shape.
    #[error("{path}: key '{key}' has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Shape the model needs (PyTorch layout).
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// An operation this crate does not support.
    #[error("{0}")]
    Unsupported(String),
}

/// The pure-Rust CPU device (burn's Flex backend), for inference and tests.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// The CPU device with autodiff enabled, for training on the CPU.
pub fn cpu_autodiff_device() -> Device {
    Device::flex().autodiff()
}

/// `n` deterministic values in `[lo, hi)` from `seed` (splitmix64), the same on every machine and
/// independent of any shared RNG: the inputs of `cilp device-check` and of tests that replay its
/// batches.
pub fn splitmix_values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}
