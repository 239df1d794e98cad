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
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".to_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{file_name}.tmp.{}.{n}", std::process::id()))
}

/// Atomically replace the contents of `path` with `bytes`.
///
/// The parent directory must exist. On any error the destination is left
/// untouched (old content or absent) and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::io("write", path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")));
    }
    let tmp = temp_path_for(path);
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp).ctx("create temporary file", &tmp)?;
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

/// Atomically make `path` a second name of the (complete, already synced) file `existing`: a
/// hard link under a temporary name, renamed over `path`. No byte is copied, so a file written
/// once can also be published under another name for free. Readers see the old or the new file,
/// never a partial one. Fails where the file system has no hard links (the caller writes the
/// bytes instead); on failure `path` is untouched and no temporary name is left.
///
/// Files linked this way must never be modified in place; [`write_atomic`] never does.
pub fn link_atomic(existing: &Path, path: &Path) -> Result<()> {
    let tmp = temp_path_for(path);
    fs::hard_link(existing, &tmp).ctx("hard-link", &tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("rename temporary link onto", path, e));
    }
    sync_parent_dir(path);
    Ok(())
}

/// Atomically write `s` (UTF-8) to `path`. See [`write_atomic`].
pub fn write_atomic_str(path: &Path, s: &str) -> Result<()> {
    write_atomic(path, s.as_bytes())
}

/// Removes the temporary files [`write_atomic`] left in `dir` when its process was killed
/// mid-write (`.NAME.tmp.PID.N` whose process `PID` is no longer running; files of live
/// processes are kept). Best effort; returns how many were removed. Where the liveness of a
/// process cannot be checked (no `/proc`), nothing is removed.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let proc_fs = Path::new("/proc/self");
    if !proc_fs.exists() {
        return 0;
    }
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let own = std::process::id();
    let mut removed = 0;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_temp_pid(&name) else {
            continue;
        };
        let alive = pid == own || Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// [`remove_stale_temp_files`] in `root` and every folder below it (symbolic links are not
/// followed). For pipelines that reuse finished work without reopening each run (`cilp run`):
/// a process killed anywhere leaves no temporary file behind once the next one has started.
pub fn remove_stale_temp_files_below(root: &Path) -> usize {
    let mut removed = remove_stale_temp_files(root);
    if let Ok(rd) = fs::read_dir(root) {
        for entry in rd.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                removed += remove_stale_temp_files_below(&entry.path());
            }
        }
    }
    removed
}

/// The writer's PID if `name` is a temporary name made by [`temp_path_for`].
fn stale_temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp.")?;
    let (pid, n) = tail.split_once('.')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Best-effort fsync of the directory containing `path`, so a rename survives a crash.
pub(crate) fn sync_parent_dir(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
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
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_link_publishes_the_same_file_under_a_second_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("model-e0001.bpk"), dir.path().join("best.bpk"));
        write_atomic(&a, b"epoch one").unwrap();
        write_atomic(&b, b"older best").unwrap();
        link_atomic(&a, &b).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"epoch one");
        // The first name goes (an older epoch pruned), the second keeps the bytes; a later write
        // of the first name makes a new file and leaves the link alone.
        fs::remove_file(&a).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"epoch one");
        write_atomic(&a, b"epoch two").unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"epoch one");
        // A missing source fails, names the path, and leaves the destination and no temp name.
        let err = link_atomic(&dir.path().join("absent.bpk"), &b).unwrap_err().to_string();
        assert!(err.contains("best.bpk.tmp"), "{err}");
        assert_eq!(fs::read(&b).unwrap(), b"epoch one");
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["best.bpk", "model-e0001.bpk"]);
    }

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A PID above the kernel's maximum (4194304) never runs.
        let dead = dir.path().join(".model-e0002.bpk.tmp.99999999.3");
        let live = dir.path().join(format!(".summary.json.tmp.{}.0", std::process::id()));
        let other = dir.path().join(".hidden.tmp.notes");
        for p in [&dead, &live, &other] {
            fs::write(p, b"partial").unwrap();
        }
        write_atomic(&dir.path().join("keep.json"), b"{}").unwrap();
        assert_eq!(remove_stale_temp_files(dir.path()), 1);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists() && dir.path().join("keep.json").exists());
        assert_eq!(stale_temp_pid(".a.b.tmp.12.0"), Some(12));
        assert_eq!(stale_temp_pid("a.tmp.12.0"), None);
        // ... and in every folder below a root.
        let deep = dir.path().join("study/run/checkpoints");
        fs::create_dir_all(&deep).unwrap();
        let stale = [dir.path().join(".r.html.tmp.99999999.0"), deep.join(".last.json.tmp.99999999.1")];
        for p in &stale {
            fs::write(p, b"partial").unwrap();
        }
        assert_eq!(remove_stale_temp_files_below(dir.path()), 2);
        assert!(stale.iter().all(|p| !p.exists()) && live.exists());
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
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "temp file left: {names:?}");
        // missing parent directory -> error naming the path, nothing created
        let q = dir.path().join("missing").join("f.txt");
        let err = write_atomic(&q, b"data").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!q.exists());
    }
}
