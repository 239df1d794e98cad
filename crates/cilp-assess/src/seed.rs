//! The seed's own assessment (REFERENCE §7, notebook 04 of the original study), as
//! `cilp assess --variant seed`: four stages, each an ordinary resumable run in `OUT`.
//!
//! | stage | run | what |
//! |---|---|---|
//! | 1 | `seed-lidar-classifier/` | `EmbedderStrided(4, 2)` on XYZA (seed convention), cross-entropy, Adam 1e-4, 5 epochs; train accuracy per epoch, and a validation the original never ran |
//! | 2 | `seed-cilp/` | two `EmbedderStrided(4, 200)` + a logit scale never clamped, CLIP loss on L2-normalised fc3 outputs, Adam 1e-4, 10 epochs; validation loss and retrieval per epoch |
//! | 3 | `seed-projector/` | `200 -> 1000 -> 500 -> 100`, MSE from the CILP image embedder's un-normalised fc3 output to the LiDAR classifier's `ReLU(fc2)`, Adam 5e-4, 15 epochs (on cached embeddings: both are frozen, in eval mode) |
//! | 4 | `seed-rgb-to-lidar/` | the chain image embedder -> projector -> LiDAR `fc3`, nothing fine-tuned: its epoch-0 validation (a run of 0 epochs, so `cilp predict --model seed-rgb-to-lidar --checkpoint OUT/seed-rgb-to-lidar` works) |
//!
//! Every loss this variant reports (training and validation) is the original's: the **mean of
//! the per-batch means** (a short last batch counts like a full one); the training rows also
//! keep the loop's sample-weighted mean as `train/loss`, the original's is `train/loss_batch_mean`.
//!
//! There are no pass thresholds in the original: the summary puts its published numbers (real
//! data) and its code's numbers on cilp's default generated data beside ours.
//!
//! Differences from the original that cannot be removed: PyTorch's random stream is not
//! reproduced (each stage seeds its own initialisation: seed, seed + 1, seed + 2 for stages
//! 1-3, and the loop shuffles each epoch from (seed, epoch)), so a faithful port lands near the
//! original's numbers within seed spread, not on them.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cilp_data::batch::Batches;
use cilp_data::dataset::Dataset;
use cilp_data::tensorize::XyzaConvention;
use cilp_kernels::adam::adam_optimizer_with_epsilon;
use cilp_models::loss::{cross_entropy, mse};
use cilp_models::seed_assess::{SEED_CILP_EMBEDDING, SEED_LIDAR_FEATURES, seed_projector_config};
use cilp_models::{Classifier, Embedder, InputKind, Projector, SeedCilp, SeedRgbToLidar, build_classifier, build_seed_cilp};
use cilp_track::names;
use cilp_train::batching::make_batch;
use cilp_train::config::{DataConfig, SplitConfig};
use cilp_train::data::PreparedData;
use cilp_train::device::{DeviceSpec, init_seeded, train_device};
use cilp_train::error::{Result, TrainError};
use cilp_train::fit::{EpochReport, FitSettings, RunInfo, Score, StepOutput, TrainStep, Validation, fit};
use serde::{Deserialize, Serialize};

use super::config::StageRunConfig;
use super::probe::{KnnProbe, PROBE_K, knn_probe};
use super::retrieval::{CrossModalRetrieval, retrieval_metrics};
use super::stages::{EVAL_CHUNK, gather_rows, open_stage, rgb_batch, say, to_vec, trains};
use super::{AssessOptions, AssessPreset, StageConfig, open_assessment, write_file};

/// Stage run names of the seed variant.
pub const SEED_LIDAR_RUN: &str = "seed-lidar-classifier";
pub const SEED_CILP_RUN: &str = "seed-cilp";
pub const SEED_PROJECTOR_RUN: &str = "seed-projector";
pub const SEED_CHAIN_RUN: &str = "seed-rgb-to-lidar";

/// The training rows' extra metric holding the original's epoch loss, the mean of per-batch means.
pub const LOSS_BATCH_MEAN: &str = "loss_batch_mean";
/// Extra metric of the chain's validation row: accuracy with the ReLU `fc3` saw in training.
pub const ACCURACY_WITH_RELU: &str = "accuracy_with_relu";

/// The original's published numbers (real data) and its own code's on cilp's default generated
/// data (REFERENCE §7; 2 x 9,999 pairs, seed 51, PyTorch on 2 CPU cores, 2,987 s).
pub mod reference {
    /// Real data: the seed README's headline numbers.
    pub const REAL_CILP_VAL_LOSS: f64 = 0.16092;
    pub const REAL_PROJECTOR_MSE: f64 = 0.75988;
    pub const REAL_ACCURACY: f64 = 631.0 / 640.0;
    pub const REAL_LIDAR_TRAIN_ACCURACY: [f64; 5] = [0.9264, 0.9964, 0.9980, 0.9983, 0.9967];
    pub const REAL_CILP_VAL_LOSSES: [f64; 10] = [0.5127, 0.3789, 0.3002, 0.2621, 0.2304, 0.2331, 0.1897, 0.1770, 0.1642, 0.16092];
    pub const REAL_PROJECTOR_MSES: [f64; 15] =
        [2.0463, 1.0342, 0.9587, 0.9289, 0.8912, 0.8661, 0.8439, 0.8324, 0.8148, 0.8072, 0.7988, 0.7879, 0.7740, 0.7697, 0.75988];
    /// The original's code on cilp's default generated data.
    pub const GEN_CILP_VAL_LOSS: f64 = 0.0983;
    pub const GEN_PROJECTOR_MSE: f64 = 0.7137;
    pub const GEN_PROJECTOR_VAL_MSE: f64 = 0.8312;
    pub const GEN_ACCURACY: f64 = 630.0 / 640.0;
    pub const GEN_LIDAR_TRAIN_ACCURACY: [f64; 5] = [0.9306, 0.9953, 0.9976, 0.9979, 0.9968];
    pub const GEN_CILP_VAL_LOSSES: [f64; 10] = [0.3497, 0.2674, 0.2038, 0.2069, 0.1647, 0.1336, 0.1298, 0.1131, 0.1114, 0.0983];
    pub const GEN_PROJECTOR_MSES: [f64; 15] =
        [2.0963, 1.0728, 0.9702, 0.9113, 0.8700, 0.8474, 0.8225, 0.7979, 0.7838, 0.7710, 0.7575, 0.7483, 0.7379, 0.7281, 0.7137];
}

/// Everything that determines a seed assessment (written to `OUT/assess.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAssessConfig {
    /// Always `"seed"` (tells this config from NVIDIA's in `assess.toml`).
    pub variant: String,
    pub preset: AssessPreset,
    /// The split is the original's: per class the first 9,679 of 9,999 pairs train
    /// ([`SplitConfig::Nvidia`], which keeps that proportion on a subset); XYZA in the seed convention.
    pub data: DataConfig,
    pub batch_size: usize,
    pub seed: u64,
    pub device: DeviceSpec,
    /// Stage 1: the LiDAR classifier.
    pub lidar: StageConfig,
    /// Stage 2: CILP.
    pub cilp: StageConfig,
    /// Stage 3: the projector.
    pub projector: StageConfig,
    /// Adam's epsilon in every stage: PyTorch's 1e-8, as the original (burn's default is 1e-5,
    /// which shrinks the steps of weights with small gradients: about a third of CILP's fc1
    /// weights). A saved config without it was trained with burn's 1e-5.
    #[serde(default = "burn_epsilon")]
    pub adam_epsilon: f64,
}

fn burn_epsilon() -> f64 {
    cilp_kernels::adam::BURN_EPSILON
}

impl SeedAssessConfig {
    /// The resolved config of a preset on a dataset.
    ///
    /// - `full`: the original's sizes: all pairs, 19,358 train / 640 validation on the full
    ///   set, 5 / 10 / 15 epochs at 1e-4 / 1e-4 / 5e-4 (about an hour on 2 cores).
    /// - `quick`: 2,000 pairs per class (1,936 train / 64 validation per class by the same
    ///   proportion), the original's rates, 5 / 5 / 15 epochs: about 7 minutes on 2 cores (the
    ///   projector trains on cached embeddings, so its 15 epochs cost seconds).
    ///   Measured on the default generated data (2 cores, Intel Xeon AVX-512, release build,
    ///   398 s): the LiDAR classifier reaches the original's 99.8% train accuracy (99.2%
    ///   validation); CILP leaves the ln 32 plateau in epoch 2 and ends at validation loss 0.417
    ///   (the original: 0.098 after 6,050 steps; here 605); projector training MSE 0.82 (the
    ///   original's range), validation 1.13; the chain reaches 80.5%. The first quick preset
    ///   (1,000 pairs, 3 / 4 epochs) sat on the plateau for 3 of its 4 CILP epochs: 73%.
    pub fn preset(preset: AssessPreset, data_dir: impl Into<std::path::PathBuf>) -> SeedAssessConfig {
        let (limit, lidar, cilp) = match preset {
            AssessPreset::Quick => (Some(2000), 5, 5),
            AssessPreset::Full => (None, 5, 10),
        };
        SeedAssessConfig {
            variant: "seed".into(),
            preset,
            data: DataConfig {
                dir: data_dir.into(),
                limit_per_class: limit,
                split: SplitConfig::Nvidia,
                split_seed: None,
                xyza: XyzaConvention::Seed,
            },
            batch_size: 32,
            seed: cilp_data::split::DEFAULT_SEED,
            device: DeviceSpec::Cpu,
            lidar: StageConfig::constant(lidar, 1e-4),
            cilp: StageConfig::constant(cilp, 1e-4),
            projector: StageConfig::constant(15, 5e-4),
            adam_epsilon: cilp_kernels::adam::PYTORCH_EPSILON,
        }
    }

    /// Checks values that would make the assessment meaningless.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.batch_size < 2 {
            return Err("batch_size must be at least 2 (the contrastive loss compares pairs in a batch)".into());
        }
        for (name, s) in [("lidar", self.lidar), ("cilp", self.cilp), ("projector", self.projector)] {
            if s.epochs == 0 {
                return Err(format!("the seed variant's {name} stage needs at least 1 epoch"));
            }
            if !(s.lr.is_finite() && s.lr > 0.0) {
                return Err(format!("{name} lr must be a positive number, got {}", s.lr));
            }
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0) {
            return Err(format!("adam_epsilon must be a positive number, got {}", self.adam_epsilon));
        }
        Ok(())
    }

    fn run_config(&self, model: &str, stage: StageConfig) -> StageRunConfig {
        StageRunConfig {
            model: model.into(),
            data: self.data.clone(),
            epochs: stage.epochs,
            batch_size: self.batch_size,
            lr: stage.lr,
            lr_schedule: stage.schedule,
            seed: self.seed,
            device: self.device,
            drop_last: false,
            loss: None,
            adam_epsilon: Some(self.adam_epsilon),
        }
    }

    fn settings(&self, stage: StageConfig, opts: &AssessOptions) -> FitSettings {
        FitSettings {
            epochs: stage.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            // The original's loaders keep the short last batch (19,358 = 604 x 32 + 30).
            drop_last: false,
            lr: stage.lr,
            schedule: stage.schedule,
            progress: true,
            quiet: opts.quiet,
            hooks: opts.hooks,
            control: opts.control.clone(),
            commit_every: cilp_train::fit::commit_every(),
        }
    }

    fn info<'a>(&self, name: &'a str, kind: &'a str, model: &'a str) -> Result<RunInfo<'a>> {
        let parameters = cilp_models::model_info(model)?.parameters as u64;
        Ok(RunInfo { name, kind, model, parameters, device: self.device.to_string(), seed: self.seed })
    }
}

/// The mean of per-batch means, tracked over an epoch's training steps.
#[derive(Default)]
struct BatchMeans {
    sum: f64,
    count: usize,
}

impl BatchMeans {
    fn add(&mut self, loss: &Tensor<1>) {
        let v: f32 = loss.clone().into_scalar();
        self.sum += v as f64;
        self.count += 1;
    }

    /// The epoch's value as an extra training column, and a reset for the next epoch.
    fn take(&mut self) -> (String, f64) {
        let v = self.sum / self.count.max(1) as f64;
        *self = BatchMeans::default();
        (LOSS_BATCH_MEAN.to_string(), v)
    }
}

/// Validation batches: the validation set in order (the original does not shuffle it, so each
/// batch holds one class), the short last batch kept.
fn val_batches(cfg: &SeedAssessConfig, val: &[usize]) -> Batches {
    Batches::new(val, cfg.batch_size, None, 0, false)
}

fn xyza_batch(ds: &Dataset, idx: &[usize], conv: XyzaConvention, device: &Device) -> Tensor<4> {
    make_batch(ds, idx, &[InputKind::Xyza], conv, device).0.xyza.expect("xyza")
}

fn single(model: &Classifier) -> &Embedder {
    match model {
        Classifier::Single(m) => &m.net,
        _ => unreachable!("the seed LiDAR classifier is a single-modality classifier"),
    }
}

fn correct_of(logits: Tensor<2>, targets: &[i64]) -> (usize, Vec<bool>) {
    let [b, _] = logits.dims();
    let pred = logits.argmax(1).reshape([b]).into_data().try_into_vec_as::<i64>().expect("i64 classes");
    let hits: Vec<bool> = pred.iter().zip(targets).map(|(p, t)| p == t).collect();
    (hits.iter().filter(|&&h| h).count(), hits)
}

fn targets_of(ds: &Dataset, idx: &[usize]) -> Vec<i64> {
    idx.iter().map(|&i| ds.sample(i).class as i64).collect()
}

fn int_tensor(v: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

// ---------------------------------------------------------------- stage 1: LiDAR classifier

struct LidarStep<'a> {
    ds: &'a Dataset,
    train: &'a [usize],
    vb: Batches,
    xyza: XyzaConvention,
    device: Device,
    eval: Device,
    means: BatchMeans,
}

impl TrainStep for LidarStep<'_> {
    type Model = Classifier;

    fn train_indices(&self) -> &[usize] {
        self.train
    }

    fn step(&mut self, model: &Classifier, batch: &[usize]) -> Option<StepOutput> {
        let (inputs, tt, targets) = make_batch(self.ds, batch, &[InputKind::Xyza], self.xyza, &self.device);
        let logits = model.forward(&inputs); // [batch, 2]
        let (correct, _) = correct_of(logits.clone().detach(), &targets);
        let loss = cross_entropy(logits, tt);
        self.means.add(&loss);
        Some(StepOutput { loss, correct: Some(correct) })
    }

    fn train_extra(&mut self, _model: &Classifier) -> Vec<(String, f64)> {
        vec![self.means.take()]
    }

    fn validate(&mut self, model: &Classifier, _epoch: usize) -> Result<Validation> {
        let net = single(model);
        let (mut loss, mut correct, mut n, mut batches) = (0f64, 0usize, 0usize, 0usize);
        for batch in self.vb.iter() {
            let t = targets_of(self.ds, batch);
            let logits = net.forward(xyza_batch(self.ds, batch, self.xyza, &self.eval));
            correct += correct_of(logits.clone(), &t).0;
            let l: f32 = cross_entropy(logits, int_tensor(&t, &self.eval)).into_scalar();
            loss += l as f64;
            batches += 1;
            n += batch.len();
        }
        let mut v = Validation::by_loss(loss / batches.max(1) as f64, Some(correct as f64 / n.max(1) as f64), n);
        v.score = Score::Last; // the original uses the model after its last epoch
        Ok(v)
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        Some(format!(
            "{SEED_LIDAR_RUN}: epoch {}/{}  train loss {:.4} acc {:.2}%  val loss {:.4} acc {:.2}%  {:.1}s",
            r.epoch,
            r.epochs,
            r.train_loss,
            100.0 * r.train_accuracy.unwrap_or(f64::NAN),
            r.val.loss,
            100.0 * r.val.accuracy.unwrap_or(f64::NAN),
            r.seconds
        ))
    }
}

// ---------------------------------------------------------------- stage 2: CILP

struct CilpStep<'a> {
    ds: &'a Dataset,
    train: &'a [usize],
    vb: Batches,
    xyza: XyzaConvention,
    device: Device,
    eval: Device,
    means: BatchMeans,
    scale: f64,
    retrieval: Option<CrossModalRetrieval>,
}

/// Un-normalised fc3 outputs (`[n, 200]` row-major) of the CILP image and LiDAR encoders on
/// `indices`.
fn cilp_embeddings(m: &SeedCilp, ds: &Dataset, indices: &[usize], xyza: XyzaConvention, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let (mut img, mut lid) = (Vec::new(), Vec::new());
    for chunk in indices.chunks(EVAL_CHUNK) {
        img.extend(to_vec(m.image.forward(rgb_batch(ds, chunk, device))));
        lid.extend(to_vec(m.lidar.forward(xyza_batch(ds, chunk, xyza, device))));
    }
    (img, lid)
}

/// The seed CILP's validation: the loss of each validation batch (mean of the batch means),
/// and retrieval over all validation pairs.
fn cilp_validate(m: &SeedCilp, ds: &Dataset, vb: &Batches, xyza: XyzaConvention, eval: &Device) -> (f64, CrossModalRetrieval) {
    let order = vb.order();
    let (img, lid) = cilp_embeddings(m, ds, order, xyza, eval);
    let d = SEED_CILP_EMBEDDING;
    let (mut loss, mut batches, mut start) = (0f64, 0usize, 0usize);
    for batch in vb.iter() {
        let rows: Vec<usize> = (start..start + batch.len()).collect();
        start += batch.len();
        if batch.len() < 2 {
            continue; // a contrastive loss needs two pairs
        }
        let l: f32 = m.loss(gather_rows(&img, d, &rows, eval), gather_rows(&lid, d, &rows, eval)).into_scalar();
        loss += l as f64;
        batches += 1;
    }
    (loss / batches.max(1) as f64, retrieval_metrics(&img, &lid, d, eval))
}

impl TrainStep for CilpStep<'_> {
    type Model = SeedCilp;

    fn train_indices(&self) -> &[usize] {
        self.train
    }

    fn step(&mut self, model: &SeedCilp, batch: &[usize]) -> Option<StepOutput> {
        if batch.len() < 2 {
            return None; // a contrastive loss needs two pairs
        }
        let (inputs, _, _) = make_batch(self.ds, batch, &[InputKind::Rgb, InputKind::Xyza], self.xyza, &self.device);
        let (img, lid) = model.forward(inputs.rgb.expect("rgb"), inputs.xyza.expect("xyza"));
        let loss = model.loss(img, lid);
        self.means.add(&loss);
        Some(StepOutput { loss, correct: None })
    }

    // No `after_step`: the seed never clamps its logit scale.

    fn train_extra(&mut self, model: &SeedCilp) -> Vec<(String, f64)> {
        self.scale = (model.clone().valid().logit_scale_value() as f64).exp();
        vec![self.means.take(), ("logit_scale".into(), self.scale)]
    }

    fn validate(&mut self, model: &SeedCilp, _epoch: usize) -> Result<Validation> {
        let (loss, retrieval) = cilp_validate(model, self.ds, &self.vb, self.xyza, &self.eval);
        self.retrieval = Some(retrieval);
        let n = self.vb.order().len();
        Ok(Validation { loss, accuracy: None, samples: n, extra: retrieval.extra(), score: Score::Last })
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        let rt = self.retrieval?;
        Some(format!(
            "{SEED_CILP_RUN}: epoch {}/{}  train loss {:.4}  val loss {:.4}  R@1 {:.3}/{:.3}  logit scale {:.2}  {:.1}s",
            r.epoch, r.epochs, r.train_loss, r.val.loss, rt.rgb_to_lidar.r_at_1, rt.lidar_to_rgb.r_at_1, self.scale, r.seconds
        ))
    }
}

// ---------------------------------------------------------------- stage 3: projector

struct ProjectorStep {
    x_train: Vec<f32>,
    y_train: Vec<f32>,
    x_val: Vec<f32>,
    y_val: Vec<f32>,
    val_labels: Vec<i64>,
    positions: Vec<usize>,
    batch_size: usize,
    fc3: Linear,
    device: Device,
    eval: Device,
    means: BatchMeans,
}

impl TrainStep for ProjectorStep {
    type Model = Projector;

    fn train_indices(&self) -> &[usize] {
        &self.positions
    }

    fn step(&mut self, model: &Projector, rows: &[usize]) -> Option<StepOutput> {
        let x = gather_rows(&self.x_train, SEED_CILP_EMBEDDING, rows, &self.device);
        let y = gather_rows(&self.y_train, SEED_LIDAR_FEATURES, rows, &self.device);
        let loss = mse(model.forward(x), y);
        self.means.add(&loss);
        Some(StepOutput { loss, correct: None })
    }

    fn train_extra(&mut self, _model: &Projector) -> Vec<(String, f64)> {
        vec![self.means.take()]
    }

    /// Validation MSE in the validation order's batches (mean of the batch means), and the
    /// chain's accuracy through `fc3` (no ReLU, as the seed's stage 4).
    fn validate(&mut self, model: &Projector, _epoch: usize) -> Result<Validation> {
        let n = self.val_labels.len();
        let (mut loss, mut batches, mut correct) = (0f64, 0usize, 0usize);
        let all: Vec<usize> = (0..n).collect();
        for rows in all.chunks(self.batch_size) {
            let x = gather_rows(&self.x_val, SEED_CILP_EMBEDDING, rows, &self.eval);
            let y = gather_rows(&self.y_val, SEED_LIDAR_FEATURES, rows, &self.eval);
            let p = model.forward(x);
            let l: f32 = mse(p.clone(), y).into_scalar();
            loss += l as f64;
            batches += 1;
            let t: Vec<i64> = rows.iter().map(|&r| self.val_labels[r]).collect();
            correct += correct_of(self.fc3.forward(p), &t).0;
        }
        let mut v = Validation::by_loss(loss / batches.max(1) as f64, Some(correct as f64 / n.max(1) as f64), n);
        v.score = Score::Last;
        Ok(v)
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        Some(format!(
            "{SEED_PROJECTOR_RUN}: epoch {}/{}  train mse {:.4}  val mse {:.4}  chain accuracy {:.2}%  {:.1}s",
            r.epoch,
            r.epochs,
            r.train_loss,
            r.val.loss,
            100.0 * r.val.accuracy.unwrap_or(f64::NAN),
            r.seconds
        ))
    }
}

// ---------------------------------------------------------------- stage 4: the chain

/// What stage 4 measured.
#[derive(Debug, Clone, Default)]
struct ChainEval {
    loss: f64,
    correct: usize,
    samples: usize,
    batch_accuracies: Vec<f64>,
    accuracy_with_relu: f64,
}

fn chain_eval(m: &SeedRgbToLidar, ds: &Dataset, vb: &Batches, eval: &Device) -> ChainEval {
    let mut e = ChainEval::default();
    let (mut relu_correct, mut batches) = (0usize, 0usize);
    for batch in vb.iter() {
        let t = targets_of(ds, batch);
        let p = m.projected(rgb_batch(ds, batch, eval)); // [batch, 100]
        let logits = m.fc3.forward(p.clone()); // as the seed: no ReLU before fc3
        let (c, _) = correct_of(logits.clone(), &t);
        relu_correct += correct_of(m.fc3.forward(burn::tensor::activation::relu(p)), &t).0;
        let l: f32 = cross_entropy(logits, int_tensor(&t, eval)).into_scalar();
        e.loss += l as f64;
        batches += 1;
        e.correct += c;
        e.samples += batch.len();
        e.batch_accuracies.push(c as f64 / batch.len() as f64);
    }
    e.loss /= batches.max(1) as f64;
    e.accuracy_with_relu = relu_correct as f64 / e.samples.max(1) as f64;
    e
}

struct ChainStep<'a> {
    ds: &'a Dataset,
    vb: Batches,
    eval: Device,
    last: Option<ChainEval>,
}

impl TrainStep for ChainStep<'_> {
    type Model = Classifier;

    fn train_indices(&self) -> &[usize] {
        &[] // nothing is fine-tuned
    }

    fn step(&mut self, _model: &Classifier, _batch: &[usize]) -> Option<StepOutput> {
        None
    }

    fn validate(&mut self, model: &Classifier, _epoch: usize) -> Result<Validation> {
        let Classifier::SeedRgbToLidar(m) = model else { unreachable!("seed-rgb-to-lidar") };
        let e = chain_eval(m, self.ds, &self.vb, &self.eval);
        let mut v = Validation::by_loss(e.loss, Some(e.correct as f64 / e.samples.max(1) as f64), e.samples);
        let min = e.batch_accuracies.iter().copied().fold(f64::INFINITY, f64::min);
        v.extra = vec![(ACCURACY_WITH_RELU.into(), e.accuracy_with_relu), ("min_batch_accuracy".into(), min)];
        v.score = Score::Last;
        self.last = Some(e);
        Ok(v)
    }

    fn validates_before_training(&self) -> bool {
        true // the assembled chain is the model: its epoch 0 is the whole stage
    }

    fn describe(&self, _r: &EpochReport) -> Option<String> {
        None
    }
}

// ---------------------------------------------------------------- the assessment

/// The seed assessment's `OUT/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedAssessSummary {
    /// `"assess"`: marks this `summary.json` as a study summary (`OUT` is a group of runs).
    pub study: String,
    /// `"seed"`.
    pub variant: String,
    pub title: String,
    /// How every reported epoch loss is averaged.
    pub loss_mean: String,
    /// Stage 1: training accuracy per epoch (what the original printed).
    pub lidar_train_accuracy_per_epoch: Vec<f64>,
    /// Stage 1: validation accuracy per epoch (the original never validated it).
    pub lidar_val_accuracy_per_epoch: Vec<f64>,
    /// Stage 2: validation loss per epoch; the last is the headline.
    pub cilp_val_loss_per_epoch: Vec<f64>,
    pub cilp_val_loss: f64,
    /// Stage 2: the last epoch's training loss.
    pub cilp_train_loss: f64,
    /// `exp(s)` after each CILP epoch (never clamped).
    pub logit_scale_per_epoch: Vec<f64>,
    /// Retrieval over all validation pairs with the final CILP encoders (not in the original).
    pub retrieval: CrossModalRetrieval,
    /// The class information in the CILP image embedding the projector reads: a k-NN probe of
    /// its validation embeddings against its training ones (not in the original; absent from
    /// summaries written before it existed).
    #[serde(default)]
    pub image_embedding_probe: Option<KnnProbe>,
    /// Stage 3: training MSE per epoch; the last is the original's "projector MSE".
    pub projector_train_mse_per_epoch: Vec<f64>,
    pub projector_mse: f64,
    /// Stage 3: validation MSE per epoch and the last (not in the original).
    pub projector_val_mse_per_epoch: Vec<f64>,
    pub projector_val_mse: f64,
    /// Stage 4: accuracy of the chain over all validation samples.
    pub classifier_accuracy: f64,
    pub classifier_correct: usize,
    /// Stage 4: accuracy of each validation batch, in order (each holds one class).
    pub classifier_batch_accuracies: Vec<f64>,
    /// Stage 4 with the ReLU fc3 saw in training (not in the original).
    pub classifier_accuracy_with_relu: f64,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Stage run directories, relative to `OUT`.
    pub runs: Vec<String>,
    pub wall_seconds: f64,
    pub config: SeedAssessConfig,
}

/// One row of the comparison table: the original on real data, the original's code on cilp's
/// generated data, this run (`None`: not computed there).
type Row = (String, Option<f64>, Option<f64>, Option<f64>);

impl SeedAssessSummary {
    /// The comparison rows (accuracies as fractions).
    pub fn rows(&self) -> Vec<Row> {
        use reference::*;
        let last = |v: &[f64]| v.last().copied();
        let min_batch = self.classifier_batch_accuracies.iter().copied().fold(f64::INFINITY, f64::min);
        vec![
            (
                "LiDAR classifier train accuracy, last epoch".into(),
                last(&REAL_LIDAR_TRAIN_ACCURACY),
                last(&GEN_LIDAR_TRAIN_ACCURACY),
                last(&self.lidar_train_accuracy_per_epoch),
            ),
            ("LiDAR classifier validation accuracy, last epoch".into(), None, None, last(&self.lidar_val_accuracy_per_epoch)),
            ("CILP validation loss, last epoch".into(), Some(REAL_CILP_VAL_LOSS), Some(GEN_CILP_VAL_LOSS), Some(self.cilp_val_loss)),
            ("projector MSE (last training epoch)".into(), Some(REAL_PROJECTOR_MSE), Some(GEN_PROJECTOR_MSE), Some(self.projector_mse)),
            ("projector validation MSE".into(), None, Some(GEN_PROJECTOR_VAL_MSE), Some(self.projector_val_mse)),
            ("RGB->LiDAR accuracy, all validation samples".into(), Some(REAL_ACCURACY), Some(GEN_ACCURACY), Some(self.classifier_accuracy)),
            ("RGB->LiDAR accuracy, lowest validation batch".into(), None, None, min_batch.is_finite().then_some(min_batch)),
            ("RGB->LiDAR accuracy with ReLU before fc3".into(), None, None, Some(self.classifier_accuracy_with_relu)),
            (
                format!("CILP image embedding {}-NN class probe accuracy", self.image_embedding_probe.as_ref().map_or(PROBE_K, |p| p.k)),
                None,
                None,
                self.image_embedding_probe.as_ref().map(|p| p.accuracy),
            ),
            ("CILP retrieval RGB->LiDAR R@1 (all validation pairs)".into(), None, None, Some(self.retrieval.rgb_to_lidar.r_at_1)),
            ("CILP retrieval LiDAR->RGB R@1 (all validation pairs)".into(), None, None, Some(self.retrieval.lidar_to_rgb.r_at_1)),
        ]
    }

    /// The table `cilp assess --variant seed` prints (Markdown).
    pub fn table(&self) -> String {
        let cell = |name: &str, v: Option<f64>| match v {
            None => "-".to_string(),
            Some(v) if name.contains("accuracy") => format!("{:.2}%", 100.0 * v),
            Some(v) => format!("{v:.4}"),
        };
        let mut s = String::from("| metric | original, real data | original code, generated data | cilp |\n|---|---|---|---|\n");
        for (m, a, b, c) in self.rows() {
            s.push_str(&format!("| {m} | {} | {} | {} |\n", cell(&m, a), cell(&m, b), cell(&m, c)));
        }
        s
    }
}

/// What [`run_seed_assessment`] returns.
#[derive(Debug, Clone)]
pub struct SeedAssessOutcome {
    pub summary: SeedAssessSummary,
    pub out: std::path::PathBuf,
}

fn history_of(
    rows: &[cilp_track::metrics::EpochMetrics],
    split: &str,
    f: impl Fn(&cilp_track::metrics::EpochMetrics) -> Option<f64>,
) -> Vec<f64> {
    rows.iter().filter(|r| r.split == split && r.epoch > 0).map(|r| f(r).unwrap_or(f64::NAN)).collect()
}

fn batch_mean(r: &cilp_track::metrics::EpochMetrics) -> Option<f64> {
    r.extra.get(LOSS_BATCH_MEAN).copied()
}

/// Runs the seed's assessment into `opts.out` and writes `summary.json` and `study_table.json`.
pub fn run_seed_assessment(cfg: &SeedAssessConfig, opts: &AssessOptions) -> Result<SeedAssessOutcome> {
    cfg.validate().map_err(TrainError::Config)?;
    let t = Instant::now();
    let (_lock, unchanged) = open_assessment(cfg, opts)?;
    let (data, report) = cilp_train::data::prepare(&cfg.data, cfg.seed)?;
    let PreparedData { dataset: ds, split } = &data;
    if split.train.len() < cfg.batch_size || split.val.len() < 2 {
        return Err(TrainError::Config(format!(
            "too little data: {} training and {} validation samples (need a full batch of {} and 2 validation samples); use more --limit-per-class",
            split.train.len(),
            split.val.len(),
            cfg.batch_size
        )));
    }
    say(
        opts.quiet,
        format!(
            "assess (seed variant): {} pairs ({} train / {} val), XYZA {}, device {}",
            report.total_pairs(),
            split.train.len(),
            split.val.len(),
            cfg.data.xyza,
            cfg.device
        ),
    );
    let device = train_device(cfg.device)?;
    let eval = device.clone().without_autodiff();
    let vb = val_batches(cfg, &split.val);

    // ---- stage 1: the LiDAR classifier
    let rc = cfg.run_config("seed-lidar-classifier", cfg.lidar);
    let hp = [names::VAL_LOSS, names::VAL_ACCURACY, names::TRAIN_ACCURACY];
    let open = open_stage(opts, SEED_LIDAR_RUN, &rc, cfg.lidar.epochs, true, &hp)?;
    let lidar_trained = trains(&open, cfg.lidar.epochs);
    let model = init_seeded(&device, cfg.seed, |d| Ok(build_classifier("seed-lidar-classifier", d)?))?;
    let mut step = LidarStep {
        ds,
        train: &split.train,
        vb: val_batches(cfg, &split.val),
        xyza: cfg.data.xyza,
        device: device.clone(),
        eval: eval.clone(),
        means: BatchMeans::default(),
    };
    let info = cfg.info(SEED_LIDAR_RUN, "classifier", "seed-lidar-classifier")?;
    let lidar = fit(open, &info, &cfg.settings(cfg.lidar, opts), &mut step, model, adam_optimizer_with_epsilon(cfg.adam_epsilon))?;
    let lidar_train_acc = history_of(&lidar.history, names::TRAIN, |r| r.accuracy);
    let lidar_val_acc = history_of(&lidar.history, names::VAL, |r| r.accuracy);
    let lidar_net = single(&lidar.model.clone().valid()).clone();
    drop(lidar.run);

    // ---- stage 2: CILP
    let rc = cfg.run_config("seed-cilp", cfg.cilp);
    let hp = [names::VAL_LOSS, names::VAL_RGB_TO_LIDAR_R1, names::TRAIN_LOSS];
    let open = open_stage(opts, SEED_CILP_RUN, &rc, cfg.cilp.epochs, true, &hp)?;
    let cilp_trained = trains(&open, cfg.cilp.epochs);
    let model = init_seeded(&device, cfg.seed.wrapping_add(1), |d| Ok(build_seed_cilp(d)))?;
    let mut step = CilpStep {
        ds,
        train: &split.train,
        vb: val_batches(cfg, &split.val),
        xyza: cfg.data.xyza,
        device: device.clone(),
        eval: eval.clone(),
        means: BatchMeans::default(),
        scale: f64::NAN,
        retrieval: None,
    };
    let info = cfg.info(SEED_CILP_RUN, "cilp", "seed-cilp")?;
    let cilp = fit(open, &info, &cfg.settings(cfg.cilp, opts), &mut step, model, adam_optimizer_with_epsilon(cfg.adam_epsilon))?;
    let cilp_valid = cilp.model.clone().valid();
    let retrieval = match step.retrieval {
        Some(r) => r,
        None => cilp_validate(&cilp_valid, ds, &vb, cfg.data.xyza, &eval).1, // reused stage
    };
    let cilp_val_losses = history_of(&cilp.history, names::VAL, |r| Some(r.loss));
    let cilp_train_loss = history_of(&cilp.history, names::TRAIN, batch_mean).last().copied().unwrap_or(f64::NAN);
    let logit_scales = history_of(&cilp.history, names::TRAIN, |r| r.extra.get("logit_scale").copied());
    drop(cilp.run);

    // ---- stage 3: the projector, on cached embeddings of the frozen encoders (eval mode)
    let tc = Instant::now();
    let embed = |idx: &[usize]| -> (Vec<f32>, Vec<f32>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for chunk in idx.chunks(EVAL_CHUNK) {
            x.extend(to_vec(cilp_valid.image.forward(rgb_batch(ds, chunk, &eval)))); // un-normalised fc3
            y.extend(to_vec(lidar_net.features(xyza_batch(ds, chunk, cfg.data.xyza, &eval)))); // ReLU(fc2)
        }
        (x, y)
    };
    let (x_train, y_train) = embed(&split.train);
    let (x_val, y_val) = embed(&split.val);
    say(
        opts.quiet,
        format!(
            "{SEED_PROJECTOR_RUN}: cached {} + {} embeddings in {:.1}s",
            split.train.len(),
            split.val.len(),
            tc.elapsed().as_secs_f64()
        ),
    );
    let tp = Instant::now();
    let train_labels = targets_of(ds, &split.train);
    let val_labels = targets_of(ds, &split.val);
    let probe = knn_probe(&x_train, &train_labels, &x_val, &val_labels, SEED_CILP_EMBEDDING, PROBE_K);
    say(
        opts.quiet,
        format!(
            "{SEED_CILP_RUN}: {PROBE_K}-NN class probe of the image embedding: {:.2}% of {} validation samples ({:.1}s)",
            100.0 * probe.accuracy,
            probe.samples,
            tp.elapsed().as_secs_f64()
        ),
    );
    let rc = cfg.run_config("seed-projector", cfg.projector);
    let hp = [names::VAL_LOSS, names::TRAIN_LOSS];
    let may_resume = unchanged && !lidar_trained && !cilp_trained;
    let open = open_stage(opts, SEED_PROJECTOR_RUN, &rc, cfg.projector.epochs, may_resume, &hp)?;
    let projector_trained = trains(&open, cfg.projector.epochs);
    let model = init_seeded(&device, cfg.seed.wrapping_add(2), |d| Ok(cilp_models::materialize(seed_projector_config().init(d))))?;
    let fc3 = lidar_net.head.layers[2].clone();
    let mut step = ProjectorStep {
        x_train,
        y_train,
        x_val,
        y_val,
        val_labels,
        positions: (0..split.train.len()).collect(),
        batch_size: cfg.batch_size,
        fc3,
        device: device.clone(),
        eval: eval.clone(),
        means: BatchMeans::default(),
    };
    let info = cfg.info(SEED_PROJECTOR_RUN, "projector", "seed-projector")?;
    let projector = fit(open, &info, &cfg.settings(cfg.projector, opts), &mut step, model, adam_optimizer_with_epsilon(cfg.adam_epsilon))?;
    let projector_mses = history_of(&projector.history, names::TRAIN, batch_mean);
    let projector_val_mses = history_of(&projector.history, names::VAL, |r| Some(r.loss));
    drop(projector.run);

    // ---- stage 4: the chain, nothing fine-tuned (a run of 0 epochs: its epoch-0 validation)
    // All parts from the training device (the loop validates `model.valid()`).
    let chain = SeedRgbToLidar::from_parts(cilp.model.clone(), projector.model.clone(), single(&lidar.model).clone());
    let rc = cfg.run_config("seed-rgb-to-lidar", StageConfig::constant(0, cfg.projector.lr));
    let hp = [names::VAL_LOSS, names::VAL_ACCURACY];
    let open = open_stage(opts, SEED_CHAIN_RUN, &rc, 0, may_resume && !projector_trained, &hp)?;
    let mut step = ChainStep { ds, vb: val_batches(cfg, &split.val), eval: eval.clone(), last: None };
    let info = cfg.info(SEED_CHAIN_RUN, "classifier", "seed-rgb-to-lidar")?;
    let settings = FitSettings { epochs: 0, ..cfg.settings(cfg.projector, opts) };
    let fitted =
        fit(open, &info, &settings, &mut step, Classifier::SeedRgbToLidar(chain.clone()), adam_optimizer_with_epsilon(cfg.adam_epsilon))?;
    drop(fitted.run);
    let e = match step.last.take() {
        Some(e) => e,
        None => chain_eval(&chain.valid(), ds, &vb, &eval), // reused stage
    };

    let summary = SeedAssessSummary {
        study: "assess".into(),
        variant: "seed".into(),
        title: "The seed's own assessment (REFERENCE §7): LiDAR classifier -> CILP -> projector -> RGB->LiDAR chain".into(),
        loss_mean: "every epoch loss (training and validation) is the mean of the per-batch means, as the original computes it".into(),
        lidar_train_accuracy_per_epoch: lidar_train_acc,
        lidar_val_accuracy_per_epoch: lidar_val_acc,
        cilp_val_loss: cilp_val_losses.last().copied().unwrap_or(f64::NAN),
        cilp_val_loss_per_epoch: cilp_val_losses,
        cilp_train_loss,
        logit_scale_per_epoch: logit_scales,
        retrieval,
        image_embedding_probe: Some(probe),
        projector_mse: projector_mses.last().copied().unwrap_or(f64::NAN),
        projector_train_mse_per_epoch: projector_mses,
        projector_val_mse: projector_val_mses.last().copied().unwrap_or(f64::NAN),
        projector_val_mse_per_epoch: projector_val_mses,
        classifier_accuracy: e.correct as f64 / e.samples.max(1) as f64,
        classifier_correct: e.correct,
        classifier_batch_accuracies: e.batch_accuracies,
        classifier_accuracy_with_relu: e.accuracy_with_relu,
        train_samples: split.train.len(),
        val_samples: split.val.len(),
        runs: [SEED_LIDAR_RUN, SEED_CILP_RUN, SEED_PROJECTOR_RUN, SEED_CHAIN_RUN].map(String::from).to_vec(),
        wall_seconds: t.elapsed().as_secs_f64(),
        config: cfg.clone(),
    };
    write_summary(&opts.out, &summary)?;
    Ok(SeedAssessOutcome { summary, out: opts.out.clone() })
}

fn write_summary(out: &Path, s: &SeedAssessSummary) -> Result<()> {
    let ser = |what: &'static str, e: serde_json::Error| TrainError::Serialize { what, reason: e.to_string() };
    let json = serde_json::to_string_pretty(s).map_err(|e| ser("the seed assessment summary", e))?;
    write_file(&out.join(cilp_track::run::SUMMARY_JSON), format!("{json}\n").as_bytes())?;
    let notes = vec![
        "No pass thresholds: the original has none. A faithful port lands near the original code's numbers on cilp's generated data (REFERENCE §7), within seed spread; the real-data column is the seed README's.".to_string(),
        format!("Losses: {}.", s.loss_mean),
        format!(
            "Split: per class the first 9,679 of 9,999 pairs train (the same proportion on a subset): {} train / {} validation; validation not shuffled (each batch of {} holds one class); XYZA {}.",
            s.train_samples, s.val_samples, s.config.batch_size, s.config.data.xyza
        ),
        "RGB->LiDAR: the projector output goes to the LiDAR classifier's fc3 without the ReLU fc3 saw in training, as in the original; the ReLU row shows the alternative.".into(),
        format!(
            "Per validation batch accuracy: {}.",
            s.classifier_batch_accuracies.iter().map(|a| format!("{:.1}%", 100.0 * a)).collect::<Vec<_>>().join(", ")
        ),
        format!("Retrieval over all {} validation pairs: {}.", s.retrieval.samples, s.retrieval),
        match &s.image_embedding_probe {
            Some(p) => format!(
                "Class probe: each validation image embedding (un-normalised, as the projector reads it) takes the majority class of its {} nearest training embeddings: {}/{} right. The chain reads this embedding, so it can hardly do better.",
                p.k, p.correct, p.samples
            ),
            None => "Class probe: not computed (a summary written before it existed).".into(),
        },
        format!("Preset {:?}, {:.0}s wall time on {}.", s.config.preset, s.wall_seconds, s.config.device),
    ];
    let cell = |v: Option<f64>| v.map_or(serde_json::Value::Null, |v| serde_json::json!(v));
    let table = serde_json::json!({
        "title": "Seed assessment: the original's numbers and cilp's",
        "columns": ["metric", "original, real data", "original code, cilp generated data", "cilp"],
        "rows": s.rows().into_iter().map(|(m, a, b, c)| serde_json::json!([m, cell(a), cell(b), cell(c)])).collect::<Vec<_>>(),
        "notes": notes,
    });
    let text = serde_json::to_string_pretty(&table).map_err(|e| ser("the seed comparison table", e))?;
    write_file(&out.join("study_table.json"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_original() {
        let full = SeedAssessConfig::preset(AssessPreset::Full, "data");
        assert_eq!((full.lidar.epochs, full.cilp.epochs, full.projector.epochs), (5, 10, 15));
        assert_eq!((full.lidar.lr, full.cilp.lr, full.projector.lr), (1e-4, 1e-4, 5e-4));
        assert_eq!((full.data.split, full.data.xyza, full.data.limit_per_class), (SplitConfig::Nvidia, XyzaConvention::Seed, None));
        assert_eq!((full.batch_size, full.seed), (32, 51));
        assert!(full.validate().is_ok());
        let quick = SeedAssessConfig::preset(AssessPreset::Quick, "data");
        assert!(quick.data.limit_per_class.is_some() && quick.validate().is_ok());
        let text = toml::to_string_pretty(&quick).unwrap();
        assert!(text.contains("variant = \"seed\""), "{text}");
        // An NVIDIA assess.toml is not a seed config, and the other way round.
        assert!(toml::from_str::<super::super::AssessConfig>(&text).is_err());
        // Adam's epsilon is PyTorch's, written down, and a config saved before it existed (trained
        // with burn's 1e-5) reads back as 1e-5, so that resuming it does not change its recipe.
        assert_eq!(full.adam_epsilon, 1e-8);
        assert!(text.contains("adam_epsilon"), "{text}");
        let old: String = text.lines().filter(|l| !l.starts_with("adam_epsilon")).collect::<Vec<_>>().join("\n");
        assert_eq!(toml::from_str::<SeedAssessConfig>(&old).unwrap().adam_epsilon, 1e-5);
        let stage = full.run_config("seed-cilp", full.cilp);
        assert_eq!(stage.adam_epsilon, Some(full.adam_epsilon));
        assert!(SeedAssessConfig { adam_epsilon: 0.0, ..full }.validate().unwrap_err().contains("adam_epsilon"));
    }

    #[test]
    fn batch_means_weigh_every_batch_alike() {
        let d = Device::flex();
        let mut m = BatchMeans::default();
        for v in [1.0f32, 2.0, 6.0] {
            m.add(&Tensor::from_floats([v], &d));
        }
        assert_eq!(m.take(), (LOSS_BATCH_MEAN.to_string(), 3.0));
        assert_eq!(m.take().1, 0.0, "reset for the next epoch");
    }
}
