//! What SIGINT / SIGTERM leave behind: every run this process is writing is marked
//! `interrupted` in its `summary.json`, with a one-line message, before the process exits.
//!
//! This crate installs no signal handler (a library must not); the binary does, and calls
//! [`mark_interrupted`] from it. The bookkeeping lives here because only [`RunDir`] knows which
//! runs are being written: a `running` summary written through [`RunDir::write_summary`]
//! registers its run, any other status (or dropping the `RunDir`) takes it off.
//!
//! Every `summary.json` write of this process goes through one lock; [`mark_interrupted`] takes
//! it and never gives it back, so no `running` summary can overwrite the `interrupted` one in
//! the moment before the process exits. Checkpoints and metrics need nothing here: a process
//! stopped at any point leaves them as SIGKILL would, which `--resume` already handles.
//!
//! [`RunDir`]: crate::run::RunDir
//! [`RunDir::write_summary`]: crate::run::RunDir::write_summary

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::run::{RunStatus, RunSummary, timestamp_utc_now};

/// Serialises every summary write of the process (see the module docs).
static WRITE: Mutex<()> = Mutex::new(());
/// `summary.json` path -> the last `running` summary written there.
static ACTIVE: Mutex<BTreeMap<PathBuf, RunSummary>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn encode(path: &Path, summary: &RunSummary) -> Result<Vec<u8>> {
    let json = serde_json::to_string_pretty(summary).map_err(|e| Error::Serialize {
        path: path.to_owned(),
        what: "run summary as JSON",
        message: e.to_string(),
    })?;
    Ok(format!("{json}\n").into_bytes())
}

/// Writes `summary` to `path` atomically and keeps the registry of running runs up to date.
pub(crate) fn write_summary(path: &Path, summary: &RunSummary) -> Result<()> {
    let bytes = encode(path, summary)?;
    let _w = lock(&WRITE);
    write_atomic(path, &bytes)?;
    let mut active = lock(&ACTIVE);
    if summary.status == RunStatus::Running {
        active.insert(path.to_owned(), summary.clone());
    } else {
        active.remove(path);
    }
    Ok(())
}

/// Takes a run off the registry (its `RunDir` is gone).
pub(crate) fn forget(path: &Path) {
    lock(&ACTIVE).remove(path);
}

/// The runs this process is writing now (their folders).
pub fn running() -> Vec<PathBuf> {
    lock(&ACTIVE).keys().map(|p| p.parent().unwrap_or(p).to_owned()).collect()
}

/// What [`mark_interrupted`] did. While it lives, it holds the lock every summary write of
/// this process takes, so nothing can overwrite the marks: keep it until the process exits.
#[must_use = "dropping it lets a `running` summary overwrite the marks; keep it until exit"]
pub struct Interrupted {
    /// The folders of the runs marked `interrupted`.
    pub runs: Vec<PathBuf>,
    _writes_blocked: MutexGuard<'static, ()>,
}

/// Marks every run this process is writing `interrupted` (message: stopped by `signal`,
/// continue with `--resume`). Call it from a signal handler's thread and exit while holding the
/// returned value. Errors writing one summary are skipped (the run then reads `running`, as
/// after SIGKILL).
pub fn mark_interrupted(signal: &str) -> Interrupted {
    let guard = lock(&WRITE);
    let active = std::mem::take(&mut *lock(&ACTIVE));
    let mut marked = Vec::new();
    for (path, mut summary) in active {
        summary.finish(RunStatus::Interrupted);
        summary.message = Some(format!("interrupted by {signal} at {}; continue it with --resume", timestamp_utc_now()));
        if let Ok(bytes) = encode(&path, &summary)
            && write_atomic(&path, &bytes).is_ok()
        {
            marked.push(path.parent().unwrap_or(&path).to_owned());
        }
    }
    Interrupted { runs: marked, _writes_blocked: guard }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{CreateMode, RunDir, read_summary};

    // One test: the registry is process-wide and `mark_interrupted` blocks every later write.
    #[test]
    fn running_runs_are_marked_interrupted_and_finished_ones_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let a = RunDir::create(tmp.path(), "a", CreateMode::New).unwrap();
        let b = RunDir::create(tmp.path(), "b", CreateMode::New).unwrap();
        let c = RunDir::create(tmp.path(), "c", CreateMode::New).unwrap();
        let mut s = RunSummary::started("a", "train");
        a.write_summary(&s).unwrap();
        b.write_summary(&s).unwrap();
        c.write_summary(&s).unwrap();
        s.finish(RunStatus::Completed);
        b.write_summary(&s).unwrap();
        drop(c);
        // (Other tests of this binary may be writing runs too: look only at ours.)
        let ours = |runs: Vec<PathBuf>| -> Vec<PathBuf> { runs.into_iter().filter(|p| p.starts_with(tmp.path())).collect() };
        assert_eq!(ours(running()), vec![tmp.path().join("a")]);

        let marked = mark_interrupted("SIGTERM");
        assert_eq!(ours(marked.runs.clone()), vec![tmp.path().join("a")]);
        // While it is held, no summary can be written.
        assert!(WRITE.try_lock().is_err());
        drop(marked);
        let ra = read_summary(&tmp.path().join("a")).unwrap();
        assert_eq!(ra.status, RunStatus::Interrupted);
        let msg = ra.message.unwrap();
        assert!(msg.starts_with("interrupted by SIGTERM") && msg.contains("--resume") && !msg.contains('\n'), "{msg}");
        assert!(ra.finished_at.is_some());
        assert_eq!(read_summary(&tmp.path().join("b")).unwrap().status, RunStatus::Completed);
        assert_eq!(read_summary(&tmp.path().join("c")).unwrap().status, RunStatus::Running, "a dropped run is not ours any more");
    }
}
