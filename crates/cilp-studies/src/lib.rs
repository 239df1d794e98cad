//! The studies: the fusion comparison (`cilp fusion`) and the MaxPool2d-vs-strided ablation
//! (`cilp ablation`), each trained over several seeds with honest statistics.
//!
//! * [`runner`]: trains a list of models x seeds on one dataset loaded once. The split is fixed
//!   across seeds (`data.split_seed`, 51 by default, recorded in every run's config.toml): all
//!   runs see the same training and validation samples, and the seeds vary only the model
//!   initialisation and the shuffling, so the seed-to-seed spread is the training noise the
//!   comparisons are judged against. Runs are ordinary run directories `<model>-s<seed>/`
//!   inside the study folder, so `cilp runs list/compare` and `cilp report` read them.
//! * [`stats`]: mean, sample std, Welch's t-test and the verdict rule.
//! * [`mod@fusion`] and [`mod@ablation`]: each study's models, its comparisons and its table (title,
//!   columns, rows, notes) as a [`StudySummary`] ([`summary`] holds what both share). The
//!   summary is plain data ([`cilp_track::study`]); this crate writes no study file.
//!
//! [`fusion()`] and [`ablation()`] return a [`FinishedStudy`]: the summary plus the study
//! folder's lock. The caller (the `cilp` binary) writes the files with
//! `cilp_report::study_files::write` while it holds the lock: `summary.json` (everything, with a
//! `"study"` key that marks the folder as a group of runs, see
//! `cilp_track::run::is_study_summary`), `study_table.json` (the table the HTML report shows),
//! `results.md`, `results.csv` (mean/std per model), `runs.csv` (per run) and SVG charts
//! (`val_loss.svg`, `accuracy.svg`, `best_val_loss.svg`, `parameters.svg`,
//! `time_per_epoch.svg`, `peak_memory.svg`).

pub mod ablation;
pub mod fusion;
pub mod runner;
pub mod stats;
pub mod summary;
pub mod workers;

pub use ablation::{ablation, ablation_models, ablation_summary};
pub use fusion::{FUSION_MODELS, best_fusion_model, fusion, fusion_summary};
pub use runner::{Arm, LrPoint, StudyLock, StudyMode, StudyOptions, StudyPreset, StudySettings, arm_model, run_models};
pub use summary::{FinishedStudy, StudySummary, finding};
pub use workers::{Companion, Workers, run_models_in_workers};
