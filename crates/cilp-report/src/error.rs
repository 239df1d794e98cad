//! The crate's error type.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Everything that can go wrong while exploring, exporting or reporting.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be read or written.
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] cilp_data::DataError),
    /// A file was refused by the bounded reader (special file, too large) or could not be read.
    #[error(transparent)]
    Read(#[from] cilp_data::io::ReadError),
    /// The runs directory could not be read.
    #[error(transparent)]
    Track(#[from] cilp_track::Error),
    /// A JSON file is malformed or has an unexpected shape.
    #[error("{path}: invalid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    /// A PCD file is malformed or uses a feature this reader does not support.
    #[error("invalid PCD: {0}")]
    Pcd(String),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Invalid(String),
}

impl ReportError {
    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        ReportError::Io { path: path.into(), action, source }
    }
}

/// Crash-safe write with the path in the error: the bytes go to a temporary file beside
/// `path` that is renamed over it ([`cilp_track::write_atomic`]), so a crash or a full disk
/// leaves the old file (or none), never a truncated one.
pub(crate) fn write_file(path: &std::path::Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    cilp_track::write_atomic(path, bytes.as_ref()).map_err(|e| match e {
        cilp_track::Error::Io { source, .. } => ReportError::io(path, "write", source),
        other => ReportError::Track(other),
    })
}

/// `fs::create_dir_all` with the path in the error.
pub(crate) fn create_dir(path: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| ReportError::io(path, "create directory", e))
}

/// The largest file the report reads (a study's JSON or chart): far above what cilp writes.
pub const MAX_REPORT_INPUT_BYTES: u64 = 64 << 20;

/// Reads a study's JSON or chart, bounded (special files and files over
/// [`MAX_REPORT_INPUT_BYTES`] are refused by name); the error names the path.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    Ok(cilp_data::io::read_bounded(path, MAX_REPORT_INPUT_BYTES, "a study file (JSON or chart) of at most 64 MiB")?)
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Json { path: path.to_owned(), reason: e.to_string() })
}
