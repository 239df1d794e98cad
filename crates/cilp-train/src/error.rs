//! Errors of the training engine.

use std::path::PathBuf;

/// Anything that stops a training run or a prediction.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] cilp_data::DataError),
    #[error(transparent)]
    Track(#[from] cilp_track::Error),
    #[error(transparent)]
    Model(#[from] cilp_models::ModelError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "training diverged: the loss is {value} at epoch {epoch}, step {step}; the last good checkpoint \
         (epoch {last_good_epoch}) is kept in {run_dir}. Continue from it at a lower rate with --resume --lr <smaller>, \
         or start again with --force --lr <smaller>."
    )]
    NonFiniteLoss { value: f64, epoch: usize, step: usize, last_good_epoch: usize, run_dir: PathBuf },
    /// The caller asked the run to stop ([`crate::fit::Control::stop`], e.g. Ctrl-C in Python).
    #[error(
        "{}: stopped at epoch {epoch}, step {step}, as asked; it is marked interrupted and its last committed epoch is \
         {last_good_epoch}: resume it to continue from there",
        run_dir.display()
    )]
    Stopped { epoch: usize, step: usize, last_good_epoch: usize, run_dir: PathBuf },
    /// A file-system operation on `path` failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A value could not be written in its file format (a model record, TOML, JSON).
    #[error("cannot serialise {what}: {reason}")]
    Serialize { what: &'static str, reason: String },
    /// A file cilp reads back (a summary, a config) does not hold what it should.
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
}

impl TrainError {
    /// A [`TrainError::Io`] for `action` ("delete", "create", "read") on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { action, path, source }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
