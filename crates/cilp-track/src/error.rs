//! Error type of `cilp-track`.
//!
//! Every variant names the file or directory involved and what was expected,
//! so that a message printed by the CLI is actionable without a backtrace.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by run-directory, metrics, TensorBoard and comparison code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system level I/O failure.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being attempted, e.g. `"write"`, `"create directory"`.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `CreateMode::New` was used on a directory that already holds a run.
    #[error(
        "run directory {} already holds a run; pass --resume to continue it or --force to delete it and start over",
        path.display()
    )]
    RunExists {
        /// The existing run directory.
        path: PathBuf,
    },

    /// A run was expected at `path` but none was found (e.g. `--resume` on a fresh name).
    #[error("{} is not a run directory: expected {expected}{hint}", path.display())]
    NotARun {
        /// The directory that was inspected.
        path: PathBuf,
        /// What was expected to be there.
        expected: String,
        /// Optional extra advice, starting with a separator (may be empty).
        hint: String,
    },

    /// `CreateMode::Force` refused to delete a non-empty directory that does not look like a run.
    #[error(
        "refusing to delete {}: it is not empty and does not look like a run directory (expected config.toml, metrics.jsonl, summary.json or an events file)",
        path.display()
    )]
    RefuseToDelete {
        /// The directory that was not deleted.
        path: PathBuf,
    },

    /// `CreateMode::New` on an existing non-empty directory that is not a run (e.g. a group directory).
    #[error(
        "directory {} exists, is not empty and is not a run directory; choose another run name",
        path.display()
    )]
    DirNotEmpty {
        /// The directory.
        path: PathBuf,
    },

    /// A run name that is empty, absolute or escapes the runs root.
    #[error("invalid run name {name:?}: {reason}")]
    InvalidRunName {
        /// The offending name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A file could not be parsed as the expected format.
    #[error("cannot parse {}{}: expected {expected}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        /// The file being read.
        path: PathBuf,
        /// 1-based line number, when meaningful.
        line: Option<usize>,
        /// What the file (or line) should contain.
        expected: &'static str,
        /// The parser's message.
        message: String,
    },

    /// A value could not be serialized for the given file.
    #[error("cannot serialize {what} for {}: {message}", path.display())]
    Serialize {
        /// The destination file.
        path: PathBuf,
        /// What was being serialized, e.g. `"config as TOML"`.
        what: &'static str,
        /// The serializer's message.
        message: String,
    },

    /// A TensorBoard record failed its length or data checksum.
    #[error("corrupt TFRecord in {} at byte {offset}: {message}", path.display())]
    CorruptRecord {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the record start.
        offset: u64,
        /// What was wrong.
        message: String,
    },

    /// Another process (or another handle in this process) holds the lock of a run or study
    /// folder: two writers must never share a folder.
    #[error(
        "{what} {} is being written by {}; wait for it to finish or stop it (lock file {})",
        path.display(),
        pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}")),
        lock_file.display()
    )]
    Locked {
        /// The locked folder.
        path: PathBuf,
        /// What the folder is, e.g. `"run folder"`, `"study folder"`.
        what: &'static str,
        /// The holder's process id, as recorded in the lock file (`None` if unreadable).
        pid: Option<u32>,
        /// The lock file.
        lock_file: PathBuf,
    },

    /// A bounded read refused a file: a special file (FIFO, device, socket) or a file larger
    /// than its format allows. See [`cilp_data::io`].
    #[error(transparent)]
    Read(#[from] cilp_data::io::ReadError),

    /// Invalid image passed to the TensorBoard writer or PNG encoder.
    #[error("invalid image for {what}: {message}")]
    Image {
        /// Tag or purpose of the image.
        what: String,
        /// What was wrong (dimensions, buffer size, encoder error).
        message: String,
    },
}

impl Error {
    /// Build an [`Error::Io`] from a path, a verb and an `io::Error`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

/// Extension to attach the path and action to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}
