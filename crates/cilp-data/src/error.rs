//! The data layer's error type. Every variant names the file it is about and says what was expected.

use std::path::PathBuf;

/// Result alias for the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused a read or write.
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file is malformed or holds something other than what was expected.
    #[error("{path}: invalid .npy file: {reason}")]
    Npy { path: PathBuf, reason: String },
    /// A PNG file cannot be decoded or has the wrong size or colour type.
    #[error("{path}: invalid PNG image: {reason}")]
    Png { path: PathBuf, reason: String },
    /// A value inside an otherwise well-formed file is invalid (NaN depth, wrong angle range, ...).
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// The dataset's folder layout is not what cilp expects.
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    /// A bounded read refused the file (special file, larger than its format allows, ...).
    #[error(transparent)]
    Read(#[from] crate::io::ReadError),
}

impl DataError {
    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), action, source }
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            DataError::Io { path, .. }
            | DataError::Npy { path, .. }
            | DataError::Png { path, .. }
            | DataError::Invalid { path, .. }
            | DataError::Layout { path, .. } => path,
            DataError::Read(e) => e.path(),
        }
    }
}
