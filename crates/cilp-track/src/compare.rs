//! Listing and comparing runs (the W&B run table, as plain text or JSON).
//!
//! [`list_runs`] walks a runs root: every sub-directory holding a run is a run;
//! a sub-directory that does not is treated as a *group* and its own
//! sub-directories are inspected (so `runs/fusion/late` is listed as
//! `fusion/late`). A run whose files cannot be read is still listed, with the
//! problems in [`RunRecord::errors`] and status `broken`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::metrics::{EpochMetrics, read_metrics};
use crate::names;
use crate::run::{CONFIG_TOML, RunSummary, SUMMARY_JSON, holds_run, read_summary};

/// Derived per-run numbers shown in tables (from `summary.json` when present,
/// otherwise computed from the metrics rows).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Highest epoch number in the metrics.
    pub epochs: usize,
    /// Epoch of the best (lowest) validation loss.
    pub best_epoch: Option<usize>,
    /// Lowest validation loss.
    pub best_val_loss: Option<f64>,
    /// Validation loss of the last epoch.
    pub final_val_loss: Option<f64>,
    /// Validation accuracy of the last epoch.
    pub final_val_accuracy: Option<f64>,
    /// Total training time in seconds.
    pub total_seconds: Option<f64>,
    /// `total_seconds / epochs`.
    pub seconds_per_epoch: Option<f64>,
    /// Highest peak memory over all rows, in bytes.
    pub peak_memory_bytes: Option<u64>,
}

impl RunStats {
    /// Compute the stats from metrics rows and (optionally) the summary.
    pub fn compute(summary: Option<&RunSummary>, rows: &[EpochMetrics]) -> RunStats {
        let epochs = rows.iter().map(|r| r.epoch).max().unwrap_or(0);
        let val: Vec<&EpochMetrics> = rows.iter().filter(|r| r.split == names::VAL).collect();
        let best = val.iter().filter(|r| r.loss.is_finite()).min_by(|a, b| a.loss.total_cmp(&b.loss));
        let last_val = val.iter().max_by_key(|r| r.epoch);
        let mut s = RunStats {
            epochs,
            best_epoch: best.map(|r| r.epoch),
            best_val_loss: best.map(|r| r.loss),
            final_val_loss: last_val.map(|r| r.loss),
            final_val_accuracy: last_val.and_then(|r| r.accuracy),
            total_seconds: (!rows.is_empty()).then(|| rows.iter().map(|r| r.epoch_seconds).sum()),
            seconds_per_epoch: None,
            peak_memory_bytes: rows.iter().filter_map(|r| r.peak_memory_bytes).max(),
        };
        if let Some(sum) = summary {
            if sum.best_val_loss.is_some() {
                s.best_val_loss = sum.best_val_loss;
                s.best_epoch = sum.best_epoch.or(s.best_epoch);
            }
            if sum.total_seconds > 0.0 {
                s.total_seconds = Some(sum.total_seconds);
            }
            if s.final_val_accuracy.is_none() {
                s.final_val_accuracy = sum.final_metrics.get(names::VAL_ACCURACY).copied();
            }
            if s.final_val_loss.is_none() {
                s.final_val_loss = sum.final_metrics.get(names::VAL_LOSS).copied();
            }
        }
        if epochs > 0 {
            s.seconds_per_epoch = s.total_seconds.map(|t| t / epochs as f64);
        }
        s
    }
}

/// One listed run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Name relative to the runs root (`run` or `group/run`).
    pub name: String,
    /// Run directory.
    pub path: PathBuf,
    /// Parsed `summary.json`, if present and valid.
    pub summary: Option<RunSummary>,
    /// Parsed `config.toml` (as JSON), if present and valid.
    pub config: Option<serde_json::Value>,
    /// Metrics rows (not included in JSON output; see `stats`).
    #[serde(skip)]
    pub metrics: Vec<EpochMetrics>,
    /// Derived numbers.
    pub stats: RunStats,
    /// Problems found while reading the run (empty for a healthy run).
    pub errors: Vec<String>,
}

impl RunRecord {
    /// `running` / `completed` / `failed` from the summary, `broken` if files
    /// could not be read, `unknown` if there is no summary.
    pub fn status(&self) -> &'static str {
        if !self.errors.is_empty() { "broken" } else { self.summary.as_ref().map(|s| s.status.as_str()).unwrap_or("unknown") }
    }
}

/// Read one run directory into a record; never fails (problems go to `errors`).
pub fn load_run(path: &Path, name: &str) -> RunRecord {
    let mut errors = Vec::new();
    let summary = if path.join(SUMMARY_JSON).exists() { read_summary(path).map_err(|e| errors.push(e.to_string())).ok() } else { None };
    let config = if path.join(CONFIG_TOML).exists() {
        crate::run::read_config::<toml::Table>(path).map_err(|e| errors.push(e.to_string())).ok().and_then(|t| serde_json::to_value(t).ok())
    } else {
        None
    };
    let metrics = read_metrics(path).unwrap_or_else(|e| {
        errors.push(e.to_string());
        Vec::new()
    });
    let stats = RunStats::compute(summary.as_ref(), &metrics);
    RunRecord { name: name.to_owned(), path: path.to_owned(), summary, config, metrics, stats, errors }
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx("list runs in", dir)? {
        let entry = entry.ctx("list runs in", dir)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// List the runs under `root` (one level, plus runs nested one level inside
/// group directories), sorted by name. Fails only if `root` cannot be read.
pub fn list_runs(root: &Path) -> Result<Vec<RunRecord>> {
    let mut out = Vec::new();
    for dir in sorted_subdirs(root)? {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if holds_run(&dir) {
            out.push(load_run(&dir, &name));
            continue;
        }
        // A group: unreadable groups are skipped rather than failing the listing.
        for sub in sorted_subdirs(&dir).unwrap_or_default() {
            if holds_run(&sub) {
                let sub_name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(load_run(&sub, &format!("{name}/{sub_name}")));
            }
        }
    }
    Ok(out)
}

/// A column of [`render_table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Run name.
    Name,
    /// Run kind.
    Kind,
    /// Model name.
    Model,
    /// Status.
    Status,
    /// Parameter count, with thousands separators.
    Params,
    /// Best validation loss.
    BestValLoss,
    /// Final validation accuracy, in percent.
    FinalValAccuracy,
    /// Number of epochs.
    Epochs,
    /// Total training time in seconds.
    TotalTime,
    /// Seconds per epoch.
    SecondsPerEpoch,
    /// Peak memory in MiB.
    PeakMemory,
    /// Seed.
    Seed,
}

impl Column {
    /// All columns in the default order.
    pub const ALL: [Column; 12] = [
        Column::Name,
        Column::Kind,
        Column::Model,
        Column::Status,
        Column::Params,
        Column::BestValLoss,
        Column::FinalValAccuracy,
        Column::Epochs,
        Column::TotalTime,
        Column::SecondsPerEpoch,
        Column::PeakMemory,
        Column::Seed,
    ];

    /// Column header.
    pub fn header(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Kind => "kind",
            Column::Model => "model",
            Column::Status => "status",
            Column::Params => "params",
            Column::BestValLoss => "best val loss",
            Column::FinalValAccuracy => "val acc %",
            Column::Epochs => "epochs",
            Column::TotalTime => "total s",
            Column::SecondsPerEpoch => "s/epoch",
            Column::PeakMemory => "peak MiB",
            Column::Seed => "seed",
        }
    }

    /// Key accepted by [`FromStr`] (for `--columns name,params,...`).
    pub fn key(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Kind => "kind",
            Column::Model => "model",
            Column::Status => "status",
            Column::Params => "params",
            Column::BestValLoss => "best_val_loss",
            Column::FinalValAccuracy => "val_accuracy",
            Column::Epochs => "epochs",
            Column::TotalTime => "total_time",
            Column::SecondsPerEpoch => "s_per_epoch",
            Column::PeakMemory => "peak_memory",
            Column::Seed => "seed",
        }
    }

    fn right_aligned(self) -> bool {
        !matches!(self, Column::Name | Column::Kind | Column::Model | Column::Status)
    }

    /// The formatted cell of `rec` (`-` when unknown).
    pub fn cell(self, rec: &RunRecord) -> String {
        let s = rec.summary.as_ref();
        let st = &rec.stats;
        let dash = || "-".to_owned();
        let text = |v: Option<&String>| v.filter(|x| !x.is_empty()).cloned().unwrap_or_else(dash);
        match self {
            Column::Name => rec.name.clone(),
            Column::Kind => text(s.map(|s| &s.kind)),
            Column::Model => text(s.map(|s| &s.model)),
            Column::Status => rec.status().to_owned(),
            Column::Params => s.filter(|s| s.parameters > 0).map(|s| format_thousands(s.parameters)).unwrap_or_else(dash),
            Column::BestValLoss => st.best_val_loss.map(|v| format!("{v:.4}")).unwrap_or_else(dash),
            Column::FinalValAccuracy => st.final_val_accuracy.map(|v| format!("{:.2}", v * 100.0)).unwrap_or_else(dash),
            Column::Epochs => {
                if st.epochs > 0 {
                    st.epochs.to_string()
                } else {
                    dash()
                }
            }
            Column::TotalTime => st.total_seconds.map(format_seconds).unwrap_or_else(dash),
            Column::SecondsPerEpoch => st.seconds_per_epoch.map(format_seconds).unwrap_or_else(dash),
            Column::PeakMemory => st.peak_memory_bytes.map(format_mib).unwrap_or_else(dash),
            Column::Seed => s.map(|s| s.seed.to_string()).unwrap_or_else(dash),
        }
    }
}

impl FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let k = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Column::ALL.into_iter().find(|c| c.key() == k || c.header().replace(' ', "_") == k).ok_or_else(|| {
            let keys: Vec<_> = Column::ALL.iter().map(|c| c.key()).collect();
            format!("unknown column {s:?}; expected one of {}", keys.join(", "))
        })
    }
}

/// `1234567` -> `"1,234,567"`.
pub fn format_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes as MiB with one decimal: `1572864` -> `"1.5"`.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds with one decimal (`"12.3"`), or `"-"` if not finite.
pub fn format_seconds(secs: f64) -> String {
    if secs.is_finite() { format!("{secs:.1}") } else { "-".into() }
}

fn render_grid(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i > 0 {
                s.push_str("  ");
            }
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < n {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header);
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// Render an aligned plain-text table (text columns left-, numbers right-aligned),
/// followed by one line per broken run listing its errors.
pub fn render_table(records: &[RunRecord], columns: &[Column]) -> String {
    let columns = if columns.is_empty() { &Column::ALL[..] } else { columns };
    let header: Vec<String> = columns.iter().map(|c| c.header().to_owned()).collect();
    let rows: Vec<Vec<String>> = records.iter().map(|r| columns.iter().map(|c| c.cell(r)).collect()).collect();
    let right: Vec<bool> = columns.iter().map(|c| c.right_aligned()).collect();
    let mut out = render_grid(&header, &rows, &right);
    for r in records.iter().filter(|r| !r.errors.is_empty()) {
        for e in &r.errors {
            let _ = writeln!(out, "! {}: {e}", r.name);
        }
    }
    out
}

/// Pretty JSON array of the records (summary, config, stats, errors; no metrics rows).
pub fn render_json(records: &[RunRecord]) -> Result<String> {
    serde_json::to_string_pretty(records).map_err(|e| Error::Serialize {
        path: PathBuf::from("<run listing>"),
        what: "run records as JSON",
        message: e.to_string(),
    })
}

/// A metric-by-run comparison table (`metric | run A | run B | difference`),
/// like the original ablation and fusion tables. The `difference` column
/// (last minus first) is shown when exactly two runs are compared.
pub fn render_comparison(records: &[RunRecord]) -> String {
    type Getter = fn(&RunRecord) -> Option<f64>;
    type Formatter = fn(f64) -> String;
    let metrics: [(&str, Getter, Formatter); 7] = [
        ("best val loss", |r| r.stats.best_val_loss, |v| format!("{v:.4}")),
        ("final val loss", |r| r.stats.final_val_loss, |v| format!("{v:.4}")),
        ("final val accuracy %", |r| r.stats.final_val_accuracy.map(|a| a * 100.0), |v| format!("{v:.2}")),
        (
            "parameters",
            |r| r.summary.as_ref().map(|s| s.parameters as f64).filter(|p| *p > 0.0),
            |v| {
                if v < 0.0 { format!("-{}", format_thousands(v.abs() as u64)) } else { format_thousands(v as u64) }
            },
        ),
        ("training time s", |r| r.stats.total_seconds, format_seconds),
        ("s/epoch", |r| r.stats.seconds_per_epoch, format_seconds),
        ("peak memory MiB", |r| r.stats.peak_memory_bytes.map(|b| b as f64 / 1048576.0), |v| format!("{v:.1}")),
    ];
    let diff = records.len() == 2;
    let mut header = vec!["metric".to_owned()];
    header.extend(records.iter().map(|r| r.name.clone()));
    if diff {
        header.push("difference".into());
    }
    let mut rows = Vec::new();
    for (label, get, fmt) in metrics {
        let vals: Vec<Option<f64>> = records.iter().map(get).collect();
        if vals.iter().all(Option::is_none) {
            continue;
        }
        let mut row = vec![label.to_owned()];
        row.extend(vals.iter().map(|v| v.map(fmt).unwrap_or_else(|| "-".into())));
        if diff {
            row.push(match (vals[0], vals[1]) {
                (Some(a), Some(b)) => {
                    let d = fmt(b - a);
                    if b - a > 0.0 { format!("+{d}") } else { d }
                }
                _ => "-".into(),
            });
        }
        rows.push(row);
    }
    let mut right = vec![true; header.len()];
    right[0] = false;
    render_grid(&header, &rows, &right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{CreateMode, RunDir, RunStatus};

    fn make_run(root: &Path, name: &str, params: u64, val_losses: &[f64]) {
        let run = RunDir::create(root, name, CreateMode::New).unwrap();
        run.write_config(&serde_json::json!({"lr": 0.001, "model": {"fusion": "late"}})).unwrap();
        for (i, l) in val_losses.iter().enumerate() {
            let e = i + 1;
            let mut t = EpochMetrics::new(e, "train", l + 0.1);
            t.epoch_seconds = 10.0;
            t.peak_memory_bytes = Some(200 * 1024 * 1024);
            let mut v = EpochMetrics::new(e, "val", *l);
            v.accuracy = Some(0.9);
            v.epoch_seconds = 2.0;
            run.append_metrics(&t).unwrap();
            run.append_metrics(&v).unwrap();
        }
        let mut s = RunSummary::started(name, "train");
        s.model = "late_fusion".into();
        s.parameters = params;
        s.seed = 42;
        s.update_from_metrics(&run.read_metrics().unwrap());
        s.total_seconds = 12.0 * val_losses.len() as f64;
        s.finish(RunStatus::Completed);
        run.write_summary(&s).unwrap();
    }

    #[test]
    fn list_table_json_and_comparison() {
        let root = tempfile::tempdir().unwrap();
        make_run(root.path(), "a", 1_234_567, &[0.5, 0.4]);
        make_run(root.path(), "fusion/late", 99, &[0.7, 0.3, 0.35]);
        // broken run: corrupt summary
        fs::create_dir(root.path().join("broken")).unwrap();
        fs::write(root.path().join("broken").join(SUMMARY_JSON), "{oops").unwrap();
        // unrelated files and hidden dirs are ignored
        fs::write(root.path().join("README"), "x").unwrap();
        fs::create_dir(root.path().join(".cache")).unwrap();

        let runs = list_runs(root.path()).unwrap();
        let names: Vec<_> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "broken", "fusion/late"]);
        let late = &runs[2];
        assert_eq!(late.stats.epochs, 3);
        assert_eq!(late.stats.best_val_loss, Some(0.3));
        assert_eq!(late.stats.best_epoch, Some(2));
        assert_eq!(late.stats.total_seconds, Some(36.0));
        assert_eq!(late.stats.seconds_per_epoch, Some(12.0));
        assert_eq!(late.config.as_ref().unwrap()["model"]["fusion"], "late");
        assert_eq!(runs[1].status(), "broken");
        assert!(runs[1].errors[0].contains("summary.json"));

        let table = render_table(&runs, &Column::ALL);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("name"), "{table}");
        assert!(table.contains("1,234,567"), "{table}");
        assert!(table.contains("200.0"), "{table}");
        assert!(table.contains("90.00"), "{table}");
        assert!(table.contains("! broken:"), "{table}");
        // aligned: header, rule and data rows of equal width when right-aligned last column
        assert_eq!(lines[0].len(), lines[1].len(), "{table}");
        assert_eq!(lines[1].len(), lines[2].len(), "{table}");

        let json: serde_json::Value = serde_json::from_str(&render_json(&runs).unwrap()).unwrap();
        assert_eq!(json[0]["summary"]["parameters"], 1_234_567);
        assert_eq!(json[2]["stats"]["best_val_loss"], 0.3);

        let cmp = render_comparison(&[runs[0].clone(), runs[2].clone()]);
        assert!(cmp.lines().next().unwrap().contains("difference"), "{cmp}");
        assert!(cmp.contains("-0.1000"), "{cmp}"); // best val loss 0.4 -> 0.3
        assert!(cmp.contains("-1,234,468"), "{cmp}");
    }

    #[test]
    fn columns_parse() {
        assert_eq!("params".parse::<Column>().unwrap(), Column::Params);
        assert_eq!("best-val-loss".parse::<Column>().unwrap(), Column::BestValLoss);
        assert_eq!("s/epoch".parse::<Column>().unwrap(), Column::SecondsPerEpoch);
        assert!("bogus".parse::<Column>().unwrap_err().contains("expected one of"));
        assert_eq!(format_thousands(0), "0");
        assert_eq!(format_thousands(1000), "1,000");
        assert_eq!(format_thousands(999), "999");
        assert_eq!(format_mib(1572864), "1.5");
    }

    #[test]
    fn missing_root_is_an_error() {
        let err = list_runs(Path::new("/nonexistent/runs")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/runs"), "{err}");
    }
}
