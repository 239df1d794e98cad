//! cilp's training engine: batching dataset samples into tensors, the epoch loop with metrics,
//! crash-safe checkpoints and resume, the NaN guard, seeding, progress, and prediction; and
//! above it the jobs that train: the studies ([`studies`]: fusion comparison and MaxPool2d vs
//! strided ablation over seeds, with their statistics), the assessment ([`assess`]) and the
//! benchmark ([`mod@bench`]).
//!
//! This crate writes runs, not reports: a study returns its summary as plain data
//! ([`cilp_track::study::StudySummary`]) and the caller writes the study's Markdown, CSV, JSON
//! and SVG files with `cilp_report::study_files` (cilp-train does not depend on cilp-report).
//!
//! Determinism: with the same config and seed on the CPU device, two runs produce bit-identical
//! metrics and checkpoints (model init is seeded through the device, shuffling per (seed, epoch)).

pub mod assess;
pub mod batching;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod engine;
pub mod error;
pub mod memory;
pub mod predict;
pub mod schedule;
pub mod studies;

pub use config::{DataConfig, SplitConfig, TrainConfig};
pub use engine::{PreparedData, RunOptions, TrainOutcome, train};
pub use error::{Result, TrainError};
pub use schedule::LrSchedule;
