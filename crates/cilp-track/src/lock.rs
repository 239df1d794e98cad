//! Folder locks: two processes must never write one run folder (or one study folder).
//!
//! [`FolderLock::acquire`] takes an exclusive OS file lock (`flock(2)` through std's
//! [`File::try_lock`]) on a lock file that lives **beside** the folder, in its parent:
//! `runs/late-fusion` is locked through `runs/.late-fusion.lock`. The lock:
//!
//! * never waits: a second writer is refused at once with [`Error::Locked`], naming the folder
//!   and the holder's pid (written into the lock file as text by the holder);
//! * dies with its holder: the OS releases it when the [`FolderLock`] is dropped or the process
//!   ends in any way (SIGKILL included), so a killed run leaves no stale lock; the lock *file*
//!   stays (a hidden 11-byte file holding the last holder's pid) and is reused by the next
//!   writer;
//! * is per open file, not per process: a second [`FolderLock::acquire`] of the same folder in
//!   the same process is refused too;
//! * outlives the folder: since the lock file is not inside the folder, `--force` can take the
//!   lock, delete the whole folder and re-create it while holding the lock throughout.
//!
//! Lock files are never deleted (deleting a lock file that another process has open but not
//! yet locked would let two processes lock two different files). The parent folder is resolved
//! (`canonicalize`) so `runs/x`, `./runs/x` and a symlinked runs root share one lock; a folder
//! reached through two different final names (a symlink to the run folder itself) is not
//! covered.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// An exclusive lock on a folder, held until dropped (or until the process ends).
#[derive(Debug)]
pub struct FolderLock {
    /// Holds the OS lock; closing it releases the lock.
    file: File,
    dir: PathBuf,
    lock_file: PathBuf,
}

/// Width of the pid record: written in place (never truncated) so a reader sees a whole pid.
const PID_WIDTH: usize = 10;

impl FolderLock {
    /// The lock file of `dir`: `<parent>/.<name>.lock`, with the parent resolved (created if
    /// missing, so it can be resolved). Fails for a path without a final name (`/`, `..`).
    pub fn lock_file_for(dir: &Path) -> Result<PathBuf> {
        let name = dir.file_name().ok_or_else(|| {
            Error::io("lock", dir, std::io::Error::new(std::io::ErrorKind::InvalidInput, "a folder to lock needs a final name"))
        })?;
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).ctx("create directory", parent)?;
        let parent = fs::canonicalize(parent).ctx("resolve", parent)?;
        Ok(parent.join(format!(".{}.lock", name.to_string_lossy())))
    }

    /// Locks `dir` (which need not exist yet) for writing, or fails at once with
    /// [`Error::Locked`] naming `dir`, `what` it is (e.g. `"run folder"`, `"study folder"`) and
    /// the holder's pid. See the module docs for where the lock file lives and why.
    pub fn acquire(dir: &Path, what: &'static str) -> Result<FolderLock> {
        let lock_file = Self::lock_file_for(dir)?;
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock_file).ctx("open lock file", &lock_file)?;
        if !file.metadata().ctx("stat lock file", &lock_file)?.is_file() {
            return Err(Error::io(
                "lock",
                &lock_file,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "the lock file is not a regular file"),
            ));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked { path: dir.to_owned(), what, pid: read_holder_pid(&lock_file), lock_file });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &lock_file, e)),
        }
        // Record our pid for the message others get. In place, fixed width: a reader never
        // sees an empty file because of us.
        let record = format!("{:>PID_WIDTH$}\n", std::process::id());
        (&file).seek(SeekFrom::Start(0)).ctx("write", &lock_file)?;
        (&file).write_all(record.as_bytes()).ctx("write", &lock_file)?;
        file.set_len(record.len() as u64).ctx("write", &lock_file)?;
        Ok(FolderLock { file, dir: dir.to_owned(), lock_file })
    }

    /// The locked folder, as given to [`FolderLock::acquire`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file (`<parent>/.<name>.lock`).
    pub fn lock_file(&self) -> &Path {
        &self.lock_file
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes the release
        // independent of any duplicated descriptor.
        let _ = self.file.unlock();
    }
}

/// The pid the holder wrote into `lock_file`. A holder that has just locked may not have
/// written it yet: retried briefly.
fn read_holder_pid(lock_file: &Path) -> Option<u32> {
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = cilp_data::io::read_bounded_to_string(lock_file, 64, "a lock file holding a pid").ok()?;
        if let Ok(pid) = text.trim().parse::<u32>() {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_per_handle_and_freed_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let study = root.path().join("fusion");
        let a = FolderLock::acquire(&study, "study folder").unwrap();
        assert_eq!(a.lock_file(), fs::canonicalize(root.path()).unwrap().join(".fusion.lock"));
        assert!(!study.exists(), "locking does not create the folder itself");
        let e = FolderLock::acquire(&study, "study folder").unwrap_err();
        let Error::Locked { pid, what, .. } = &e else { panic!("{e:?}") };
        assert_eq!((*pid, *what), (Some(std::process::id()), "study folder"));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("study folder {} is being written by process {}", study.display(), std::process::id()))
                && msg.contains("wait for it to finish or stop it"),
            "{msg}"
        );
        // The same folder through another spelling of its parent shares the lock.
        let other = root.path().join(".").join("fusion");
        assert!(matches!(FolderLock::acquire(&other, "study folder"), Err(Error::Locked { .. })));
        // Another folder is independent; a folder inside the locked one too.
        let _b = FolderLock::acquire(&root.path().join("ablation"), "study folder").unwrap();
        let _c = FolderLock::acquire(&study.join("late-s51"), "run folder").unwrap();
        drop(a);
        let _a = FolderLock::acquire(&study, "study folder").unwrap();
        let text = fs::read_to_string(root.path().join(".fusion.lock")).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }

    #[test]
    fn paths_without_a_name_are_refused() {
        assert!(FolderLock::acquire(Path::new("/"), "run folder").is_err());
        assert!(FolderLock::acquire(Path::new("a/.."), "run folder").is_err());
    }
}
