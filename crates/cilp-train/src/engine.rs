//! The supervised training loop shared by every classifier in the zoo.
//!
//! One call to [`train`] runs a complete, resumable run: it writes the resolved config first,
//! then per epoch trains, validates, appends metrics (`metrics.jsonl`/`.csv`), logs TensorBoard
//! scalars, checkpoints atomically and updates `summary.json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use cilp_data::batch::Batches;
use cilp_data::dataset::Dataset;
use cilp_kernels::adam::adam_optimizer;
use cilp_models::{Classifier, build_classifier, model_info};
use cilp_track::metrics::EpochMetrics;
use cilp_track::names;
use cilp_track::run::{CreateMode, RunDir, RunStatus, RunSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::batching::make_batch;
use crate::checkpoint::{Checkpoints, TrainState};
use crate::config::TrainConfig;
use crate::device::train_device;
use crate::error::{Result, TrainError};
use crate::memory;

/// Where a run goes and how it is shown.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent directory of run directories.
    pub runs_dir: PathBuf,
    /// Run directory name (defaults to the model name).
    pub name: Option<String>,
    /// New run, overwrite (`--force`) or continue (`--resume`).
    pub mode: CreateMode,
    /// Show progress bars (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Print one line per epoch to stderr.
    pub quiet: bool,
}

impl RunOptions {
    pub fn new(runs_dir: impl Into<PathBuf>) -> Self {
        RunOptions { runs_dir: runs_dir.into(), name: None, mode: CreateMode::New, progress: true, quiet: false }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub summary: RunSummary,
    pub history: Vec<EpochMetrics>,
}

pub use crate::data::PreparedData;

/// Mean loss and accuracy of one pass.
struct PassStats {
    loss: f64,
    accuracy: f64,
    samples: usize,
    seconds: f64,
    peak: Option<u64>,
}

/// Counts correct predictions in a batch of logits `[B, 1 | C]`.
fn count_correct(logits: &Tensor<2>, targets: &[i64]) -> usize {
    let [b, c] = logits.dims();
    let values: Vec<f32> = logits.to_data().try_to_vec().expect("logits are f32");
    (0..b)
        .filter(|&i| {
            let row = &values[i * c..(i + 1) * c];
            let pred = if c == 1 {
                (row[0] > 0.0) as i64
            } else {
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (j, &v)| if v > best.1 { (j, v) } else { best }).0 as i64
            };
            pred == targets[i]
        })
        .count()
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

/// Evaluates a model (without autodiff) on `indices`.
pub fn evaluate(model: &Classifier, data: &Dataset, indices: &[usize], cfg: &TrainConfig, device: &Device) -> (f64, f64) {
    let s = eval_pass(model, data, indices, cfg, device, None);
    (s.loss, s.accuracy)
}

fn eval_pass(
    model: &Classifier,
    data: &Dataset,
    indices: &[usize],
    cfg: &TrainConfig,
    device: &Device,
    pb: Option<&ProgressBar>,
) -> PassStats {
    let start = Instant::now();
    memory::reset_peak();
    let kinds = model.inputs();
    let (mut loss_sum, mut correct, mut n) = (0f64, 0usize, 0usize);
    let batches = Batches::new(indices, cfg.batch_size, None, 0, false);
    for batch in batches.iter() {
        let (inputs, targets, target_vals) = make_batch(data, batch, &kinds, cfg.data.xyza, device);
        let logits = model.forward(&inputs);
        let loss: f32 = model.loss(logits.clone(), targets).into_scalar();
        loss_sum += loss as f64 * batch.len() as f64;
        correct += count_correct(&logits, &target_vals);
        n += batch.len();
        if let Some(pb) = pb {
            pb.inc(1);
        }
    }
    PassStats {
        loss: if n > 0 { loss_sum / n as f64 } else { f64::NAN },
        accuracy: if n > 0 { correct as f64 / n as f64 } else { f64::NAN },
        samples: n,
        seconds: start.elapsed().as_secs_f64(),
        peak: memory::peak_bytes(),
    }
}

fn to_rows(epoch: usize, train: &PassStats, val: &PassStats, lr: f64) -> [EpochMetrics; 2] {
    let row = |split: &str, s: &PassStats, lr: Option<f64>| {
        let mut m = EpochMetrics::new(epoch, split, s.loss);
        m.accuracy = Some(s.accuracy);
        m.lr = lr;
        m.epoch_seconds = s.seconds;
        m.samples_per_s = if s.seconds > 0.0 { s.samples as f64 / s.seconds } else { 0.0 };
        m.peak_memory_bytes = s.peak;
        m
    };
    [row(names::TRAIN, train, Some(lr)), row(names::VAL, val, None)]
}

/// Test hooks, read from the environment as `EPOCH:STEP`:
/// - `CILP_TEST_ABORT_AT` aborts the process (no cleanup, like SIGKILL) when training reaches
///   that step, so crash-and-resume can be tested end to end;
/// - `CILP_TEST_NAN_AT` replaces that step's loss with NaN, to test the divergence guard.
pub(crate) fn step_hook(var: &str) -> Option<(usize, usize)> {
    let v = std::env::var(var).ok()?;
    let (e, s) = v.split_once(':')?;
    Some((e.parse().ok()?, s.parse().ok()?))
}

/// Runs (or resumes) one supervised training run and returns its summary.
pub fn train(cfg: &TrainConfig, data: &PreparedData, opts: &RunOptions) -> Result<TrainOutcome> {
    cfg.validate().map_err(TrainError::Config)?;
    let info = model_info(&cfg.model)?;
    // Settings that would fail later are refused before the run folder is created: a failed
    // try must not leave a folder holding only a config, which blocks the next try.
    if info.task != cilp_models::ModelTask::Classification {
        return Err(cilp_models::ModelError::NotAClassifier { name: cfg.model.clone(), task: info.task }.into());
    }
    let device = train_device(cfg.device)?;
    let name = opts.name.clone().unwrap_or_else(|| cfg.model.clone());
    let mut run = RunDir::create(&opts.runs_dir, &name, opts.mode)?;
    let ckpt = Checkpoints::new(run.checkpoints_dir());
    let resumed = match opts.mode {
        CreateMode::Resume => ckpt.load_state()?,
        _ => None,
    };
    if opts.mode == CreateMode::Resume {
        // A resumed run keeps its experiment; only what `resume_changes` allows may differ, and
        // is then recorded in its config. The config (and the summary) of a run whose first
        // epoch never committed still apply: that run starts again from epoch 1.
        let saved: TrainConfig = run.read_config()?;
        let done = resumed.as_ref().map_or(0, |s| s.epoch);
        let changes = saved
            .resume_changes(cfg, done)
            .map_err(|e| TrainError::Config(format!("{}: {e}", run.path().join(cilp_track::run::CONFIG_TOML).display())))?;
        if !changes.is_empty() {
            run.write_config(cfg)?;
            if !opts.quiet {
                let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
                eprintln!("{name}: resuming with {} (recorded in its config.toml)", list.join(", "));
            }
        }
        if let Some(st) = &resumed {
            let completed = run.read_summary().ok().filter(|s| s.status == RunStatus::Completed);
            if st.epoch >= cfg.epochs
                && let Some(summary) = completed
            {
                if !opts.quiet {
                    eprintln!(
                        "{name}: already completed all {} epochs in {}; nothing to resume (pass --epochs N to train further)",
                        cfg.epochs,
                        run.path().display()
                    );
                }
                let history = run.read_metrics()?;
                return Ok(TrainOutcome { run_dir: run.path().to_path_buf(), summary, history });
            }
        } else {
            // Killed (or `last.json` removed) before the first commit: rows logged since are
            // not backed by a checkpoint; drop them so epoch 1 is not listed twice.
            let dropped = run.resume_after(0)?;
            if !opts.quiet {
                eprintln!(
                    "{name}: no committed checkpoint in {}; training starts again from epoch 1{}",
                    ckpt.dir().display(),
                    if dropped > 0 { format!(" ({dropped} uncommitted metric rows dropped)") } else { String::new() }
                );
            }
        }
    } else {
        run.write_config(cfg)?;
    }

    let eval_device = device.clone().without_autodiff();
    device.seed(cfg.seed);
    let mut model = build_classifier(&cfg.model, &device)?;
    let mut optim = adam_optimizer();
    let mut state = TrainState::fresh();
    if let Some(st) = resumed {
        (model, optim) = ckpt.restore(&st, model, optim)?;
        run.resume_after(st.epoch)?;
        state = st;
    }

    if state.epoch == 0 {
        run.log_hparams(cfg, &[names::VAL_LOSS, names::VAL_ACCURACY, names::TRAIN_LOSS])?;
    }
    let mut summary = match run.read_summary() {
        Ok(s) if state.epoch > 0 => s,
        _ => RunSummary::started(&name, "train"),
    };
    summary.model = cfg.model.clone();
    summary.parameters = info.parameters as u64;
    summary.device = cfg.device.to_string();
    summary.seed = cfg.seed;
    summary.git_commit = cilp_track::run::git_commit();
    summary.status = RunStatus::Running;
    summary.finished_at = None;
    summary.message = None;
    run.write_summary(&summary)?;
    let kinds = model.inputs();
    let abort_at = step_hook("CILP_TEST_ABORT_AT");
    let nan_at = step_hook("CILP_TEST_NAN_AT");
    let mut history = run.read_metrics()?;

    for epoch in state.epoch + 1..=cfg.epochs {
        // ---- train
        let start = Instant::now();
        memory::reset_peak();
        let batches = Batches::new(&data.split.train, cfg.batch_size, Some(cfg.seed), epoch, cfg.drop_last);
        let pb = progress_bar(opts.progress, batches.len(), format!("epoch {epoch}/{}", cfg.epochs));
        let (mut loss_sum, mut correct, mut n) = (0f64, 0usize, 0usize);
        for (step, batch) in batches.iter().enumerate() {
            if abort_at == Some((epoch, step)) {
                std::process::abort();
            }
            let (inputs, targets, target_vals) = make_batch(&data.dataset, batch, &kinds, cfg.data.xyza, &device);
            let logits = model.forward(&inputs);
            let loss = model.loss(logits.clone(), targets);
            let mut loss_val: f32 = loss.clone().into_scalar();
            if nan_at == Some((epoch, step)) {
                loss_val = f32::NAN;
            }
            if !loss_val.is_finite() {
                pb.abandon();
                let err = TrainError::NonFiniteLoss {
                    value: loss_val as f64,
                    epoch,
                    step,
                    last_good_epoch: state.epoch,
                    run_dir: run.path().to_path_buf(),
                };
                summary.finish(RunStatus::Failed);
                summary.message = Some(err.to_string());
                run.write_summary(&summary)?;
                return Err(err);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
            loss_sum += loss_val as f64 * batch.len() as f64;
            correct += count_correct(&logits, &target_vals);
            n += batch.len();
            pb.set_message(format!("loss {:.4}", loss_sum / n as f64));
            pb.inc(1);
        }
        pb.finish_and_clear();
        let train_stats = PassStats {
            loss: loss_sum / n.max(1) as f64,
            accuracy: correct as f64 / n.max(1) as f64,
            samples: n,
            seconds: start.elapsed().as_secs_f64(),
            peak: memory::peak_bytes(),
        };
        // ---- validate
        let valid = model.valid();
        let vpb = progress_bar(opts.progress, data.split.val.len().div_ceil(cfg.batch_size), "validate".into());
        let val_stats = eval_pass(&valid, &data.dataset, &data.split.val, cfg, &eval_device, Some(&vpb));
        vpb.finish_and_clear();

        // ---- record
        let rows = to_rows(epoch, &train_stats, &val_stats, cfg.lr);
        run.log_epoch(&rows)?;
        history.extend(rows.iter().cloned());
        let improved = val_stats.loss < state.best_val_loss;
        if improved {
            state.best_val_loss = val_stats.loss;
            state.best_epoch = epoch;
        }
        let model_bytes = model.clone().into_record().into_bytes().map_err(|e| TrainError::Other(e.to_string()))?;
        if improved {
            ckpt.save_best(&model_bytes)?;
        }
        let optim_bytes = optim.into_bytes().map_err(|e| TrainError::Other(e.to_string()))?;
        state.epoch = epoch;
        state.elapsed_seconds += train_stats.seconds + val_stats.seconds;
        state = ckpt.save(state, &model_bytes, &optim_bytes)?;

        summary.update_from_metrics(&history);
        summary.total_seconds = state.elapsed_seconds;
        if epoch == cfg.epochs {
            summary.finish(RunStatus::Completed);
        }
        run.write_summary(&summary)?;
        if !opts.quiet {
            eprintln!(
                "{name}: epoch {epoch}/{}  train loss {:.4} acc {:.2}%  val loss {:.4} acc {:.2}%  {:.1}s ({:.0} samples/s){}",
                cfg.epochs,
                train_stats.loss,
                100.0 * train_stats.accuracy,
                val_stats.loss,
                100.0 * val_stats.accuracy,
                train_stats.seconds + val_stats.seconds,
                rows[0].samples_per_s,
                if improved { "  *best" } else { "" }
            );
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
    Ok(TrainOutcome { run_dir: run.path().to_path_buf(), summary, history })
}

/// Like [`train`], but idempotent, for pipelines such as `cilp run`: a run directory that
/// already holds a *completed* run of the same config is reused as it is, an interrupted one
/// with the same config is resumed, and one with a different config is an error (unless
/// `opts.mode` is `Force`, which retrains from scratch).
pub fn train_or_reuse(cfg: &TrainConfig, data: &PreparedData, opts: &RunOptions) -> Result<TrainOutcome> {
    let name = opts.name.clone().unwrap_or_else(|| cfg.model.clone());
    let dir = opts.runs_dir.join(&name);
    if opts.mode == CreateMode::Force || !cilp_track::run::holds_run(&dir) {
        let mut o = opts.clone();
        if o.mode == CreateMode::Resume {
            o.mode = CreateMode::New;
        }
        return train(cfg, data, &o);
    }
    let existing = RunDir::open(&dir)?;
    let saved: Option<TrainConfig> = existing.read_config().ok();
    if saved.as_ref() != Some(cfg) {
        return Err(TrainError::Config(format!("{}: holds a run with a different config; pass --force to replace it", dir.display())));
    }
    if let Ok(summary) = existing.read_summary()
        && summary.status == RunStatus::Completed
    {
        // Reused without being reopened: drop what a killed writer left half-written.
        cilp_track::atomic::remove_stale_temp_files(&dir);
        cilp_track::atomic::remove_stale_temp_files(&existing.checkpoints_dir());
        if !opts.quiet {
            eprintln!("{name}: reusing the completed run in {}", dir.display());
        }
        let history = existing.read_metrics()?;
        return Ok(TrainOutcome { run_dir: dir, summary, history });
    }
    let mut o = opts.clone();
    o.mode = CreateMode::Resume;
    train(cfg, data, &o)
}
