//! Shared building blocks: 3x3 convolution blocks with a configurable downsampling step, and a
//! convolutional trunk made of several of them.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How a convolution block halves the spatial resolution (REFERENCE §2 and the ablation of
/// task 4).
///
/// Serialised in kebab-case: `"max-pool"`, `"strided-extra-conv"`, `"strided-conv"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Downsample {
    /// `Conv2d(3x3, pad 1) -> ReLU -> MaxPool2d(2)` (the seed and NVIDIA default).
    #[default]
    MaxPool,
    /// `Conv2d(3x3, pad 1) -> ReLU -> Conv2d(C, C, 3, stride 2, pad 1)`: the pool is replaced by
    /// a separate learnable strided convolution with no activation after it (more parameters).
    StridedExtraConv,
    /// `Conv2d(3x3, stride 2, pad 1) -> ReLU`: the main convolution is strided and the pool is
    /// dropped (same parameter count as the pooled model).
    StridedConv,
}

impl Downsample {
    /// All variants, in a stable order.
    pub const ALL: [Downsample; 3] = [Downsample::MaxPool, Downsample::StridedExtraConv, Downsample::StridedConv];

    /// Suffix used by the model zoo names (`""`, `"-strided"`, `"-strided-conv"`).
    pub fn zoo_suffix(self) -> &'static str {
        match self {
            Downsample::MaxPool => "",
            Downsample::StridedExtraConv => "-strided",
            Downsample::StridedConv => "-strided-conv",
        }
    }

    /// Human-readable label (`"MaxPool2d"`, `"Strided"`, `"StridedConv"`), as used in ablation
    /// tables.
    pub fn label(self) -> &'static str {
        match self {
            Downsample::MaxPool => "MaxPool2d",
            Downsample::StridedExtraConv => "Strided",
            Downsample::StridedConv => "StridedConv",
        }
    }
}

impl std::fmt::Display for Downsample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Downsample::MaxPool => "max-pool",
            Downsample::StridedExtraConv => "strided-extra-conv",
            Downsample::StridedConv => "strided-conv",
        })
    }
}

/// `3x3` convolution with padding 1 (and the given stride).
pub(crate) fn conv3x3(in_ch: usize, out_ch: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_ch, out_ch], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// Configuration of a [`ConvBlock`].
#[derive(Config, Debug)]
pub struct ConvBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Downsampling step (halves height and width).
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
}

impl ConvBlockConfig {
    /// Initialise a [`ConvBlock`] (parameters are initialised lazily on first use).
    pub fn init(&self, device: &Device) -> ConvBlock {
        let (stride, pool, down_conv) = match self.downsample {
            Downsample::MaxPool => (1, Some(MaxPool2dConfig::new([2, 2]).init()), None),
            Downsample::StridedExtraConv => (1, None, Some(conv3x3(self.out_channels, self.out_channels, 2, device))),
            Downsample::StridedConv => (2, None, None),
        };
        ConvBlock { conv: conv3x3(self.in_channels, self.out_channels, stride, device), activation: Relu::new(), pool, down_conv }
    }
}

/// One convolution stage: `conv3x3 -> ReLU -> downsample` (see [`Downsample`]).
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// Main 3x3 convolution (stride 2 for [`Downsample::StridedConv`]).
    pub conv: Conv2d,
    /// ReLU after the main convolution.
    pub activation: Relu,
    /// `MaxPool2d(2)` for [`Downsample::MaxPool`].
    pub pool: Option<MaxPool2d>,
    /// Learnable `Conv2d(C, C, 3, stride 2, pad 1)` for [`Downsample::StridedExtraConv`].
    pub down_conv: Option<Conv2d>,
}

impl ConvBlock {
    /// Forward pass.
    ///
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h / 2, w / 2]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let (Some(pool), None) = (&self.pool, &self.down_conv) {
            // conv -> ReLU -> MaxPool2d(2) as one fused op on the CPU backend.
            return cilp_kernels::conv2d_relu_maxpool_module(&self.conv, pool, x); // [batch, out, h/2, w/2]
        }
        // conv -> ReLU as one fused op on the CPU backend (`self.activation` is burn's ReLU).
        let x = cilp_kernels::conv2d_relu_module(&self.conv, x); // [batch, out, h', w']
        let x = match &self.pool {
            Some(pool) => pool.forward(x),
            None => x,
        };
        match &self.down_conv {
            Some(conv) => cilp_kernels::conv2d_module(conv, x),
            None => x,
        }
    }
}

/// Configuration of a [`ConvTrunk`]: a chain of [`ConvBlock`]s.
#[derive(Config, Debug)]
pub struct ConvTrunkConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of each block, e.g. `[25, 50, 100]`.
    pub channels: Vec<usize>,
    /// Downsampling step used by every block.
    #[config(default = "Downsample::MaxPool")]
    pub downsample: Downsample,
}

impl ConvTrunkConfig {
    /// Initialise a [`ConvTrunk`].
    pub fn init(&self, device: &Device) -> ConvTrunk {
        let mut in_ch = self.in_channels;
        let mut blocks = Vec::with_capacity(self.channels.len());
        for &out_ch in &self.channels {
            blocks.push(ConvBlockConfig::new(in_ch, out_ch).with_downsample(self.downsample).init(device));
            in_ch = out_ch;
        }
        ConvTrunk { blocks }
    }

    /// Spatial side length after the trunk for a square input of side `side`.
    pub fn output_side(&self, side: usize) -> usize {
        // Both pooling (floor) and stride-2 / pad-1 / k-3 convolutions (ceil) give side/2 for
        // the even sizes used here (64 -> 32 -> 16 -> 8 -> 4).
        self.channels.iter().fold(side, |s, _| s / 2)
    }
}

/// A chain of [`ConvBlock`]s, each halving the spatial resolution.
#[derive(Module, Debug)]
pub struct ConvTrunk {
    /// The blocks, in order.
    pub blocks: Vec<ConvBlock>,
}

impl ConvTrunk {
    /// Forward pass.
    ///
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, channels.last(), h / 2^n, w / 2^n]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, block| block.forward(x))
    }
}

/// Multi-layer perceptron with ReLU between layers (none after the last).
#[derive(Module, Debug)]
pub struct Mlp {
    /// The linear layers, in order.
    pub layers: Vec<burn::nn::Linear>,
    /// Activation between layers.
    pub activation: Relu,
}

impl Mlp {
    /// Build an MLP with the given layer widths, e.g. `[6400, 1000, 100, 2]`.
    pub fn new(widths: &[usize], device: &Device) -> Self {
        assert!(widths.len() >= 2, "an MLP needs at least two widths");
        let layers = widths.windows(2).map(|w| burn::nn::LinearConfig::new(w[0], w[1]).init(device)).collect();
        Self { layers, activation: Relu::new() }
    }

    /// Forward pass: `[batch, widths[0]] -> [batch, widths.last()]`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            x = cilp_kernels::linear_module(layer, x); // [batch, layer's d_out]
            if i + 1 < n {
                x = self.activation.forward(x);
            }
        }
        x
    }
}
