//! Run directories: creation modes, config, metrics, summary, checkpoints and
//! TensorBoard events of one training run. See the crate docs for the contract.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, IoContext, Result};
use crate::lock::FolderLock;
use crate::metrics::{self, EpochMetrics, METRICS_CSV, METRICS_JSONL};
use crate::names;
use crate::tb::{self, EventWriter, HParams, HParamsStatus};

/// Resolved configuration, TOML (written first).
pub const CONFIG_TOML: &str = "config.toml";
/// JSON copy of the resolved configuration.
pub const CONFIG_JSON: &str = "config.json";
/// Run summary.
pub const SUMMARY_JSON: &str = "summary.json";
/// Checkpoint directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// What [`RunDir::create`] does when the run directory already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreateMode {
    /// Start a new run; refuse if the directory already holds a run (CLI default).
    #[default]
    New,
    /// Delete an existing run directory and start over (`--force`).
    Force,
    /// Continue an existing run (`--resume`); the directory must hold a run.
    Resume,
}

/// Lifecycle state recorded in `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Training in progress (or the process died without updating the summary).
    #[default]
    Running,
    /// Finished normally.
    Completed,
    /// Stopped by an error.
    Failed,
    /// Stopped by SIGINT / SIGTERM (see [`crate::interrupt`]); `--resume` continues it.
    Interrupted,
}

impl RunStatus {
    /// `"running"`, `"completed"`, `"failed"` or `"interrupted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The matching TensorBoard hparams session status.
    pub fn to_hparams_status(self) -> HParamsStatus {
        match self {
            RunStatus::Running => HParamsStatus::Running,
            RunStatus::Completed => HParamsStatus::Success,
            RunStatus::Failed => HParamsStatus::Failure,
            RunStatus::Interrupted => HParamsStatus::Unknown,
        }
    }
}

/// Contents of `summary.json`. Unknown or missing fields are tolerated when reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// Run name (path relative to the runs root, e.g. `fusion/late`).
    pub name: String,
    /// Kind of run: `"train"`, `"cilp"`, `"projector"`, `"classifier"`, `"ablation"` …
    pub kind: String,
    /// Model / architecture name.
    pub model: String,
    /// Number of trainable parameters.
    pub parameters: u64,
    /// Epoch with the lowest validation loss.
    pub best_epoch: Option<usize>,
    /// Lowest validation loss.
    #[serde(with = "crate::floats::opt_f64_lossless")]
    pub best_val_loss: Option<f64>,
    /// Final values of metrics, keyed by [`crate::names`] tags (e.g. `val/accuracy`).
    #[serde(with = "crate::floats::map_f64_lossless")]
    pub final_metrics: BTreeMap<String, f64>,
    /// Wall-clock training time in seconds (over all sessions of a resumed run).
    #[serde(with = "crate::floats::f64_lossless")]
    pub total_seconds: f64,
    /// `git rev-parse HEAD` of the code, if available.
    pub git_commit: Option<String>,
    /// Device description, e.g. `"cpu"`, `"cuda:0"`.
    pub device: String,
    /// On CPU, the kernel set of each kind of product the last session ran with (rounding
    /// differs between sets: a run is bit-identical for one build, CPU and setting), e.g.
    /// `conv-train avx512, conv-infer avx512, linear-train avx512, linear-infer bf16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
    /// Random seed.
    pub seed: u64,
    /// Lifecycle state.
    pub status: RunStatus,
    /// RFC 3339 UTC start time.
    pub started_at: String,
    /// RFC 3339 UTC end time (absent while running).
    pub finished_at: Option<String>,
    /// One line on how the run ended when it did not complete (the error, or the signal that
    /// interrupted it); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Free-form additional data.
    pub extra: serde_json::Value,
}

impl Default for RunSummary {
    fn default() -> Self {
        RunSummary {
            name: String::new(),
            kind: String::new(),
            model: String::new(),
            parameters: 0,
            best_epoch: None,
            best_val_loss: None,
            final_metrics: BTreeMap::new(),
            total_seconds: 0.0,
            git_commit: None,
            device: String::new(),
            kernels: None,
            seed: 0,
            status: RunStatus::Running,
            started_at: String::new(),
            finished_at: None,
            message: None,
            extra: serde_json::Value::Null,
        }
    }
}

impl RunSummary {
    /// A `running` summary started now, with the git commit filled in.
    pub fn started(name: impl Into<String>, kind: impl Into<String>) -> Self {
        RunSummary { name: name.into(), kind: kind.into(), started_at: timestamp_utc_now(), git_commit: git_commit(), ..Default::default() }
    }

    /// Mark finished with `status`, setting `finished_at` to now.
    pub fn finish(&mut self, status: RunStatus) {
        self.status = status;
        self.finished_at = Some(timestamp_utc_now());
    }

    /// Fill `best_epoch`, `best_val_loss` and `final_metrics` from metrics rows:
    /// best = lowest finite `val` loss; final metrics = last row of each split
    /// (`<split>/loss`, `<split>/accuracy`, `<split>/<extra>`), plus `lr`.
    pub fn update_from_metrics(&mut self, rows: &[EpochMetrics]) {
        let best = rows.iter().filter(|r| r.split == names::VAL && r.loss.is_finite()).min_by(|a, b| a.loss.total_cmp(&b.loss));
        if let Some(b) = best {
            self.best_epoch = Some(b.epoch);
            self.best_val_loss = Some(b.loss);
        }
        for r in rows {
            let t = |m: &str| names::split_tag(&r.split, m);
            self.final_metrics.insert(t(names::field::LOSS), r.loss);
            if let Some(a) = r.accuracy {
                self.final_metrics.insert(t(names::field::ACCURACY), a);
            }
            if let Some(lr) = r.lr {
                self.final_metrics.insert(names::LR.into(), lr);
            }
            for (k, v) in &r.extra {
                self.final_metrics.insert(t(k), *v);
            }
        }
    }
}

/// `git rev-parse HEAD` in the current directory; `None` if git is missing or
/// this is not a repository.
pub fn git_commit() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Format seconds since the UNIX epoch as RFC 3339 UTC (`2024-05-01T12:34:56Z`).
pub fn timestamp_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Current time as RFC 3339 UTC.
pub fn timestamp_utc_now() -> String {
    timestamp_utc(tb::now_secs() as i64)
}

/// Validate a run name: one or two normal path components (`run` or `group/run`).
pub fn validate_run_name(name: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidRunName { name: name.to_owned(), reason });
    if name.trim().is_empty() {
        return bad("it is empty");
    }
    let comps: Vec<_> = Path::new(name).components().collect();
    if !comps.iter().all(|c| matches!(c, Component::Normal(_))) {
        return bad("it must be a relative path without '.' or '..' (like `run` or `group/run`)");
    }
    if comps.len() > 2 {
        return bad("at most one level of grouping is supported (`group/run`)");
    }
    Ok(())
}

/// True if `dir` contains a run marker: `config.toml`, `summary.json` (unless it is a study
/// summary, see [`is_study_summary`]), `metrics.jsonl` or a TensorBoard event file.
pub fn holds_run(dir: &Path) -> bool {
    [CONFIG_TOML, METRICS_JSONL].iter().any(|f| dir.join(f).is_file())
        || (dir.join(SUMMARY_JSON).is_file() && !is_study_summary(&dir.join(SUMMARY_JSON)))
        || tb::event_files(dir).map(|v| !v.is_empty()).unwrap_or(false)
}

/// True if `path` is a study summary: a JSON object with a `"study"` key, as `cilp fusion` and
/// `cilp ablation` write into the folder that groups their runs. Such a folder is a group of
/// runs, not a run. Unreadable, special, oversized ([`MAX_RUN_FILE_BYTES`]) or non-JSON files
/// are not study summaries.
pub fn is_study_summary(path: &Path) -> bool {
    cilp_data::io::read_bounded(path, MAX_RUN_FILE_BYTES, "a study summary (JSON)")
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("study").is_some())
}

/// Empty, or holding nothing but an empty `checkpoints/`: what [`RunDir::create`] leaves when
/// its process is killed before the run's config is written.
fn is_empty_dir(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).ctx("list directory", dir)? {
        let entry = entry.ctx("list directory", dir)?;
        let bare_checkpoints = entry.file_name() == CHECKPOINTS_DIR
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none());
        if !bare_checkpoints {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One run directory. See the crate docs for the file contract.
///
/// A `RunDir` from [`RunDir::create`] holds the run folder's [`FolderLock`] for its whole
/// lifetime: no other process (and no other `RunDir::create` in this process) can write the
/// run until it is dropped or its process ends.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    name: String,
    events: Option<EventWriter>,
    /// Created by `New`/`Force`: the first event file starts with a `SessionLog.START`.
    fresh: bool,
    /// The run folder's lock (`None` for [`RunDir::open`], which only reads).
    lock: Option<FolderLock>,
}

impl RunDir {
    /// Create (or reopen) the run `name` under `runs_root` according to `mode`.
    ///
    /// * `New`: fails with [`Error::RunExists`] if the directory holds a run,
    ///   [`Error::DirNotEmpty`] if it is a non-empty non-run directory.
    /// * `Force`: deletes an existing run directory first (refuses to delete a
    ///   non-empty directory that is not a run).
    /// * `Resume`: the directory must hold a run ([`Error::NotARun`] otherwise).
    ///   Call [`RunDir::resume_after`] once the checkpoint epoch is known.
    ///
    /// `checkpoints/` is created in every mode.
    ///
    /// **Locking**: first of all, in every mode, the run folder's [`FolderLock`] is taken
    /// (lock file `<runs_root>[/group]/.<run>.lock`, beside the folder): if another process
    /// (or another `RunDir` of this process) is writing the run, this fails at once with
    /// [`Error::Locked`] naming the folder and the holder's pid, before anything is checked,
    /// created or deleted. `Force` deletes and re-creates the folder while holding the lock
    /// (the lock file is outside the folder, so it survives the deletion). The returned
    /// `RunDir` keeps the lock until it is dropped; the OS releases it if the process dies.
    pub fn create(runs_root: &Path, name: &str, mode: CreateMode) -> Result<RunDir> {
        validate_run_name(name)?;
        let path = runs_root.join(name);
        let lock = FolderLock::acquire(&path, "run folder")?;
        let exists = path.is_dir();
        match mode {
            CreateMode::New => {
                if exists && holds_run(&path) {
                    return Err(Error::RunExists { path });
                }
                if exists && !is_empty_dir(&path)? {
                    return Err(Error::DirNotEmpty { path });
                }
            }
            CreateMode::Force => {
                if exists {
                    if !holds_run(&path) && !is_empty_dir(&path)? {
                        return Err(Error::RefuseToDelete { path });
                    }
                    fs::remove_dir_all(&path).ctx("delete run directory", &path)?;
                }
            }
            CreateMode::Resume => {
                if !exists || !path.join(CONFIG_TOML).is_file() {
                    return Err(Error::NotARun {
                        path,
                        expected: format!("an existing run with {CONFIG_TOML}"),
                        hint: "; start it without --resume".into(),
                    });
                }
            }
        }
        let fresh = mode != CreateMode::Resume;
        let dir = RunDir { path, name: name.to_owned(), events: None, fresh, lock: Some(lock) };
        fs::create_dir_all(dir.checkpoints_dir()).ctx("create directory", &dir.checkpoints_dir())?;
        if !fresh {
            // A run killed mid-write leaves temporary files beside the (intact) originals.
            crate::atomic::remove_stale_temp_files(&dir.path);
            crate::atomic::remove_stale_temp_files(&dir.checkpoints_dir());
        }
        Ok(dir)
    }

    /// Open an existing run directory for reading (evaluation, listing, reuse checks).
    ///
    /// Does **not** take the run's lock: reading a run while another process trains it is
    /// allowed (files are replaced atomically, metrics are append-only). Do not write through a
    /// `RunDir` from `open`; use [`RunDir::create`] with [`CreateMode::Resume`] to write.
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.is_dir() || !holds_run(path) {
            return Err(Error::NotARun {
                path: path.to_owned(),
                expected: format!("a directory with {CONFIG_TOML}, {SUMMARY_JSON} or {METRICS_JSONL}"),
                hint: String::new(),
            });
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(RunDir { path: path.to_owned(), name, events: None, fresh: false, lock: None })
    }

    /// The run folder's lock, held since [`RunDir::create`] (`None` for [`RunDir::open`]).
    pub fn lock(&self) -> Option<&FolderLock> {
        self.lock.as_ref()
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The run name as given to [`RunDir::create`].
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `<run>/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_TOML)
    }
    /// `<run>/config.json`.
    pub fn config_json_path(&self) -> PathBuf {
        self.path.join(CONFIG_JSON)
    }
    /// `<run>/metrics.jsonl`.
    pub fn metrics_jsonl_path(&self) -> PathBuf {
        self.path.join(METRICS_JSONL)
    }
    /// `<run>/metrics.csv`.
    pub fn metrics_csv_path(&self) -> PathBuf {
        self.path.join(METRICS_CSV)
    }
    /// `<run>/summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.path.join(SUMMARY_JSON)
    }
    /// `<run>/checkpoints/` (exists after [`RunDir::create`]).
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }

    /// Write the resolved config as `config.toml` and `config.json` (atomically).
    /// The config must serialize to a table (a struct or map).
    pub fn write_config<T: Serialize>(&self, config: &T) -> Result<()> {
        let p = self.config_path();
        let toml = toml::to_string_pretty(config).map_err(|e| Error::Serialize {
            path: p.clone(),
            what: "config as TOML (a struct or map is expected)",
            message: e.to_string(),
        })?;
        write_atomic(&p, toml.as_bytes())?;
        let jp = self.config_json_path();
        let json = serde_json::to_string_pretty(config).map_err(|e| Error::Serialize {
            path: jp.clone(),
            what: "config as JSON",
            message: e.to_string(),
        })?;
        write_atomic(&jp, format!("{json}\n").as_bytes())
    }

    /// Read `config.toml` back into `T`.
    pub fn read_config<T: DeserializeOwned>(&self) -> Result<T> {
        read_config(&self.path)
    }

    /// Append one metrics row to `metrics.jsonl` and `metrics.csv` (no TensorBoard).
    pub fn append_metrics(&self, row: &EpochMetrics) -> Result<()> {
        metrics::append_metrics(&self.path, row)
    }

    /// Log the rows of one epoch (typically a `train` and a `val` row): appends
    /// them to the metrics files, writes TensorBoard scalars at `step = epoch`
    /// and flushes the event file.
    ///
    /// Tags: `<split>/loss`, `<split>/accuracy`, `lr`, `<split>/epoch_seconds`,
    /// `<split>/samples_per_s`, `<split>/peak_memory_mb` and `<split>/<key>`
    /// for every `extra` entry.
    pub fn log_epoch(&mut self, rows: &[EpochMetrics]) -> Result<()> {
        for row in rows {
            self.append_metrics(row)?;
        }
        let w = self.events()?;
        for row in rows {
            let scalars = scalars_for_row(row);
            let refs: Vec<(&str, f64)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
            w.add_scalars(&refs, row.epoch as i64)?;
        }
        w.flush()
    }

    /// All metrics rows of this run.
    pub fn read_metrics(&self) -> Result<Vec<EpochMetrics>> {
        metrics::read_metrics(&self.path)
    }

    /// Drop metrics rows with `epoch > last_kept_epoch`; returns how many were removed.
    pub fn truncate_metrics_after(&self, last_kept_epoch: usize) -> Result<usize> {
        metrics::truncate_metrics_after(&self.path, last_kept_epoch)
    }

    /// Drop every metrics row (a run reopened before its first commit); returns how many were
    /// removed.
    pub fn drop_all_metrics(&self) -> Result<usize> {
        metrics::retain_metrics(&self.path, |_| false)
    }

    /// Prepare a resumed run whose last completed (checkpointed) epoch is
    /// `last_completed_epoch`: truncates later metrics rows and writes a
    /// TensorBoard `SessionLog.START` at step `last_completed_epoch + 1`, so
    /// TensorBoard discards the stale points of the re-run epochs.
    ///
    /// (TensorBoard treats the first `START` of a run as the initial session
    /// and every later one as a restart; that is why the first event file of a
    /// new run begins with a `START` at step 0, see [`RunDir::events`].)
    /// Returns the number of metrics rows removed.
    pub fn resume_after(&mut self, last_completed_epoch: usize) -> Result<usize> {
        let removed = self.truncate_metrics_after(last_completed_epoch)?;
        let w = self.events()?;
        w.add_session_start(last_completed_epoch as i64 + 1)?;
        w.flush()?;
        Ok(removed)
    }

    /// Write `summary.json` atomically. A `running` summary registers the run with
    /// [`crate::interrupt`], so that SIGINT / SIGTERM mark it `interrupted`; any other status
    /// (or dropping this `RunDir`) takes it off.
    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let p = self.summary_path();
        crate::interrupt::write_summary(&p, summary)
    }

    /// Read `summary.json`.
    pub fn read_summary(&self) -> Result<RunSummary> {
        read_summary(&self.path)
    }

    /// The run's TensorBoard event writer, creating a new
    /// `events.out.tfevents.<secs>.<host>.<pid>.cilp` file in the run directory
    /// on first use (one file per process session). For a new run
    /// (`New`/`Force`) the file begins with a `SessionLog.START` at step 0.
    pub fn events(&mut self) -> Result<&mut EventWriter> {
        if self.events.is_none() {
            let mut w = EventWriter::create(&self.path)?;
            if self.fresh {
                w.add_session_start(0)?;
            }
            self.events = Some(w);
        }
        Ok(self.events.as_mut().expect("just set"))
    }

    /// Log the config to TensorBoard: hparams (flattened config; `metrics`
    /// become the HParams dashboard's metric columns) and a `config` text
    /// summary holding the TOML.
    pub fn log_hparams<T: Serialize>(&mut self, config: &T, metrics: &[&str]) -> Result<()> {
        let hp = HParams {
            values: tb::flatten_hparams(config),
            metrics: metrics.iter().map(|s| (*s).to_owned()).collect(),
            group_name: String::new(),
            model_uri: self.checkpoints_dir().to_string_lossy().into_owned(),
            start_time_secs: 0.0,
        };
        let text = toml::to_string_pretty(config).map(|t| format!("```toml\n{t}```")).unwrap_or_default();
        let w = self.events()?;
        w.add_hparams(&hp)?;
        if !text.is_empty() {
            w.add_text(names::TEXT_CONFIG, &text, 0)?;
        }
        w.flush()
    }

    /// Flush the event file (if open).
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.events {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.lock.is_some() {
            crate::interrupt::forget(&self.summary_path());
        }
    }
}

/// The TensorBoard scalars written for one metrics row by [`RunDir::log_epoch`].
pub fn scalars_for_row(row: &EpochMetrics) -> Vec<(String, f64)> {
    use names::field;
    let t = |m: &str| names::split_tag(&row.split, m);
    let mut out = vec![(t(field::LOSS), row.loss)];
    if let Some(a) = row.accuracy {
        out.push((t(field::ACCURACY), a));
    }
    if let Some(lr) = row.lr {
        out.push((names::LR.to_owned(), lr));
    }
    out.push((t(field::EPOCH_SECONDS), row.epoch_seconds));
    out.push((t(field::SAMPLES_PER_S), row.samples_per_s));
    if let Some(b) = row.peak_memory_bytes {
        out.push((t(field::PEAK_MEMORY_MB), b as f64 / (1024.0 * 1024.0)));
    }
    for (k, v) in &row.extra {
        out.push((t(k), *v));
    }
    out
}

/// Copies the run directory `src` to `dst` (replacing `dst` if it exists), e.g. to reuse a
/// finished run in another study. Checkpoint files are hard-linked when the file system allows
/// (they are never modified in place: new ones are written beside and renamed), everything else
/// is copied. The copy is assembled in a hidden sibling and renamed, so `dst` is never a partial
/// run. `dst`'s [`FolderLock`] is held during the copy: a destination being written by another
/// process is refused with [`Error::Locked`] and left alone.
pub fn copy_run(src: &Path, dst: &Path) -> Result<()> {
    let name = dst.file_name().ok_or_else(|| Error::InvalidRunName {
        name: dst.display().to_string(),
        reason: "the destination of a run copy needs a final folder name",
    })?;
    let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).ctx("create", parent)?;
    let _lock = FolderLock::acquire(dst, "run folder")?;
    let staging = parent.join(format!(".{}.copying", name.to_string_lossy()));
    if staging.exists() {
        fs::remove_dir_all(&staging).ctx("remove", &staging)?;
    }
    let copied = copy_tree(src, &staging, false);
    if copied.is_err() {
        let _ = fs::remove_dir_all(&staging);
        return copied;
    }
    if dst.exists() {
        fs::remove_dir_all(dst).ctx("remove", dst)?;
    }
    fs::rename(&staging, dst).ctx("rename", dst)
}

fn copy_tree(src: &Path, dst: &Path, link: bool) -> Result<()> {
    fs::create_dir(dst).ctx("create", dst)?;
    for entry in fs::read_dir(src).ctx("list", src)? {
        let from = entry.ctx("list", src)?.path();
        let to = dst.join(from.file_name().expect("read_dir entries have names"));
        if from.is_dir() {
            copy_tree(&from, &to, link || from.file_name().is_some_and(|n| n == CHECKPOINTS_DIR))?;
        } else if !(link && fs::hard_link(&from, &to).is_ok()) {
            fs::copy(&from, &to).ctx("copy", &from)?;
        }
    }
    Ok(())
}

/// Largest `config.toml`, `config.json` or `summary.json` read: 16 MiB. cilp writes a few
/// KiB; the limit only stops a hostile or corrupt file (a sparse multi-GB file, `/dev/zero`)
/// from being read into memory whole. Special files are refused by name.
pub const MAX_RUN_FILE_BYTES: u64 = 16 << 20;

/// Read `<run_dir>/config.toml` into `T` (bounded: see [`MAX_RUN_FILE_BYTES`]).
pub fn read_config<T: DeserializeOwned>(run_dir: &Path) -> Result<T> {
    let p = run_dir.join(CONFIG_TOML);
    let text = cilp_data::io::read_bounded_to_string(&p, MAX_RUN_FILE_BYTES, "a run config (TOML)")?;
    toml::from_str(&text).map_err(|e| Error::Parse {
        path: p,
        line: None,
        expected: "the resolved run config in TOML",
        message: e.to_string(),
    })
}

/// Read `<run_dir>/summary.json` (bounded: see [`MAX_RUN_FILE_BYTES`]).
pub fn read_summary(run_dir: &Path) -> Result<RunSummary> {
    let p = run_dir.join(SUMMARY_JSON);
    let text = cilp_data::io::read_bounded_to_string(&p, MAX_RUN_FILE_BYTES, "a run summary (JSON)")?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: p,
        line: Some(e.line()),
        expected: "a run summary JSON object",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number written to a summary reads back as the same f64 (serde_json's `float_roundtrip`):
    /// a study collected from its run folders (`--collect`, `--jobs`) must equal the one trained in
    /// memory. 0.09861563138663769 read back one unit in the last place off without it.
    #[test]
    fn floats_survive_a_summary_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), "r", CreateMode::New).unwrap();
        let mut s = RunSummary::started("r", "classifier");
        for x in [0.09861563138663769, 0.12027184590697289, 1.0 / 3.0, 2.5388e-7] {
            s.best_val_loss = Some(x);
            run.write_summary(&s).unwrap();
            assert_eq!(read_summary(run.path()).unwrap().best_val_loss.unwrap().to_bits(), x.to_bits(), "{x}");
        }
    }

    #[test]
    fn copy_run_copies_files_links_checkpoints_and_replaces_the_destination() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("a/run");
        fs::create_dir_all(src.join("checkpoints")).unwrap();
        fs::write(src.join("config.toml"), "model = \"x\"\n").unwrap();
        fs::write(src.join("checkpoints/best.bpk"), b"weights").unwrap();
        let dst = tmp.path().join("b/run");
        fs::create_dir_all(dst.join("old")).unwrap();
        fs::write(dst.join("stale.txt"), "stale").unwrap();
        copy_run(&src, &dst).unwrap();
        assert_eq!(fs::read_to_string(dst.join("config.toml")).unwrap(), "model = \"x\"\n");
        assert_eq!(fs::read(dst.join("checkpoints/best.bpk")).unwrap(), b"weights");
        assert!(!dst.join("stale.txt").exists() && !dst.join("old").exists(), "the old destination is replaced");
        assert!(!tmp.path().join("b/.run.copying").exists(), "no staging folder is left");
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&src.join("checkpoints/best.bpk")), ino(&dst.join("checkpoints/best.bpk")), "checkpoints are linked");
        assert_ne!(ino(&src.join("config.toml")), ino(&dst.join("config.toml")), "other files are copied");
        // A missing source fails with its path and leaves the destination alone.
        let err = copy_run(&tmp.path().join("missing"), &dst).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        assert!(dst.join("config.toml").is_file());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cfg {
        lr: f64,
        epochs: usize,
        model: String,
        opt: Opt,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Opt {
        name: String,
        wd: f64,
    }

    #[test]
    fn study_summary_is_not_a_run_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let group = tmp.path().join("fusion");
        fs::create_dir_all(group.join("late-fusion-s51")).unwrap();
        fs::write(group.join("late-fusion-s51").join(SUMMARY_JSON), "{}").unwrap();
        fs::write(group.join(SUMMARY_JSON), r#"{"study": "fusion", "rows": []}"#).unwrap();
        assert!(is_study_summary(&group.join(SUMMARY_JSON)));
        assert!(!holds_run(&group));
        assert!(holds_run(&group.join("late-fusion-s51")));
        fs::write(group.join(SUMMARY_JSON), r#"{"name": "x", "status": "completed"}"#).unwrap();
        assert!(holds_run(&group));
        fs::write(group.join(SUMMARY_JSON), "not json").unwrap();
        assert!(holds_run(&group));
    }

    fn cfg() -> Cfg {
        Cfg { lr: 1e-3, epochs: 3, model: "late".into(), opt: Opt { name: "adam".into(), wd: 0.0 } }
    }

    #[test]
    fn create_modes() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::create(root.path(), "a", CreateMode::New).unwrap();
        assert!(run.checkpoints_dir().is_dir());
        run.write_config(&cfg()).unwrap();
        assert_eq!(run.read_config::<Cfg>().unwrap(), cfg());
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(run.config_json_path()).unwrap()).unwrap();
        assert_eq!(json["opt"]["name"], "adam");
        let ckpt_dir = run.checkpoints_dir();
        // While `run` is alive it holds the lock: see `second_writer_is_refused_with_the_pid`.
        drop(run);

        let err = RunDir::create(root.path(), "a", CreateMode::New).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::RunExists { .. }));
        assert!(msg.contains("--resume") && msg.contains("--force"), "{msg}");
        assert!(msg.contains(&root.path().join("a").display().to_string()), "{msg}");

        let resumed = RunDir::create(root.path(), "a", CreateMode::Resume).unwrap();
        assert_eq!(resumed.read_config::<Cfg>().unwrap(), cfg());
        drop(resumed);

        fs::write(ckpt_dir.join("epoch-1.mpk"), b"x").unwrap();
        let forced = RunDir::create(root.path(), "a", CreateMode::Force).unwrap();
        assert!(!forced.config_path().exists());
        assert!(forced.checkpoints_dir().read_dir().unwrap().next().is_none());

        let err = RunDir::create(root.path(), "nope", CreateMode::Resume).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("config.toml"), "{err}");
    }

    /// Asserts `r` is `Error::Locked` for `path` held by `pid`, and returns the message.
    fn assert_locked(r: Result<RunDir>, path: &Path, pid: u32) -> String {
        let e = r.unwrap_err();
        let msg = e.to_string();
        let Error::Locked { path: p, pid: found, .. } = &e else { panic!("expected Locked, got {e:?}") };
        assert_eq!((p.as_path(), *found), (path, Some(pid)), "{msg}");
        assert!(
            msg.contains(&format!("{} is being written by process {pid}", path.display()))
                && msg.contains("wait for it to finish or stop it"),
            "{msg}"
        );
        msg
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(snapshot(&p));
                out.push((p, Vec::new()));
            } else {
                let b = fs::read(&p).unwrap();
                out.push((p, b));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn second_writer_in_one_process_is_refused_with_the_pid() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("g/late-fusion");
        let run = RunDir::create(root.path(), "g/late-fusion", CreateMode::New).unwrap();
        run.write_config(&cfg()).unwrap();
        fs::write(run.checkpoints_dir().join("epoch-1.mpk"), b"weights").unwrap();
        assert!(run.lock().is_some());
        let before = snapshot(&path);
        let me = std::process::id();
        for mode in [CreateMode::New, CreateMode::Resume, CreateMode::Force] {
            assert_locked(RunDir::create(root.path(), "g/late-fusion", mode), &path, me);
        }
        assert_eq!(snapshot(&path), before, "--force while locked deleted or changed something");
        // The lock file lives beside the run, not in it; a listing does not see it.
        assert!(root.path().join("g/.late-fusion.lock").is_file());
        assert!(!path.join(".lock").exists());
        assert_eq!(crate::compare::list_runs(root.path()).unwrap().len(), 1);
        // Reading is not writing: `open` takes no lock.
        assert!(RunDir::open(&path).unwrap().lock().is_none());
        drop(run);
        let resumed = RunDir::create(root.path(), "g/late-fusion", CreateMode::Resume).unwrap();
        assert_eq!(resumed.read_config::<Cfg>().unwrap(), cfg());
    }

    #[test]
    fn force_keeps_the_lock_while_it_deletes_and_recreates() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("r");
        let run = RunDir::create(root.path(), "r", CreateMode::New).unwrap();
        run.write_config(&cfg()).unwrap();
        drop(run);
        let forced = RunDir::create(root.path(), "r", CreateMode::Force).unwrap();
        assert!(!forced.config_path().exists(), "the old run was deleted");
        assert_locked(RunDir::create(root.path(), "r", CreateMode::Resume), &path, std::process::id());
        assert_locked(RunDir::create(root.path(), "r", CreateMode::Force), &path, std::process::id());
        assert!(forced.checkpoints_dir().is_dir(), "the second --force deleted nothing");
        // copy_run onto a run being written is refused and leaves it alone.
        let src = root.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join(CONFIG_TOML), "x = 1\n").unwrap();
        let e = copy_run(&src, &path).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e:?}");
        assert!(forced.checkpoints_dir().is_dir() && !forced.config_path().exists());
        drop(forced);
        copy_run(&src, &path).unwrap();
        assert!(path.join(CONFIG_TOML).is_file());
    }

    /// Kills (SIGKILL) and reaps the child when dropped, so a failing test leaves no process.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    const LOCK_HOLDER_ENV: &str = "CILP_TRACK_TEST_LOCK_HOLDER_ROOT";

    /// A child process (this test binary, re-executed) creates a run and holds it: every mode
    /// of `RunDir::create` here is refused with the child's pid and changes nothing; once the
    /// child is killed with SIGKILL (no cleanup runs), the lock is free again.
    #[test]
    fn a_run_held_by_another_process_is_refused_until_it_is_killed() {
        if let Some(root) = std::env::var_os(LOCK_HOLDER_ENV) {
            let run = RunDir::create(Path::new(&root), "held", CreateMode::New).unwrap();
            run.write_config(&cfg()).unwrap();
            println!("\nLOCKED {}", std::process::id());
            std::thread::sleep(std::time::Duration::from_secs(120));
            return;
        }
        use std::io::BufRead;
        let root = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "run::tests::a_run_held_by_another_process_is_refused_until_it_is_killed", "--nocapture", "--test-threads=1"])
            .env(LOCK_HOLDER_ENV, root.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let pid = child.0.id();
        let stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
        let line = stdout.lines().map(|l| l.unwrap()).find(|l| l.contains("LOCKED ")).expect("the child exited before locking the run");
        assert!(line.ends_with(&format!("LOCKED {pid}")), "{line}");
        let path = root.path().join("held");
        let before = snapshot(&path);
        for mode in [CreateMode::Resume, CreateMode::New, CreateMode::Force] {
            assert_locked(RunDir::create(root.path(), "held", mode), &path, pid);
        }
        assert_eq!(snapshot(&path), before, "a refused create changed the run");
        assert!(matches!(FolderLock::acquire(&path, "run folder"), Err(Error::Locked { .. })));
        // SIGKILL: the OS releases the lock with the process.
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let resumed = RunDir::create(root.path(), "held", CreateMode::Resume).unwrap();
        assert_eq!(resumed.read_config::<Cfg>().unwrap(), cfg());
        let text = fs::read_to_string(root.path().join(".held.lock")).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string(), "the new holder records its pid");
    }

    #[test]
    fn run_files_are_read_bounded_and_special_files_refused() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::create(root.path(), "r", CreateMode::New).unwrap();
        run.write_config(&cfg()).unwrap();
        run.write_summary(&RunSummary::started("r", "train")).unwrap();
        // Just over the limit, sparse: refused from the size, with the size and the limit.
        let big = |p: &Path, len: u64| fs::File::options().write(true).open(p).unwrap().set_len(len).unwrap();
        big(&run.summary_path(), MAX_RUN_FILE_BYTES + 1);
        big(&run.config_path(), MAX_RUN_FILE_BYTES + 1);
        for e in [read_summary(run.path()).unwrap_err(), read_config::<Cfg>(run.path()).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains(&format!("{} bytes", MAX_RUN_FILE_BYTES + 1)) && e.contains("16777216-byte limit"), "{e}");
        }
        assert!(!is_study_summary(&run.summary_path()));
        // A FIFO and a symlink to /dev/zero in place of the files: refused by name, never opened.
        fs::remove_file(run.summary_path()).unwrap();
        fs::remove_file(run.config_path()).unwrap();
        assert!(Command::new("mkfifo").arg(run.summary_path()).status().unwrap().success());
        std::os::unix::fs::symlink("/dev/zero", run.config_path()).unwrap();
        // Watchdog: should a regression open the FIFO, a writer unblocks it after 20 s so the
        // test fails instead of hanging.
        let fifo = run.summary_path();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(20));
            let _ = fs::OpenOptions::new().write(true).open(fifo);
        });
        let e = read_summary(run.path()).unwrap_err().to_string();
        assert!(e.contains("summary.json") && e.contains("FIFO") && e.contains("not a regular file"), "{e}");
        let e = read_config::<Cfg>(run.path()).unwrap_err().to_string();
        assert!(e.contains("config.toml") && e.contains("character device"), "{e}");
        assert!(!is_study_summary(&run.summary_path()));
        let rec = crate::compare::load_run(run.path(), "r");
        assert!(
            rec.errors.iter().any(|e| e.contains("FIFO")) && rec.errors.iter().any(|e| e.contains("character device")),
            "{:?}",
            rec.errors
        );
    }

    #[test]
    fn refuses_foreign_directories_and_bad_names() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("g/x")).unwrap();
        fs::write(root.path().join("g/x/notes.txt"), b"").unwrap();
        assert!(matches!(RunDir::create(root.path(), "g", CreateMode::Force), Err(Error::RefuseToDelete { .. })));
        assert!(matches!(RunDir::create(root.path(), "g", CreateMode::New), Err(Error::DirNotEmpty { .. })));
        assert!(root.path().join("g/x/notes.txt").exists());
        for bad in ["", "..", "../x", "/abs", "a/b/c", "./a"] {
            assert!(RunDir::create(root.path(), bad, CreateMode::New).is_err(), "{bad}");
        }
        RunDir::create(root.path(), "group/run", CreateMode::New).unwrap();
        // empty pre-existing directory is fine
        fs::create_dir(root.path().join("empty")).unwrap();
        RunDir::create(root.path(), "empty", CreateMode::New).unwrap();
        // ... and so is one killed before its config was written (only an empty checkpoints/),
        // but not one whose checkpoints/ holds something.
        fs::create_dir_all(root.path().join("killed/checkpoints")).unwrap();
        RunDir::create(root.path(), "killed", CreateMode::New).unwrap();
        fs::create_dir_all(root.path().join("kept/checkpoints")).unwrap();
        fs::write(root.path().join("kept/checkpoints/model.bpk"), b"w").unwrap();
        assert!(matches!(RunDir::create(root.path(), "kept", CreateMode::New), Err(Error::DirNotEmpty { .. })));
    }

    fn row(epoch: usize, split: &str, loss: f64) -> EpochMetrics {
        let mut r = EpochMetrics::new(epoch, split, loss);
        r.accuracy = Some(0.5);
        r.epoch_seconds = 2.0;
        r.samples_per_s = 100.0;
        r.peak_memory_bytes = Some(3 * 1024 * 1024);
        if split == "train" {
            r.lr = Some(0.01);
        } else {
            r.extra.insert("rgb_to_lidar/R@1".into(), 0.75);
        }
        r
    }

    #[test]
    fn log_epochs_resume_and_summary() {
        let root = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(root.path(), "r", CreateMode::New).unwrap();
        run.write_config(&cfg()).unwrap();
        run.log_hparams(&cfg(), &[names::VAL_LOSS]).unwrap();
        for e in 1..=3 {
            run.log_epoch(&[row(e, "train", 1.0 / e as f64), row(e, "val", 2.0 / e as f64)]).unwrap();
        }
        let evs = tb::read_events(&tb::event_files(run.path()).unwrap()[0]).unwrap();
        let tags: Vec<String> = evs
            .iter()
            .filter_map(|e| match &e.what {
                Some(tb::proto::event::What::Summary(s)) => Some(s.value.iter().map(|v| v.tag.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        for t in [names::TRAIN_LOSS, names::VAL_LOSS, names::LR, names::TRAIN_PEAK_MEMORY_MB, names::VAL_RGB_TO_LIDAR_R1] {
            assert!(tags.iter().any(|x| x == t), "missing {t} in {tags:?}");
        }
        drop(run);

        // crash after epoch 3, checkpoint from epoch 2: resume
        let mut run = RunDir::create(root.path(), "r", CreateMode::Resume).unwrap();
        assert_eq!(run.resume_after(2).unwrap(), 2);
        run.log_epoch(&[row(3, "train", 0.3), row(3, "val", 0.6)]).unwrap();
        let rows = run.read_metrics().unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows.iter().filter(|r| r.epoch == 3).count(), 2);
        assert_eq!(tb::event_files(run.path()).unwrap().len(), 2);

        let mut s = RunSummary::started("r", "train");
        s.update_from_metrics(&rows);
        s.finish(RunStatus::Completed);
        assert_eq!(s.best_epoch, Some(3));
        assert_eq!(s.best_val_loss, Some(0.6));
        assert_eq!(s.final_metrics[names::VAL_RGB_TO_LIDAR_R1], 0.75);
        assert_eq!(s.final_metrics[names::LR], 0.01);
        run.write_summary(&s).unwrap();
        let back = run.read_summary().unwrap();
        assert_eq!(back, s);
        let raw = fs::read_to_string(run.summary_path()).unwrap();
        assert!(raw.contains("\"status\": \"completed\""), "{raw}");
    }

    #[test]
    fn summary_with_nan_and_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SUMMARY_JSON), r#"{"name":"x","status":"failed","final_metrics":{"val/loss":"NaN"}}"#).unwrap();
        let s = read_summary(dir.path()).unwrap();
        assert_eq!(s.status, RunStatus::Failed);
        assert!(s.final_metrics["val/loss"].is_nan());
        fs::write(dir.path().join(SUMMARY_JSON), "{").unwrap();
        let err = read_summary(dir.path()).unwrap_err().to_string();
        assert!(err.contains("summary.json") && err.contains("expected"), "{err}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
