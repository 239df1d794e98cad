//! The seed implementation's fusion models (REFERENCE §2): the [`Embedder`], [`LateFusion`],
//! [`IntermediateFusion`] and [`EarlyFusion`].
//!
//! All take 64x64 inputs: RGB `[B, 4, 64, 64]` in `[0, 1]` and XYZA `[B, 4, 64, 64]`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blocks::{ConvTrunk, ConvTrunkConfig, Downsample, Mlp};

/// Side length of the square inputs every model expects.
pub const INPUT_SIDE: usize = 64;

/// Channels of the seed convolution trunk.
pub const SEED_TRUNK_CHANNELS: [usize; 3] = [25, 50, 100];

/// Flattened size of the seed trunk's output: `100 * 8 * 8`.
pub const SEED_FLAT: usize = 100 * 8 * 8;

fn seed_trunk(in_channels: usize, downsample: Downsample) -> ConvTrunkConfig {
    ConvTrunkConfig::new(in_channels, SEED_TRUNK_CHANNELS.to_vec()).with_downsample(downsample)
}

/// Configuration of the seed [`Embedder`].
#[derive(Config, Debug)]
pub struct EmbedderConfig {
    /// Input channels (4 for RGB or XYZA, 8 for early fusion).
    pub in_channels: usize,
    /// Output features.
    pub out_features: usize,
    /// Downsampling step of the conv blocks.
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
}

impl EmbedderConfig {
    /// Initialise an [`Embedder`].
    pub fn init(&self, device: &Device) -> Embedder {
        Embedder {
            trunk: seed_trunk(self.in_channels, self.downsample).init(device),
            head: Mlp::new(&[SEED_FLAT, 1000, 100, self.out_features], device),
        }
    }
}

/// Seed `Embedder(in_ch, out)`: conv 25 -> 50 -> 100 (each 3x3 + ReLU + downsample), flatten
/// 6400, `Linear 6400->1000, ReLU, Linear 1000->100, ReLU, Linear 100->out`.
///
/// `Embedder(4, 100)` has 6,568,525 parameters with [`Downsample::MaxPool`].
#[derive(Module, Debug)]
pub struct Embedder {
    /// Convolution trunk.
    pub trunk: ConvTrunk,
    /// Fully connected head.
    pub head: Mlp,
}

impl Embedder {
    /// Forward pass.
    ///
    /// - input: `[batch, in_channels, 64, 64]`
    /// - output: `[batch, out_features]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.trunk.forward(x); // [batch, 100, 8, 8]
        let x: Tensor<2> = x.flatten(1, 3); // [batch, 6400]
        self.head.forward(x) // [batch, out]
    }

    /// The output of `fc2` after its ReLU, the 100-d features `fc3` classifies (the seed's
    /// assessment regresses the projector onto these).
    ///
    /// - input: `[batch, in_channels, 64, 64]`
    /// - output: `[batch, 100]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let [fc1, fc2, _] = self.fc_layers();
        let x: Tensor<2> = self.trunk.forward(x).flatten(1, 3); // [batch, 6400]
        let x = self.head.activation.forward(cilp_kernels::linear_module(fc1, x)); // [batch, 1000]
        self.head.activation.forward(cilp_kernels::linear_module(fc2, x)) // [batch, 100]
    }

    /// `fc3` alone (no activation before it): `[batch, 100] -> [batch, out_features]`.
    pub fn fc3(&self, features: Tensor<2>) -> Tensor<2> {
        cilp_kernels::linear_module(self.fc_layers()[2], features)
    }

    fn fc_layers(&self) -> [&burn::nn::Linear; 3] {
        match self.head.layers.as_slice() {
            [a, b, c] => [a, b, c],
            other => panic!("a seed Embedder has 3 linear layers, this one {}", other.len()),
        }
    }
}

/// Configuration of [`LateFusion`].
#[derive(Config, Debug)]
pub struct LateFusionConfig {
    /// Downsampling step of both embedders.
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
    /// Embedding size of each modality.
    #[config(default = 100)]
    pub embedding: usize,
    /// Number of output logits.
    #[config(default = 2)]
    pub num_classes: usize,
}

impl LateFusionConfig {
    /// Initialise a [`LateFusion`] model.
    pub fn init(&self, device: &Device) -> LateFusion {
        let emb = EmbedderConfig::new(4, self.embedding).with_downsample(self.downsample);
        LateFusion { rgb: emb.init(device), xyza: emb.init(device), head: Mlp::new(&[2 * self.embedding, 50, self.num_classes], device) }
    }
}

/// Late fusion (seed): two `Embedder(4, 100)` on RGB and XYZA, concatenated, then
/// `Linear 200->50, ReLU, Linear 50->2`. 13,147,202 parameters (13,383,802 strided).
#[derive(Module, Debug)]
pub struct LateFusion {
    /// RGB embedder.
    pub rgb: Embedder,
    /// XYZA embedder.
    pub xyza: Embedder,
    /// Classification head on the concatenated embeddings.
    pub head: Mlp,
}

impl LateFusion {
    /// Forward pass.
    ///
    /// - rgb: `[batch, 4, 64, 64]`, xyza: `[batch, 4, 64, 64]`
    /// - output: `[batch, num_classes]` logits
    pub fn forward(&self, rgb: Tensor<4>, xyza: Tensor<4>) -> Tensor<2> {
        let a = self.rgb.forward(rgb); // [batch, 100]
        let b = self.xyza.forward(xyza); // [batch, 100]
        self.head.forward(Tensor::cat(vec![a, b], 1)) // [batch, 200] -> [batch, 2]
    }
}

/// How [`IntermediateFusion`] combines the two `[B, 100, 8, 8]` feature maps.
///
/// Serialised in kebab-case: `"concat"`, `"add"`, `"hadamard"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FusionMode {
    /// Channel concatenation (-> 200 channels).
    #[default]
    Concat,
    /// Element-wise sum (-> 100 channels).
    Add,
    /// Element-wise (Hadamard) product (-> 100 channels).
    Hadamard,
}

impl FusionMode {
    /// All variants, in a stable order.
    pub const ALL: [FusionMode; 3] = [FusionMode::Concat, FusionMode::Add, FusionMode::Hadamard];

    /// Lower-case name, as used in the zoo (`concat`, `add`, `hadamard`).
    pub fn name(self) -> &'static str {
        match self {
            FusionMode::Concat => "concat",
            FusionMode::Add => "add",
            FusionMode::Hadamard => "hadamard",
        }
    }

    /// Channels after fusing two maps of `channels` channels.
    pub fn fused_channels(self, channels: usize) -> usize {
        match self {
            FusionMode::Concat => 2 * channels,
            FusionMode::Add | FusionMode::Hadamard => channels,
        }
    }
}

impl std::fmt::Display for FusionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Configuration of [`IntermediateFusion`].
#[derive(Config, Debug)]
pub struct IntermediateFusionConfig {
    /// How to fuse the feature maps.
    pub mode: FusionMode,
    /// Downsampling step of both trunks.
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
    /// Number of output logits.
    #[config(default = 2)]
    pub num_classes: usize,
}

impl IntermediateFusionConfig {
    /// Initialise an [`IntermediateFusion`] model.
    pub fn init(&self, device: &Device) -> IntermediateFusion {
        let trunk = seed_trunk(4, self.downsample);
        let flat = self.mode.fused_channels(100) * 8 * 8;
        IntermediateFusion {
            rgb: trunk.init(device),
            xyza: trunk.init(device),
            head: Mlp::new(&[flat, 1000, 100, self.num_classes], device),
            mode: self.mode,
        }
    }
}

/// Intermediate fusion (seed): per-modality conv trunk 25 -> 50 -> 100, fuse the two
/// `[B, 100, 8, 8]` maps ([`FusionMode`]), flatten, `Linear ->1000, ReLU, 1000->100, ReLU,
/// 100->2`. Add/Hadamard: 6,615,952 parameters (6,852,552 strided); concat: 13,015,952.
#[derive(Module, Debug)]
pub struct IntermediateFusion {
    /// RGB trunk.
    pub rgb: ConvTrunk,
    /// XYZA trunk.
    pub xyza: ConvTrunk,
    /// Fully connected head.
    pub head: Mlp,
    /// Fusion operation.
    #[module(skip)]
    pub mode: FusionMode,
}

impl IntermediateFusion {
    /// Forward pass.
    ///
    /// - rgb: `[batch, 4, 64, 64]`, xyza: `[batch, 4, 64, 64]`
    /// - output: `[batch, num_classes]` logits
    pub fn forward(&self, rgb: Tensor<4>, xyza: Tensor<4>) -> Tensor<2> {
        let a = self.rgb.forward(rgb); // [batch, 100, 8, 8]
        let b = self.xyza.forward(xyza); // [batch, 100, 8, 8]
        let fused = match self.mode {
            FusionMode::Concat => Tensor::cat(vec![a, b], 1), // [batch, 200, 8, 8]
            FusionMode::Add => a + b,                         // [batch, 100, 8, 8]
            FusionMode::Hadamard => a * b,                    // [batch, 100, 8, 8]
        };
        self.head.forward(fused.flatten(1, 3)) // [batch, 2]
    }
}

/// Configuration of [`EarlyFusion`].
#[derive(Config, Debug)]
pub struct EarlyFusionConfig {
    /// Downsampling step of the trunk.
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
    /// Number of output logits.
    #[config(default = 2)]
    pub num_classes: usize,
}

impl EarlyFusionConfig {
    /// Initialise an [`EarlyFusion`] model.
    pub fn init(&self, device: &Device) -> EarlyFusion {
        EarlyFusion { net: EmbedderConfig::new(8, self.num_classes).with_downsample(self.downsample).init(device) }
    }
}

/// Early fusion (NVIDIA's idea, seed-style network): RGB and XYZA are stacked to 8 channels and
/// fed to one seed [`Embedder`]`(8, 2)`, i.e. conv 25 -> 50 -> 100 with downsampling, flatten
/// 6400, `Linear 6400->1000, ReLU, 1000->100, ReLU, 100->2` (6,559,527 parameters with
/// max-pooling).
///
/// Design choice: REFERENCE §2 fixes only "one network on 8 stacked channels"; reusing the seed
/// embedder trunk and head keeps it directly comparable with the late and intermediate models.
#[derive(Module, Debug)]
pub struct EarlyFusion {
    /// The single network on the stacked input.
    pub net: Embedder,
}

impl EarlyFusion {
    /// Forward pass.
    ///
    /// - rgb: `[batch, 4, 64, 64]`, xyza: `[batch, 4, 64, 64]`
    /// - output: `[batch, num_classes]` logits
    pub fn forward(&self, rgb: Tensor<4>, xyza: Tensor<4>) -> Tensor<2> {
        let x = Tensor::cat(vec![rgb, xyza], 1); // [batch, 8, 64, 64]
        self.net.forward(x)
    }
}
