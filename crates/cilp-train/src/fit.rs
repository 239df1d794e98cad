//! The one training loop.
//!
//! [`fit`] owns everything an epoch loop does around the model: seeded batching, the learning
//! rate of every step, the finiteness guard, the optimiser step, the epoch's metric rows,
//! validation, best-model selection, crash-safe checkpoints and their commit, the run summary,
//! progress, and resume. What differs between models and assessment stages (the forward pass and
//! loss of one batch, how a model is validated and what chooses the best one) is a
//! [`TrainStep`], in the spirit of burn's `TrainStep` / `InferenceStep`.
//!
//! A run folder is opened first ([`open_run`]: new, replaced or resumed), then given to [`fit`]
//! with the freshly initialised model. A resumed run restores the weights and Adam's moments of
//! its last committed epoch and continues after it; the batches of an epoch depend only on the
//! seed and the epoch, so a resumed run is bit-identical to one never interrupted.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use cilp_data::batch::Batches;
use cilp_track::metrics::EpochMetrics;
use cilp_track::names;
use cilp_track::run::{CreateMode, RunDir, RunStatus, RunSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub use crate::checkpoint::Score;
use crate::checkpoint::{Checkpoints, TrainState};
use crate::cores;
use crate::error::{Result, TrainError};
use crate::memory;
use crate::schedule::LrSchedule;

/// How a caller outside the loop (the Python package, which trains on a worker thread) watches
/// and stops a run: counters the loop updates at every step, and a stop flag it checks before
/// every step. A stopped run is marked `interrupted`, keeps its last committed epoch, and
/// `--resume` continues it. Clones share the state; the default is a fresh, unshared one.
#[derive(Debug, Clone, Default)]
pub struct Control(std::sync::Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    stop: std::sync::atomic::AtomicBool,
    epoch: std::sync::atomic::AtomicUsize,
    epochs: std::sync::atomic::AtomicUsize,
    step: std::sync::atomic::AtomicUsize,
    steps: std::sync::atomic::AtomicUsize,
    loss_bits: std::sync::atomic::AtomicU64,
    run: std::sync::Mutex<String>,
}

/// Where a watched run is (see [`Control::progress`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The run being trained (its display name), empty before the first.
    pub run: String,
    /// 1-based epoch being trained (0 before the first step) of `epochs`.
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done in this epoch, of `steps`.
    pub step: usize,
    pub steps: usize,
    /// Mean training loss of the epoch so far (NaN before its first step).
    pub loss: f64,
}

impl Control {
    /// Asks the loop to stop before its next step.
    pub fn stop(&self) {
        self.0.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`Control::stop`] was called.
    pub fn stop_requested(&self) -> bool {
        self.0.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The run's position now.
    pub fn progress(&self) -> Progress {
        use std::sync::atomic::Ordering::Relaxed;
        Progress {
            run: self.0.run.lock().map(|r| r.clone()).unwrap_or_default(),
            epoch: self.0.epoch.load(Relaxed),
            epochs: self.0.epochs.load(Relaxed),
            step: self.0.step.load(Relaxed),
            steps: self.0.steps.load(Relaxed),
            loss: f64::from_bits(self.0.loss_bits.load(Relaxed)),
        }
    }

    fn start_run(&self, name: &str, epochs: usize) {
        if let Ok(mut r) = self.0.run.lock() {
            *r = name.to_owned();
        }
        self.0.epochs.store(epochs, std::sync::atomic::Ordering::Relaxed);
    }

    fn at(&self, epoch: usize, step: usize, steps: usize, loss: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.epoch.store(epoch, Relaxed);
        self.0.step.store(step, Relaxed);
        self.0.steps.store(steps, Relaxed);
        self.0.loss_bits.store(loss.to_bits(), Relaxed);
    }
}

/// Test hooks, set by a test; none in a normal run (the binary reads them from
/// `CILP_TEST_ABORT_AT` / `CILP_TEST_NAN_AT`, as `EPOCH:STEP`, with its other switches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// Abort the process (no cleanup, like SIGKILL) when training reaches this `(epoch, step)`,
    /// so crash-and-resume can be tested end to end.
    pub abort_at: Option<(usize, usize)>,
    /// Replace this `(epoch, step)`'s loss with NaN, to test the divergence guard.
    pub nan_at: Option<(usize, usize)>,
}

/// What one training step computed: the loss to differentiate and, for classifiers, the
/// number of correct predictions in the batch.
pub struct StepOutput {
    /// Mean loss of the batch, a one-element tensor on the autodiff device.
    pub loss: Tensor<1>,
    /// Correct predictions in the batch (`None`: the step has no accuracy).
    pub correct: Option<usize>,
}

/// The validation of one epoch.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Mean validation loss.
    pub loss: f64,
    /// Validation accuracy, for models that have one.
    pub accuracy: Option<f64>,
    /// Validation samples seen.
    pub samples: usize,
    /// More columns of the validation row (retrieval, selection-set scores, ...).
    pub extra: Vec<(String, f64)>,
    /// What chooses the best model.
    pub score: Score,
}

impl Validation {
    /// A validation whose loss chooses the best model.
    pub fn by_loss(loss: f64, accuracy: Option<f64>, samples: usize) -> Validation {
        Validation { loss, accuracy, samples, extra: Vec::new(), score: Score::Loss { loss } }
    }
}

/// What the per-epoch line on stderr is made from.
pub struct EpochReport<'a> {
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub train_accuracy: Option<f64>,
    /// Learning rate of the epoch's first and last step.
    pub lr_first: f64,
    pub lr_last: f64,
    pub val: &'a Validation,
    /// Training + validation seconds of the epoch.
    pub seconds: f64,
    pub train_samples_per_s: f64,
    /// The epoch's model is the best so far.
    pub improved: bool,
}

/// A model (or assessment stage) as [`fit`] trains it. `Send + Sync` (and the model `Sync`):
/// its steps may run on another thread of the process (see [`crate::cores`]).
pub trait TrainStep: Send + Sync {
    /// The trained module, on the autodiff device.
    type Model: Module + Sync;

    /// The training examples, as the indices [`TrainStep::step`] is given batches of (dataset
    /// indices, or rows of a cached table).
    fn train_indices(&self) -> &[usize];

    /// Forward pass and loss of one batch; `None` skips the batch (no optimiser step).
    fn step(&mut self, model: &Self::Model, batch: &[usize]) -> Option<StepOutput>;

    /// Applied to the model after every optimiser step (CILP clamps its logit scale).
    fn after_step(&self, model: Self::Model) -> Self::Model {
        model
    }

    /// Validates the model after epoch `epoch` (epoch 0: the model before training, when
    /// [`TrainStep::validates_before_training`]).
    fn validate(&mut self, model: &Self::Model, epoch: usize) -> Result<Validation>;

    /// True when the untrained model is validated as epoch 0 and may be the best one.
    fn validates_before_training(&self) -> bool {
        false
    }

    /// More columns of the epoch's training row (CILP's logit scale).
    fn train_extra(&mut self, _model: &Self::Model) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Writes the epoch's artefacts into the run (TensorBoard images), after validation.
    fn record(&mut self, _run: &mut RunDir, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// The epoch's line on stderr (`None`: no line this epoch).
    fn describe(&self, report: &EpochReport) -> Option<String>;

    /// Re-applies what a model loaded from a checkpoint does not carry (parameters held fixed).
    fn restored(&self, model: Self::Model) -> Self::Model {
        model
    }
}

/// The least time between two checkpoint commits of a run by default (see
/// [`FitSettings::commit_every`]): one minute.
pub const DEFAULT_COMMIT_EVERY: Duration = Duration::from_secs(60);

static COMMIT_EVERY_MS: AtomicU64 = AtomicU64::new(DEFAULT_COMMIT_EVERY.as_millis() as u64);

/// The process's checkpoint interval, which the engine and the assessment put in their
/// [`FitSettings`] ([`DEFAULT_COMMIT_EVERY`] unless [`set_commit_every`] changed it).
pub fn commit_every() -> Duration {
    Duration::from_millis(COMMIT_EVERY_MS.load(Ordering::Relaxed))
}

/// Sets the process's checkpoint interval (the binary's `CILP_CHECKPOINT_EVERY`); zero commits
/// every epoch.
pub fn set_commit_every(every: Duration) {
    COMMIT_EVERY_MS.store(every.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// How [`fit`] trains: the loop's settings.
#[derive(Debug, Clone)]
pub struct FitSettings {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the shuffle of every epoch (with the epoch number).
    pub seed: u64,
    pub drop_last: bool,
    /// Base learning rate and its schedule over all steps of the run.
    pub lr: f64,
    pub schedule: LrSchedule,
    /// Draw a progress bar (only when stderr is a terminal).
    pub progress: bool,
    /// No per-epoch lines on stderr.
    pub quiet: bool,
    pub hooks: TestHooks,
    /// Progress counters and the stop flag (see [`Control`]).
    pub control: Control,
    /// The least time between two checkpoint commits: an epoch ending sooner than this after
    /// the last commit is not committed (its metric rows are logged; an improved epoch's model
    /// is kept in memory and becomes `best.bpk` at the next commit, or when the run stops or
    /// fails before one), so a killed run continues from a commit at most this old plus one
    /// epoch. The last epoch, and an epoch ending while a stop is asked, always
    /// commit; zero commits every epoch. Short epochs (the quick studies': seconds each) spend
    /// most of their checkpoint time on the optimiser state otherwise (156 MB a commit for a
    /// 13M-parameter model).
    pub commit_every: Duration,
}

/// What the run summary says about the run (written before the first step).
#[derive(Debug, Clone)]
pub struct RunInfo<'a> {
    /// Display name in messages (usually the run folder's name).
    pub name: &'a str,
    /// `summary.json`'s kind ("train", "cilp", "projector", "classifier").
    pub kind: &'a str,
    pub model: &'a str,
    pub parameters: u64,
    pub device: String,
    pub seed: u64,
}

/// A run folder opened for [`fit`]: new or replaced (its config written), or reopened to resume
/// (with the state of its last committed epoch, if any).
pub struct OpenRun {
    pub mode: CreateMode,
    pub run: RunDir,
    pub ckpt: Checkpoints,
    /// The committed state to continue from; `None`: train from the first epoch.
    pub resumed: Option<TrainState>,
}

/// Opens `runs_dir/name` for training: `New` and `Force` create it and write `config` first
/// (and log it to TensorBoard's HParams view with `hparam_metrics` as its metric columns);
/// `Resume` reopens it (the caller checks its config) and reads its last commit.
pub fn open_run<C: Serialize>(runs_dir: &Path, name: &str, mode: CreateMode, config: &C, hparam_metrics: &[&str]) -> Result<OpenRun> {
    let mut run = RunDir::create(runs_dir, name, mode)?;
    let ckpt = Checkpoints::new(run.checkpoints_dir());
    let resumed = match mode {
        CreateMode::Resume => ckpt.load_state()?,
        _ => {
            run.write_config(config)?;
            run.log_hparams(config, hparam_metrics)?;
            None
        }
    };
    Ok(OpenRun { mode, run, ckpt, resumed })
}

/// A finished [`fit`].
pub struct Fitted<M> {
    /// The model after the last epoch.
    pub model: M,
    pub state: TrainState,
    pub history: Vec<EpochMetrics>,
    pub summary: RunSummary,
    /// The run, still open (and locked) for the caller's last files; flushed.
    pub run: RunDir,
    pub ckpt: Checkpoints,
}

fn progress_bar(enabled: bool, len: usize, label: String) -> ProgressBar {
    let target = if enabled && std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let pb = ProgressBar::with_draw_target(Some(len as u64), target);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({eta})").expect("valid template").progress_chars("=> "),
    );
    pb.set_prefix(label);
    pb
}

/// A progress bar for a validation pass of `len` batches (hidden unless enabled and stderr is a
/// terminal).
pub fn validation_bar(enabled: bool, len: usize) -> ProgressBar {
    progress_bar(enabled, len, "validate".into())
}

fn to_bytes<M: Module>(model: &M) -> Result<burn::tensor::Bytes> {
    model.clone().into_record().into_bytes().map_err(|e| TrainError::Serialize { what: "the model", reason: e.to_string() })
}

fn optim_bytes(optim: &ModuleOptimizer) -> Result<burn::tensor::Bytes> {
    optim.into_bytes().map_err(|e| TrainError::Serialize { what: "the optimiser state", reason: e.to_string() })
}

fn val_row(epoch: usize, v: &Validation, seconds: f64, peak: Option<u64>) -> EpochMetrics {
    let mut m = EpochMetrics::new(epoch, names::VAL, v.loss);
    m.accuracy = v.accuracy;
    m.epoch_seconds = seconds;
    m.samples_per_s = if seconds > 0.0 { v.samples as f64 / seconds } else { 0.0 };
    m.peak_memory_bytes = peak;
    for (k, x) in &v.extra {
        m.extra.insert(k.clone(), *x);
    }
    m
}

/// Trains `model` in `open` with `step` for `settings.epochs` epochs (continuing after the
/// resumed epoch), and returns the model and the run's history (the best model is the run's
/// `best.bpk`).
///
/// Each epoch: the training batches (shuffled by seed and epoch), one optimiser step per batch
/// at the schedule's rate, a non-finite loss stops the run (summary `failed`, the last commit
/// kept); then validation, the metric rows, `best.bpk` when the epoch's [`Score`] beats the best
/// so far, the epoch's checkpoint committed by `last.json`, and the summary.
pub fn fit<S: TrainStep>(
    open: OpenRun,
    info: &RunInfo,
    settings: &FitSettings,
    step: &mut S,
    model: S::Model,
    optim: ModuleOptimizer,
) -> Result<Fitted<S::Model>> {
    let OpenRun { mode, mut run, ckpt, resumed } = open;
    // Subnormal floats slow every x86 SIMD operation by an order of magnitude (measured: a
    // projector stage at a third of its speed from its fifth epoch); flush them (a no-op when
    // switched off, or off x86-64).
    cilp_kernels::flush_denormals();
    let name = info.name;
    let (mut model, mut optim) = (model, optim);
    let mut state = TrainState::fresh();
    // The epoch `last.json` names: `state` runs ahead of it between commits.
    let mut committed = 0;
    match resumed {
        Some(st) => {
            let (m, o) = ckpt.restore(&st, model, optim)?;
            (model, optim) = (step.restored(m), o);
            run.resume_after(st.epoch)?;
            committed = st.epoch;
            state = st;
        }
        None if mode == CreateMode::Resume => {
            // Reopened before the first commit (killed, or `last.json` removed): the rows
            // logged since are not backed by a checkpoint; drop them so no epoch is listed twice.
            let mut dropped = run.resume_after(0)?;
            if step.validates_before_training() {
                dropped += run.drop_all_metrics()?;
            }
            if !settings.quiet {
                eprintln!(
                    "{name}: no committed checkpoint in {}; training starts again from epoch 1{}",
                    ckpt.dir().display(),
                    if dropped > 0 { format!(" ({dropped} uncommitted metric rows dropped)") } else { String::new() }
                );
            }
        }
        None => {}
    }
    let fresh = state.model_file.is_empty();
    let mut summary = match run.read_summary() {
        Ok(s) if !fresh => s,
        _ => RunSummary::started(name, info.kind),
    };
    summary.model = info.model.to_string();
    summary.parameters = info.parameters;
    summary.device = info.device.clone();
    summary.kernels = (info.device == "cpu").then(cilp_kernels::gemm_isa::describe);
    summary.seed = info.seed;
    summary.git_commit = cilp_track::run::git_commit();
    summary.status = RunStatus::Running;
    summary.finished_at = None;
    summary.message = None;
    run.write_summary(&summary)?;
    let mut history = run.read_metrics()?;

    if fresh && step.validates_before_training() {
        // Epoch 0: the untrained model, validated, recorded and committed like an epoch.
        let start = Instant::now();
        memory::reset_peak();
        let v = step.validate(&model.clone().valid(), 0)?;
        let row = val_row(0, &v, start.elapsed().as_secs_f64(), memory::peak_bytes());
        run.log_epoch(std::slice::from_ref(&row))?;
        history.push(row);
        let bytes = to_bytes(&model)?;
        state.best = Some(v.score);
        state.best_val_loss = v.score.loss();
        state.best_epoch = 0;
        state.elapsed_seconds += start.elapsed().as_secs_f64();
        state = ckpt.commit(state, &bytes, &optim_bytes(&optim)?, true)?;
        summary.update_from_metrics(&history);
        summary.total_seconds = state.elapsed_seconds;
        if settings.epochs == 0 {
            summary.finish(RunStatus::Completed);
        }
        run.write_summary(&summary)?;
    }

    let indices = step.train_indices().to_vec();
    let steps_per_epoch = Batches::new(&indices, settings.batch_size, None, 0, settings.drop_last).len();
    let total_steps = steps_per_epoch * settings.epochs;
    settings.control.start_run(info.name, settings.epochs);
    let mut last_commit = Instant::now();
    // The model of an improved epoch that was not committed: it becomes `best.bpk` at the next
    // commit, or when the run stops or fails before one (writing it at every such epoch cost the
    // quick studies a third of their checkpoint bytes).
    let mut pending_best: Option<burn::tensor::Bytes> = None;
    for epoch in state.epoch + 1..=settings.epochs {
        // ---- train
        let start = Instant::now();
        memory::reset_peak();
        let batches = Batches::new(&indices, settings.batch_size, Some(settings.seed), epoch, settings.drop_last);
        settings.control.at(epoch, 0, batches.len(), f64::NAN);
        let pb = progress_bar(settings.progress, batches.len(), format!("epoch {epoch}/{}", settings.epochs));
        let (mut loss_sum, mut correct, mut counted, mut n) = (0f64, 0usize, false, 0usize);
        let (mut lr_first, mut lr_last) = (f64::NAN, f64::NAN);
        for (i, batch) in batches.iter().enumerate() {
            if settings.hooks.abort_at == Some((epoch, i)) {
                std::process::abort(); // test hook: killed mid-step, like SIGKILL
            }
            if settings.control.stop_requested() {
                pb.abandon();
                if let Some(best) = pending_best.take() {
                    ckpt.save_best(&best)?;
                }
                let err = TrainError::Stopped { epoch, step: i, last_good_epoch: committed, run_dir: run.path().to_path_buf() };
                summary.finish(RunStatus::Interrupted);
                summary.message = Some(err.to_string());
                run.write_summary(&summary)?;
                return Err(err);
            }
            let lr = settings.schedule.lr(settings.lr, (epoch - 1) * steps_per_epoch + i, steps_per_epoch, total_steps);
            if i == 0 {
                lr_first = lr;
            }
            lr_last = lr;
            // On the compute pool in force now (`cores`: the main job's assessment widens part-way).
            let Some(out) = cores::run(|| step.step(&model, batch)) else { continue };
            let mut value: f32 = out.loss.clone().into_scalar();
            if settings.hooks.nan_at == Some((epoch, i)) {
                value = f32::NAN;
            }
            if !value.is_finite() {
                pb.abandon();
                if let Some(best) = pending_best.take() {
                    ckpt.save_best(&best)?;
                }
                let err = TrainError::NonFiniteLoss {
                    value: value as f64,
                    epoch,
                    step: i,
                    last_good_epoch: committed,
                    run_dir: run.path().to_path_buf(),
                };
                summary.finish(RunStatus::Failed);
                summary.message = Some(err.to_string());
                run.write_summary(&summary)?;
                return Err(err);
            }
            model = cores::run(|| {
                let grads = GradientsParams::from_grads(out.loss.backward(), &model);
                step.after_step(optim.step(lr, model, grads))
            });
            loss_sum += value as f64 * batch.len() as f64;
            if let Some(c) = out.correct {
                correct += c;
                counted = true;
            }
            n += batch.len();
            settings.control.at(epoch, i + 1, batches.len(), loss_sum / n as f64);
            pb.set_message(format!("loss {:.4}", loss_sum / n as f64));
            pb.inc(1);
        }
        pb.finish_and_clear();
        let train_seconds = start.elapsed().as_secs_f64();
        let mut train_row = EpochMetrics::new(epoch, names::TRAIN, loss_sum / n.max(1) as f64);
        train_row.accuracy = counted.then(|| correct as f64 / n.max(1) as f64);
        train_row.lr = Some(lr_first);
        if settings.schedule != LrSchedule::Constant {
            train_row.extra.insert("lr_end".into(), lr_last);
        }
        train_row.epoch_seconds = train_seconds;
        train_row.samples_per_s = if train_seconds > 0.0 { n as f64 / train_seconds } else { 0.0 };
        train_row.peak_memory_bytes = memory::peak_bytes();
        for (k, x) in step.train_extra(&model) {
            train_row.extra.insert(k, x);
        }

        // ---- validate
        let vstart = Instant::now();
        memory::reset_peak();
        let v = cores::run(|| step.validate(&model.clone().valid(), epoch))?;
        let val_seconds = vstart.elapsed().as_secs_f64();
        let vrow = val_row(epoch, &v, val_seconds, memory::peak_bytes());

        // ---- record and commit
        step.record(&mut run, epoch)?;
        let rows = [train_row, vrow];
        run.log_epoch(&rows)?;
        history.extend(rows.iter().cloned());
        let improved = v.score.beats(state.best_score().as_ref());
        if improved {
            state.best = Some(v.score);
            state.best_val_loss = v.score.loss();
            state.best_epoch = epoch;
        }
        state.epoch = epoch;
        state.elapsed_seconds += train_seconds + val_seconds;
        let due = epoch == settings.epochs || last_commit.elapsed() >= settings.commit_every || settings.control.stop_requested();
        if due {
            // An earlier uncommitted epoch is the best: its model first, so that the state
            // committed next names the `best.bpk` on disk.
            if let Some(best) = pending_best.take()
                && !improved
            {
                ckpt.save_best(&best)?;
            }
            state = ckpt.commit(state, &to_bytes(&model)?, &optim_bytes(&optim)?, improved)?;
            committed = epoch;
            last_commit = Instant::now();
        } else if improved {
            pending_best = Some(to_bytes(&model)?);
        }

        summary.update_from_metrics(&history);
        summary.total_seconds = state.elapsed_seconds;
        if epoch == settings.epochs {
            summary.finish(RunStatus::Completed);
        }
        run.write_summary(&summary)?;
        if !settings.quiet {
            let report = EpochReport {
                epoch,
                epochs: settings.epochs,
                train_loss: rows[0].loss,
                train_accuracy: rows[0].accuracy,
                lr_first,
                lr_last,
                val: &v,
                seconds: train_seconds + val_seconds,
                train_samples_per_s: rows[0].samples_per_s,
                improved,
            };
            if let Some(line) = step.describe(&report) {
                eprintln!("{line}");
            }
        }
    }
    if summary.status != RunStatus::Completed {
        // Resumed a run that had already finished: refresh the summary.
        summary.update_from_metrics(&history);
        summary.total_seconds = state.elapsed_seconds;
        summary.finish(RunStatus::Completed);
        run.write_summary(&summary)?;
    }
    run.flush()?;
    Ok(Fitted { model, state, history, summary, run, ckpt })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    /// A linear regression as a [`TrainStep`]: 24 rows of 4 features, target = sum of features.
    struct Line {
        x: Vec<f32>,
        y: Vec<f32>,
        rows: Vec<usize>,
        device: Device,
        epoch0: bool,
        validated: Vec<usize>,
    }

    impl Line {
        fn new(epoch0: bool) -> Line {
            let x: Vec<f32> = (0..24 * 4).map(|i| ((i * 37 % 11) as f32) / 11.0).collect();
            let y = x.chunks(4).map(|r| r.iter().sum()).collect();
            let device = crate::device::train_device(crate::device::DeviceSpec::Cpu).unwrap();
            Line { x, y, rows: (0..24).collect(), device, epoch0, validated: Vec::new() }
        }

        fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
            let x: Vec<f32> = rows.iter().flat_map(|&r| self.x[r * 4..r * 4 + 4].to_vec()).collect();
            let y: Vec<f32> = rows.iter().map(|&r| self.y[r]).collect();
            (Tensor::from_data(TensorData::new(x, [rows.len(), 4]), device), Tensor::from_data(TensorData::new(y, [rows.len(), 1]), device))
        }

        fn model(&self) -> Linear {
            // No random init: tests run in parallel threads that share the device's generator.
            LinearConfig::new(4, 1).with_initializer(burn::nn::Initializer::Constant { value: 0.1 }).init(&self.device)
        }
    }

    impl TrainStep for Line {
        type Model = Linear;

        fn train_indices(&self) -> &[usize] {
            &self.rows
        }

        fn step(&mut self, model: &Linear, batch: &[usize]) -> Option<StepOutput> {
            if batch.len() < 2 {
                return None;
            }
            let (x, y) = self.batch(batch, &self.device);
            Some(StepOutput { loss: cilp_models::loss::mse(model.forward(x), y), correct: None })
        }

        fn validate(&mut self, model: &Linear, epoch: usize) -> Result<Validation> {
            self.validated.push(epoch);
            let eval = self.device.clone().without_autodiff();
            let (x, y) = self.batch(&self.rows, &eval);
            let loss: f32 = cilp_models::loss::mse(model.forward(x), y).into_scalar();
            Ok(Validation::by_loss(loss as f64, None, self.rows.len()))
        }

        fn validates_before_training(&self) -> bool {
            self.epoch0
        }

        fn describe(&self, _: &EpochReport) -> Option<String> {
            None
        }
    }

    fn settings(epochs: usize) -> FitSettings {
        FitSettings {
            epochs,
            batch_size: 5,
            seed: 9,
            drop_last: false,
            lr: 0.05,
            schedule: LrSchedule::Constant,
            progress: false,
            quiet: true,
            hooks: TestHooks::default(),
            control: Control::default(),
            commit_every: Duration::ZERO,
        }
    }

    const INFO: RunInfo<'static> = RunInfo { name: "line", kind: "test", model: "linear", parameters: 5, device: String::new(), seed: 9 };

    #[derive(Serialize)]
    struct Config {
        epochs: usize,
    }

    fn train(dir: &Path, mode: CreateMode, step: &mut Line, epochs: usize) -> Result<Fitted<Linear>> {
        let open = open_run(dir, "line", mode, &Config { epochs }, &["val/loss"])?;
        let model = step.model();
        fit(open, &INFO, &settings(epochs), step, model, cilp_kernels::adam::adam_optimizer())
    }

    fn weights(m: &Linear) -> Vec<f32> {
        m.weight.val().into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// A CPU run's summary names the kernel set of each kind of product (rounding differs
    /// between sets); a run on another device names none.
    #[test]
    fn a_cpu_run_records_its_kernel_sets() {
        let tmp = tempfile::tempdir().unwrap();
        for (device, want) in [("cpu", true), ("wgpu", false)] {
            let dir = tmp.path().join(device);
            let open = open_run(&dir, "line", CreateMode::New, &Config { epochs: 1 }, &["val/loss"]).unwrap();
            let mut step = Line::new(false);
            let model = step.model();
            let info = RunInfo { device: device.into(), ..INFO };
            let f = fit(open, &info, &settings(1), &mut step, model, cilp_kernels::adam::adam_optimizer()).unwrap();
            let on_disk = cilp_track::read_summary(&dir.join("line")).unwrap();
            assert_eq!(on_disk.kernels, f.summary.kernels);
            match (want, &on_disk.kernels) {
                (true, Some(k)) => {
                    assert_eq!(*k, cilp_kernels::gemm_isa::describe());
                    assert!(k.contains("conv-train") && k.contains("linear-infer"), "{k}");
                }
                (false, None) => {}
                other => panic!("{device}: {other:?}"),
            }
        }
    }

    /// Two epochs, then the run reopened for a third, ends bit for bit where three epochs in one
    /// go end: the weights, Adam's moments and each epoch's batches are restored exactly.
    #[test]
    fn a_resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = train(&tmp.path().join("a"), CreateMode::New, &mut Line::new(false), 3).unwrap();
        let cut = tmp.path().join("b");
        train(&cut, CreateMode::New, &mut Line::new(false), 2).unwrap();
        let mut step = Line::new(false);
        let resumed = train(&cut, CreateMode::Resume, &mut step, 3).unwrap();
        assert_eq!(step.validated, vec![3], "only epoch 3 is trained after the resume");
        assert_eq!(weights(&whole.model), weights(&resumed.model));
        let losses = |f: &Fitted<Linear>| f.history.iter().map(|r| (r.epoch, r.split.clone(), r.loss.to_bits())).collect::<Vec<_>>();
        assert_eq!(losses(&whole), losses(&resumed));
        assert_eq!((resumed.state.epoch, resumed.summary.status), (3, RunStatus::Completed));
        assert!(whole.history[4].loss < whole.history[0].loss, "the model learns: {:?}", whole.history);
        // The best model of the run is kept as best.bpk, and it is the best epoch's.
        assert_eq!(resumed.state.best_epoch, 3);
        let best = crate::predict::load_record_file(Line::new(false).model(), &resumed.ckpt.best_model()).unwrap();
        assert_eq!(weights(&best), weights(&resumed.model));
    }

    /// A [`Line`] that asks its [`Control`] to stop after `left` steps (as the Python package
    /// does on Ctrl-C, from another thread).
    struct Stopper {
        line: Line,
        control: Control,
        left: usize,
    }

    impl TrainStep for Stopper {
        type Model = Linear;

        fn train_indices(&self) -> &[usize] {
            self.line.train_indices()
        }

        fn step(&mut self, model: &Linear, batch: &[usize]) -> Option<StepOutput> {
            self.left -= 1;
            if self.left == 0 {
                self.control.stop();
            }
            self.line.step(model, batch)
        }

        fn validate(&mut self, model: &Linear, epoch: usize) -> Result<Validation> {
            self.line.validate(model, epoch)
        }

        fn describe(&self, _: &EpochReport) -> Option<String> {
            None
        }
    }

    /// A stop asked through [`Control`] ends the run before its next step, marked interrupted
    /// with its last committed epoch kept; the progress counters say where it was; resumed, it
    /// ends bit for bit where an uninterrupted run ends.
    #[test]
    fn a_stopped_run_is_interrupted_and_resumes_bit_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = train(&tmp.path().join("a"), CreateMode::New, &mut Line::new(false), 3).unwrap();
        let cut = tmp.path().join("b");
        let s = settings(3);
        let open = open_run(&cut, "line", CreateMode::New, &Config { epochs: 3 }, &["val/loss"]).unwrap();
        // 24 rows in batches of 5: 5 steps an epoch; 7 steps end in epoch 2 after its step 2.
        let mut step = Stopper { line: Line::new(false), control: s.control.clone(), left: 7 };
        let model = step.line.model();
        let err = fit(open, &INFO, &s, &mut step, model, cilp_kernels::adam::adam_optimizer()).err().expect("stopped");
        assert!(matches!(err, TrainError::Stopped { epoch: 2, step: 2, last_good_epoch: 1, .. }), "{err}");
        let p = s.control.progress();
        assert_eq!((p.run.as_str(), p.epoch, p.epochs, p.step, p.steps), ("line", 2, 3, 2, 5));
        assert!(p.loss.is_finite());
        let summary = cilp_track::run::read_summary(&cut.join("line")).unwrap();
        assert_eq!(summary.status, RunStatus::Interrupted);
        assert!(summary.message.unwrap().contains("last committed epoch is 1"));
        let resumed = train(&cut, CreateMode::Resume, &mut Line::new(false), 3).unwrap();
        assert_eq!(weights(&whole.model), weights(&resumed.model));
        assert_eq!(resumed.summary.status, RunStatus::Completed);
    }

    /// With commits at most once an hour, epochs before the last are not committed but an
    /// improved one is `best.bpk` at once; a run stopped in its last epoch keeps no committed
    /// epoch, and resumed ends bit for bit where a run committing every epoch ends.
    #[test]
    fn epochs_within_the_interval_are_not_committed_and_resume_bit_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = train(&tmp.path().join("a"), CreateMode::New, &mut Line::new(false), 3).unwrap();
        let two = train(&tmp.path().join("two"), CreateMode::New, &mut Line::new(false), 2).unwrap();
        let cut = tmp.path().join("b");
        let s = FitSettings { commit_every: Duration::from_secs(3600), ..settings(3) };
        let open = open_run(&cut, "line", CreateMode::New, &Config { epochs: 3 }, &["val/loss"]).unwrap();
        // 5 steps an epoch: the 12th step is epoch 3's second.
        let mut step = Stopper { line: Line::new(false), control: s.control.clone(), left: 12 };
        let model = step.line.model();
        let err = fit(open, &INFO, &s, &mut step, model, cilp_kernels::adam::adam_optimizer()).err().expect("stopped");
        assert!(matches!(err, TrainError::Stopped { epoch: 3, step: 2, last_good_epoch: 0, .. }), "{err}");
        let ckpt = Checkpoints::new(cut.join("line").join("checkpoints"));
        assert!(ckpt.load_state().unwrap().is_none(), "nothing committed");
        let best = crate::predict::load_record_file(Line::new(false).model(), &ckpt.best_model()).unwrap();
        assert_eq!(two.state.best_epoch, 2);
        assert_eq!(weights(&best), weights(&two.model), "best.bpk is epoch 2's model");
        let open = open_run(&cut, "line", CreateMode::Resume, &Config { epochs: 3 }, &["val/loss"]).unwrap();
        let mut line = Line::new(false);
        let model = line.model();
        // Fresh settings: `s`'s control still asks to stop.
        let s = FitSettings { commit_every: Duration::from_secs(3600), ..settings(3) };
        let resumed = fit(open, &INFO, &s, &mut line, model, cilp_kernels::adam::adam_optimizer()).unwrap();
        assert_eq!(weights(&whole.model), weights(&resumed.model));
        assert_eq!((resumed.state.epoch, resumed.state.best_epoch, resumed.summary.status), (3, 3, RunStatus::Completed));
        let losses = |f: &Fitted<Linear>| f.history.iter().map(|r| (r.epoch, r.split.clone(), r.loss.to_bits())).collect::<Vec<_>>();
        assert_eq!(losses(&whole), losses(&resumed), "no epoch listed twice");
    }

    /// [`Line`] whose validation gets worse after `best_epoch`.
    struct WorseAfter {
        line: Line,
        best_epoch: usize,
    }

    impl TrainStep for WorseAfter {
        type Model = Linear;

        fn train_indices(&self) -> &[usize] {
            self.line.train_indices()
        }

        fn step(&mut self, model: &Linear, batch: &[usize]) -> Option<StepOutput> {
            self.line.step(model, batch)
        }

        fn validate(&mut self, model: &Linear, epoch: usize) -> Result<Validation> {
            let v = self.line.validate(model, epoch)?;
            Ok(if epoch > self.best_epoch { Validation::by_loss(1e3 + epoch as f64, None, v.samples) } else { v })
        }

        fn describe(&self, _: &EpochReport) -> Option<String> {
            None
        }
    }

    /// Within the commit interval the best epoch is not written when it ends; the run's last
    /// commit writes it: `best.bpk` is then the uncommitted epoch 1's model, not the committed
    /// epoch 3's, and the committed state names epoch 1.
    #[test]
    fn an_uncommitted_best_epoch_becomes_best_bpk_at_the_next_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let one = train(&tmp.path().join("one"), CreateMode::New, &mut Line::new(false), 1).unwrap();
        let s = FitSettings { commit_every: Duration::from_secs(3600), ..settings(3) };
        let open = open_run(&tmp.path().join("b"), "line", CreateMode::New, &Config { epochs: 3 }, &["val/loss"]).unwrap();
        let mut step = WorseAfter { line: Line::new(false), best_epoch: 1 };
        let model = step.line.model();
        let f = fit(open, &INFO, &s, &mut step, model, cilp_kernels::adam::adam_optimizer()).unwrap();
        assert_eq!((f.state.epoch, f.state.best_epoch), (3, 1));
        let best = crate::predict::load_record_file(Line::new(false).model(), &f.ckpt.best_model()).unwrap();
        assert_eq!(weights(&best), weights(&one.model), "best.bpk is epoch 1's model");
        assert_ne!(weights(&best), weights(&f.model), "not the last epoch's");
        // Its checksum sidecar matches it (`Checkpoints::read` checks files `last.json` names;
        // the best model is checked by `read_checkpoint_file` through the sidecar).
        crate::checkpoint::read_checkpoint_file(&f.ckpt.best_model()).unwrap();
    }

    /// A step that validates before training records epoch 0 as a row, commits it, and lets it
    /// be the best model; reopening a completed run trains nothing.
    #[test]
    fn epoch_zero_is_validated_committed_and_a_candidate() {
        let tmp = tempfile::tempdir().unwrap();
        let mut step = Line::new(true);
        let f = train(tmp.path(), CreateMode::New, &mut step, 0).unwrap();
        assert_eq!(step.validated, vec![0]);
        assert_eq!(f.history.len(), 1);
        assert_eq!((f.history[0].epoch, f.history[0].split.as_str()), (0, names::VAL));
        assert_eq!((f.state.epoch, f.state.best_epoch, f.summary.status), (0, 0, RunStatus::Completed));
        assert!(f.ckpt.best_model().is_file() && !f.state.model_file.is_empty(), "epoch 0 is committed");
        drop(f);
        let mut again = Line::new(true);
        let f = train(tmp.path(), CreateMode::Resume, &mut again, 2).unwrap();
        assert_eq!(again.validated, vec![1, 2], "epoch 0 is not validated again when resumed");
        assert_eq!(f.history.iter().filter(|r| r.split == names::VAL).count(), 3);
    }

    /// With the per-epoch cosine schedule every training row records its epoch's rate
    /// (PyTorch's CosineAnnealingLR with T_max = 3 at 0.05: 0.05, 0.0375, 0.0125).
    #[test]
    fn each_epoch_records_the_rate_of_its_schedule() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = settings(3);
        s.schedule = LrSchedule::Cosine;
        let open = open_run(tmp.path(), "line", CreateMode::New, &Config { epochs: 3 }, &[]).unwrap();
        let mut step = Line::new(false);
        let model = step.model();
        let f = fit(open, &INFO, &s, &mut step, model, cilp_kernels::adam::adam_optimizer()).unwrap();
        let lrs: Vec<f64> = f.history.iter().filter(|r| r.split == names::TRAIN).map(|r| r.lr.unwrap()).collect();
        for (a, b) in lrs.iter().zip([0.05, 0.0375, 0.0125]) {
            assert!((a - b).abs() < 1e-12, "{lrs:?}");
        }
        assert!(f.history.iter().all(|r| !r.extra.contains_key("lr_end") || r.split == names::TRAIN));
    }

    /// A NaN loss stops the run with the step named; the summary says failed; the last commit is
    /// kept.
    #[test]
    fn a_nan_loss_stops_the_run_and_keeps_the_last_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = settings(3);
        s.hooks.nan_at = Some((2, 1));
        let open = open_run(tmp.path(), "line", CreateMode::New, &Config { epochs: 3 }, &[]).unwrap();
        let mut step = Line::new(false);
        let model = step.model();
        let Err(e) = fit(open, &INFO, &s, &mut step, model, cilp_kernels::adam::adam_optimizer()) else { panic!("NaN must stop the run") };
        assert!(matches!(e, TrainError::NonFiniteLoss { epoch: 2, step: 1, last_good_epoch: 1, .. }), "{e}");
        let summary = cilp_track::run::read_summary(&tmp.path().join("line")).unwrap();
        assert_eq!(summary.status, RunStatus::Failed);
        let state = Checkpoints::new(tmp.path().join("line/checkpoints")).load_state().unwrap().unwrap();
        assert_eq!(state.epoch, 1);
    }

    #[test]
    fn loss_scores_prefer_lower_losses_and_any_number_to_nan() {
        let l = |loss| Score::Loss { loss };
        assert!(l(0.5).beats(None));
        assert!(l(0.4).beats(Some(&l(0.5))));
        assert!(!l(0.5).beats(Some(&l(0.5))), "a tie keeps the earlier epoch");
        assert!(!l(0.6).beats(Some(&l(0.5))));
        assert!(l(0.6).beats(Some(&l(f64::NAN))), "a real loss beats a NaN best");
        assert!(!l(f64::NAN).beats(Some(&l(0.5))));
    }

    #[test]
    fn accuracy_scores_prefer_accuracy_then_lower_loss() {
        let s = |accuracy, loss| Score::AccuracyThenLoss { accuracy, loss };
        assert!(s(0.9, 0.5).beats(Some(&s(0.8, 0.1))));
        assert!(!s(0.8, 0.5).beats(Some(&s(0.9, 0.9))));
        assert!(s(0.9, 0.4).beats(Some(&s(0.9, 0.5))));
        assert!(!s(0.9, 0.5).beats(Some(&s(0.9, 0.5))));
        assert!(Score::Last.beats(Some(&s(1.0, 0.0))), "with no selection rule the last epoch is the best");
    }

    #[test]
    fn scores_survive_last_json() {
        for s in [Score::Loss { loss: f64::INFINITY }, Score::AccuracyThenLoss { accuracy: 0.75, loss: 0.1 }, Score::Last] {
            let json = serde_json::to_string(&s).unwrap();
            let back: Score = serde_json::from_str(&json).unwrap();
            assert_eq!(format!("{back:?}"), format!("{s:?}"), "{json}");
        }
    }
}
