//! The assessment's four stages, each an ordinary resumable run trained by the one loop,
//! [`cilp_train::fit`]: CILP pretraining, the LiDAR classifier (unless pretrained weights are
//! given), the projector, and the fine-tuned RGB -> LiDAR classifier.
//!
//! With `--resume` a stage whose folder holds the same config continues after its last
//! committed epoch (a completed stage is reused as it is); the projector and the fine-tuning
//! stage are resumed only when the whole assessment config is unchanged and no stage before
//! them trained in this invocation, because their configs do not pin the weights they are
//! built on.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cilp_data::batch::Batches;
use cilp_data::dataset::Dataset;
use cilp_data::tensorize::{depth_chw, rgb_chw};
use cilp_kernels::adam::adam_optimizer;
use cilp_models::loss::{classification_loss, mse};
use cilp_models::nvidia::{CILP_EMBEDDING, LIDAR_EMBEDDING};
use cilp_models::{
    Cilp, CilpLoss, Classifier, InputKind, LidarClassifier, Projector, ProjectorConfig, RgbToLidar, build_cilp, load_lidar_classifier_pt,
};
use cilp_track::names;
use cilp_track::run::{CreateMode, RunDir, RunStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::retrieval::{CrossModalRetrieval, retrieval_metrics, similarity_matrix};
use super::visuals::{self, SamplePrediction, prediction_grid, predictions_markdown, similarity_heatmap};
use super::{
    AssessConfig, AssessOptions, CILP_RUN, CLASSIFIER_RUN, FinetuneFrozen, FinetuneSelection, GRADED_BATCHES, IMAGE_PREDICTIONS, LIDAR_RUN,
    LidarClassifierInfo, PROJECTOR_RUN, SELECTION_ACCURACY, SELECTION_LOSS, SELECTION_SEED_OFFSET, StageConfig, StageRunConfig,
};
use cilp_train::batching::make_batch;
use cilp_train::checkpoint::Checkpoints;
use cilp_train::config::TrainConfig;
use cilp_train::data::PreparedData;
use cilp_train::device::init_seeded;
use cilp_train::engine::RunOptions;
use cilp_train::error::{Result, TrainError};
use cilp_train::fit::{EpochReport, FitSettings, OpenRun, RunInfo, Score, StepOutput, TrainStep, Validation, fit, open_run};
use cilp_train::predict::CLASS_NAMES;

pub(super) fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 tensor")
}

pub(super) fn say(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// Batch tensor of rows `rows` of a row-major `[n, dim]` buffer.
pub(super) fn gather_rows(buf: &[f32], dim: usize, rows: &[usize], device: &Device) -> Tensor<2> {
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &r in rows {
        out.extend_from_slice(&buf[r * dim..(r + 1) * dim]);
    }
    Tensor::from_data(TensorData::new(out, [rows.len(), dim]), device)
}

pub(super) fn rgb_batch(ds: &Dataset, idx: &[usize], device: &Device) -> Tensor<4> {
    let plane = 4 * 64 * 64;
    let mut buf = vec![0f32; idx.len() * plane];
    for (chunk, &i) in buf.chunks_exact_mut(plane).zip(idx) {
        rgb_chw(ds.sample(i).rgb, chunk);
    }
    Tensor::from_data(TensorData::new(buf, [idx.len(), 4, 64, 64]), device)
}

fn depth_batch(ds: &Dataset, idx: &[usize], device: &Device) -> Tensor<4> {
    let plane = 64 * 64;
    let mut buf = vec![0f32; idx.len() * plane];
    for (chunk, &i) in buf.chunks_exact_mut(plane).zip(idx) {
        depth_chw(ds.sample(i).depth, chunk);
    }
    Tensor::from_data(TensorData::new(buf, [idx.len(), 1, 64, 64]), device)
}

/// Inference chunk size (independent of the training batch size).
pub(super) const EVAL_CHUNK: usize = 128;

/// CILP image embeddings (`[n, 200]` row-major) of `indices`.
fn image_embeddings(cilp: &Cilp, ds: &Dataset, indices: &[usize], device: &Device) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * CILP_EMBEDDING);
    for chunk in indices.chunks(EVAL_CHUNK) {
        out.extend(to_vec(cilp.image.forward(rgb_batch(ds, chunk, device))));
    }
    out
}

/// CILP LiDAR embeddings (`[n, 200]`) of `indices`.
fn lidar_cilp_embeddings(cilp: &Cilp, ds: &Dataset, indices: &[usize], device: &Device) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * CILP_EMBEDDING);
    for chunk in indices.chunks(EVAL_CHUNK) {
        out.extend(to_vec(cilp.lidar.forward(depth_batch(ds, chunk, device))));
    }
    out
}

/// LiDAR classifier embeddings (`[n, 3200]`) and logits of `indices`.
pub(super) fn lidar_classifier_embeddings(
    lidar: &LidarClassifier,
    ds: &Dataset,
    indices: &[usize],
    device: &Device,
) -> (Vec<f32>, Vec<f32>) {
    let mut emb = Vec::with_capacity(indices.len() * LIDAR_EMBEDDING);
    let mut logits = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(EVAL_CHUNK) {
        let e = lidar.embed(depth_batch(ds, chunk, device));
        logits.extend(to_vec(lidar.head(e.clone())));
        emb.extend(to_vec(e));
    }
    (emb, logits)
}

/// Fraction of non-zero entries and standard deviation of an embedding buffer: a LiDAR
/// classifier whose ReLUs died has all-zero embeddings (fraction 0, std 0).
pub(super) fn embedding_stats(emb: &[f32]) -> (f64, f64) {
    if emb.is_empty() {
        return (0.0, 0.0);
    }
    let n = emb.len() as f64;
    let nonzero = emb.iter().filter(|&&v| v != 0.0).count() as f64 / n;
    let mean = emb.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = emb.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (nonzero, var.sqrt())
}

pub(super) fn accuracy_of(logits: &[f32], ds: &Dataset, indices: &[usize]) -> f64 {
    let correct = logits.iter().zip(indices).filter(|&(&l, &i)| ((l > 0.0) as usize) == ds.sample(i).class).count();
    correct as f64 / indices.len().max(1) as f64
}

/// Validation batches for the contrastive loss and the graded accuracy: the validation set
/// shuffled once with the run's seed (so batches mix both classes, as in a shuffled loader),
/// in batches of `batch_size`, dropping an incomplete last batch when configured (and at
/// least one batch is full).
fn val_batches(cfg: &AssessConfig, val: &[usize]) -> Batches {
    let drop = cfg.drop_last && val.len() >= cfg.batch_size;
    Batches::new(val, cfg.batch_size, Some(cfg.seed), 0, drop)
}

/// Opens a stage's run folder: with `--resume` (and `may_resume`) a folder holding `config` is
/// reopened to continue after its last commit, or reused when complete; otherwise the stage is
/// trained from its start (the folder replaced).
pub(super) fn open_stage<C: Serialize + DeserializeOwned + PartialEq>(
    opts: &AssessOptions,
    name: &str,
    config: &C,
    epochs: usize,
    may_resume: bool,
    hparam_metrics: &[&str],
) -> Result<OpenRun> {
    let dir = opts.out.join(name);
    let same = opts.resume && may_resume && cilp_track::run::read_config::<C>(&dir).ok().as_ref() == Some(config);
    if opts.resume && !same && dir.join(cilp_track::run::CONFIG_TOML).is_file() {
        let why = if may_resume { "holds another config" } else { "was built on other weights (the config or a stage before it changed)" };
        say(false, format!("{name}: {} {why}; training it again", dir.display()));
    }
    let open = open_run(&opts.out, name, if same { CreateMode::Resume } else { CreateMode::Force }, config, hparam_metrics)?;
    if let Some(st) = &open.resumed {
        if st.epoch >= epochs {
            say(false, format!("{name}: reusing the completed stage in {} (same config)", dir.display()));
        } else {
            say(opts.quiet, format!("{name}: resuming {} after epoch {} of {epochs}", dir.display(), st.epoch));
        }
    }
    Ok(open)
}

/// What a stage's summary says about it.
fn stage_info<'a>(cfg: &AssessConfig, name: &'a str, kind: &'a str, model: &'a str) -> Result<RunInfo<'a>> {
    let parameters = cilp_models::model_info(model)?.parameters as u64;
    Ok(RunInfo { name, kind, model, parameters, device: cfg.device.to_string(), seed: cfg.seed })
}

/// True when an opened stage will train at least one epoch.
pub(super) fn trains(open: &OpenRun, epochs: usize) -> bool {
    open.resumed.as_ref().is_none_or(|s| s.epoch < epochs)
}

/// The loop settings of a stage.
fn stage_settings(cfg: &AssessConfig, stage: StageConfig, opts: &AssessOptions) -> FitSettings {
    FitSettings {
        epochs: stage.epochs,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        drop_last: cfg.drop_last,
        lr: stage.lr,
        schedule: stage.schedule,
        progress: true,
        quiet: opts.quiet,
        hooks: opts.hooks,
        control: opts.control.clone(),
        commit_every: cilp_train::fit::commit_every(),
    }
}

pub(super) struct CilpOutcome {
    pub(super) model: Cilp,
    pub(super) val_loss: f64,
    pub(super) val_loss_nvidia: f64,
    pub(super) retrieval: CrossModalRetrieval,
    pub(super) logit_scales: Vec<f64>,
    pub(super) heatmap: visuals::Png,
}

struct CilpValidation {
    loss: f64,
    loss_nvidia: f64,
    retrieval: CrossModalRetrieval,
    heatmap: visuals::Png,
}

/// CILP's validation: embeddings of the whole validation set, the loss per validation batch
/// (the trained variant's and NVIDIA's), retrieval and the first batch's similarity heatmap.
fn cilp_validate(cfg: &AssessConfig, valid: &Cilp, ds: &Dataset, vb: &Batches, eval: &Device) -> Result<CilpValidation> {
    let order = vb.order().to_vec();
    let img = image_embeddings(valid, ds, &order, eval);
    let lid = lidar_cilp_embeddings(valid, ds, &order, eval);
    let d = CILP_EMBEDDING;
    let (mut vloss, mut vloss_nv, mut vn) = (0f64, 0f64, 0usize);
    for (b, batch) in vb.iter().enumerate() {
        if batch.len() < 2 {
            continue;
        }
        let rows: Vec<usize> = (b * cfg.batch_size..b * cfg.batch_size + batch.len()).collect();
        let ti = gather_rows(&img, d, &rows, eval);
        let tl = gather_rows(&lid, d, &rows, eval);
        let l: f32 = valid.loss(ti.clone(), tl.clone()).into_scalar();
        let lnv: f32 = cilp_models::loss::cilp_nvidia_loss(ti, tl).into_scalar();
        vloss += l as f64 * batch.len() as f64;
        vloss_nv += lnv as f64 * batch.len() as f64;
        vn += batch.len();
    }
    // Retrieval over the whole validation set (the batches' order is a permutation of it).
    let retrieval = retrieval_metrics(&img, &lid, d, eval);
    let first = cfg.batch_size.min(order.len());
    let sim = similarity_matrix(&img[..first * d], &lid[..first * d], d, eval);
    let heatmap = similarity_heatmap(&sim, first, 8)?;
    Ok(CilpValidation { loss: vloss / vn.max(1) as f64, loss_nvidia: vloss_nv / vn.max(1) as f64, retrieval, heatmap })
}

/// The CILP stage's run config.
pub(super) fn cilp_run_config(cfg: &AssessConfig) -> StageRunConfig {
    let mut rc = StageRunConfig::new(cfg, cfg.cilp_model(), cfg.cilp);
    rc.loss = Some(cfg.loss);
    rc
}

/// CILP pretraining as [`fit`] trains it: the contrastive loss of each batch of pairs.
struct CilpStep<'a> {
    cfg: &'a AssessConfig,
    ds: &'a Dataset,
    train: &'a [usize],
    vb: Batches,
    device: Device,
    eval: Device,
    scale: Option<f64>,
    last: Option<CilpValidation>,
}

impl TrainStep for CilpStep<'_> {
    type Model = Cilp;

    fn train_indices(&self) -> &[usize] {
        self.train
    }

    fn step(&mut self, model: &Cilp, batch: &[usize]) -> Option<StepOutput> {
        if batch.len() < 2 {
            return None; // a contrastive loss needs two pairs
        }
        let (inputs, _, _) = make_batch(self.ds, batch, &[InputKind::Rgb, InputKind::Depth], self.cfg.data.xyza, &self.device);
        let (img, lid) = model.forward(inputs.rgb.expect("rgb"), inputs.depth.expect("depth"));
        Some(StepOutput { loss: model.loss(img, lid), correct: None })
    }

    fn after_step(&self, model: Cilp) -> Cilp {
        model.clamp_logit_scale()
    }

    fn train_extra(&mut self, model: &Cilp) -> Vec<(String, f64)> {
        self.scale = model.clone().valid().logit_scale_value().map(|s| (s as f64).exp());
        self.scale.map(|s| ("logit_scale".to_string(), s)).into_iter().collect()
    }

    fn validate(&mut self, model: &Cilp, _epoch: usize) -> Result<Validation> {
        let v = cilp_validate(self.cfg, model, self.ds, &self.vb, &self.eval)?;
        let mut extra = v.retrieval.extra();
        if self.cfg.loss != CilpLoss::Nvidia {
            extra.push(("nvidia_loss".into(), v.loss_nvidia));
        }
        let out = Validation { loss: v.loss, accuracy: None, samples: self.vb.order().len(), extra, score: Score::Loss { loss: v.loss } };
        self.last = Some(v);
        Ok(out)
    }

    fn record(&mut self, run: &mut RunDir, epoch: usize) -> Result<()> {
        if let Some(v) = &self.last {
            run.events()?.add_image_png(
                names::IMAGE_SIMILARITY_MATRIX,
                &v.heatmap.bytes,
                v.heatmap.width,
                v.heatmap.height,
                epoch as i64,
            )?;
        }
        Ok(())
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        let v = self.last.as_ref()?;
        let (rl, lr) = (&v.retrieval.rgb_to_lidar, &v.retrieval.lidar_to_rgb);
        Some(format!(
            "cilp: epoch {}/{}  train loss {:.4}  val loss {:.4}{}  R@1 {:.3}/{:.3}  R@5 {:.3}/{:.3}  mean rank {:.1}/{:.1}{}  {:.1}s",
            r.epoch,
            r.epochs,
            r.train_loss,
            v.loss,
            if self.cfg.loss != CilpLoss::Nvidia { format!(" (nvidia {:.4})", v.loss_nvidia) } else { String::new() },
            rl.r_at_1,
            lr.r_at_1,
            rl.r_at_5,
            lr.r_at_5,
            rl.mean_rank,
            lr.mean_rank,
            self.scale.map(|s| format!("  logit scale {s:.2}")).unwrap_or_default(),
            r.seconds
        ))
    }
}

/// Stage 1: contrastive pretraining. Returns the outcome and whether the stage trained here.
pub(super) fn cilp_stage(cfg: &AssessConfig, data: &PreparedData, opts: &AssessOptions, device: &Device) -> Result<(CilpOutcome, bool)> {
    let model_name = cfg.cilp_model();
    let rc = cilp_run_config(cfg);
    let hp = [names::VAL_LOSS, names::VAL_RGB_TO_LIDAR_R1, names::TRAIN_LOSS];
    let open = open_stage(opts, CILP_RUN, &rc, cfg.cilp.epochs, true, &hp)?;
    let trained = trains(&open, cfg.cilp.epochs);
    let info = stage_info(cfg, CILP_RUN, "cilp", model_name)?;
    let model = init_seeded(device, cfg.seed, |d| Ok(build_cilp(model_name, d)?))?;
    let mut step = CilpStep {
        cfg,
        ds: &data.dataset,
        train: &data.split.train,
        vb: val_batches(cfg, &data.split.val),
        device: device.clone(),
        eval: device.clone().without_autodiff(),
        scale: None,
        last: None,
    };
    let settings = stage_settings(cfg, cfg.cilp, opts);
    let fitted = fit(open, &info, &settings, &mut step, model, adam_optimizer())?;
    let v = match step.last.take() {
        Some(v) => v,
        None => {
            // Reused: validated again (bit-identical to the run that wrote it: the weights are
            // stored exactly and validation has no randomness).
            let v = cilp_validate(cfg, &fitted.model.clone().valid(), &data.dataset, &step.vb, &step.eval)?;
            say(
                false,
                format!("cilp: val loss {:.4}, R@1 {:.3}/{:.3}", v.loss, v.retrieval.rgb_to_lidar.r_at_1, v.retrieval.lidar_to_rgb.r_at_1),
            );
            v
        }
    };
    let logit_scales =
        fitted.history.iter().filter(|r| r.split == names::TRAIN).filter_map(|r| r.extra.get("logit_scale").copied()).collect();
    cilp_track::write_atomic(&fitted.run.path().join("similarity_matrix.png"), &v.heatmap.bytes)?;
    let outcome = CilpOutcome {
        model: fitted.model,
        val_loss: v.loss,
        val_loss_nvidia: v.loss_nvidia,
        retrieval: v.retrieval,
        logit_scales,
        heatmap: v.heatmap,
    };
    Ok((outcome, trained))
}

/// Stage 2: the LiDAR classifier, pretrained or trained on LiDAR alone.
///
/// With `--resume`, a trained classifier's run of the same config is reused when complete and
/// continued when cut off. Returns the classifier, what it is, and whether it trained here.
pub(super) fn lidar_stage(
    cfg: &AssessConfig,
    data: &PreparedData,
    opts: &AssessOptions,
    device: &Device,
) -> Result<(LidarClassifier, LidarClassifierInfo, bool)> {
    match &cfg.lidar_classifier {
        Some(path) => {
            let m = load_lidar_classifier_pt(path, device)?;
            say(opts.quiet, format!("lidar classifier: loaded pretrained weights from {}", path.display()));
            Ok((m, LidarClassifierInfo { source: "pretrained".into(), path: path.display().to_string(), val_accuracy: f64::NAN }, false))
        }
        None => {
            let tc = cfg.train_config("nvidia-lidar-classifier", cfg.lidar);
            let mut ro = RunOptions::new(&opts.out);
            ro.name = Some(LIDAR_RUN.into());
            let dir = opts.out.join(LIDAR_RUN);
            let same = opts.resume && cilp_track::run::read_config::<TrainConfig>(&dir).ok().as_ref() == Some(&tc);
            let complete = same && cilp_track::run::read_summary(&dir).is_ok_and(|s| s.status == RunStatus::Completed);
            if complete {
                say(false, format!("{LIDAR_RUN}: reusing the completed stage in {} (same config)", dir.display()));
            }
            ro.mode = if same { CreateMode::Resume } else { CreateMode::Force };
            ro.quiet = opts.quiet || complete;
            ro.hooks = opts.hooks;
            ro.control = opts.control.clone();
            let outcome = cilp_train::engine::train(&tc, data, &ro)?;
            let source = cilp_train::predict::WeightsSource::Checkpoint(outcome.run_dir.clone());
            let (c, _, _) = cilp_train::predict::load_classifier(Some("nvidia-lidar-classifier"), &source, device)?;
            match c {
                Classifier::Lidar(m) => {
                    Ok((m, LidarClassifierInfo { source: "trained".into(), path: LIDAR_RUN.into(), val_accuracy: f64::NAN }, !complete))
                }
                _ => Err(TrainError::Checkpoint { path: outcome.run_dir, reason: "holds another model, not a LiDAR classifier".into() }),
            }
        }
    }
}

pub(super) struct ProjectorOutcome {
    pub(super) model: Projector,
    pub(super) val_mse: f64,
}

/// The projector as [`fit`] trains it: MSE from cached CILP image embeddings to the LiDAR
/// classifier's embeddings (rows of the cached tables are the indices).
struct ProjectorStep {
    x_train: Vec<f32>,
    y_train: Vec<f32>,
    x_val: Vec<f32>,
    y_val: Vec<f32>,
    labels: Vec<usize>,
    positions: Vec<usize>,
    head: LidarClassifier,
    device: Device,
    eval: Device,
}

impl TrainStep for ProjectorStep {
    type Model = Projector;

    fn train_indices(&self) -> &[usize] {
        &self.positions
    }

    fn step(&mut self, model: &Projector, rows: &[usize]) -> Option<StepOutput> {
        let x = gather_rows(&self.x_train, CILP_EMBEDDING, rows, &self.device);
        let y = gather_rows(&self.y_train, LIDAR_EMBEDDING, rows, &self.device);
        Some(StepOutput { loss: mse(model.forward(x), y), correct: None })
    }

    fn validate(&mut self, model: &Projector, _epoch: usize) -> Result<Validation> {
        let n = self.labels.len();
        let val_pos: Vec<usize> = (0..n).collect();
        let (mut se, mut correct) = (0f64, 0usize);
        for rows in val_pos.chunks(EVAL_CHUNK) {
            let x = gather_rows(&self.x_val, CILP_EMBEDDING, rows, &self.eval);
            let y = gather_rows(&self.y_val, LIDAR_EMBEDDING, rows, &self.eval);
            let p = model.forward(x);
            let l: f32 = mse(p.clone(), y).into_scalar();
            se += l as f64 * rows.len() as f64;
            let logits = to_vec(self.head.head(p));
            correct += rows.iter().zip(&logits).filter(|&(&r, &l)| ((l > 0.0) as usize) == self.labels[r]).count();
        }
        // Accuracy of the LiDAR head on projected RGB embeddings (the chain before fine-tuning).
        Ok(Validation::by_loss(se / n.max(1) as f64, Some(correct as f64 / n.max(1) as f64), n))
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        let every = (r.epochs / 8).max(1);
        (r.epoch.is_multiple_of(every) || r.epoch == r.epochs).then(|| {
            format!(
                "projector: epoch {}/{}  train mse {:.4}  val mse {:.4}  head accuracy {:.2}%  {:.1}s",
                r.epoch,
                r.epochs,
                r.train_loss,
                r.val.loss,
                100.0 * r.val.accuracy.unwrap_or(f64::NAN),
                r.seconds
            )
        })
    }
}

/// Stage 3: the projector, trained with MSE on cached embeddings (the CILP image encoder and
/// the LiDAR classifier are frozen, so their embeddings are computed once). Returns the outcome
/// and whether the stage trained here.
pub(super) fn projector_stage(
    cfg: &AssessConfig,
    data: &PreparedData,
    opts: &AssessOptions,
    device: &Device,
    (cilp, lidar): (&Cilp, &LidarClassifier),
    may_resume: bool,
) -> Result<(ProjectorOutcome, bool)> {
    let eval = device.clone().without_autodiff();
    let (ds, split) = (&data.dataset, &data.split);
    let t = Instant::now();
    let (ci, li) = (cilp.clone().valid(), lidar.clone().valid());
    let x_train = image_embeddings(&ci, ds, &split.train, &eval);
    let (y_train, _) = lidar_classifier_embeddings(&li, ds, &split.train, &eval);
    let x_val = image_embeddings(&ci, ds, &split.val, &eval);
    let (y_val, _) = lidar_classifier_embeddings(&li, ds, &split.val, &eval);
    say(
        opts.quiet,
        format!("projector: cached {} + {} embeddings in {:.1}s", split.train.len(), split.val.len(), t.elapsed().as_secs_f64()),
    );
    let rc = StageRunConfig::new(cfg, "projector", cfg.projector);
    let hp = [names::VAL_LOSS, names::VAL_ACCURACY, names::TRAIN_LOSS];
    let open = open_stage(opts, PROJECTOR_RUN, &rc, cfg.projector.epochs, may_resume, &hp)?;
    let trained = trains(&open, cfg.projector.epochs);
    let info = stage_info(cfg, PROJECTOR_RUN, "projector", "projector")?;
    let model = init_seeded(device, cfg.seed.wrapping_add(1), |d| Ok(cilp_models::materialize(ProjectorConfig::new().init(d))))?;
    let mut step = ProjectorStep {
        x_train,
        y_train,
        x_val,
        y_val,
        labels: split.val.iter().map(|&i| ds.sample(i).class).collect(),
        positions: (0..split.train.len()).collect(),
        head: li,
        device: device.clone(),
        eval,
    };
    let settings = stage_settings(cfg, cfg.projector, opts);
    let fitted = fit(open, &info, &settings, &mut step, model, adam_optimizer())?;
    let val_mse = match fitted.history.iter().rev().find(|r| r.split == names::VAL && r.epoch == fitted.state.epoch) {
        Some(r) => r.loss,
        None => step.validate(&fitted.model.clone().valid(), fitted.state.epoch)?.loss,
    };
    Ok((ProjectorOutcome { model: fitted.model, val_mse }, trained))
}

pub(super) struct ClassifierOutcome {
    pub(super) accuracy: f64,
    pub(super) accuracy_before: f64,
    pub(super) batch_accuracies: Vec<f64>,
    pub(super) predictions: Vec<SamplePrediction>,
    pub(super) grid: visuals::Png,
    pub(super) selection: FinetuneSelection,
}

/// Logits `[n]` of an RGB -> LiDAR classifier on `indices`.
fn classifier_logits(model: &RgbToLidar, ds: &Dataset, indices: &[usize], device: &Device) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(EVAL_CHUNK) {
        out.extend(to_vec(model.forward(rgb_batch(ds, chunk, device))));
    }
    out
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Marks the parts of the chain that fine-tuning must leave unchanged (no gradients, so the
/// optimiser skips them).
fn apply_frozen(model: RgbToLidar, frozen: FinetuneFrozen) -> RgbToLidar {
    match frozen {
        FinetuneFrozen::None => model,
        FinetuneFrozen::ProjectorHead => RgbToLidar { projector: model.projector.no_grad(), head: model.head.no_grad(), ..model },
        FinetuneFrozen::Encoder => RgbToLidar { image: model.image.no_grad(), ..model },
    }
}

/// Loss, accuracy and logits of a classifier (its validation copy) on `indices`, in that order.
fn evaluate_classifier(model: &Classifier, ds: &Dataset, indices: &[usize], eval: &Device) -> (f64, f64, Vec<f32>) {
    let Classifier::RgbToLidar(r) = model else { unreachable!("rgb-to-lidar") };
    let logits = classifier_logits(r, ds, indices, eval);
    let targets: Vec<f32> = indices.iter().map(|&i| ds.sample(i).class as f32).collect();
    let n = logits.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, logits);
    }
    let lt = Tensor::<1>::from_data(TensorData::new(logits.clone(), [n]), eval);
    let tt = Tensor::<1>::from_data(TensorData::new(targets, [n]), eval);
    let loss: f32 = cilp_models::loss::bce_with_logits(lt, tt).into_scalar();
    (loss as f64, accuracy_of(&logits, ds, indices), logits)
}

/// The RGB -> LiDAR chain as [`fit`] fine-tunes it (BCE on logits), scored after each epoch on
/// the selection set held out of its training pairs.
struct FinetuneStep<'a> {
    ds: &'a Dataset,
    train: Vec<usize>,
    selection: Vec<usize>,
    /// The validation order (the graded batches are its first batches).
    order: Vec<usize>,
    frozen: FinetuneFrozen,
    device: Device,
    eval: Device,
    quiet: bool,
}

impl TrainStep for FinetuneStep<'_> {
    type Model = Classifier;

    fn train_indices(&self) -> &[usize] {
        &self.train
    }

    fn step(&mut self, model: &Classifier, batch: &[usize]) -> Option<StepOutput> {
        let Classifier::RgbToLidar(r) = model else { unreachable!("rgb-to-lidar") };
        let rgb = rgb_batch(self.ds, batch, &self.device);
        let targets: Vec<i64> = batch.iter().map(|&i| self.ds.sample(i).class as i64).collect();
        let tt = Tensor::<1, Int>::from_data(TensorData::new(targets.clone(), [batch.len()]), &self.device);
        let logits = r.forward(rgb);
        let lv = to_vec(logits.clone().detach());
        let correct = lv.iter().zip(&targets).filter(|&(&l, &t)| ((l > 0.0) as i64) == t).count();
        Some(StepOutput { loss: classification_loss(logits, tt), correct: Some(correct) })
    }

    fn validate(&mut self, model: &Classifier, epoch: usize) -> Result<Validation> {
        let (vl, va, _) = evaluate_classifier(model, self.ds, &self.order, &self.eval);
        let select = !self.selection.is_empty();
        let (sl, sa, _) = evaluate_classifier(model, self.ds, &self.selection, &self.eval);
        if epoch == 0 {
            say(
                self.quiet,
                format!(
                    "rgb-to-lidar: before fine-tuning  val loss {vl:.4} acc {:.2}%{}",
                    100.0 * va,
                    if select {
                        format!("  selection ({} pairs held out of training) acc {:.2}%", self.selection.len(), 100.0 * sa)
                    } else {
                        String::new()
                    }
                ),
            );
        }
        let mut v = Validation::by_loss(vl, Some(va), self.order.len());
        if select {
            v.extra = vec![(SELECTION_ACCURACY.into(), sa), (SELECTION_LOSS.into(), sl)];
            v.score = Score::AccuracyThenLoss { accuracy: sa, loss: sl };
        } else {
            // Without a selection set the last epoch is graded.
            v.score = Score::Last;
        }
        Ok(v)
    }

    fn validates_before_training(&self) -> bool {
        true // epoch 0, the assembled chain, may be the graded model
    }

    fn describe(&self, r: &EpochReport) -> Option<String> {
        let select = !self.selection.is_empty();
        let sa = r.val.extra.iter().find(|(k, _)| k == SELECTION_ACCURACY).map_or(f64::NAN, |(_, v)| *v);
        Some(format!(
            "rgb-to-lidar: epoch {}/{}  lr {:.2e}..{:.2e}  train loss {:.4} acc {:.2}%{}  val loss {:.4} acc {:.2}%{}  {:.1}s",
            r.epoch,
            r.epochs,
            r.lr_first,
            r.lr_last,
            r.train_loss,
            100.0 * r.train_accuracy.unwrap_or(f64::NAN),
            if select { format!("  selection acc {:.2}%", 100.0 * sa) } else { String::new() },
            r.val.loss,
            100.0 * r.val.accuracy.unwrap_or(f64::NAN),
            if r.improved && select { "  (best on selection)" } else { "" },
            r.seconds
        ))
    }

    fn restored(&self, model: Classifier) -> Classifier {
        match model {
            Classifier::RgbToLidar(r) => Classifier::RgbToLidar(apply_frozen(r, self.frozen)),
            other => other,
        }
    }
}

/// Stage 4: assemble image encoder -> projector -> LiDAR head and fine-tune it (BCE on logits).
///
/// Fine-tuning trains on the training split minus a held-out selection set
/// ([`AssessConfig::selection_fraction`]); after each epoch the model is scored on the
/// selection set and the best epoch (epoch 0 = the assembled chain included) is the graded one,
/// kept as the run's `best.bpk`. The graded validation batches play no part in the choice.
pub(super) fn classifier_stage(
    cfg: &AssessConfig,
    data: &PreparedData,
    opts: &AssessOptions,
    device: &Device,
    model: RgbToLidar,
    may_resume: bool,
) -> Result<ClassifierOutcome> {
    let eval = device.clone().without_autodiff();
    let (ds, split) = (&data.dataset, &data.split);
    let tc = cfg.train_config("rgb-to-lidar", cfg.finetune);
    // Folders written before the graded epoch was recorded in `last.json` are not continued.
    let recorded = Checkpoints::new(opts.out.join(CLASSIFIER_RUN).join(cilp_track::run::CHECKPOINTS_DIR))
        .load_state()
        .ok()
        .flatten()
        .is_some_and(|s| s.best.is_some());
    let hp = [names::VAL_LOSS, names::VAL_ACCURACY, names::TRAIN_LOSS];
    let open = open_stage(opts, CLASSIFIER_RUN, &tc, cfg.finetune.epochs, may_resume && recorded, &hp)?;
    let info = stage_info(cfg, CLASSIFIER_RUN, "classifier", "rgb-to-lidar")?;
    let vb = val_batches(cfg, &split.val);
    let order = vb.order().to_vec();
    // The selection set: a seeded, stratified share of the training pairs, not trained on.
    let held = cilp_data::split::stratified_holdout(ds, &split.train, cfg.selection_fraction, cfg.seed.wrapping_add(SELECTION_SEED_OFFSET));
    let select = !held.val.is_empty();
    let mut step = FinetuneStep {
        ds,
        train: held.train,
        selection: held.val,
        order: order.clone(),
        frozen: cfg.finetune_frozen,
        device: device.clone(),
        eval: eval.clone(),
        quiet: opts.quiet,
    };
    let model = step.restored(Classifier::RgbToLidar(model));
    let settings = stage_settings(cfg, cfg.finetune, opts);
    let fitted = fit(open, &info, &settings, &mut step, model, adam_optimizer())?;

    // Per epoch from epoch 0: validation and selection accuracy, from the run's rows (so a
    // resumed stage has them all).
    let val_rows: Vec<_> = fitted.history.iter().filter(|r| r.split == names::VAL).collect();
    let val_acc: Vec<f64> = val_rows.iter().map(|r| r.accuracy.unwrap_or(f64::NAN)).collect();
    let selection_acc: Vec<f64> = val_rows.iter().map(|r| r.extra.get(SELECTION_ACCURACY).copied().unwrap_or(f64::NAN)).collect();
    let graded_epoch = fitted.state.best_epoch;
    let graded = step.restored(cilp_train::predict::load_record_file(fitted.model.clone(), &fitted.ckpt.best_model())?);
    let (_, accuracy, logits) = evaluate_classifier(&graded.valid(), ds, &order, &eval);
    let mut run = fitted.run;
    if select {
        say(
            opts.quiet,
            format!(
                "rgb-to-lidar: graded model = epoch {graded_epoch} (best accuracy on the {} held-out selection pairs, {:.2}%)",
                step.selection.len(),
                100.0 * selection_acc.get(graded_epoch).copied().unwrap_or(f64::NAN)
            ),
        );
    }
    let selection = FinetuneSelection {
        samples: step.selection.len(),
        epoch: graded_epoch,
        accuracies: if select { selection_acc } else { Vec::new() },
        val_accuracies: val_acc.clone(),
    };
    // Graded batches: the first 5 batches of the shuffled validation order.
    let bs = cfg.batch_size;
    let batch_accuracies: Vec<f64> = (0..GRADED_BATCHES.min(vb.len()))
        .map(|b| {
            let r = b * bs..(b * bs + bs).min(order.len());
            accuracy_of(&logits[r.clone()], ds, &order[r])
        })
        .collect();
    // Sample predictions.
    let k = cfg.prediction_samples.min(order.len());
    let mut predictions = Vec::with_capacity(k);
    let (mut rgbs, mut depths, mut correct) = (Vec::new(), Vec::new(), Vec::new());
    for (&i, &l) in order.iter().zip(&logits).take(k) {
        let s = ds.sample(i);
        let p = sigmoid(l);
        let pred = (l > 0.0) as usize;
        let class_name = |c: usize| ds.classes().get(c).cloned().unwrap_or_else(|| CLASS_NAMES[c.min(1)].to_string());
        predictions.push(SamplePrediction {
            index: i,
            sample: format!("{}/{}", class_name(s.class), s.stem),
            truth: class_name(s.class),
            prediction: class_name(pred),
            probability: if pred == 1 { p } else { 1.0 - p },
        });
        rgbs.push(s.rgb);
        depths.push(s.depth);
        correct.push(pred == s.class);
    }
    let grid = prediction_grid(&rgbs, &depths, &correct, 2)?;
    let w = run.events()?;
    let at = cfg.finetune.epochs as i64;
    w.add_image_png(IMAGE_PREDICTIONS, &grid.bytes, grid.width, grid.height, at)?;
    w.add_text(names::TEXT_PREDICTIONS, &predictions_markdown(&predictions), at)?;
    cilp_track::write_atomic(&run.path().join("predictions.png"), &grid.bytes)?;
    run.flush()?;
    let accuracy_before = val_acc.first().copied().unwrap_or(f64::NAN);
    Ok(ClassifierOutcome { accuracy, accuracy_before, batch_accuracies, predictions, grid, selection })
}

#[cfg(test)]
mod tests {
    use burn::optim::GradientsParams;

    use super::*;

    #[test]
    fn embedding_stats_flag_dead_features() {
        assert_eq!(embedding_stats(&[0.0; 8]), (0.0, 0.0));
        let (nz, std) = embedding_stats(&[0.0, 2.0, 0.0, 2.0]);
        assert_eq!(nz, 0.5);
        assert!((std - 1.0).abs() < 1e-12);
    }

    fn weights(layer: &burn::nn::Linear) -> Vec<f32> {
        layer.weight.val().into_data().try_into_vec_as::<f32>().expect("f32")
    }

    /// One fine-tuning step with each freezing choice: frozen parts keep their weights, the
    /// others move.
    #[test]
    fn frozen_parts_stay_fixed_in_a_finetuning_step() {
        let device = cilp_train::device::train_device(cilp_train::device::DeviceSpec::Cpu).unwrap();
        for frozen in [FinetuneFrozen::None, FinetuneFrozen::ProjectorHead, FinetuneFrozen::Encoder] {
            device.seed(7);
            let model = apply_frozen(RgbToLidar::new(&device), frozen);
            let before =
                (weights(&model.image.head.layers[0]), weights(&model.projector.mlp.layers[0]), weights(&model.head.mlp.layers[0]));
            let rgb = Tensor::<4>::ones([2, 4, 64, 64], &device).mul_scalar(0.5);
            let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
            let loss = classification_loss(model.forward(rgb), targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let mut optim = adam_optimizer();
            let model: RgbToLidar = optim.step(1e-2, model, grads);
            let after = (weights(&model.image.head.layers[0]), weights(&model.projector.mlp.layers[0]), weights(&model.head.mlp.layers[0]));
            let (enc, proj, head) = (before.0 != after.0, before.1 != after.1, before.2 != after.2);
            match frozen {
                FinetuneFrozen::None => assert!(enc && proj && head, "{frozen:?}: {enc} {proj} {head}"),
                FinetuneFrozen::ProjectorHead => assert!(enc && !proj && !head, "{frozen:?}: {enc} {proj} {head}"),
                FinetuneFrozen::Encoder => assert!(!enc && proj && head, "{frozen:?}: {enc} {proj} {head}"),
            }
        }
    }
}
