//! Per-epoch metrics rows and the `metrics.jsonl` / `metrics.csv` files.
//!
//! * `metrics.jsonl` is the source of truth: one JSON object per line, one line
//!   per epoch and split, in the field order of [`EpochMetrics`]. Non-finite
//!   floats are written as the strings `"NaN"`, `"inf"`, `"-inf"`.
//! * `metrics.csv` carries the same rows for spreadsheets and pandas, with the
//!   fixed header [`CSV_HEADER`]:
//!
//! | column | content |
//! |---|---|
//! | `epoch` | epoch number as used by the trainer (cilp counts from 1) |
//! | `split` | `train` or `val` |
//! | `loss` | mean loss over the split |
//! | `accuracy` | accuracy in `[0, 1]`, empty when not applicable |
//! | `lr` | learning rate, empty when not recorded for the row |
//! | `epoch_seconds` | wall-clock seconds spent on this split in this epoch |
//! | `samples_per_s` | throughput |
//! | `peak_memory_bytes` | peak memory in bytes, empty when unknown |
//! | `extra` | further metrics as `name=value` pairs joined by `;` (e.g. `rgb_to_lidar/R@1=0.53;logit_scale=14.2`) |
//!
//! Both files are append-only logs during a run (each append is flushed and
//! fsynced); they are rewritten atomically only by [`truncate_metrics_after`]
//! (used on resume) and [`write_metrics`].

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, IoContext, Result};
use crate::floats::{format_f64, parse_f64};

/// File name of the JSON-lines metrics log inside a run directory.
pub const METRICS_JSONL: &str = "metrics.jsonl";
/// File name of the CSV metrics log inside a run directory.
pub const METRICS_CSV: &str = "metrics.csv";
/// The fixed header line of `metrics.csv` (without the trailing newline).
pub const CSV_HEADER: &str = "epoch,split,loss,accuracy,lr,epoch_seconds,samples_per_s,peak_memory_bytes,extra";

/// Metrics of one split (`"train"` or `"val"`) in one epoch: one row of
/// `metrics.jsonl` / `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number (cilp counts from 1).
    pub epoch: usize,
    /// `"train"` or `"val"` (see [`crate::names::TRAIN`], [`crate::names::VAL`]).
    pub split: String,
    /// Mean loss over the split.
    #[serde(with = "crate::floats::f64_lossless")]
    pub loss: f64,
    /// Accuracy in `[0, 1]`, if the task has one.
    #[serde(default, with = "crate::floats::opt_f64_lossless")]
    pub accuracy: Option<f64>,
    /// Learning rate in effect (usually only on `train` rows).
    #[serde(default, with = "crate::floats::opt_f64_lossless")]
    pub lr: Option<f64>,
    /// Wall-clock seconds spent on this split in this epoch.
    #[serde(with = "crate::floats::f64_lossless")]
    pub epoch_seconds: f64,
    /// Samples processed per second.
    #[serde(with = "crate::floats::f64_lossless")]
    pub samples_per_s: f64,
    /// Peak memory in bytes during this split, if measured.
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    /// Further metrics relative to the split, e.g. `rgb_to_lidar/R@1`, `logit_scale`.
    /// TensorBoard tags are `<split>/<key>`.
    #[serde(default, with = "crate::floats::map_f64_lossless")]
    pub extra: BTreeMap<String, f64>,
}

impl EpochMetrics {
    /// A row with the required fields set and all optional ones empty.
    pub fn new(epoch: usize, split: impl Into<String>, loss: f64) -> Self {
        EpochMetrics {
            epoch,
            split: split.into(),
            loss,
            accuracy: None,
            lr: None,
            epoch_seconds: 0.0,
            samples_per_s: 0.0,
            peak_memory_bytes: None,
            extra: BTreeMap::new(),
        }
    }

    /// Render the row as one `metrics.csv` line (no trailing newline).
    pub fn to_csv_line(&self) -> String {
        let opt = |v: Option<f64>| v.map(format_f64).unwrap_or_default();
        let extra = self.extra.iter().map(|(k, v)| format!("{k}={}", format_f64(*v))).collect::<Vec<_>>().join(";");
        [
            self.epoch.to_string(),
            csv_field(&self.split),
            format_f64(self.loss),
            opt(self.accuracy),
            opt(self.lr),
            format_f64(self.epoch_seconds),
            format_f64(self.samples_per_s),
            self.peak_memory_bytes.map(|b| b.to_string()).unwrap_or_default(),
            csv_field(&extra),
        ]
        .join(",")
    }

    /// Parse one `metrics.csv` data line (as written by [`Self::to_csv_line`]).
    pub fn from_csv_line(line: &str) -> std::result::Result<Self, String> {
        let cells = csv_split(line)?;
        if cells.len() != 9 {
            return Err(format!("expected 9 columns, found {}", cells.len()));
        }
        let f = |i: usize, name: &str| -> std::result::Result<f64, String> {
            parse_f64(&cells[i]).ok_or_else(|| format!("column {name}: not a number: {:?}", cells[i]))
        };
        let of = |i: usize, name: &str| -> std::result::Result<Option<f64>, String> {
            if cells[i].is_empty() { Ok(None) } else { f(i, name).map(Some) }
        };
        let mut extra = BTreeMap::new();
        for pair in cells[8].split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.rsplit_once('=').ok_or_else(|| format!("column extra: expected name=value, found {pair:?}"))?;
            let v = parse_f64(v).ok_or_else(|| format!("column extra: not a number in {pair:?}"))?;
            extra.insert(k.to_owned(), v);
        }
        Ok(EpochMetrics {
            epoch: cells[0].parse().map_err(|_| format!("column epoch: not an integer: {:?}", cells[0]))?,
            split: cells[1].clone(),
            loss: f(2, "loss")?,
            accuracy: of(3, "accuracy")?,
            lr: of(4, "lr")?,
            epoch_seconds: f(5, "epoch_seconds")?,
            samples_per_s: f(6, "samples_per_s")?,
            peak_memory_bytes: if cells[7].is_empty() {
                None
            } else {
                Some(cells[7].parse().map_err(|_| format!("column peak_memory_bytes: not an integer: {:?}", cells[7]))?)
            },
            extra,
        })
    }
}

/// One CSV field (RFC 4180): quoted, with `"` doubled, when it holds a comma, a quote, `\n` or
/// `\r`; as it is otherwise. Every CSV file cilp writes goes through this, except the study
/// CSVs of `cilp_report::study_files`, which the `csv` crate writes with the same rule.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

fn csv_split(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => in_quotes = false,
            ('"', false) if cur.is_empty() => in_quotes = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quoted cell".into());
    }
    out.push(cur);
    Ok(out)
}

fn jsonl_path(run_dir: &Path) -> PathBuf {
    run_dir.join(METRICS_JSONL)
}

fn csv_path(run_dir: &Path) -> PathBuf {
    run_dir.join(METRICS_CSV)
}

/// Parse `metrics.jsonl` content. A final line without newline that fails to
/// parse is treated as a write interrupted by a crash and ignored; any other
/// bad line is an error.
fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<EpochMetrics>> {
    let mut rows = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<EpochMetrics>(line) {
            Ok(r) => rows.push(r),
            Err(_) if !complete && i + 1 == lines.len() => break,
            Err(e) => {
                return Err(Error::Parse {
                    path: path.to_owned(),
                    line: Some(i + 1),
                    expected: "one JSON object per line with the fields of EpochMetrics",
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(rows)
}

/// Largest `metrics.jsonl` / `metrics.csv` read: 256 MiB. A row is a few hundred bytes and a
/// run logs two per epoch, so this is over 300,000 epochs, far beyond any run, while a hostile
/// or corrupt file (sparse multi-GB, `/dev/zero`) cannot make a listing allocate more than a
/// bounded amount (the file, then its parsed rows). Special files are refused by name.
pub const MAX_METRICS_BYTES: u64 = 256 << 20;

/// Read all rows of `<run_dir>/metrics.jsonl` (empty if the file does not exist; bounded, see
/// [`MAX_METRICS_BYTES`]).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = jsonl_path(run_dir);
    match cilp_data::io::read_bounded_to_string(&path, MAX_METRICS_BYTES, "a metrics log (JSON lines)") {
        Ok(text) => parse_jsonl(&path, &text),
        Err(cilp_data::io::ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Read a `metrics.csv` file (header checked, then one row per line; bounded, see
/// [`MAX_METRICS_BYTES`]).
pub fn read_metrics_csv(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = cilp_data::io::read_bounded_to_string(path, MAX_METRICS_BYTES, "a metrics table (CSV)")?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h == CSV_HEADER => {}
        other => {
            return Err(Error::Parse {
                path: path.to_owned(),
                line: Some(1),
                expected: "the metrics.csv header",
                message: format!("found {:?}, expected {CSV_HEADER:?}", other.unwrap_or("")),
            });
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            EpochMetrics::from_csv_line(l).map_err(|message| Error::Parse {
                path: path.to_owned(),
                line: Some(i + 2),
                expected: "a metrics.csv row",
                message,
            })
        })
        .collect()
}

/// True if the file exists, is non-empty and does not end with a newline. A special file
/// (FIFO, device) in its place is refused by name rather than opened.
fn has_partial_last_line(path: &Path) -> Result<bool> {
    let (mut f, len) = match cilp_data::io::open_bounded(path, u64::MAX, "a metrics log") {
        Ok(f) => f,
        Err(cilp_data::io::ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - 1)).ctx("seek in", path)?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).ctx("read", path)?;
    Ok(b[0] != b'\n')
}

fn append_line(path: &Path, header: Option<&str>, line: &str) -> Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path).ctx("open for appending", path)?;
    let len = f.metadata().ctx("stat", path)?.len();
    let mut buf = String::new();
    if let (Some(h), 0) = (header, len) {
        buf.push_str(h);
        buf.push('\n');
    }
    buf.push_str(line);
    buf.push('\n');
    f.write_all(buf.as_bytes()).ctx("append to", path)?;
    f.sync_data().ctx("fsync", path)?;
    Ok(())
}

/// Append one row to `metrics.jsonl` and `metrics.csv` of `run_dir`
/// (creating them, with the CSV header, if needed). Each file is fsynced.
///
/// If a previous crash left a partial last line, both files are first
/// repaired (rewritten from the complete rows).
pub fn append_metrics(run_dir: &Path, row: &EpochMetrics) -> Result<()> {
    let jp = jsonl_path(run_dir);
    let cp = csv_path(run_dir);
    if has_partial_last_line(&jp)? || has_partial_last_line(&cp)? {
        let rows = read_metrics(run_dir)?;
        write_metrics(run_dir, &rows)?;
    }
    let json = serde_json::to_string(row).map_err(|e| Error::Serialize {
        path: jp.clone(),
        what: "metrics row as JSON",
        message: e.to_string(),
    })?;
    append_line(&jp, None, &json)?;
    append_line(&cp, Some(CSV_HEADER), &row.to_csv_line())?;
    Ok(())
}

/// Atomically replace `metrics.jsonl` and `metrics.csv` of `run_dir` with `rows`.
pub fn write_metrics(run_dir: &Path, rows: &[EpochMetrics]) -> Result<()> {
    let jp = jsonl_path(run_dir);
    let mut json = String::new();
    let mut csv = format!("{CSV_HEADER}\n");
    for r in rows {
        json.push_str(&serde_json::to_string(r).map_err(|e| Error::Serialize {
            path: jp.clone(),
            what: "metrics row as JSON",
            message: e.to_string(),
        })?);
        json.push('\n');
        csv.push_str(&r.to_csv_line());
        csv.push('\n');
    }
    write_atomic(&jp, json.as_bytes())?;
    write_atomic(&csv_path(run_dir), csv.as_bytes())?;
    Ok(())
}

/// Drop every row with `epoch > last_kept_epoch` from both metrics files
/// (used when resuming from the checkpoint of `last_kept_epoch`, so that the
/// re-run epochs do not produce duplicate rows). Returns the number of rows
/// removed. Also repairs a partial last line left by a crash.
pub fn truncate_metrics_after(run_dir: &Path, last_kept_epoch: usize) -> Result<usize> {
    retain_metrics(run_dir, |r| r.epoch <= last_kept_epoch)
}

/// Keeps only the metrics rows for which `keep` is true (rewriting both files, also when a
/// killed writer left a partial last line); returns how many rows were removed.
pub fn retain_metrics(run_dir: &Path, keep: impl Fn(&EpochMetrics) -> bool) -> Result<usize> {
    let rows = read_metrics(run_dir)?;
    let before = rows.len();
    let kept: Vec<_> = rows.into_iter().filter(|r| keep(r)).collect();
    let removed = before - kept.len();
    if removed > 0
        || has_partial_last_line(&jsonl_path(run_dir))?
        || has_partial_last_line(&csv_path(run_dir))?
        || (jsonl_path(run_dir).exists() && !csv_path(run_dir).exists())
    {
        write_metrics(run_dir, &kept)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        for (raw, quoted) in
            [("a,b", "\"a,b\""), ("say \"hi\"", "\"say \"\"hi\"\"\""), ("two\nlines", "\"two\nlines\""), ("cr\r", "\"cr\r\"")]
        {
            assert_eq!(csv_field(raw), quoted, "{raw:?}");
        }
    }

    use super::*;
    use std::fs;

    fn row(epoch: usize, split: &str) -> EpochMetrics {
        let mut r = EpochMetrics::new(epoch, split, 1.0 / epoch as f64);
        r.accuracy = Some(0.5);
        r.lr = (split == "train").then_some(1e-4);
        r.epoch_seconds = 12.5;
        r.samples_per_s = 1000.0;
        r.peak_memory_bytes = Some(123_456_789);
        r.extra.insert("rgb_to_lidar/R@1".into(), 0.25);
        r
    }

    #[test]
    fn append_read_and_csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![row(1, "train"), row(1, "val"), row(2, "train"), row(2, "val")];
        for r in &rows {
            append_metrics(dir.path(), r).unwrap();
        }
        assert_eq!(read_metrics(dir.path()).unwrap(), rows);
        let csv = fs::read_to_string(dir.path().join(METRICS_CSV)).unwrap();
        assert!(csv.starts_with(&format!("{CSV_HEADER}\n")));
        assert_eq!(csv.lines().count(), 5);
        assert_eq!(read_metrics_csv(&dir.path().join(METRICS_CSV)).unwrap(), rows);
    }

    #[test]
    fn non_finite_values_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = EpochMetrics::new(1, "train", f64::NAN);
        r.accuracy = Some(f64::INFINITY);
        r.extra.insert("x".into(), f64::NEG_INFINITY);
        append_metrics(dir.path(), &r).unwrap();
        for back in [read_metrics(dir.path()).unwrap().remove(0), read_metrics_csv(&dir.path().join(METRICS_CSV)).unwrap().remove(0)] {
            assert!(back.loss.is_nan());
            assert_eq!(back.accuracy, Some(f64::INFINITY));
            assert_eq!(back.extra["x"], f64::NEG_INFINITY);
        }
    }

    #[test]
    fn truncate_removes_later_epochs() {
        let dir = tempfile::tempdir().unwrap();
        for e in 1..=4 {
            append_metrics(dir.path(), &row(e, "train")).unwrap();
            append_metrics(dir.path(), &row(e, "val")).unwrap();
        }
        assert_eq!(truncate_metrics_after(dir.path(), 2).unwrap(), 4);
        let back = read_metrics(dir.path()).unwrap();
        assert_eq!(back.len(), 4);
        assert!(back.iter().all(|r| r.epoch <= 2));
        assert_eq!(read_metrics_csv(&dir.path().join(METRICS_CSV)).unwrap(), back);
        // re-running epoch 3 gives no duplicates
        append_metrics(dir.path(), &row(3, "train")).unwrap();
        let back = read_metrics(dir.path()).unwrap();
        assert_eq!(back.iter().filter(|r| r.epoch == 3).count(), 1);
    }

    #[test]
    fn partial_last_line_is_ignored_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        append_metrics(dir.path(), &row(1, "train")).unwrap();
        let jp = dir.path().join(METRICS_JSONL);
        let mut f = OpenOptions::new().append(true).open(&jp).unwrap();
        f.write_all(b"{\"epoch\":2,\"spl").unwrap();
        drop(f);
        assert_eq!(read_metrics(dir.path()).unwrap().len(), 1);
        append_metrics(dir.path(), &row(2, "train")).unwrap();
        let back = read_metrics(dir.path()).unwrap();
        assert_eq!(back, vec![row(1, "train"), row(2, "train")]);
    }

    #[test]
    fn metrics_reads_are_bounded_and_special_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        append_metrics(dir.path(), &row(1, "train")).unwrap();
        let jp = dir.path().join(METRICS_JSONL);
        let cp = dir.path().join(METRICS_CSV);
        for p in [&jp, &cp] {
            fs::File::options().write(true).open(p).unwrap().set_len(MAX_METRICS_BYTES + 1).unwrap();
        }
        for e in [read_metrics(dir.path()).unwrap_err(), read_metrics_csv(&cp).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains(&format!("{} bytes", MAX_METRICS_BYTES + 1)) && e.contains("268435456-byte limit"), "{e}");
        }
        fs::remove_file(&jp).unwrap();
        fs::remove_file(&cp).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &jp).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&cp).status().unwrap().success());
        // Watchdog: a regression that opened the FIFO is unblocked after 20 s (and fails).
        let fifo = cp.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(20));
            let _ = fs::OpenOptions::new().write(true).open(fifo);
        });
        let e = read_metrics(dir.path()).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl") && e.contains("character device"), "{e}");
        let e = read_metrics_csv(&cp).unwrap_err().to_string();
        assert!(e.contains("metrics.csv") && e.contains("FIFO"), "{e}");
        // Appending checks the files first: the device is refused, not written to.
        let e = append_metrics(dir.path(), &row(2, "train")).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl") && e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn corrupt_middle_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(METRICS_JSONL), "not json\n{}\n").unwrap();
        let err = read_metrics(dir.path()).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl line 1"), "{err}");
        assert!(err.contains("expected"), "{err}");
    }

    #[test]
    fn csv_quoting() {
        let mut r = row(1, "we,ird\"split");
        r.extra.insert("a,b".into(), 1.0);
        let line = r.to_csv_line();
        assert_eq!(EpochMetrics::from_csv_line(&line).unwrap(), r);
    }
}
