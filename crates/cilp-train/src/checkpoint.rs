//! Crash-safe checkpoints.
//!
//! Layout inside a run directory's `checkpoints/`:
//! - `model-eNNNN.bpk`, `optim-eNNNN.bpk`: the model and Adam state after epoch NNNN (burnpack);
//! - `last.json`: the commit point, written last (atomically) and naming the epoch whose files
//!   are complete, plus the training state needed to resume;
//! - `best.bpk`: the model with the lowest validation loss so far.
//!
//! `last.json` names the epoch's files by plain file name (no `/`, no `..`: a file outside
//! `checkpoints/` is never read, whatever `last.json` says) and records each file's SHA-256,
//! checked when the file is read back: a bit-flipped or truncated checkpoint is refused with
//! "checksum mismatch" naming the file. `last.json` files written before the checksums existed
//! have none (the fields default to absent) and are still read, unchecked.
//!
//! Checkpoint files are read with [`cilp_data::io`]'s bounded reads: special files
//! (`--checkpoint /dev/zero`, a FIFO) are refused by name and files over
//! [`MAX_CHECKPOINT_BYTES`] are refused before anything is read.
//!
//! Every file is written to a temporary file and renamed, and `last.json` moves only after the
//! epoch's files are in place, so a process killed at any instant leaves the previous
//! checkpoint intact. Older epochs' files are deleted once `last.json` points past them, and so
//! are temporary files a killed process left behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};

/// The largest checkpoint (`.bpk`) file read: 1 GiB.
///
/// The largest classifier of the zoo has about 13.0M parameters: 52 MB in f32 for its model
/// file, about 104 MB for its Adam state (two moments per parameter). 1 GiB leaves more than
/// 9x headroom over the biggest file cilp writes, and refuses a hostile or mistaken path (a
/// multi-GB sparse file) before allocating for it.
pub const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;

/// The largest `last.json` read (it holds a few numbers and names: about 400 bytes).
const MAX_STATE_BYTES: u64 = 1 << 20;

/// What a checkpoint file should be, for error messages.
const CHECKPOINT_WHAT: &str = "a cilp checkpoint (.bpk)";

/// The SHA-256 of `bytes`, as lowercase hex (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Reads a checkpoint file with the bounded reader (special files and files over
/// [`MAX_CHECKPOINT_BYTES`] refused by name). When a `<file>.sha256` sidecar lies beside it
/// (`best.bpk.sha256`, in `sha256sum` format), the bytes must match it.
pub fn read_checkpoint_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = cilp_data::io::read_bounded(path, MAX_CHECKPOINT_BYTES, CHECKPOINT_WHAT)
        .map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), reason: read_reason(&e) })?;
    let sidecar = sidecar_path(path);
    match cilp_data::io::read_bounded_to_string(&sidecar, 4096, "a SHA-256 checksum file (sha256sum format)") {
        Ok(text) => {
            let expected = text.split_whitespace().next().unwrap_or("");
            let found = sha256_hex(&bytes);
            if !found.eq_ignore_ascii_case(expected) {
                return Err(TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!(
                        "checksum mismatch: SHA-256 is {found}, {} records {expected:?}; the file is corrupt \
                         (or its run was killed between writing the two: --resume that run to rewrite both)",
                        sidecar.display()
                    ),
                });
            }
        }
        Err(cilp_data::io::ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TrainError::Checkpoint { path: sidecar, reason: read_reason(&e) }),
    }
    Ok(bytes)
}

/// `<file>.sha256` beside a checkpoint file.
fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// The reason of a bounded-read error without the path (the caller's error names it).
fn read_reason(e: &cilp_data::io::ReadError) -> String {
    let msg = e.to_string();
    let prefix = format!("{}: ", e.path().display());
    msg.strip_prefix(&prefix).map(str::to_owned).unwrap_or(msg)
}

/// Checks that `name` (from `last.json`) is a plain file name: not empty, no `/` or backslash, not
/// `.` or `..`, no NUL. Anything else could point outside `checkpoints/`.
fn check_plain_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        Err(format!("{name:?} is not a plain file name inside the checkpoints folder (no '/', no '..')"))
    } else {
        Ok(())
    }
}

/// What chooses the best model of a run (the checkpoint kept as `best.bpk`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Score {
    /// The lowest loss wins.
    Loss {
        #[serde(with = "cilp_track::floats::f64_lossless")]
        loss: f64,
    },
    /// The highest accuracy wins; at equal accuracy, the lower loss.
    AccuracyThenLoss {
        #[serde(with = "cilp_track::floats::f64_lossless")]
        accuracy: f64,
        #[serde(with = "cilp_track::floats::f64_lossless")]
        loss: f64,
    },
    /// Every epoch beats the one before: the last epoch is the best.
    Last,
}

impl Score {
    /// True when `self` beats `best` (always when there is no best yet).
    pub fn beats(&self, best: Option<&Score>) -> bool {
        let Some(best) = best else { return true };
        let lower = |l: f64, b: f64| l < b || (b.is_nan() && !l.is_nan());
        match (*self, *best) {
            (Score::Loss { loss }, Score::Loss { loss: b }) => lower(loss, b),
            (Score::AccuracyThenLoss { accuracy, loss }, Score::AccuracyThenLoss { accuracy: ba, loss: bl }) => {
                accuracy > ba || (accuracy == ba && loss < bl) || (ba.is_nan() && !accuracy.is_nan())
            }
            _ => true,
        }
    }

    /// The loss this score holds (NaN for [`Score::Last`]).
    pub fn loss(&self) -> f64 {
        match *self {
            Score::Loss { loss } | Score::AccuracyThenLoss { loss, .. } => loss,
            Score::Last => f64::NAN,
        }
    }
}

/// What `last.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Last completed epoch (1-based).
    pub epoch: usize,
    pub best_epoch: usize,
    /// `inf` before the first finite validation loss (written as the string `"inf"`).
    #[serde(with = "cilp_track::floats::f64_lossless")]
    pub best_val_loss: f64,
    /// Training seconds spent so far (summed over interrupted sessions).
    pub elapsed_seconds: f64,
    pub model_file: String,
    pub optim_file: String,
    /// SHA-256 (hex) of `model_file`, recorded when saved. Absent in `last.json` files written
    /// before checksums were recorded: those are read without a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// SHA-256 (hex) of `optim_file`; see `model_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optim_sha256: Option<String>,
    /// What chose `best_epoch`. Absent in `last.json` files written before it was recorded:
    /// their best model was the one with the lowest validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<Score>,
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
            model_sha256: None,
            optim_sha256: None,
            best: None,
        }
    }

    /// The score of the best model so far (`None` before the first validation).
    pub fn best_score(&self) -> Option<Score> {
        self.best.or_else(|| (self.best_epoch > 0).then_some(Score::Loss { loss: self.best_val_loss }))
    }

    /// The checksum recorded for `file`, if `file` is one of this state's files and one was
    /// recorded.
    pub fn sha256_of(&self, file: &str) -> Option<&str> {
        if file == self.model_file {
            self.model_sha256.as_deref()
        } else if file == self.optim_file {
            self.optim_sha256.as_deref()
        } else {
            None
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

    /// The committed state, if any checkpoint was completed. A `last.json` naming a file that
    /// is not a plain file name (`../../etc/passwd`, `/etc/passwd`) is refused.
    pub fn load_state(&self) -> Result<Option<TrainState>> {
        let path = self.last_path();
        let bytes = match cilp_data::io::read_bounded(&path, MAX_STATE_BYTES, "a checkpoint state (last.json)") {
            Ok(bytes) => bytes,
            Err(cilp_data::io::ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrainError::Checkpoint { path, reason: read_reason(&e) }),
        };
        let state: TrainState = serde_json::from_slice(&bytes)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), reason: format!("not a valid checkpoint state: {e}") })?;
        for (field, name) in [("model_file", &state.model_file), ("optim_file", &state.optim_file)] {
            check_plain_name(name).map_err(|why| TrainError::Checkpoint { path: path.clone(), reason: format!("{field} {why}") })?;
        }
        Ok(Some(state))
    }

    /// Writes the epoch's model and optimiser bytes, then commits `state` (whose file names are
    /// filled in here), then removes older epochs' files.
    pub fn save(&self, state: TrainState, model: &[u8], optim: &[u8]) -> Result<TrainState> {
        self.commit(state, model, optim, false)
    }

    /// [`Checkpoints::save`], and when `best` is true the epoch's model also becomes `best.bpk`
    /// with its SHA-256 beside it (`best.bpk.sha256`, checked by [`read_checkpoint_file`];
    /// `sha256sum -c` reads it too) before `state` is committed. The model's bytes are written
    /// and hashed once: `best.bpk` is a hard link to the epoch's model file where the file
    /// system allows it (neither is ever modified in place), a copy elsewhere.
    pub fn commit(&self, mut state: TrainState, model: &[u8], optim: &[u8], best: bool) -> Result<TrainState> {
        self.create_dir()?;
        state.model_file = format!("model-e{:04}.bpk", state.epoch);
        state.optim_file = format!("optim-e{:04}.bpk", state.epoch);
        let model_sha = sha256_hex(model);
        state.optim_sha256 = Some(sha256_hex(optim));
        let model_path = self.dir.join(&state.model_file);
        cilp_track::atomic::write_atomic(&model_path, model)?;
        cilp_track::atomic::write_atomic(&self.dir.join(&state.optim_file), optim)?;
        if best {
            let path = self.best_model();
            if cilp_track::atomic::link_atomic(&model_path, &path).is_err() {
                cilp_track::atomic::write_atomic(&path, model)?;
            }
            self.write_best_sidecar(&model_sha)?;
        }
        state.model_sha256 = Some(model_sha);
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

    /// Makes `model` `best.bpk` (with its checksum beside it) without committing an epoch: the
    /// best model of an epoch [`fit`](crate::fit::fit) does not commit. `last.json` is left as
    /// it is; a run resumed from it trains that epoch again, bit for bit, and writes the same
    /// bytes.
    pub fn save_best(&self, model: &[u8]) -> Result<()> {
        self.create_dir()?;
        cilp_track::atomic::write_atomic(&self.best_model(), model)?;
        self.write_best_sidecar(&sha256_hex(model))
    }

    fn create_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| TrainError::Checkpoint { path: self.dir.clone(), reason: format!("cannot create: {e}") })
    }

    /// `best.bpk.sha256`, in `sha256sum` format, for a `best.bpk` whose SHA-256 is `sha`.
    fn write_best_sidecar(&self, sha: &str) -> Result<()> {
        Ok(cilp_track::atomic::write_atomic(&sidecar_path(&self.best_model()), format!("{sha}  best.bpk\n").as_bytes())?)
    }

    /// Reads a file named by a state: `file` must be a plain file name inside the checkpoints
    /// folder; the read is bounded (see [`read_checkpoint_file`]); if the committed `last.json`
    /// records a checksum for `file`, the bytes must match it ("checksum mismatch" otherwise).
    pub fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        check_plain_name(file).map_err(|why| TrainError::Checkpoint { path: path.clone(), reason: why })?;
        let bytes = read_checkpoint_file(&path)?;
        let state = self.load_state()?;
        if let Some(expected) = state.as_ref().and_then(|s| s.sha256_of(file)) {
            let found = sha256_hex(&bytes);
            if !found.eq_ignore_ascii_case(expected) {
                return Err(TrainError::Checkpoint {
                    path,
                    reason: format!(
                        "checksum mismatch: SHA-256 is {found}, {} recorded {expected}; the file is corrupt \
                         (delete the run's checkpoints and retrain, or train with --force)",
                        self.last_path().display()
                    ),
                });
            }
        }
        Ok(bytes)
    }

    /// Loads the model and optimiser files `state` names (checked: plain names, bounded reads,
    /// checksums) into `model` and `optim`, to continue a run after `state.epoch`.
    pub fn restore<M: burn::module::Module>(
        &self,
        state: &TrainState,
        model: M,
        optim: burn::optim::ModuleOptimizer,
    ) -> Result<(M, burn::optim::ModuleOptimizer)> {
        let fail = |file: &str, e: String| TrainError::Checkpoint { path: self.dir.join(file), reason: e };
        let bytes = self.read(&state.model_file)?;
        let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| fail(&state.model_file, format!("not a cilp checkpoint: {e}")))?;
        let model = model.try_load_record(record).map_err(|e| fail(&state.model_file, format!("does not fit this model: {e}")))?;
        let obytes = self.read(&state.optim_file)?;
        let optim = optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(obytes)).map_err(|e| fail(&state.optim_file, e.to_string()))?;
        Ok((model, optim))
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
        let st = |epoch| TrainState { epoch, best_epoch: 1, best_val_loss: 0.5, elapsed_seconds: 1.0, ..TrainState::fresh() };
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
        let st = |epoch| TrainState { epoch, best_epoch: epoch, best_val_loss: 0.5, elapsed_seconds: 1.0, ..TrainState::fresh() };
        c.save(st(2), b"m2", b"o2").unwrap();
        let partial = c.dir().join(".model-e0003.bpk.tmp.99999999.0");
        std::fs::write(&partial, b"m3-trunc").unwrap();
        let state = c.load_state().unwrap().unwrap();
        assert_eq!((state.epoch, c.read(&state.model_file).unwrap()), (2, b"m2".to_vec()));
        c.save(st(3), b"m3", b"o3").unwrap();
        assert!(!partial.exists(), "stale temporary file kept");
        assert_eq!(c.read("model-e0003.bpk").unwrap(), b"m3");
    }

    #[test]
    fn last_json_may_only_name_plain_files_inside_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("run").join("checkpoints"));
        c.save(TrainState { epoch: 1, ..TrainState::fresh() }, b"m1", b"o1").unwrap();
        let secret = dir.path().join("secret.bpk");
        std::fs::write(&secret, b"outside").unwrap();
        let last = c.dir().join("last.json");
        let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&last).unwrap()).unwrap();
        for bad in ["../../secret.bpk", "/etc/passwd", "..", "", "a/b.bpk", "a\\b.bpk"] {
            let mut v = good.clone();
            v["model_file"] = bad.into();
            std::fs::write(&last, serde_json::to_vec(&v).unwrap()).unwrap();
            let e = c.load_state().unwrap_err().to_string();
            assert!(e.contains("last.json") && e.contains("model_file") && e.contains("not a plain file name"), "{bad}: {e}");
            let e = c.read(bad).unwrap_err().to_string();
            assert!(e.contains("not a plain file name"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bit_flipped_checkpoint_is_refused_by_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        let st = c.save(TrainState { epoch: 1, ..TrainState::fresh() }, b"model bytes", b"optim bytes").unwrap();
        assert_eq!(st.model_sha256.as_deref(), Some(sha256_hex(b"model bytes").as_str()));
        // The SHA-256 everyone can check with sha256sum.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let loaded = c.load_state().unwrap().unwrap();
        assert_eq!(loaded, st, "checksums round-trip through last.json");
        assert_eq!(c.read(&loaded.optim_file).unwrap(), b"optim bytes");
        for file in [&loaded.model_file, &loaded.optim_file] {
            let path = c.dir().join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[3] ^= 0x10;
            std::fs::write(&path, &bytes).unwrap();
            let e = c.read(file).unwrap_err().to_string();
            assert!(e.contains(file.as_str()) && e.contains("checksum mismatch"), "{e}");
        }
    }

    #[test]
    fn a_commit_with_best_publishes_the_epoch_model_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        let st = |epoch| TrainState { epoch, ..TrainState::fresh() };
        c.commit(st(1), b"m1", b"o1", true).unwrap();
        let sidecar = |c: &Checkpoints| std::fs::read_to_string(c.dir().join("best.bpk.sha256")).unwrap();
        assert_eq!(read_checkpoint_file(&c.best_model()).unwrap(), b"m1");
        assert_eq!(sidecar(&c), format!("{}  best.bpk\n", sha256_hex(b"m1")));
        // Epoch 2 is not better: best.bpk stays epoch 1's although model-e0001 is pruned.
        c.commit(st(2), b"m2", b"o2", false).unwrap();
        assert!(!c.dir().join("model-e0001.bpk").exists());
        assert_eq!(read_checkpoint_file(&c.best_model()).unwrap(), b"m1");
        // Epoch 3 is: best.bpk and its checksum follow, and last.json records the same hash.
        let s3 = c.commit(st(3), b"m3", b"o3", true).unwrap();
        assert_eq!(read_checkpoint_file(&c.best_model()).unwrap(), b"m3");
        assert_eq!(sidecar(&c), format!("{}  best.bpk\n", s3.model_sha256.as_deref().unwrap()));
        assert_eq!(c.load_state().unwrap().unwrap(), s3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
            assert_eq!(ino(&c.best_model()), ino(&c.dir().join("model-e0003.bpk")), "a link, not a second write");
        }
        let mut names: Vec<_> = std::fs::read_dir(c.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["best.bpk", "best.bpk.sha256", "last.json", "model-e0003.bpk", "optim-e0003.bpk"]);
    }

    #[test]
    fn a_bit_flipped_best_model_is_refused_by_its_sidecar_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        c.commit(TrainState { epoch: 1, ..TrainState::fresh() }, b"best model bytes", b"o", true).unwrap();
        let sidecar = std::fs::read_to_string(c.dir().join("best.bpk.sha256")).unwrap();
        assert_eq!(sidecar, format!("{}  best.bpk\n", sha256_hex(b"best model bytes")), "sha256sum format");
        assert_eq!(read_checkpoint_file(&c.best_model()).unwrap(), b"best model bytes");
        let mut bytes = std::fs::read(c.best_model()).unwrap();
        bytes[0] ^= 1;
        std::fs::write(c.best_model(), &bytes).unwrap();
        let e = read_checkpoint_file(&c.best_model()).unwrap_err().to_string();
        assert!(e.contains("best.bpk") && e.contains("checksum mismatch"), "{e}");
        // Without a sidecar (runs written before it existed), the file is read as it is.
        std::fs::remove_file(c.dir().join("best.bpk.sha256")).unwrap();
        assert_eq!(read_checkpoint_file(&c.best_model()).unwrap(), bytes);
    }

    #[test]
    fn last_json_without_checksums_still_loads() {
        // As written before checksums were recorded.
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("checkpoints"));
        std::fs::create_dir_all(c.dir()).unwrap();
        std::fs::write(
            c.dir().join("last.json"),
            r#"{"epoch": 3, "best_epoch": 2, "best_val_loss": 0.25, "elapsed_seconds": 9.0,
                "model_file": "model-e0003.bpk", "optim_file": "optim-e0003.bpk"}"#,
        )
        .unwrap();
        std::fs::write(c.dir().join("model-e0003.bpk"), b"old model").unwrap();
        let st = c.load_state().unwrap().unwrap();
        assert_eq!((st.epoch, st.model_sha256.as_deref()), (3, None));
        assert_eq!(c.read(&st.model_file).unwrap(), b"old model");
    }

    #[test]
    fn special_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.bpk");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        // `--checkpoint /dev/zero` used to read until memory ran out.
        for p in [Path::new("/dev/zero"), link.as_path()] {
            let e = read_checkpoint_file(p).unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()) && e.contains("character device") && e.contains("cilp checkpoint"), "{e}");
        }
        let c = Checkpoints::new(dir.path());
        let e = c.read("zero.bpk").unwrap_err().to_string();
        assert!(e.contains("zero.bpk") && e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.bpk");
        std::fs::File::create(&big).unwrap().set_len(MAX_CHECKPOINT_BYTES + 1).unwrap();
        let e = read_checkpoint_file(&big).unwrap_err().to_string();
        assert!(e.contains("big.bpk") && e.contains("-byte limit"), "{e}");
        // last.json as a FIFO does not block.
        let ck = Checkpoints::new(dir.path().join("ck"));
        std::fs::create_dir_all(ck.dir()).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(ck.dir().join("last.json")).status().unwrap().success());
        let e = ck.load_state().unwrap_err().to_string();
        assert!(e.contains("last.json") && e.contains("FIFO"), "{e}");
    }
}
