//! Study tables: the generic result tables of the studies (fusion comparison, MaxPool vs
//! strided ablation, assessment) rendered into the run report. The fusion study and the
//! ablation write theirs with [`crate::study_files`].
//!
//! ## The `study_table.json` convention
//!
//! A study writes a file named `study_table.json` (or `<anything>.study_table.json`) anywhere
//! under the runs directory (at most three levels deep):
//!
//! ```json
//! {
//!   "title": "Fusion comparison",
//!   "columns": ["model", "val loss", "params", "s/epoch"],
//!   "rows": [["late", 0.0123, 13147202, 41.2], ["concat", 0.0101, 13015952, 39.9]],
//!   "notes": ["3 epochs on the synthetic set, CPU."],
//!   "charts": ["val_loss.svg", "/abs/path/acc.png"]
//! }
//! ```
//!
//! * `title` (string, optional: defaults to the file's path), `columns` (strings), `rows`
//!   (arrays of cells; a cell is a string, number, boolean or null, shown as `-`; objects and
//!   arrays are shown as compact JSON), `notes` (strings, optional), `charts` (optional PNG, JPEG
//!   or SVG files, relative to the JSON file's folder, embedded as data URIs).
//! * Numbers are shown with up to 4 significant decimals (`0.0123`, `13147202`).
//!
//! `summary.json` files in `runs_dir/fusion/`, `runs_dir/ablation/` and `runs_dir/assess/` that
//! are not run summaries are rendered too, in whatever shape they have: the convention above,
//! `{"table": [{"col": value, ...}, ...]}` (columns = the union of the keys, alphabetically, as
//! JSON objects are unordered: use `columns`/`rows` to fix the order), an array of such
//! row objects, or any object as `key | value` pairs (nested objects flattened to dotted keys).
//! Their `notes` and `charts` keys are honoured as well.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{read_file, read_json};
use crate::html::{data_uri, escape_html, fmt_num, table};

/// File name of a study table (also matched as a suffix: `fusion.study_table.json`).
pub const STUDY_TABLE_JSON: &str = "study_table.json";
/// Study folders whose `summary.json` is rendered generically.
pub const STUDY_DIRS: [&str; 3] = ["fusion", "ablation", "assess"];

/// A study table (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StudyTable {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub notes: Vec<String>,
    pub charts: Vec<String>,
}

/// A study table with the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundStudy {
    pub path: PathBuf,
    pub table: StudyTable,
}

/// Text of one cell.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => fmt_num(f, 4),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(cell_text).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out);
            }
        }
        other => out.push(vec![Value::String(prefix.to_owned()), other.clone()]),
    }
}

fn rows_of_objects(items: &[Value]) -> (Vec<String>, Vec<Vec<Value>>) {
    let mut cols: Vec<String> = Vec::new();
    for it in items {
        if let Value::Object(m) = it {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let rows = items.iter().map(|it| cols.iter().map(|c| it.get(c).cloned().unwrap_or(Value::Null)).collect()).collect();
    (cols, rows)
}

impl StudyTable {
    /// Interprets any JSON value as a table (see the module docs); `default_title` is used
    /// when the value has no `title`.
    pub fn from_value(v: &Value, default_title: &str) -> StudyTable {
        let title = v.get("title").and_then(Value::as_str).unwrap_or(default_title).to_owned();
        let notes = strings(v.get("notes"));
        let charts = strings(v.get("charts"));
        let (columns, rows) = if let (Some(Value::Array(cols)), Some(Value::Array(rows))) = (v.get("columns"), v.get("rows")) {
            let columns: Vec<String> = cols.iter().map(cell_text).collect();
            let rows = rows
                .iter()
                .map(|r| match r {
                    Value::Array(cells) => cells.clone(),
                    Value::Object(_) => columns.iter().map(|c| r.get(c).cloned().unwrap_or(Value::Null)).collect(),
                    other => vec![other.clone()],
                })
                .collect();
            (columns, rows)
        } else if let Some(Value::Array(items)) = v.get("table") {
            rows_of_objects(items)
        } else if let Value::Array(items) = v {
            rows_of_objects(items)
        } else {
            let mut rows = Vec::new();
            let mut rest = v.clone();
            if let Value::Object(m) = &mut rest {
                for k in ["title", "notes", "charts"] {
                    m.remove(k);
                }
            }
            flatten("", &rest, &mut rows);
            (vec!["key".into(), "value".into()], rows)
        };
        StudyTable { title, columns, rows, notes, charts }
    }
}

fn is_study_file(name: &str) -> bool {
    name == STUDY_TABLE_JSON || name.ends_with(&format!(".{STUDY_TABLE_JSON}"))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            if depth > 0 && name != "checkpoints" {
                walk(&p, depth - 1, out);
            }
        } else if is_study_file(&name) {
            out.push(p);
        }
    }
}

/// True if `path` is a JSON `summary.json` that is not a run summary (no `name` and `status`
/// keys, or not a valid [`cilp_track::RunSummary`]), so it is a study summary.
pub fn is_study_summary(path: &Path) -> bool {
    match read_json::<Value>(path) {
        Ok(v) => {
            let looks_like_run = v.get("status").is_some() && v.get("name").is_some();
            !looks_like_run || serde_json::from_value::<cilp_track::RunSummary>(v).is_err()
        }
        Err(_) => false,
    }
}

/// Every study table under `runs_dir`: `study_table.json` files (depth <= 3) and study
/// `summary.json` files in [`STUDY_DIRS`]. Unreadable files become a table with the error as
/// a note rather than failing the report.
pub fn find_studies(runs_dir: &Path) -> Vec<FoundStudy> {
    let mut paths = Vec::new();
    for d in STUDY_DIRS {
        let p = runs_dir.join(d).join("summary.json");
        // A study that also wrote a `study_table.json` next to its summary is shown once, from that.
        if p.is_file() && is_study_summary(&p) && !p.with_file_name(STUDY_TABLE_JSON).is_file() {
            paths.push(p);
        }
    }
    walk(runs_dir, 3, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(runs_dir).unwrap_or(&path).display().to_string();
            let table = match read_json::<Value>(&path) {
                Ok(v) => StudyTable::from_value(&v, &rel),
                Err(e) => StudyTable { title: rel.clone(), notes: vec![format!("could not read: {e}")], ..Default::default() },
            };
            FoundStudy { path, table }
        })
        .collect()
}

fn mime_of(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some("image/png"),
        "svg" => Some("image/svg+xml"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        _ => None,
    }
}

/// Renders one study as HTML: title, table, notes and embedded charts (a missing or
/// unsupported chart is listed as a note, never as a broken image).
pub fn render_study(st: &FoundStudy, runs_dir: &Path) -> String {
    let t = &st.table;
    let mut s = format!(
        "<div class=\"run\"><h3>{}</h3><p class=\"small muted\">from <code>{}</code></p>",
        escape_html(&t.title),
        escape_html(&st.path.strip_prefix(runs_dir).unwrap_or(&st.path).display().to_string())
    );
    if !t.columns.is_empty() || !t.rows.is_empty() {
        let width = t.rows.iter().map(Vec::len).max().unwrap_or(0).max(t.columns.len());
        let mut cols = t.columns.clone();
        while cols.len() < width {
            cols.push(String::new());
        }
        let hdr: Vec<&str> = cols.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> =
            t.rows.iter().map(|r| (0..width).map(|i| r.get(i).map(cell_text).unwrap_or_default()).collect()).collect();
        s.push_str(&table(&hdr, &rows));
    }
    let mut notes = t.notes.clone();
    let base = st.path.parent().unwrap_or(Path::new("."));
    let mut charts = String::new();
    for c in &t.charts {
        let p = base.join(c);
        match (mime_of(&p), read_file(&p)) {
            (Some(mime), Ok(bytes)) if !bytes.is_empty() => {
                let _ = write!(
                    charts,
                    "<figure><img class=\"studychart\" alt=\"{}\" src=\"{}\"><figcaption class=\"small muted\">{}</figcaption></figure>",
                    escape_html(c),
                    data_uri(mime, &bytes),
                    escape_html(c)
                );
            }
            (None, _) => notes.push(format!("chart {c}: not a PNG, JPEG or SVG file")),
            (_, Err(e)) => notes.push(format!("chart {c}: {e}")),
            (_, Ok(_)) => notes.push(format!("chart {c}: empty file")),
        }
    }
    s.push_str(&crate::html::list(&notes));
    if !charts.is_empty() {
        let _ = write!(s, "<div class=\"charts\">{charts}</div>");
    }
    s.push_str("</div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        let t = StudyTable::from_value(&json!({"title": "T", "columns": ["a", "b"], "rows": [[1, 0.5], ["x", null]]}), "d");
        assert_eq!(t.title, "T");
        assert_eq!(t.rows[1], vec![json!("x"), Value::Null]);
        let t = StudyTable::from_value(&json!({"table": [{"m": "late", "loss": 0.1}, {"m": "add", "acc": 1}]}), "d");
        assert_eq!(t.columns, vec!["loss", "m", "acc"]);
        assert_eq!(t.rows[1], vec![Value::Null, json!("add"), json!(1)]);
        let t = StudyTable::from_value(&json!({"maxpool": {"loss": 0.2}, "strided": 0.3, "notes": ["n"]}), "d");
        assert_eq!(t.title, "d");
        assert_eq!(t.columns, vec!["key", "value"]);
        assert_eq!(t.rows, vec![vec![json!("maxpool.loss"), json!(0.2)], vec![json!("strided"), json!(0.3)]]);
        assert_eq!(t.notes, vec!["n"]);
        assert_eq!(cell_text(&json!(13147202)), "13147202");
        assert_eq!(cell_text(&json!(0.012345678)), "0.0123");
    }
}
