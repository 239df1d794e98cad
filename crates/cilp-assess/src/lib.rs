//! NVIDIA's graded assessment (`cilp assess`): contrastive image/LiDAR pretraining (CILP), the
//! LiDAR classifier, the projector from CILP image embeddings to the LiDAR classifier's
//! embedding, and the RGB -> LiDAR classifier, each stage a run directory.
//!
//! Layout of the output directory `OUT` (see [`run_assessment`]):
//!
//! | path | what |
//! |---|---|
//! | `assess.toml`, `assess.json` | the resolved [`AssessConfig`], written first |
//! | `cilp/` | run: CILP pretraining (metrics with retrieval R@1/R@5/mean rank, logit scale, similarity heatmap in TensorBoard) |
//! | `lidar-classifier/` | run: the LiDAR classifier, only when it is trained here (no `--lidar-classifier`) |
//! | `projector/` | run: the projector (MSE on cached embeddings) |
//! | `rgb-to-lidar/` | run: the fine-tuned RGB -> LiDAR classifier; `cilp predict --checkpoint OUT/rgb-to-lidar` |
//! | `summary.json` | the [`AssessSummary`] (thresholds, pass flags, retrieval, ...) |
//! | `study_table.json` | the thresholds table for the HTML report |
//! | `similarity_matrix.png`, `predictions.png`, `predictions.md` | visuals |
//!
//! The assessment's own config is `assess.toml` rather than `config.toml` so that `OUT` is a
//! group of runs (not a run) for `cilp runs list` and the report.
//!
//! The code: [`config`] (what determines an assessment, its presets), [`stages`] (the four
//! stages, each trained by [`cilp_train::fit`]), [`summary`] (grading and the summary), and here
//! [`run_assessment`], which runs the stages in order.

pub mod config;
pub mod probe;
pub mod retrieval;
pub mod seed;
pub mod stages;
pub mod summary;
pub mod visuals;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use cilp_models::RgbToLidar;

use self::config::StageRunConfig;
pub use self::config::{AssessConfig, AssessPreset, FinetuneFrozen, StageConfig};
use self::stages::{
    accuracy_of, cilp_stage, classifier_stage, embedding_stats, lidar_classifier_embeddings, lidar_stage, projector_stage, say,
};
pub use self::summary::{AssessSummary, FinetuneSelection, LIDAR_TARGET_MIN_ACCURACY, LidarClassifierInfo, Passed, ThresholdRow, grade};
use self::visuals::predictions_markdown;
use cilp_train::device::train_device;
use cilp_train::error::{Result, TrainError};

/// NVIDIA's pass threshold: CILP validation loss (NVIDIA loss) below this.
pub const CILP_LOSS_THRESHOLD: f64 = 3.2;
/// NVIDIA's pass threshold: projector validation MSE below this.
pub const PROJECTOR_MSE_THRESHOLD: f64 = 2.5;
/// NVIDIA's pass threshold: classifier accuracy above this on each graded batch.
pub const ACCURACY_THRESHOLD: f64 = 0.95;
/// Validation batches graded for accuracy.
pub const GRADED_BATCHES: usize = 5;
/// Share of the training pairs held out of fine-tuning to choose the graded epoch.
pub const DEFAULT_SELECTION_FRACTION: f64 = 0.1;
/// Added to the seed for the selection hold-out's generator.
const SELECTION_SEED_OFFSET: u64 = 0x5e1ec7;
/// Extra metrics of the fine-tuning stage's validation rows: the selection set's accuracy and loss.
pub const SELECTION_ACCURACY: &str = "selection/accuracy";
pub const SELECTION_LOSS: &str = "selection/loss";

/// Stage run names.
pub const CILP_RUN: &str = "cilp";
pub const LIDAR_RUN: &str = "lidar-classifier";
pub const PROJECTOR_RUN: &str = "projector";
pub const CLASSIFIER_RUN: &str = "rgb-to-lidar";
/// The assessment's resolved config in `OUT`.
pub const ASSESS_TOML: &str = "assess.toml";
/// Tag of the sample-prediction image (the Markdown table is [`names::TEXT_PREDICTIONS`]).
pub const IMAGE_PREDICTIONS: &str = "val/prediction_samples";

/// Where the assessment goes and how it reports progress.
#[derive(Debug, Clone)]
pub struct AssessOptions {
    /// Output directory (a group of stage runs).
    pub out: PathBuf,
    /// Replace an existing assessment in `out`.
    pub force: bool,
    /// Keep `out` and continue it: each stage whose folder holds the same config resumes after
    /// its last committed epoch, or is reused when complete. The projector and fine-tuning
    /// stages only when the whole assessment config is unchanged and no stage before them
    /// trained in this invocation (their configs do not pin the weights they are built on).
    pub resume: bool,
    /// No per-epoch lines on stderr.
    pub quiet: bool,
    /// Test hooks passed to every stage (none in a normal assessment).
    pub hooks: cilp_train::fit::TestHooks,
    /// Progress counters and the stop flag, shared by every stage.
    pub control: cilp_train::fit::Control,
}

/// Prepares `opts.out`: refuses to overwrite anything without `force`, and with `force` only
/// deletes a previous assessment (or an empty directory).
fn prepare_out(opts: &AssessOptions) -> Result<()> {
    let out = &opts.out;
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(TrainError::io("read", out))?.next().is_none();
        if !empty {
            let ours = out.join(ASSESS_TOML).is_file() || out.join(cilp_track::run::SUMMARY_JSON).is_file();
            if opts.resume && ours_or_stages(out) {
                return Ok(());
            }
            if !opts.force {
                return Err(TrainError::Config(format!(
                    "{} already exists and is not empty; pass --force to replace {} (or --resume to continue it)",
                    out.display(),
                    if ours { "the previous assessment" } else { "it" }
                )));
            }
            if !ours {
                return Err(TrainError::Config(format!(
                    "{} is not empty and does not hold an assessment (no {ASSESS_TOML}); refusing to delete it",
                    out.display()
                )));
            }
            std::fs::remove_dir_all(out).map_err(TrainError::io("delete", out))?;
        }
    }
    std::fs::create_dir_all(out).map_err(TrainError::io("create", out))?;
    Ok(())
}

/// True when `out` holds an assessment or at least its first stage (NVIDIA's CILP stage, the
/// seed variant's LiDAR classifier).
fn ours_or_stages(out: &Path) -> bool {
    out.join(ASSESS_TOML).is_file()
        || out.join(cilp_track::run::SUMMARY_JSON).is_file()
        || out.join(CILP_RUN).join(cilp_track::run::SUMMARY_JSON).is_file()
        || out.join(seed::SEED_LIDAR_RUN).join(cilp_track::run::SUMMARY_JSON).is_file()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    cilp_track::atomic::write_atomic(path, bytes)?;
    Ok(())
}

/// What [`run_assessment`] returns.
#[derive(Debug, Clone)]
pub struct AssessOutcome {
    pub summary: AssessSummary,
    pub out: PathBuf,
}

/// Opens `opts.out` for an assessment of config `cfg` (either variant): takes the folder's
/// lock (held until the returned guard is dropped), prepares the folder, and writes `cfg` as
/// `assess.toml` and `assess.json`. Returns the lock and whether the folder's previous config
/// (with `--resume`) was this one.
fn open_assessment<C>(cfg: &C, opts: &AssessOptions) -> Result<(cilp_track::FolderLock, bool)>
where
    C: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    // One assessment per OUT folder at a time; held until the end (the lock file is beside
    // OUT, so --force can delete and re-create OUT while holding it). A second one is refused
    // at once with cilp_track::Error::Locked naming the holder's pid.
    let lock = cilp_track::FolderLock::acquire(&opts.out, "assessment folder")?;
    prepare_out(opts)?;
    // With --resume: the config the folder's stages were trained under, read before it is
    // replaced by this one.
    let previous: Option<C> = if opts.resume {
        cilp_data::io::read_bounded_to_string(&opts.out.join(ASSESS_TOML), 1 << 20, "an assessment config (TOML)")
            .ok()
            .and_then(|t| toml::from_str(&t).ok())
    } else {
        None
    };
    let unchanged = previous.as_ref() == Some(cfg);
    let toml = toml::to_string_pretty(cfg).map_err(|e| TrainError::Serialize { what: "the assessment config", reason: e.to_string() })?;
    write_file(&opts.out.join(ASSESS_TOML), toml.as_bytes())?;
    write_file(
        &opts.out.join("assess.json"),
        serde_json::to_string_pretty(cfg)
            .map_err(|e| TrainError::Serialize { what: "the assessment config", reason: e.to_string() })?
            .as_bytes(),
    )?;
    Ok((lock, unchanged))
}

/// Runs the whole assessment into `opts.out` and writes `summary.json` and
/// `study_table.json` there.
pub fn run_assessment(cfg: &AssessConfig, opts: &AssessOptions) -> Result<AssessOutcome> {
    cfg.validate().map_err(TrainError::Config)?;
    let t = Instant::now();
    let (_lock, unchanged) = open_assessment(cfg, opts)?;

    let (data, report) = cilp_train::data::prepare(&cfg.data, cfg.seed)?;
    if data.split.train.len() < cfg.batch_size || data.split.val.len() < 2 {
        return Err(TrainError::Config(format!(
            "too little data: {} training and {} validation samples (need a full batch of {} and 2 validation samples); use more --limit-per-class",
            data.split.train.len(),
            data.split.val.len(),
            cfg.batch_size
        )));
    }
    say(
        opts.quiet,
        format!(
            "assess: {} pairs ({} train / {} val), CILP loss {}, device {}",
            report.total_pairs(),
            data.split.train.len(),
            data.split.val.len(),
            cfg.cilp_model(),
            cfg.device
        ),
    );
    let device = train_device(cfg.device)?;
    let eval = device.clone().without_autodiff();
    if cfg.lidar_classifier.is_some() {
        // A resumed folder may hold a LiDAR classifier run of an earlier config: not ours now.
        let stale = opts.out.join(LIDAR_RUN);
        if stale.join(cilp_track::run::SUMMARY_JSON).is_file() {
            std::fs::remove_dir_all(&stale).map_err(TrainError::io("delete", &stale))?;
        }
    }

    let (cilp, cilp_trained) = cilp_stage(cfg, &data, opts, &device)?;
    let (lidar, mut lidar_info, lidar_trained) = lidar_stage(cfg, &data, opts, &device)?;
    let (lidar_emb, lidar_logits) = lidar_classifier_embeddings(&lidar.clone().valid(), &data.dataset, &data.split.val, &eval);
    lidar_info.val_accuracy = accuracy_of(&lidar_logits, &data.dataset, &data.split.val);
    let (nonzero, std) = embedding_stats(&lidar_emb);
    say(
        opts.quiet,
        format!(
            "lidar classifier: validation accuracy on depth {:.2}%; validation embeddings {:.1}% non-zero, std {:.3}",
            100.0 * lidar_info.val_accuracy,
            100.0 * nonzero,
            std
        ),
    );
    let may_resume = unchanged && !cilp_trained && !lidar_trained;
    let (projector, projector_trained) = projector_stage(cfg, &data, opts, &device, (&cilp.model, &lidar), may_resume)?;
    let rgb2lidar = RgbToLidar::from_parts(cilp.model.clone(), projector.model.clone(), lidar);
    let cls = classifier_stage(cfg, &data, opts, &device, rgb2lidar, may_resume && !projector_trained)?;

    // ---- summary
    let min_batch = cls.batch_accuracies.iter().copied().fold(f64::INFINITY, f64::min);
    let lidar_usable = lidar_info.val_accuracy >= LIDAR_TARGET_MIN_ACCURACY;
    if !lidar_usable {
        say(
            opts.quiet,
            format!(
                "warning: the LiDAR classifier is at {:.2}% validation accuracy (< {}%): its embedding is no usable projector target, so the projector threshold fails",
                100.0 * lidar_info.val_accuracy,
                100.0 * LIDAR_TARGET_MIN_ACCURACY
            ),
        );
    }
    let passed = grade(cilp.val_loss_nvidia, projector.val_mse, lidar_info.val_accuracy, &cls.batch_accuracies);
    let thresholds = vec![
        ThresholdRow {
            metric: "CILP validation loss (NVIDIA loss)".into(),
            value: cilp.val_loss_nvidia,
            threshold: format!("< {CILP_LOSS_THRESHOLD}"),
            passed: passed.cilp_val_loss,
            margin: CILP_LOSS_THRESHOLD - cilp.val_loss_nvidia,
        },
        ThresholdRow {
            metric: "projector validation MSE".into(),
            value: projector.val_mse,
            threshold: if lidar_usable {
                format!("< {PROJECTOR_MSE_THRESHOLD}")
            } else {
                format!(
                    "< {PROJECTOR_MSE_THRESHOLD}, void: LiDAR classifier at {:.1}% < {}%",
                    100.0 * lidar_info.val_accuracy,
                    100.0 * LIDAR_TARGET_MIN_ACCURACY
                )
            },
            passed: passed.projector_val_mse,
            margin: PROJECTOR_MSE_THRESHOLD - projector.val_mse,
        },
        ThresholdRow {
            metric: format!("classifier accuracy (min of {GRADED_BATCHES} batches of {})", cfg.batch_size),
            value: if min_batch.is_finite() { min_batch } else { f64::NAN },
            threshold: format!("> {}%", ACCURACY_THRESHOLD * 100.0),
            passed: passed.classifier_accuracy,
            margin: if min_batch.is_finite() { min_batch - ACCURACY_THRESHOLD } else { f64::NAN },
        },
    ];
    // Temp file + rename, like every other result file: a crash never leaves a truncated one.
    cilp_track::write_atomic(&opts.out.join("similarity_matrix.png"), &cilp.heatmap.bytes)?;
    cilp_track::write_atomic(&opts.out.join("predictions.png"), &cls.grid.bytes)?;
    cilp_track::write_atomic_str(&opts.out.join("predictions.md"), &predictions_markdown(&cls.predictions))?;
    let mut runs = vec![CILP_RUN.to_string()];
    if cfg.lidar_classifier.is_none() {
        runs.push(LIDAR_RUN.into());
    }
    runs.extend([PROJECTOR_RUN.to_string(), CLASSIFIER_RUN.to_string()]);
    let notes = vec![
        format!(
            "CILP loss variant {}; the graded loss is NVIDIA's (cos+1)/2 loss of the validation embeddings, in batches of {} from a seeded shuffle of the validation set.",
            cfg.cilp_model(),
            cfg.batch_size
        ),
        format!("Retrieval over all {} validation pairs: {}.", cilp.retrieval.samples, cilp.retrieval),
        format!(
            "LiDAR classifier: {} ({}), {:.2}% validation accuracy on depth. RGB->LiDAR accuracy over the whole validation set {:.2}% ({:.2}% before fine-tuning).",
            lidar_info.source,
            lidar_info.path,
            100.0 * lidar_info.val_accuracy,
            100.0 * cls.accuracy,
            100.0 * cls.accuracy_before
        ),
        if cls.selection.samples > 0 {
            format!(
                "Graded model: fine-tuning epoch {} of {}, chosen by accuracy on {} training pairs held out of fine-tuning ({:.2}%); the graded validation batches played no part in the choice.",
                cls.selection.epoch,
                cfg.finetune.epochs,
                cls.selection.samples,
                100.0 * cls.selection.accuracies[cls.selection.epoch]
            )
        } else {
            format!("Graded model: the last fine-tuning epoch ({}).", cfg.finetune.epochs)
        },
        format!("Preset {:?}, {:.0}s wall time on {}.", cfg.preset, t.elapsed().as_secs_f64(), cfg.device),
    ];
    let charts = vec!["similarity_matrix.png".to_string(), "predictions.png".to_string()];
    let summary = AssessSummary {
        study: "assess".into(),
        title: "NVIDIA assessment: CILP -> projector -> RGB->LiDAR classifier".into(),
        cilp_loss_variant: cfg.loss,
        cilp_val_loss: cilp.val_loss,
        cilp_val_loss_nvidia: cilp.val_loss_nvidia,
        projector_val_mse: projector.val_mse,
        classifier_accuracy: cls.accuracy,
        classifier_batch_accuracies: cls.batch_accuracies.clone(),
        classifier_accuracy_before_finetune: cls.accuracy_before,
        finetune_selection: Some(cls.selection.clone()),
        passed,
        all_passed: passed.cilp_val_loss && passed.projector_val_mse && passed.classifier_accuracy,
        thresholds: thresholds.clone(),
        retrieval: cilp.retrieval,
        logit_scale_per_epoch: cilp.logit_scales.clone(),
        lidar_classifier: lidar_info,
        train_samples: data.split.train.len(),
        val_samples: data.split.val.len(),
        runs,
        wall_seconds: t.elapsed().as_secs_f64(),
        images: charts.clone(),
        config: cfg.clone(),
    };
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| TrainError::Serialize { what: "the assessment summary", reason: e.to_string() })?;
    write_file(&opts.out.join(cilp_track::run::SUMMARY_JSON), format!("{json}\n").as_bytes())?;
    let table = serde_json::json!({
        "title": "NVIDIA assessment thresholds",
        "columns": ["metric", "value", "threshold", "margin", "pass"],
        "rows": thresholds.iter().map(|r| serde_json::json!([r.metric, r.value, r.threshold, r.margin, r.passed])).collect::<Vec<_>>(),
        "notes": notes,
        "charts": charts,
    });
    write_file(
        &opts.out.join("study_table.json"),
        serde_json::to_string_pretty(&table)
            .map_err(|e| TrainError::Serialize { what: "the thresholds table", reason: e.to_string() })?
            .as_bytes(),
    )?;
    Ok(AssessOutcome { summary, out: opts.out.clone() })
}
