//! Crash-safe checkpoints.
//!
//! Layout inside a run directory's `checkpoints/`:
//! - `model-eNNNN.bpk`, `optim-eNNNN.bpk`: the model and Adam state after epoch NNNN (burnpack);
//! - `last.json`: the commit point, written last (atomically) and naming the epoch whose files
//!   are complete, plus the training state needed to resume;
//! - `best.bpk`: the model with the lowest validation loss so far.
//!
//! Every file is written to a temporary file and renamed, and `last.json` moves only after the
//! epoch's files are in place, so a process killed at any instant leaves the previous
//! checkpoint intact. Older epochs' files are deleted once `last.json` points past them, and so
//! are temporary files a killed process left behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// What `last.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch (1-based).
    pub epoch: usize,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    /// Training seconds spent so far (summed over interrupted sessions).
    pub elapsed_seconds: f64,
    pub model_file: String,
    pub optim_file: String,
}

impl TrainState {
    /// The state of a run before its first epoch: nothing done, no best loss yet, no files.
    pub fn fresh() -> Self {
        TrainState {
            epoch: 0,
            best_epoch: 0,
            best_val_loss: f64::INFINITY,
            elapsed_seconds: 0.0,
            model_file: String::new(),
            optim_file: String::new(),
        }
    }
}

/// Checkpoint directory of a run.
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Checkpoints { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn last_path(&self) -> PathBuf {
        self.dir.join("last.json")
    }

    /// Path of the best model so far.
    pub fn best_model(&self) -> PathBuf {
        self.dir.join("best.bpk")
    }

    /// The committed state, if any checkpoint was completed.
    pub fn load_state(&self) -> Result<Option<TrainState>> {
        let path = self.last_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| TrainError::Checkpoint {
                path,
                reason: format!("not a valid checkpoint state: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TrainError::Checkpoint { path, reason: format!("cannot read: {e}") }),
        }
    }

    /// Writes the epoch's model and optimiser bytes, then commits `state` (whose file names are
    /// filled in here), then removes older epochs' files.
    pub fn save(&self, mut state: TrainState, model: &[u8], optim: &[u8]) -> Result<TrainState> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::Checkpoint {
            path: self.dir.clone(),
            reason: format!("cannot create: {e}"),
        })?;
        state.model_file = format!("model-e{:04}.bpk", state.epoch);
        state.optim_file = format!("optim-e{:04}.bpk", state.epoch);
        cilp_track::atomic::write_atomic(&self.dir.join(&state.model_file), model)?;
        cilp_track::atomic::write_atomic(&self.dir.join(&state.optim_file), optim)?;
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        cilp_track::atomic::write_atomic(&self.last_path(), &json)?;
        // Best effort: remove files of older epochs, and temporary files of a process killed
        // while writing.
        cilp_track::atomic::remove_stale_temp_files(&self.dir);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_epoch_file = (name.starts_with("model-e") || name.starts_with("optim-e")) && name.ends_with(".bpk");
                if is_epoch_file && name != state.model_file && name != state.optim_file {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(state)
    }

    /// Reads a file named by a state.
    pub fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        std::fs::read(&path).map_err(|e| TrainError::Checkpoint { path, reason: format!("cannot read: {e}") })
    }

    /// Saves the best model so far.
    pub fn save_best(&self, model: &[u8]) -> Result<()> {
        cilp_track::atomic::write_atomic(&self.best_model(), model)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_state_is_before_the_first_epoch() {
        let s = TrainState::fresh();
        assert_eq!((s.epoch, s.best_epoch, s.elapsed_seconds), (0, 0, 0.0));
        assert_eq!(s.best_val_loss, f64::INFINITY, "any real validation loss must count as an improvement");
        assert!(s.model_file.is_empty() && s.optim_file.is_empty());
    }

    #[test]
    fn save_commits_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        assert!(c.load_state().unwrap().is_none());
        let st = |epoch| TrainState {
            epoch,
            best_epoch: 1,
            best_val_loss: 0.5,
            elapsed_seconds: 1.0,
            model_file: String::new(),
            optim_file: String::new(),
        };
        c.save(st(1), b"m1", b"o1").unwrap();
        let s2 = c.save(st(2), b"m2", b"o2").unwrap();
        let loaded = c.load_state().unwrap().unwrap();
        assert_eq!(loaded, s2);
        assert_eq!(c.read(&loaded.model_file).unwrap(), b"m2");
        assert!(!c.dir().join("model-e0001.bpk").exists(), "old epoch files are pruned");
        std::fs::write(c.dir().join("last.json"), "{").unwrap();
        assert!(c.load_state().unwrap_err().to_string().contains("last.json"));
    }

    /// A process killed while writing epoch 3 left a partial temporary file: the committed
    /// epoch 2 still loads, and the next save removes the leftover.
    #[test]
    fn killed_writer_leftovers_do_not_matter_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        let st = |epoch| TrainState {
            epoch,
            best_epoch: epoch,
            best_val_loss: 0.5,
            elapsed_seconds: 1.0,
            model_file: String::new(),
            optim_file: String::new(),
        };
        c.save(st(2), b"m2", b"o2").unwrap();
        let partial = c.dir().join(".model-e0003.bpk.tmp.99999999.0");
        std::fs::write(&partial, b"m3-trunc").unwrap();
        let state = c.load_state().unwrap().unwrap();
        assert_eq!((state.epoch, c.read(&state.model_file).unwrap()), (2, b"m2".to_vec()));
        c.save(st(3), b"m3", b"o3").unwrap();
        assert!(!partial.exists(), "stale temporary file kept");
        assert_eq!(c.read("model-e0003.bpk").unwrap(), b"m3");
    }
}
