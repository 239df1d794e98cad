//! Crash-safe file writes.
//!
//! [`write_atomic`] writes to a temporary file in the destination directory,
//! fsyncs it, renames it over the destination and (best effort) fsyncs the
//! directory. Readers therefore see either the old or the new content, never a
//! truncated file, and a failed write leaves no temporary file behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path_for(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{file_name}.tmp.{}.{n}", std::process::id()))
}

/// Atomically replace the contents of `path` with `bytes`.
///
/// The parent directory must exist. On any error the destination is left
/// untouched (old content or absent) and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::io(
            "write",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        ));
    }
    let tmp = temp_path_for(path);
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create temporary file", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        drop(f);
        fs::rename(&tmp, path).ctx("rename temporary file onto", path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_parent_dir(path);
    Ok(())
}

/// Atomically write `s` (UTF-8) to `path`. See [`write_atomic`].
pub fn write_atomic_str(path: &Path, s: &str) -> Result<()> {
    write_atomic(path, s.as_bytes())
}

/// Best-effort fsync of the directory containing `path`, so a rename survives a crash.
pub(crate) fn sync_parent_dir(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        write_atomic_str(&p, "bye").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "bye");
        // no temp files left behind
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failure_leaves_no_target_or_temp() {
        let dir = tempfile::tempdir().unwrap();
        // destination is an existing non-empty directory -> rename fails
        let p = dir.path().join("sub");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"x").unwrap();
        let err = write_atomic(&p, b"data").unwrap_err();
        assert!(err.to_string().contains("sub"), "{err}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left: {names:?}");
        // missing parent directory -> error naming the path, nothing created
        let q = dir.path().join("missing").join("f.txt");
        let err = write_atomic(&q, b"data").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!q.exists());
    }
}
