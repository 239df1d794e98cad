//! cilp's training engine: batching dataset samples into tensors, the one training loop
//! ([`fit`]: metrics, crash-safe checkpoints and resume, the NaN guard, best-model selection,
//! progress) that every model and assessment stage goes through, supervised training of the zoo's
//! classifiers ([`engine`]), seeding, and prediction.
//!
//! The studies (`cilp-studies`), the assessment (`cilp-assess`) and the benchmark (`cilp-bench`) sit above this
//! crate and plug into [`fit`] through its [`fit::TrainStep`] trait.
//!
//! Determinism: with the same config and seed on the CPU device, two runs produce bit-identical
//! metrics and checkpoint weights (model init is seeded through the device, shuffling per (seed,
//! epoch)); the checkpoint files differ in burnpack's parameter ids only.

pub mod batching;
pub mod checkpoint;
pub mod config;
pub mod cores;
pub mod data;
pub mod device;
pub mod engine;
pub mod error;
pub mod fit;
pub mod memory;
pub mod predict;
pub mod schedule;

pub use config::{DataConfig, SplitConfig, TrainConfig};
pub use engine::{PreparedData, RunOptions, TrainOutcome, WeightsLoader, train};
pub use error::{Result, TrainError};
pub use schedule::LrSchedule;
