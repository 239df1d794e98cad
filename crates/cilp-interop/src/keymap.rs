//! Per-model maps between burn parameter paths and PyTorch `state_dict()` keys.
//!
//! Every entry pairs one burn parameter (`rgb.trunk.blocks.0.conv.weight`) with one PyTorch key
//! (`rgb_Embedder.conv1.weight`). Entries are listed in the order PyTorch's `state_dict()` lists
//! them, so an export's sidecar can give a loader the original order.
//!
//! Where the names come from (see `docs/interop.md` for the full tables):
//!
//! - **The original study** (`jkubuni/Multimodal_Learning`, `src/models.py`; REFERENCE §8 and
//!   `seed_state_dicts.json`): `late-fusion[-strided]`, `intermediate-*[-strided]`,
//!   `embedder-rgb` / `embedder-lidar` (`Embedder(4, 2)`), `seed-lidar-classifier`
//!   (`EmbedderStrided(4, 2)`), `seed-cilp` (`ContrastivePretraining(200, 'strided')`) and
//!   `seed-projector` (`Projector(200, 100)`). The strided twins of the original have the extra
//!   stride-2 convolution as `down{1,2,3}`.
//! - **NVIDIA** (`lidar_cnn.pt`, REFERENCE §2): `nvidia-lidar-classifier` is
//!   `embedder.{0,3,6,9}` (Conv, ReLU, MaxPool repeated) and `classifier.{0,2}`.
//! - **cilp's own names, in the same style**, for zoo models the original never had:
//!   `*-strided-conv` (the main convolution strided, no pool: the seed names without `down*`),
//!   `early-fusion*` (one `Embedder(8, 2)`: `conv1..3`, `down1..3`, `fc1..3`),
//!   `rgb-to-lidar` (`img_embedder.embedder.{0,3,6,9}`, `img_embedder.dense_emb.{0,2}`,
//!   `projector.{0,2,4}`, `classifier.{0,2}`: NVIDIA's `lidar_cnn.pt` head keeps its names),
//!   `seed-rgb-to-lidar` (`img_embedder.*` as in `seed-cilp`, `projector.model.{0,2,4}` as in
//!   `seed-projector`, `fc3` from the LiDAR classifier), `cilp` / `cilp-clip`
//!   (`img_embedder.*` / `lidar_embedder.*` as in `rgb-to-lidar`, and `logit_scale`) and
//!   `projector` (a bare `nn.Sequential`: `{0,2,4}`).
//!
//! PyTorch stores a Linear weight `[out, in]` and burn `[in, out]`: burn-store's
//! `BurnToPyTorchAdapter` / `PyTorchToBurnAdapter` transpose them. Conv2d weights share the
//! layout `[out, in, kh, kw]`. The learnable logit scale is a 0-d tensor in PyTorch (`[]`) and
//! `[1]` in cilp; [`KeyMap::scalars`] names those parameters.

use cilp_models::nvidia::NVIDIA_TRUNK_CHANNELS;
use cilp_models::seed::SEED_TRUNK_CHANNELS;
use cilp_models::{Downsample, ModelSpec};

/// Where a model's PyTorch names come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    /// The original study's `src/models.py` (`seed_state_dicts.json`).
    Original,
    /// NVIDIA's `lidar_cnn.pt`.
    Nvidia,
    /// Chosen by cilp in the same style, for a model the original never had.
    Cilp,
}

/// One parameter: its burn path and its PyTorch key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// Path of the parameter in the burn module (enum variants skipped), e.g. `head.layers.0.weight`.
    pub burn: String,
    /// PyTorch `state_dict()` key, e.g. `classifier.0.weight`.
    pub torch: String,
}

/// The key map of one zoo model.
#[derive(Debug, Clone)]
pub struct KeyMap {
    /// Zoo name.
    pub model: String,
    /// The PyTorch class (constructor call) the names follow, for models with a counterpart in
    /// the original study.
    pub pytorch_class: Option<&'static str>,
    /// Where the names come from.
    pub source: NameSource,
    /// Every parameter, in PyTorch's `state_dict()` order.
    pub pairs: Vec<KeyPair>,
    /// Burn paths of `[1]` parameters that PyTorch holds as 0-d tensors (`logit_scale`).
    pub scalars: Vec<String>,
}

impl KeyMap {
    /// The map of a zoo model.
    pub fn of(spec: ModelSpec) -> KeyMap {
        let mut b = Builder::default();
        let (pytorch_class, source) = match spec {
            ModelSpec::LateFusion(d) => {
                b.seed_embedder("rgb.", "rgb_Embedder.", d);
                b.seed_embedder("xyza.", "lidar_Embedder.", d);
                b.mlp("head.", &["classifier.0", "classifier.2"]);
                let class = match d {
                    Downsample::MaxPool => Some("LateFusionModel()"),
                    Downsample::StridedExtraConv => Some("LateFusionModelStrided()"),
                    Downsample::StridedConv => None,
                };
                (class, original_or_cilp(d))
            }
            ModelSpec::Intermediate(mode, d) => {
                // The original declares both conv stacks, then both down stacks.
                for (branch, prefix) in [("rgb.", "rgb_"), ("xyza.", "lidar_")] {
                    for i in 0..3 {
                        b.param(&format!("{branch}blocks.{i}.conv"), &format!("{prefix}conv{}", i + 1));
                    }
                }
                if d == Downsample::StridedExtraConv {
                    for (branch, prefix) in [("rgb.", "rgb_"), ("xyza.", "lidar_")] {
                        for i in 0..3 {
                            b.param(&format!("{branch}blocks.{i}.down_conv"), &format!("{prefix}down{}", i + 1));
                        }
                    }
                }
                b.mlp("head.", &["fc1", "fc2", "fc3"]);
                let class = match (mode, d) {
                    (_, Downsample::StridedConv) => None,
                    (cilp_models::FusionMode::Concat, Downsample::MaxPool) => Some("IntermediateFusionModel('concat')"),
                    (cilp_models::FusionMode::Add, Downsample::MaxPool) => Some("IntermediateFusionModel('add')"),
                    (cilp_models::FusionMode::Hadamard, Downsample::MaxPool) => Some("IntermediateFusionModel('multiply')"),
                    (cilp_models::FusionMode::Concat, _) => Some("IntermediateFusionModelStrided('concat')"),
                    (cilp_models::FusionMode::Add, _) => Some("IntermediateFusionModelStrided('add')"),
                    (cilp_models::FusionMode::Hadamard, _) => Some("IntermediateFusionModelStrided('multiply')"),
                };
                (class, original_or_cilp(d))
            }
            ModelSpec::Early(d) => {
                b.seed_embedder("net.", "", d);
                (None, NameSource::Cilp)
            }
            ModelSpec::Single(_) => {
                b.seed_embedder("net.", "", Downsample::MaxPool);
                (Some("Embedder(4, 2)"), NameSource::Original)
            }
            ModelSpec::SeedLidarClassifier => {
                b.seed_embedder("net.", "", Downsample::StridedExtraConv);
                (Some("EmbedderStrided(4, 2)"), NameSource::Original)
            }
            ModelSpec::LidarClassifier => {
                b.nvidia_trunk("embedder.", "embedder.");
                b.mlp("classifier.mlp.", &["classifier.0", "classifier.2"]);
                (None, NameSource::Nvidia)
            }
            ModelSpec::RgbToLidar => {
                b.nvidia_embedder("image.", "img_embedder.");
                b.mlp("projector.mlp.", &["projector.0", "projector.2", "projector.4"]);
                b.mlp("head.mlp.", &["classifier.0", "classifier.2"]);
                (None, NameSource::Cilp)
            }
            ModelSpec::Cilp(loss) => {
                if loss == cilp_models::CilpLoss::Clip {
                    b.scalar("logit_scale", "logit_scale");
                }
                b.nvidia_embedder("image.", "img_embedder.");
                b.nvidia_embedder("lidar.", "lidar_embedder.");
                (None, NameSource::Cilp)
            }
            ModelSpec::Projector => {
                b.mlp("mlp.", &["0", "2", "4"]);
                (None, NameSource::Cilp)
            }
            ModelSpec::SeedCilp => {
                b.scalar("logit_scale", "logit_scale");
                b.seed_embedder("image.", "img_embedder.", Downsample::StridedExtraConv);
                b.seed_embedder("lidar.", "lidar_embedder.", Downsample::StridedExtraConv);
                (Some("ContrastivePretraining(200, 'strided')"), NameSource::Original)
            }
            ModelSpec::SeedProjector => {
                b.mlp("mlp.", &["model.0", "model.2", "model.4"]);
                (Some("Projector(200, 100)"), NameSource::Original)
            }
            ModelSpec::SeedRgbToLidar => {
                b.seed_embedder("image.", "img_embedder.", Downsample::StridedExtraConv);
                b.mlp("projector.mlp.", &["projector.model.0", "projector.model.2", "projector.model.4"]);
                b.param("fc3", "fc3");
                (None, NameSource::Cilp)
            }
        };
        KeyMap { model: spec.name(), pytorch_class, source, pairs: b.pairs, scalars: b.scalars }
    }

    /// The PyTorch key of a burn path.
    pub fn torch_of(&self, burn: &str) -> Option<&str> {
        self.pairs.iter().find(|p| p.burn == burn).map(|p| p.torch.as_str())
    }

    /// The burn path of a PyTorch key.
    pub fn burn_of(&self, torch: &str) -> Option<&str> {
        self.pairs.iter().find(|p| p.torch == torch).map(|p| p.burn.as_str())
    }

    /// The PyTorch keys, in `state_dict()` order.
    pub fn torch_keys(&self) -> Vec<&str> {
        self.pairs.iter().map(|p| p.torch.as_str()).collect()
    }
}

fn original_or_cilp(d: Downsample) -> NameSource {
    if d == Downsample::StridedConv { NameSource::Cilp } else { NameSource::Original }
}

/// Collects pairs in PyTorch order.
#[derive(Default)]
struct Builder {
    pairs: Vec<KeyPair>,
    scalars: Vec<String>,
}

impl Builder {
    /// `{burn}.weight` / `{burn}.bias` as `{torch}.weight` / `{torch}.bias` (every conv and
    /// linear of the zoo has a bias).
    fn param(&mut self, burn: &str, torch: &str) {
        for p in ["weight", "bias"] {
            self.pairs.push(KeyPair { burn: format!("{burn}.{p}"), torch: format!("{torch}.{p}") });
        }
    }

    fn scalar(&mut self, burn: &str, torch: &str) {
        self.pairs.push(KeyPair { burn: burn.into(), torch: torch.into() });
        self.scalars.push(burn.into());
    }

    /// An [`cilp_models::Mlp`] at `burn` (`{burn}layers.{i}`) with one PyTorch name per layer.
    fn mlp(&mut self, burn: &str, torch: &[&str]) {
        for (i, t) in torch.iter().enumerate() {
            self.param(&format!("{burn}layers.{i}"), t);
        }
    }

    /// The seed `Embedder` / `EmbedderStrided` at `burn` (`trunk`, `head`): `conv1..3`, then
    /// `down1..3` for the extra strided convolution, then `fc1..3`, under `torch`.
    fn seed_embedder(&mut self, burn: &str, torch: &str, d: Downsample) {
        for i in 0..SEED_TRUNK_CHANNELS.len() {
            self.param(&format!("{burn}trunk.blocks.{i}.conv"), &format!("{torch}conv{}", i + 1));
        }
        if d == Downsample::StridedExtraConv {
            for i in 0..SEED_TRUNK_CHANNELS.len() {
                self.param(&format!("{burn}trunk.blocks.{i}.down_conv"), &format!("{torch}down{}", i + 1));
            }
        }
        self.mlp(&format!("{burn}head."), &[&format!("{torch}fc1"), &format!("{torch}fc2"), &format!("{torch}fc3")]);
    }

    /// NVIDIA's conv trunk as a `nn.Sequential` of (Conv, ReLU, MaxPool) x 4 plus Flatten:
    /// the convolutions are items 0, 3, 6, 9.
    fn nvidia_trunk(&mut self, burn: &str, torch: &str) {
        for i in 0..NVIDIA_TRUNK_CHANNELS.len() {
            self.param(&format!("{burn}blocks.{i}.conv"), &format!("{torch}{}", 3 * i));
        }
    }

    /// NVIDIA's CILP `Embedder`: `embedder` (the trunk) and `dense_emb` (Linear, ReLU, Linear).
    fn nvidia_embedder(&mut self, burn: &str, torch: &str) {
        self.nvidia_trunk(&format!("{burn}trunk."), &format!("{torch}embedder."));
        self.mlp(&format!("{burn}head."), &[&format!("{torch}dense_emb.0"), &format!("{torch}dense_emb.2")]);
    }
}
