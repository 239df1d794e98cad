//! The model zoo: a catalogue of named models for the CLI and the training engine, and a single
//! trainable [`Classifier`] type that a generic training loop can drive.
//!
//! ```no_run
//! use burn::prelude::*;
//! use cilp_models::zoo::{build_classifier, catalog, ModelInputs};
//!
//! let device = Device::flex();
//! for info in catalog() {
//!     println!("{:<32} {:>10} params  {:?}", info.name, info.parameters, info.inputs);
//! }
//! let model = build_classifier("late-fusion", &device).unwrap();
//! let inputs = ModelInputs {
//!     rgb: Some(Tensor::zeros([2, 4, 64, 64], &device)),
//!     xyza: Some(Tensor::zeros([2, 4, 64, 64], &device)),
//!     depth: None,
//! };
//! let logits = model.forward(&inputs); // [2, 2]
//! ```

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::blocks::Downsample;
use crate::nvidia::{CILP_EMBEDDING, CilpConfig, CilpLoss, LIDAR_EMBEDDING, LidarClassifier, ProjectorConfig, RgbToLidar};
use crate::seed::{
    EarlyFusion, EarlyFusionConfig, Embedder, EmbedderConfig, FusionMode, IntermediateFusion, IntermediateFusionConfig, LateFusion,
    LateFusionConfig,
};
use crate::seed_assess::{
    SEED_CILP_EMBEDDING, SEED_LIDAR_FEATURES, SeedCilpConfig, SeedRgbToLidar, embedder_strided, seed_projector_config,
};

/// A kind of model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// RGB(A) image, `[B, 4, 64, 64]`, values in `[0, 1]`.
    Rgb,
    /// LiDAR point map X, Y, Z (divided by 50, zero where no return) and A (hit mask),
    /// `[B, 4, 64, 64]`.
    Xyza,
    /// Raw LiDAR depth in metres (50 = no return), `[B, 1, 64, 64]`.
    Depth,
    /// A CILP image embedding, `[B, 200]` (the projector's input).
    ImageEmbedding,
}

impl InputKind {
    /// Shape of a batch of this input (without the batch dimension).
    pub fn sample_shape(self) -> Vec<usize> {
        match self {
            InputKind::Rgb | InputKind::Xyza => vec![4, 64, 64],
            InputKind::Depth => vec![1, 64, 64],
            InputKind::ImageEmbedding => vec![CILP_EMBEDDING],
        }
    }

    /// Lower-case name (`rgb`, `xyza`, `depth`, `image-embedding`).
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Rgb => "rgb",
            InputKind::Xyza => "xyza",
            InputKind::Depth => "depth",
            InputKind::ImageEmbedding => "image-embedding",
        }
    }
}

impl std::fmt::Display for InputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a zoo model is trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelTask {
    /// Cube/sphere classifier; built with [`build_classifier`].
    Classification,
    /// Contrastive image/LiDAR pretraining ([`crate::Cilp`]); built with [`build_cilp`].
    Contrastive,
    /// Regression of LiDAR embeddings from image embeddings ([`crate::Projector`], MSE).
    Regression,
}

/// Catalogue entry of a zoo model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Unique name, e.g. `late-fusion-strided`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// What the model is trained for.
    pub task: ModelTask,
    /// Inputs the model consumes, in order.
    pub inputs: Vec<InputKind>,
    /// Number of logits for classifiers (2: softmax over cube/sphere, 1: sigmoid, > 0 means
    /// sphere); embedding size (200) for contrastive models; output features (3200) for the
    /// projector.
    pub outputs: usize,
    /// Number of parameters, counted on the initialised module.
    pub parameters: usize,
    /// Downsampling step of the convolution blocks, for models with that option.
    pub downsample: Option<Downsample>,
    /// Fusion operation of intermediate-fusion models.
    pub fusion: Option<FusionMode>,
}

/// A parsed zoo model name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// `late-fusion{,-strided,-strided-conv}`.
    LateFusion(Downsample),
    /// `intermediate-{concat,add,hadamard}{,-strided,-strided-conv}`.
    Intermediate(FusionMode, Downsample),
    /// `early-fusion{,-strided,-strided-conv}`.
    Early(Downsample),
    /// `embedder-rgb` / `embedder-lidar`: a seed `Embedder(4, 2)` on RGB or XYZA alone.
    Single(InputKind),
    /// `nvidia-lidar-classifier`.
    LidarClassifier,
    /// `rgb-to-lidar`.
    RgbToLidar,
    /// `cilp` (NVIDIA loss) / `cilp-clip` (CLIP loss with learnable logit scale).
    Cilp(CilpLoss),
    /// `projector`.
    Projector,
    /// `seed-lidar-classifier`: the seed assessment's `EmbedderStrided(4, 2)` on XYZA.
    SeedLidarClassifier,
    /// `seed-cilp`: the seed assessment's [`crate::SeedCilp`].
    SeedCilp,
    /// `seed-projector`: the seed assessment's projector `200 -> 1000 -> 500 -> 100`.
    SeedProjector,
    /// `seed-rgb-to-lidar`: the seed assessment's chain [`SeedRgbToLidar`].
    SeedRgbToLidar,
}

impl ModelSpec {
    /// Every model of the zoo, in catalogue order.
    pub fn all() -> Vec<ModelSpec> {
        let mut specs = Vec::new();
        for d in Downsample::ALL {
            specs.push(ModelSpec::LateFusion(d));
        }
        for d in Downsample::ALL {
            for m in FusionMode::ALL {
                specs.push(ModelSpec::Intermediate(m, d));
            }
        }
        for d in Downsample::ALL {
            specs.push(ModelSpec::Early(d));
        }
        specs.push(ModelSpec::Single(InputKind::Rgb));
        specs.push(ModelSpec::Single(InputKind::Xyza));
        specs.push(ModelSpec::LidarClassifier);
        specs.push(ModelSpec::RgbToLidar);
        specs.push(ModelSpec::Cilp(CilpLoss::Nvidia));
        specs.push(ModelSpec::Cilp(CilpLoss::Clip));
        specs.push(ModelSpec::Projector);
        specs.push(ModelSpec::SeedLidarClassifier);
        specs.push(ModelSpec::SeedCilp);
        specs.push(ModelSpec::SeedProjector);
        specs.push(ModelSpec::SeedRgbToLidar);
        specs
    }

    /// Parse a zoo name.
    pub fn parse(name: &str) -> Result<ModelSpec, ModelError> {
        ModelSpec::all()
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| ModelError::UnknownModel { name: name.to_string(), valid: model_names().join(", ") })
    }

    /// The zoo name.
    pub fn name(&self) -> String {
        match self {
            ModelSpec::LateFusion(d) => format!("late-fusion{}", d.zoo_suffix()),
            ModelSpec::Intermediate(m, d) => format!("intermediate-{}{}", m.name(), d.zoo_suffix()),
            ModelSpec::Early(d) => format!("early-fusion{}", d.zoo_suffix()),
            ModelSpec::Single(InputKind::Rgb) => "embedder-rgb".into(),
            ModelSpec::Single(_) => "embedder-lidar".into(),
            ModelSpec::LidarClassifier => "nvidia-lidar-classifier".into(),
            ModelSpec::RgbToLidar => "rgb-to-lidar".into(),
            ModelSpec::Cilp(CilpLoss::Nvidia) => "cilp".into(),
            ModelSpec::Cilp(CilpLoss::Clip) => "cilp-clip".into(),
            ModelSpec::Projector => "projector".into(),
            ModelSpec::SeedLidarClassifier => "seed-lidar-classifier".into(),
            ModelSpec::SeedCilp => "seed-cilp".into(),
            ModelSpec::SeedProjector => "seed-projector".into(),
            ModelSpec::SeedRgbToLidar => "seed-rgb-to-lidar".into(),
        }
    }

    fn downsample_text(d: Downsample) -> &'static str {
        match d {
            Downsample::MaxPool => "MaxPool2d(2) downsampling",
            Downsample::StridedExtraConv => "strided-conv (extra learnable stride-2 conv) downsampling",
            Downsample::StridedConv => "stride-2 main convs, no pooling",
        }
    }

    /// One-line description.
    pub fn description(&self) -> String {
        match self {
            ModelSpec::LateFusion(d) => {
                format!("Late fusion: two seed Embedder(4,100) on RGB and XYZA, concat -> 50 -> 2; {}", Self::downsample_text(*d))
            }
            ModelSpec::Intermediate(m, d) => format!(
                "Intermediate fusion ({m}) of per-modality conv 25-50-100 maps, MLP -> 1000 -> 100 -> 2; {}",
                Self::downsample_text(*d)
            ),
            ModelSpec::Early(d) => {
                format!("Early fusion: RGB+XYZA stacked to 8 channels into one seed Embedder(8,2); {}", Self::downsample_text(*d))
            }
            ModelSpec::Single(InputKind::Rgb) => "Unimodal baseline: seed Embedder(4,2) on RGB only".into(),
            ModelSpec::Single(_) => "Unimodal baseline: seed Embedder(4,2) on XYZA only".into(),
            ModelSpec::LidarClassifier => "NVIDIA pretrained LiDAR CNN on raw depth (lidar_cnn.pt), 1 logit (> 0 = sphere)".into(),
            ModelSpec::RgbToLidar => "CILP image encoder -> projector -> LiDAR classifier head, 1 logit (> 0 = sphere)".into(),
            ModelSpec::Cilp(CilpLoss::Nvidia) => "CILP dual encoder (RGB + depth -> 200-d), NVIDIA (cos+1)/2 contrastive loss".into(),
            ModelSpec::Cilp(CilpLoss::Clip) => "CILP dual encoder (RGB + depth -> 200-d), CLIP loss with learnable logit scale".into(),
            ModelSpec::Projector => "Projector 200 -> 1000 -> 500 -> 3200 from CILP image to LiDAR-CNN embeddings (MSE)".into(),
            ModelSpec::SeedLidarClassifier => "Seed assessment: LiDAR classifier EmbedderStrided(4,2) on XYZA (cross-entropy)".into(),
            ModelSpec::SeedCilp => {
                "Seed assessment: CILP, two EmbedderStrided(4,200) (RGB, XYZA), CLIP loss, learnable logit scale never clamped".into()
            }
            ModelSpec::SeedProjector => {
                "Seed assessment: projector 200 -> 1000 -> 500 -> 100 from CILP image fc3 to LiDAR-classifier fc2 features (MSE)".into()
            }
            ModelSpec::SeedRgbToLidar => "Seed assessment: CILP image embedder -> seed projector -> LiDAR classifier fc3, 2 logits".into(),
        }
    }

    /// Task of the model.
    pub fn task(&self) -> ModelTask {
        match self {
            ModelSpec::Cilp(_) | ModelSpec::SeedCilp => ModelTask::Contrastive,
            ModelSpec::Projector | ModelSpec::SeedProjector => ModelTask::Regression,
            _ => ModelTask::Classification,
        }
    }

    /// Inputs of the model.
    pub fn inputs(&self) -> Vec<InputKind> {
        match self {
            ModelSpec::LateFusion(_) | ModelSpec::Intermediate(..) | ModelSpec::Early(_) => {
                vec![InputKind::Rgb, InputKind::Xyza]
            }
            ModelSpec::Single(kind) => vec![*kind],
            ModelSpec::LidarClassifier => vec![InputKind::Depth],
            ModelSpec::RgbToLidar => vec![InputKind::Rgb],
            ModelSpec::Cilp(_) => vec![InputKind::Rgb, InputKind::Depth],
            ModelSpec::Projector | ModelSpec::SeedProjector => vec![InputKind::ImageEmbedding],
            ModelSpec::SeedLidarClassifier => vec![InputKind::Xyza],
            ModelSpec::SeedCilp => vec![InputKind::Rgb, InputKind::Xyza],
            ModelSpec::SeedRgbToLidar => vec![InputKind::Rgb],
        }
    }

    /// Number of outputs (see [`ModelInfo::outputs`]).
    pub fn outputs(&self) -> usize {
        match self {
            ModelSpec::LidarClassifier | ModelSpec::RgbToLidar => 1,
            ModelSpec::Cilp(_) => CILP_EMBEDDING,
            ModelSpec::Projector => LIDAR_EMBEDDING,
            ModelSpec::SeedCilp => SEED_CILP_EMBEDDING,
            ModelSpec::SeedProjector => SEED_LIDAR_FEATURES,
            _ => 2,
        }
    }

    /// Number of parameters, counted on a freshly built module (parameters are initialised
    /// lazily, so this allocates nothing large).
    pub fn num_params(&self) -> usize {
        let device = Device::flex();
        match self {
            ModelSpec::Cilp(loss) => CilpConfig::new().with_loss(*loss).init(&device).num_params(),
            ModelSpec::Projector => ProjectorConfig::new().init(&device).num_params(),
            ModelSpec::SeedCilp => SeedCilpConfig::new().init(&device).num_params(),
            ModelSpec::SeedProjector => seed_projector_config().init(&device).num_params(),
            _ => self.build_classifier_lazy(&device).expect("classification spec").num_params(),
        }
    }

    /// Catalogue entry.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            name: self.name(),
            description: self.description(),
            task: self.task(),
            inputs: self.inputs(),
            outputs: self.outputs(),
            parameters: self.num_params(),
            downsample: match self {
                ModelSpec::LateFusion(d) | ModelSpec::Intermediate(_, d) | ModelSpec::Early(d) => Some(*d),
                ModelSpec::Single(_) => Some(Downsample::MaxPool),
                ModelSpec::SeedLidarClassifier | ModelSpec::SeedCilp | ModelSpec::SeedRgbToLidar => Some(Downsample::StridedExtraConv),
                _ => None,
            },
            fusion: match self {
                ModelSpec::Intermediate(m, _) => Some(*m),
                _ => None,
            },
        }
    }

    /// Build the classifier for a classification spec.
    pub fn build_classifier(&self, device: &Device) -> Result<Classifier, ModelError> {
        Ok(materialize(self.build_classifier_lazy(device)?))
    }

    /// The classifier with its parameters still uninitialised (burn draws them on first use):
    /// for counting parameters without allocating weights or drawing from the RNG.
    fn build_classifier_lazy(&self, device: &Device) -> Result<Classifier, ModelError> {
        Ok(match *self {
            ModelSpec::LateFusion(d) => Classifier::LateFusion(LateFusionConfig::new().with_downsample(d).init(device)),
            ModelSpec::Intermediate(m, d) => Classifier::Intermediate(IntermediateFusionConfig::new(m).with_downsample(d).init(device)),
            ModelSpec::Early(d) => Classifier::Early(EarlyFusionConfig::new().with_downsample(d).init(device)),
            ModelSpec::Single(kind) => Classifier::Single(SingleModality { net: EmbedderConfig::new(4, 2).init(device), input: kind }),
            ModelSpec::LidarClassifier => Classifier::Lidar(LidarClassifier::new(device)),
            ModelSpec::RgbToLidar => Classifier::RgbToLidar(RgbToLidar::new(device)),
            ModelSpec::SeedLidarClassifier => {
                Classifier::Single(SingleModality { net: embedder_strided(4, 2).init(device), input: InputKind::Xyza })
            }
            ModelSpec::SeedRgbToLidar => Classifier::SeedRgbToLidar(SeedRgbToLidar::new(device)),
            ModelSpec::Cilp(_) | ModelSpec::Projector | ModelSpec::SeedCilp | ModelSpec::SeedProjector => {
                return Err(ModelError::NotAClassifier { name: self.name(), task: self.task() });
            }
        })
    }
}

/// Names of every zoo model, in catalogue order.
pub fn model_names() -> Vec<String> {
    ModelSpec::all().iter().map(ModelSpec::name).collect()
}

/// Names of the zoo's classifiers (valid arguments of [`build_classifier`]).
pub fn classifier_names() -> Vec<String> {
    ModelSpec::all().iter().filter(|s| s.task() == ModelTask::Classification).map(ModelSpec::name).collect()
}

/// The full catalogue (parameter counts from the initialised modules; takes a few ms).
pub fn catalog() -> Vec<ModelInfo> {
    ModelSpec::all().iter().map(ModelSpec::info).collect()
}

/// Catalogue entry of one model.
pub fn model_info(name: &str) -> Result<ModelInfo, ModelError> {
    Ok(ModelSpec::parse(name)?.info())
}

/// Build a zoo classifier by name (randomly initialised, on `device`; pass an autodiff device
/// to train it). Unknown names give [`ModelError::UnknownModel`] listing the valid names;
/// contrastive/regression models give [`ModelError::NotAClassifier`].
pub fn build_classifier(name: &str, device: &Device) -> Result<Classifier, ModelError> {
    ModelSpec::parse(name)?.build_classifier(device)
}

/// Draws every parameter's initial values now, in declaration order, and returns the model.
///
/// burn initialises a parameter lazily, on its first use, from the process-wide RNG. Without
/// this, a seed's initial weights would depend on the order in which the forward pass first
/// touches the parameters, and a refactor of a forward (reading a bias before its weight) would
/// change every result of that seed. The zoo's builders call it.
pub fn materialize<M: Module>(model: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
        fn visit_int<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D, Int>>) {
            let _ = param.val();
        }
        fn visit_bool<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D, Bool>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

/// Build a CILP dual encoder by zoo name (`cilp` or `cilp-clip`).
pub fn build_cilp(name: &str, device: &Device) -> Result<crate::Cilp, ModelError> {
    match ModelSpec::parse(name)? {
        ModelSpec::Cilp(loss) => Ok(materialize(CilpConfig::new().with_loss(loss).init(device))),
        ModelSpec::SeedCilp => Err(ModelError::Unsupported(
            "seed-cilp is the seed's own dual encoder (XYZA, unclamped logit scale); build it with build_seed_cilp".into(),
        )),
        other => Err(ModelError::WrongTask { name: other.name(), expected: ModelTask::Contrastive, found: other.task() }),
    }
}

/// Build the seed assessment's CILP dual encoder (`seed-cilp`), every parameter drawn now.
pub fn build_seed_cilp(device: &Device) -> crate::SeedCilp {
    materialize(SeedCilpConfig::new().init(device))
}

/// A seed `Embedder(4, 2)` classifier on a single modality (RGB or XYZA).
#[derive(Module, Debug)]
pub struct SingleModality {
    /// The network.
    pub net: Embedder,
    /// The modality it reads ([`InputKind::Rgb`] or [`InputKind::Xyza`]).
    #[module(skip)]
    pub input: InputKind,
}

/// Batched inputs for [`Classifier::forward`]; fill the ones the model needs
/// ([`Classifier::inputs`]), leave the rest `None`.
#[derive(Debug, Clone, Default)]
pub struct ModelInputs {
    /// `[B, 4, 64, 64]` RGB(A) in `[0, 1]`.
    pub rgb: Option<Tensor<4>>,
    /// `[B, 4, 64, 64]` XYZA.
    pub xyza: Option<Tensor<4>>,
    /// `[B, 1, 64, 64]` raw depth in metres.
    pub depth: Option<Tensor<4>>,
}

impl ModelInputs {
    /// The tensor of one input kind, or [`ModelError::MissingInput`].
    pub fn get(&self, kind: InputKind, model: &str) -> Result<Tensor<4>, ModelError> {
        let t = match kind {
            InputKind::Rgb => self.rgb.as_ref(),
            InputKind::Xyza => self.xyza.as_ref(),
            InputKind::Depth => self.depth.as_ref(),
            InputKind::ImageEmbedding => None,
        };
        t.cloned().ok_or_else(|| ModelError::MissingInput { model: model.to_string(), input: kind })
    }
}

/// Any zoo classifier, as one module type a generic training loop can optimise, save and load.
///
/// Built with [`build_classifier`]. Records (checkpoints) are per variant: load a record into a
/// classifier built from the same zoo name.
#[derive(Module, Debug)]
pub enum Classifier {
    /// [`LateFusion`].
    LateFusion(LateFusion),
    /// [`IntermediateFusion`].
    Intermediate(IntermediateFusion),
    /// [`EarlyFusion`].
    Early(EarlyFusion),
    /// [`SingleModality`].
    Single(SingleModality),
    /// [`LidarClassifier`] (1 logit).
    Lidar(LidarClassifier),
    /// [`RgbToLidar`] (1 logit).
    RgbToLidar(RgbToLidar),
    /// [`SeedRgbToLidar`] (2 logits).
    SeedRgbToLidar(SeedRgbToLidar),
}

impl Classifier {
    /// Short name of the architecture (not the zoo name).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Classifier::LateFusion(_) => "late-fusion",
            Classifier::Intermediate(_) => "intermediate-fusion",
            Classifier::Early(_) => "early-fusion",
            Classifier::Single(_) => "single-modality",
            Classifier::Lidar(_) => "nvidia-lidar-classifier",
            Classifier::RgbToLidar(_) => "rgb-to-lidar",
            Classifier::SeedRgbToLidar(_) => "seed-rgb-to-lidar",
        }
    }

    /// Inputs the classifier reads.
    pub fn inputs(&self) -> Vec<InputKind> {
        match self {
            Classifier::LateFusion(_) | Classifier::Intermediate(_) | Classifier::Early(_) => {
                vec![InputKind::Rgb, InputKind::Xyza]
            }
            Classifier::Single(m) => vec![m.input],
            Classifier::Lidar(_) => vec![InputKind::Depth],
            Classifier::RgbToLidar(_) | Classifier::SeedRgbToLidar(_) => vec![InputKind::Rgb],
        }
    }

    /// Number of logits: 2 (softmax) or 1 (sigmoid, > 0 means sphere).
    pub fn num_outputs(&self) -> usize {
        match self {
            Classifier::Lidar(_) | Classifier::RgbToLidar(_) => 1,
            _ => 2,
        }
    }

    /// Forward pass returning logits `[B, num_outputs]`, or an error naming a missing input.
    pub fn try_forward(&self, inputs: &ModelInputs) -> Result<Tensor<2>, ModelError> {
        let name = self.kind_name();
        Ok(match self {
            Classifier::LateFusion(m) => m.forward(inputs.get(InputKind::Rgb, name)?, inputs.get(InputKind::Xyza, name)?),
            Classifier::Intermediate(m) => m.forward(inputs.get(InputKind::Rgb, name)?, inputs.get(InputKind::Xyza, name)?),
            Classifier::Early(m) => m.forward(inputs.get(InputKind::Rgb, name)?, inputs.get(InputKind::Xyza, name)?),
            Classifier::Single(m) => m.net.forward(inputs.get(m.input, name)?),
            Classifier::Lidar(m) => m.forward(inputs.get(InputKind::Depth, name)?),
            Classifier::RgbToLidar(m) => m.forward(inputs.get(InputKind::Rgb, name)?),
            Classifier::SeedRgbToLidar(m) => m.forward(inputs.get(InputKind::Rgb, name)?),
        })
    }

    /// Forward pass returning logits `[B, num_outputs]`.
    ///
    /// # Panics
    /// If an input the model needs ([`Classifier::inputs`]) is `None`.
    pub fn forward(&self, inputs: &ModelInputs) -> Tensor<2> {
        self.try_forward(inputs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The loss to train this classifier with ([`crate::loss::classification_loss`]: BCE on
    /// one logit, cross-entropy on two). Output `[1]`.
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        crate::loss::classification_loss(logits, targets)
    }
}

/// One prediction read from a row of logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predicted class (0 = cube, 1 = sphere).
    pub class: usize,
    /// Probability of the predicted class.
    pub probability: f32,
    /// Probability of class 1 (sphere).
    pub sphere_probability: f32,
}

/// Class-1 (sphere) probability of each row of logits: `sigmoid` of a single logit, `softmax`
/// column 1 of two. `[B, 1 | 2] -> [B]`.
pub fn sphere_probability(logits: Tensor<2>) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    let p = if classes == 1 { sigmoid(logits) } else { softmax(logits, 1).slice([0..batch, 1..2]) };
    p.reshape([batch])
}

/// Predicted class of each row of logits, on the device (for accuracy counting without a
/// read-back): `logit > 0` for one logit, `argmax` for several. `[B, C] -> [B]`.
pub fn predicted_classes(logits: Tensor<2>) -> Tensor<1, Int> {
    let [batch, classes] = logits.dims();
    if classes == 1 { logits.greater_elem(0.0).int().reshape([batch]) } else { logits.argmax(1).reshape([batch]) }
}

/// Turn logits (`[B, 1]` sigmoid or `[B, C]` softmax) into predicted classes and the
/// probability of each predicted class (reads the tensor back to the host).
pub fn predict(logits: Tensor<2>) -> Vec<Prediction> {
    let [batch, classes] = logits.dims();
    let probs: Vec<f32> = if classes == 1 {
        sigmoid(logits).into_data().try_into_vec_as::<f32>().expect("f32 data")
    } else {
        softmax(logits, 1).into_data().try_into_vec_as::<f32>().expect("f32 data")
    };
    (0..batch)
        .map(|i| {
            if classes == 1 {
                let p = probs[i];
                let class = usize::from(p > 0.5);
                Prediction { class, probability: if class == 1 { p } else { 1.0 - p }, sphere_probability: p }
            } else {
                let row = &probs[i * classes..(i + 1) * classes];
                let (class, &probability) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).expect("non-empty row");
                Prediction { class, probability, sphere_probability: row[1] }
            }
        })
        .collect()
}
