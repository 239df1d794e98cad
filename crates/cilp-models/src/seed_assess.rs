//! The models of the seed's own assessment (REFERENCE §7, notebook 04 of the original study):
//! the LiDAR classifier `EmbedderStrided(4, 2)` on XYZA, the [`SeedCilp`] dual encoder (two
//! `EmbedderStrided(4, 200)` and a learnable, never clamped logit scale), the seed projector
//! (a [`Projector`] `200 -> 1000 -> 500 -> 100`) and the assembled [`SeedRgbToLidar`] chain.
//!
//! `EmbedderStrided` is the seed [`Embedder`] with [`Downsample::StridedExtraConv`]: three
//! stages of `conv3x3 -> ReLU -> conv3x3 stride 2` (no ReLU after the strided conv).

use burn::module::Param;
use burn::nn::{Initializer, Linear};
use burn::prelude::*;

use crate::blocks::Downsample;
use crate::loss::{clip_logits, clip_loss, l2_normalize};
use crate::nvidia::{CLIP_LOGIT_SCALE_INIT, Projector, ProjectorConfig};
use crate::seed::{Embedder, EmbedderConfig};

/// Size of the seed CILP embeddings (`EmbedderStrided(4, 200)`).
pub const SEED_CILP_EMBEDDING: usize = 200;
/// Size of the seed LiDAR classifier's `fc2` features (the seed projector's target).
pub const SEED_LIDAR_FEATURES: usize = 100;

/// `EmbedderStrided(in_channels, out_features)`: the seed embedder with an extra learnable
/// stride-2 convolution in place of each max-pool.
pub fn embedder_strided(in_channels: usize, out_features: usize) -> EmbedderConfig {
    EmbedderConfig::new(in_channels, out_features).with_downsample(Downsample::StridedExtraConv)
}

/// The seed LiDAR classifier, `EmbedderStrided(4, 2)` on XYZA (6,676,927 parameters): two
/// logits, trained with cross-entropy.
pub fn seed_lidar_classifier(device: &Device) -> Embedder {
    embedder_strided(4, 2).init(device)
}

/// The seed projector `Linear 200->1000, ReLU, 1000->500, ReLU, 500->100` (751,600
/// parameters), from the CILP image embedder's un-normalised `fc3` output to the LiDAR
/// classifier's `fc2` features.
pub fn seed_projector_config() -> ProjectorConfig {
    ProjectorConfig::new().with_in_features(SEED_CILP_EMBEDDING).with_out_features(SEED_LIDAR_FEATURES)
}

/// Configuration of [`SeedCilp`].
#[derive(Config, Debug)]
pub struct SeedCilpConfig {
    /// Embedding size of both encoders.
    #[config(default = 200)]
    pub embedding: usize,
}

impl SeedCilpConfig {
    /// Initialise a [`SeedCilp`] (the logit scale starts at `ln(1 / 0.07)`).
    pub fn init(&self, device: &Device) -> SeedCilp {
        let e = embedder_strided(4, self.embedding);
        SeedCilp {
            image: e.init(device),
            lidar: e.init(device),
            logit_scale: Initializer::Constant { value: CLIP_LOGIT_SCALE_INIT as f64 }.init([1], device),
        }
    }
}

/// The seed's `ContrastivePretraining(200, 'strided')`: an RGB and an XYZA
/// `EmbedderStrided(4, 200)` and a learnable logit scale `s` (13,393,851 parameters).
///
/// The loss is CLIP's symmetric cross-entropy of `exp(s) * I L^T` on the L2-normalised `fc3`
/// outputs; unlike [`crate::Cilp`]'s CLIP variant, `s` is **never clamped** (the seed does not).
#[derive(Module, Debug)]
pub struct SeedCilp {
    /// RGB encoder (`[B, 4, 64, 64]` in `[0, 1]`).
    pub image: Embedder,
    /// XYZA encoder (`[B, 4, 64, 64]`, seed convention).
    pub lidar: Embedder,
    /// Logit scale `s` (`[1]`), initialised to `ln(1 / 0.07)`.
    pub logit_scale: Param<Tensor<1>>,
}

impl SeedCilp {
    /// Un-normalised `fc3` outputs of both encoders.
    ///
    /// - rgb: `[batch, 4, 64, 64]`, xyza: `[batch, 4, 64, 64]`
    /// - output: (`[batch, 200]`, `[batch, 200]`)
    pub fn forward(&self, rgb: Tensor<4>, xyza: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        (self.image.forward(rgb), self.lidar.forward(xyza))
    }

    /// `exp(s) * norm(img) @ norm(lidar)^T`: `[batch, 200]` x2 (un-normalised) -> `[batch, batch]`.
    pub fn logits(&self, img: Tensor<2>, lidar: Tensor<2>) -> Tensor<2> {
        clip_logits(l2_normalize(img), l2_normalize(lidar), self.logit_scale.val())
    }

    /// The seed's contrastive loss of a batch of un-normalised embeddings (normalised here):
    /// `(CE(exp(s) I L^T, arange) + CE(transpose, arange)) / 2`. Output `[1]`.
    pub fn loss(&self, img: Tensor<2>, lidar: Tensor<2>) -> Tensor<1> {
        clip_loss(l2_normalize(img), l2_normalize(lidar), self.logit_scale.val())
    }

    /// Current logit scale `s` (not `exp(s)`).
    pub fn logit_scale_value(&self) -> f32 {
        self.logit_scale.val().into_data().try_into_vec_as::<f32>().expect("f32 logit scale")[0]
    }
}

/// The seed's RGB -> LiDAR chain (7,448,727 parameters): the CILP image embedder (its
/// un-normalised `fc3` output) -> the seed projector -> the LiDAR classifier's `fc3`
/// (`Linear 100->2`). Nothing is fine-tuned in the seed's assessment.
///
/// Reproduced oddity: the projector output goes straight into `fc3`, without the ReLU that
/// `fc3` saw in training (it classified `ReLU(fc2)`); [`SeedRgbToLidar::forward_relu`] gives
/// the alternative for comparison.
#[derive(Module, Debug)]
pub struct SeedRgbToLidar {
    /// CILP image encoder.
    pub image: Embedder,
    /// Seed projector `200 -> 100`.
    pub projector: Projector,
    /// The LiDAR classifier's `fc3`.
    pub fc3: Linear,
}

impl SeedRgbToLidar {
    /// A randomly initialised chain (normally assembled with [`SeedRgbToLidar::from_parts`]).
    pub fn new(device: &Device) -> Self {
        Self {
            image: embedder_strided(4, SEED_CILP_EMBEDDING).init(device),
            projector: seed_projector_config().init(device),
            fc3: burn::nn::LinearConfig::new(SEED_LIDAR_FEATURES, 2).init(device),
        }
    }

    /// Assemble from a trained [`SeedCilp`], a trained seed projector and a trained seed LiDAR
    /// classifier (only its `fc3` is kept).
    pub fn from_parts(cilp: SeedCilp, projector: Projector, lidar: Embedder) -> Self {
        let fc3 = lidar.head.layers.into_iter().last().expect("the LiDAR classifier's fc3");
        Self { image: cilp.image, projector, fc3 }
    }

    /// The projected features, `[batch, 4, 64, 64] -> [batch, 100]`.
    pub fn projected(&self, rgb: Tensor<4>) -> Tensor<2> {
        self.projector.forward(self.image.forward(rgb)) // [batch, 200] -> [batch, 100]
    }

    /// Forward pass as the seed runs it: `[batch, 4, 64, 64] -> [batch, 2]` logits.
    pub fn forward(&self, rgb: Tensor<4>) -> Tensor<2> {
        cilp_kernels::linear_module(&self.fc3, self.projected(rgb))
    }

    /// Forward pass with the ReLU `fc3` saw in training: `[batch, 4, 64, 64] -> [batch, 2]`.
    pub fn forward_relu(&self, rgb: Tensor<4>) -> Tensor<2> {
        cilp_kernels::linear_module(&self.fc3, burn::tensor::activation::relu(self.projected(rgb)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[[f32; 3]]) -> Tensor<2> {
        let flat: Vec<f32> = v.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [v.len(), 3]), &Device::flex())
    }

    /// The seed normalises the fc3 outputs itself, and its logit scale is not clamped: with
    /// `s = ln 1000` the loss is the CLIP loss at scale 1000 (a clamp would cap it at 100).
    #[test]
    fn seed_loss_normalises_and_never_clamps() {
        let device = Device::flex();
        let mut m = SeedCilpConfig::new().init(&device);
        assert!((m.logit_scale_value() - (1.0f32 / 0.07).ln()).abs() < 1e-5);
        let s = 1000f32.ln();
        m.logit_scale = Param::from_tensor(Tensor::from_floats([s], &device));
        let (img, lid) = ([[3.0, 0.0, 4.0], [0.0, 2.0, 0.0]], [[1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]);
        let got: f32 = m.loss(rows(&img), rows(&lid)).into_scalar();
        // Reference in f64: cosines times 1000, symmetric cross-entropy against arange(2).
        let cos = |a: [f32; 3], b: [f32; 3]| {
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
            let n = |v: [f32; 3]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            dot / (n(a) * n(b))
        };
        let l: Vec<Vec<f64>> = img.iter().map(|a| lid.iter().map(|b| 1000.0 * cos(*a, *b)).collect()).collect();
        let ce = |row: [f64; 2], t: usize| {
            let m = row[0].max(row[1]);
            m + ((row[0] - m).exp() + (row[1] - m).exp()).ln() - row[t]
        };
        let rows_ce = (ce([l[0][0], l[0][1]], 0) + ce([l[1][0], l[1][1]], 1)) / 2.0;
        let cols_ce = (ce([l[0][0], l[1][0]], 0) + ce([l[0][1], l[1][1]], 1)) / 2.0;
        let want = (rows_ce + cols_ce) / 2.0;
        assert!((got as f64 - want).abs() < 1e-2 * want.max(1.0), "{got} vs {want}");
        assert!(want > 100.0, "the scale 1000 matters: {want}");
    }

    /// The chain feeds the projector's output to fc3 without a ReLU; `forward_relu` applies it.
    #[test]
    fn chain_skips_the_relu_fc3_saw_in_training() {
        let device = Device::flex();
        let chain = SeedRgbToLidar::new(&device);
        let rgb = Tensor::<4>::random([2, 4, 64, 64], burn::tensor::Distribution::Default, &device);
        let p = chain.projected(rgb.clone());
        assert_eq!(p.dims(), [2, SEED_LIDAR_FEATURES]);
        let direct = chain.fc3.forward(p.clone()).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(chain.forward(rgb.clone()).into_data().try_into_vec_as::<f32>().unwrap(), direct);
        let relu = chain.fc3.forward(burn::tensor::activation::relu(p)).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(chain.forward_relu(rgb).into_data().try_into_vec_as::<f32>().unwrap(), relu);
    }
}
