//! NVIDIA's contrastive (CILP) models (REFERENCE §2-3): the [`NvidiaEmbedder`], the [`Cilp`]
//! dual encoder, the pretrained [`LidarClassifier`], the [`Projector`] and the final
//! [`RgbToLidar`] classifier.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

use crate::blocks::{ConvTrunk, ConvTrunkConfig, Downsample, Mlp};
use crate::loss;
use crate::loss::l2_normalize;

/// Channels of NVIDIA's convolution trunks.
pub const NVIDIA_TRUNK_CHANNELS: [usize; 4] = [50, 100, 200, 200];
/// Flattened size of NVIDIA's trunk output (`200 * 4 * 4`), the LiDAR classifier's embedding.
pub const LIDAR_EMBEDDING: usize = 3200;
/// Size of the CILP embeddings.
pub const CILP_EMBEDDING: usize = 200;
/// Initial CLIP logit scale, `ln(1 / 0.07)`.
pub const CLIP_LOGIT_SCALE_INIT: f32 = 2.659_26;
/// Upper clamp of the CLIP logit scale, `ln(100)` (OpenCLIP's practice).
pub const CLIP_LOGIT_SCALE_MAX: f32 = 4.605_170_2;

fn nvidia_trunk(in_channels: usize) -> ConvTrunkConfig {
    ConvTrunkConfig::new(in_channels, NVIDIA_TRUNK_CHANNELS.to_vec()).with_downsample(Downsample::MaxPool)
}

/// Configuration of the [`NvidiaEmbedder`].
#[derive(Config, Debug)]
pub struct NvidiaEmbedderConfig {
    /// Input channels: 4 for RGB(A), 1 for raw LiDAR depth.
    pub in_channels: usize,
    /// Embedding size.
    #[config(default = 200)]
    pub out_features: usize,
}

impl NvidiaEmbedderConfig {
    /// Initialise an [`NvidiaEmbedder`].
    pub fn init(&self, device: &Device) -> NvidiaEmbedder {
        NvidiaEmbedder {
            trunk: nvidia_trunk(self.in_channels).init(device),
            head: Mlp::new(&[LIDAR_EMBEDDING, 100, self.out_features], device),
        }
    }
}

/// NVIDIA's CILP embedder: conv 50 -> 100 -> 200 -> 200 (3x3 + ReLU + MaxPool2d(2) each),
/// flatten 3200, `Linear 3200->100, ReLU, Linear 100->200`, L2-normalised.
/// 927,650 parameters with 4 input channels, 926,300 with 1.
#[derive(Module, Debug)]
pub struct NvidiaEmbedder {
    /// Convolution trunk.
    pub trunk: ConvTrunk,
    /// Fully connected head.
    pub head: Mlp,
}

impl NvidiaEmbedder {
    /// Forward pass.
    ///
    /// - input: `[batch, in_channels, 64, 64]`
    /// - output: `[batch, 200]`, unit L2 norm per row
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.trunk.forward(x); // [batch, 200, 4, 4]
        let x = self.head.forward(x.flatten(1, 3)); // [batch, 200]
        l2_normalize(x)
    }
}

/// Which contrastive loss a [`Cilp`] model trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CilpLoss {
    /// NVIDIA: cosine similarities mapped by `(sim + 1) / 2`, no temperature.
    #[default]
    Nvidia,
    /// CLIP: `exp(s) * img @ lidar^T` with a learnable logit scale `s`.
    Clip,
}

/// Configuration of the [`Cilp`] dual encoder.
#[derive(Config, Debug)]
pub struct CilpConfig {
    /// Contrastive loss variant; [`CilpLoss::Clip`] adds the learnable logit scale.
    #[config(default = "CilpLoss::Nvidia")]
    pub loss: CilpLoss,
}

impl CilpConfig {
    /// Initialise a [`Cilp`] model.
    pub fn init(&self, device: &Device) -> Cilp {
        let logit_scale = match self.loss {
            CilpLoss::Nvidia => None,
            CilpLoss::Clip => Some(Initializer::Constant { value: CLIP_LOGIT_SCALE_INIT as f64 }.init([1], device)),
        };
        Cilp { image: NvidiaEmbedderConfig::new(4).init(device), lidar: NvidiaEmbedderConfig::new(1).init(device), logit_scale }
    }
}

/// Contrastive image/LiDAR pretraining model: an RGB [`NvidiaEmbedder`] (4 channels) and a
/// depth [`NvidiaEmbedder`] (1 channel, raw metres); 1,853,950 parameters together, plus one
/// for the CLIP variant's learnable logit scale.
#[derive(Module, Debug)]
pub struct Cilp {
    /// Image encoder (`[B, 4, 64, 64]` RGB(A) in `[0, 1]`).
    pub image: NvidiaEmbedder,
    /// LiDAR encoder (`[B, 1, 64, 64]` raw depth).
    pub lidar: NvidiaEmbedder,
    /// CLIP logit scale `s` (`[1]`), present only for [`CilpLoss::Clip`].
    pub logit_scale: Option<Param<Tensor<1>>>,
}

impl Cilp {
    /// Loss variant implied by the presence of the logit scale.
    pub fn loss_kind(&self) -> CilpLoss {
        if self.logit_scale.is_some() { CilpLoss::Clip } else { CilpLoss::Nvidia }
    }

    /// Embed both modalities.
    ///
    /// - rgb: `[batch, 4, 64, 64]`, depth: `[batch, 1, 64, 64]`
    /// - output: (`[batch, 200]`, `[batch, 200]`), both L2-normalised
    pub fn forward(&self, rgb: Tensor<4>, depth: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        (self.image.forward(rgb), self.lidar.forward(depth))
    }

    /// Similarity logits between every image (rows) and LiDAR sample (columns) of a batch, as
    /// fed to the loss: `(cos + 1) / 2` (NVIDIA) or `exp(s) * img @ lidar^T` (CLIP).
    ///
    /// - inputs: `[batch, 200]` each; output: `[batch, batch]`
    pub fn logits(&self, img: Tensor<2>, lidar: Tensor<2>) -> Tensor<2> {
        match &self.logit_scale {
            None => loss::nvidia_similarity_logits(img, lidar),
            Some(s) => loss::clip_logits(img, lidar, s.val()),
        }
    }

    /// Contrastive loss of a batch of embeddings ([`loss::cilp_nvidia_loss`] or
    /// [`loss::clip_loss`] depending on [`Cilp::loss_kind`]). Output `[1]`.
    pub fn loss(&self, img: Tensor<2>, lidar: Tensor<2>) -> Tensor<1> {
        match &self.logit_scale {
            None => loss::cilp_nvidia_loss(img, lidar),
            Some(s) => loss::clip_loss(img, lidar, s.val()),
        }
    }

    /// Clamp the CLIP logit scale to at most `ln(100)`; call after every optimiser step.
    /// A no-op for the NVIDIA variant.
    pub fn clamp_logit_scale(mut self) -> Self {
        self.logit_scale = self.logit_scale.map(|p| {
            p.map(|t| {
                let require_grad = t.is_require_grad();
                let t = t.clamp_max(CLIP_LOGIT_SCALE_MAX).detach();
                if require_grad { t.require_grad() } else { t }
            })
        });
        self
    }

    /// Current logit scale `s` (not `exp(s)`), if any.
    pub fn logit_scale_value(&self) -> Option<f32> {
        self.logit_scale.as_ref().map(|p| p.val().into_data().try_into_vec_as::<f32>().expect("f32 logit scale")[0])
    }
}

/// The LiDAR classifier's head: `Linear 3200->100, ReLU, Linear 100->1` (320,201 parameters).
/// Its single logit is > 0 for a sphere.
#[derive(Module, Debug)]
pub struct LidarHead {
    /// `[3200, 100, 1]` MLP.
    pub mlp: Mlp,
}

impl LidarHead {
    /// Initialise a head.
    pub fn new(device: &Device) -> Self {
        Self { mlp: Mlp::new(&[LIDAR_EMBEDDING, 100, 1], device) }
    }

    /// Forward pass: `[batch, 3200] -> [batch, 1]` logits.
    pub fn forward(&self, emb: Tensor<2>) -> Tensor<2> {
        self.mlp.forward(emb)
    }
}

/// NVIDIA's pretrained LiDAR classifier (`lidar_cnn.pt`, 906,201 parameters): `embedder` =
/// conv 1 -> 50 -> 100 -> 200 -> 200 with ReLU + MaxPool2d(2) each, flatten to 3200;
/// `classifier` = [`LidarHead`].
#[derive(Module, Debug)]
pub struct LidarClassifier {
    /// Convolution trunk (PyTorch `embedder.{0,3,6,9}`).
    pub embedder: ConvTrunk,
    /// Head (PyTorch `classifier.{0,2}`).
    pub classifier: LidarHead,
}

impl LidarClassifier {
    /// A randomly initialised classifier (see [`crate::load_lidar_classifier_pt`] for the
    /// pretrained weights).
    pub fn new(device: &Device) -> Self {
        Self { embedder: nvidia_trunk(1).init(device), classifier: LidarHead::new(device) }
    }

    /// Embed raw depth maps.
    ///
    /// - depth: `[batch, 1, 64, 64]` (metres, no-return = 50)
    /// - output: `[batch, 3200]`
    pub fn embed(&self, depth: Tensor<4>) -> Tensor<2> {
        self.embedder.forward(depth).flatten(1, 3) // [batch, 200, 4, 4] -> [batch, 3200]
    }

    /// Classify embeddings: `[batch, 3200] -> [batch, 1]` logits (> 0 means sphere).
    pub fn head(&self, emb: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(emb)
    }

    /// Full forward pass: `[batch, 1, 64, 64] -> [batch, 1]` logits.
    pub fn forward(&self, depth: Tensor<4>) -> Tensor<2> {
        self.head(self.embed(depth))
    }
}

/// Configuration of the [`Projector`].
#[derive(Config, Debug)]
pub struct ProjectorConfig {
    /// Input features (CILP embedding size).
    #[config(default = 200)]
    pub in_features: usize,
    /// Output features (LiDAR classifier embedding size).
    #[config(default = 3200)]
    pub out_features: usize,
}

impl ProjectorConfig {
    /// Initialise a [`Projector`].
    pub fn init(&self, device: &Device) -> Projector {
        Projector { mlp: Mlp::new(&[self.in_features, 1000, 500, self.out_features], device) }
    }
}

/// Projector from CILP image embeddings to the LiDAR classifier's embedding space:
/// `Linear 200->1000, ReLU, Linear 1000->500, ReLU, Linear 500->3200` (2,304,700 parameters).
#[derive(Module, Debug)]
pub struct Projector {
    /// The MLP.
    pub mlp: Mlp,
}

impl Projector {
    /// Forward pass: `[batch, 200] -> [batch, 3200]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.mlp.forward(x)
    }
}

/// RGB -> LiDAR classifier: CILP image encoder -> [`Projector`] -> LiDAR classifier head
/// (3,552,551 parameters); one logit, > 0 means sphere.
#[derive(Module, Debug)]
pub struct RgbToLidar {
    /// CILP image encoder.
    pub image: NvidiaEmbedder,
    /// Projector to the LiDAR embedding space.
    pub projector: Projector,
    /// LiDAR classifier head.
    pub head: LidarHead,
}

impl RgbToLidar {
    /// Randomly initialised model (normally assembled with [`RgbToLidar::from_parts`]).
    pub fn new(device: &Device) -> Self {
        Self {
            image: NvidiaEmbedderConfig::new(4).init(device),
            projector: ProjectorConfig::new().init(device),
            head: LidarHead::new(device),
        }
    }

    /// Assemble from a trained CILP model's image encoder, a trained projector and the
    /// (pretrained) LiDAR classifier's head.
    pub fn from_parts(cilp: Cilp, projector: Projector, lidar: LidarClassifier) -> Self {
        Self { image: cilp.image, projector, head: lidar.classifier }
    }

    /// Forward pass: `[batch, 4, 64, 64] -> [batch, 1]` logits.
    pub fn forward(&self, rgb: Tensor<4>) -> Tensor<2> {
        let emb = self.image.forward(rgb); // [batch, 200]
        let proj = self.projector.forward(emb); // [batch, 3200]
        self.head.forward(proj) // [batch, 1]
    }
}
