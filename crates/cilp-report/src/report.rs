//! The run report: one self-contained HTML file comparing training runs, like a W&B project
//! page, plus the dataset exploration and the study tables.
//!
//! Sections, in order: the runs table (name, kind, model, status, params, best val loss, final
//! val accuracy, epochs, total time, s/epoch, peak memory) with the validation curves of all runs
//! overlaid; the study tables (see [`crate::study`]); the dataset exploration (from
//! [`ReportOptions::explore_dir`]); and per run the training curves (train/val loss and
//! accuracy per epoch), config and summary. The page makes no network request: CSS is inline,
//! charts are inline SVG and images are data URIs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cilp_track::compare::{Column, RunRecord, list_runs, load_run};
use cilp_track::{holds_run, names};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ReportError, Result, write_file};
use crate::explore::{STATS_JSON, read_explore_dir, render_gallery, render_sections};
use crate::html::{self, escape_html};
use crate::study::{STUDY_DIRS, find_studies, is_study_summary, render_study};
use crate::svg::{self, Series};

/// Options of [`report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// A directory written by [`crate::explore::explore`]; its statistics (and gallery, see
    /// `include_gallery`) are included. Missing `stats.json` is noted on the page, not an error.
    pub explore_dir: Option<PathBuf>,
    /// Include the exploration gallery images.
    pub include_gallery: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { title: "cilp report".into(), explore_dir: None, include_gallery: true }
    }
}

/// The columns of the runs table.
pub const RUN_COLUMNS: [Column; 11] = [
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
];

/// Lists the runs under `runs_dir` like [`list_runs`], except that a study folder
/// (`fusion/`, `ablation/`, `assess/`) whose `summary.json` is a study summary rather than a
/// run summary is treated as a group: its sub-folders are the runs.
pub fn collect_runs(runs_dir: &Path) -> Result<Vec<RunRecord>> {
    let mut out = Vec::new();
    for rec in list_runs(runs_dir)? {
        let is_study_group = STUDY_DIRS.contains(&rec.name.as_str())
            && is_study_summary(&rec.path.join("summary.json"))
            && !rec.path.join("config.toml").exists()
            && !rec.path.join("metrics.jsonl").exists();
        if !is_study_group {
            out.push(rec);
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(&rec.path)
            .map_err(|e| ReportError::io(&rec.path, "list", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && holds_run(p))
            .collect();
        subs.sort();
        for p in subs {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(load_run(&p, &format!("{}/{n}", rec.name)));
        }
    }
    Ok(out)
}

fn points(rec: &RunRecord, split: &str, f: impl Fn(&cilp_track::EpochMetrics) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> =
        rec.metrics.iter().filter(|r| r.split == split).filter_map(|r| f(r).map(|v| (r.epoch as f64, v))).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

/// Log scale when all values are positive and span more than two decades.
fn wants_log(series: &[Series]) -> bool {
    let vals: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    !vals.is_empty() && lo > 0.0 && hi / lo > 100.0
}

fn loss_chart(title: &str, series: &[Series], w: f64) -> String {
    let log = wants_log(series);
    svg::line_chart(title, series, "epoch", if log { "loss (log scale)" } else { "loss" }, w, 280.0, log)
}

fn run_anchor(i: usize) -> String {
    format!("run-{i}")
}

fn runs_table(runs: &[RunRecord]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for c in RUN_COLUMNS {
        let _ = write!(s, "<th>{}</th>", escape_html(c.header()));
    }
    s.push_str("</tr></thead><tbody>");
    for (i, r) in runs.iter().enumerate() {
        s.push_str("<tr>");
        for c in RUN_COLUMNS {
            let text = escape_html(&c.cell(r));
            match c {
                Column::Name => {
                    let _ = write!(
                        s,
                        "<td><span class=\"swatch\" style=\"background:{}\"></span><a href=\"#{}\">{text}</a></td>",
                        svg::colour(i),
                        run_anchor(i)
                    );
                }
                Column::Kind | Column::Model | Column::Status => {
                    let _ = write!(s, "<td>{text}</td>");
                }
                _ => {
                    let _ = write!(s, "<td class=\"num\">{text}</td>");
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn flatten_config(prefix: &str, v: &Value, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_config(&key, x, out);
            }
        }
        other => out.push(vec![prefix.to_owned(), crate::study::cell_text(other)]),
    }
}

fn run_section(i: usize, r: &RunRecord) -> String {
    let mut s = format!(
        "<div class=\"run\" id=\"{}\"><h3><span class=\"swatch\" style=\"background:{}\"></span>{}</h3>",
        run_anchor(i),
        svg::colour(i),
        escape_html(&r.name)
    );
    let facts: Vec<String> = [Column::Status, Column::Model, Column::Params, Column::BestValLoss, Column::Epochs]
        .iter()
        .map(|c| format!("{} {}", c.header(), c.cell(r)))
        .collect();
    let _ = write!(s, "<p class=\"small muted\">{}</p>", escape_html(&facts.join(" · ")));
    if !r.errors.is_empty() {
        let _ = write!(s, "<p><b>Problems reading this run:</b></p>{}", html::list(&r.errors));
    }
    if r.metrics.is_empty() {
        s.push_str("<p class=\"muted\">No metrics recorded.</p>");
    } else {
        let loss = vec![
            Series {
                name: "train loss".into(),
                colour: svg::colour(0).into(),
                points: points(r, names::TRAIN, |m| Some(m.loss)),
                dashed: true,
            },
            Series {
                name: "val loss".into(),
                colour: svg::colour(1).into(),
                points: points(r, names::VAL, |m| Some(m.loss)),
                dashed: false,
            },
        ];
        let acc = vec![
            Series {
                name: "train accuracy".into(),
                colour: svg::colour(0).into(),
                points: points(r, names::TRAIN, |m| m.accuracy.map(|a| a * 100.0)),
                dashed: true,
            },
            Series {
                name: "val accuracy".into(),
                colour: svg::colour(1).into(),
                points: points(r, names::VAL, |m| m.accuracy.map(|a| a * 100.0)),
                dashed: false,
            },
        ];
        let _ = write!(s, "<div class=\"charts\">{}", loss_chart(&format!("{} — loss", r.name), &loss, 540.0));
        if acc.iter().any(|a| !a.points.is_empty()) {
            s.push_str(&svg::line_chart(
                &format!("{} — accuracy", r.name),
                &acc,
                "epoch",
                "accuracy (%)",
                540.0,
                280.0,
                false,
            ));
        }
        s.push_str("</div>");
    }
    let mut rows = Vec::new();
    if let Some(cfg) = &r.config {
        flatten_config("", cfg, &mut rows);
    }
    if !rows.is_empty() {
        let _ = write!(
            s,
            "<details><summary>Config ({} values)</summary>{}</details>",
            rows.len(),
            html::table(&["key", "value"], &rows)
        );
    }
    if let Some(sum) = &r.summary {
        let mut rows = vec![
            vec!["kind".to_owned(), sum.kind.clone()],
            vec!["device".into(), sum.device.clone()],
            vec!["seed".into(), sum.seed.to_string()],
            vec!["git commit".into(), sum.git_commit.clone().unwrap_or_else(|| "-".into())],
            vec!["started".into(), sum.started_at.clone()],
            vec!["finished".into(), sum.finished_at.clone().unwrap_or_else(|| "-".into())],
        ];
        for (k, v) in &sum.final_metrics {
            rows.push(vec![format!("final {k}"), html::fmt_num(*v, 5)]);
        }
        if !sum.extra.is_null() {
            flatten_config("extra", &sum.extra, &mut rows);
        }
        let _ = write!(s, "<details><summary>Summary</summary>{}</details>", html::table(&["key", "value"], &rows));
    }
    let _ = write!(
        s,
        "<p class=\"small muted\">Directory: <code>{}</code></p></div>",
        escape_html(&r.path.display().to_string())
    );
    s
}

fn comparison_charts(runs: &[RunRecord]) -> String {
    let with_metrics: Vec<(usize, &RunRecord)> =
        runs.iter().enumerate().filter(|(_, r)| !r.metrics.is_empty()).collect();
    if with_metrics.is_empty() {
        return String::new();
    }
    let loss: Vec<Series> = with_metrics
        .iter()
        .map(|(i, r)| Series {
            name: r.name.clone(),
            colour: svg::colour(*i).into(),
            points: points(r, names::VAL, |m| Some(m.loss)),
            dashed: false,
        })
        .collect();
    let acc: Vec<Series> = with_metrics
        .iter()
        .map(|(i, r)| Series {
            name: r.name.clone(),
            colour: svg::colour(*i).into(),
            points: points(r, names::VAL, |m| m.accuracy.map(|a| a * 100.0)),
            dashed: false,
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let mut s = format!("<div class=\"charts\">{}", loss_chart("Validation loss, all runs", &loss, 550.0));
    if !acc.is_empty() {
        s.push_str(&svg::line_chart(
            "Validation accuracy, all runs",
            &acc,
            "epoch",
            "accuracy (%)",
            550.0,
            280.0,
            false,
        ));
    }
    s.push_str("</div>");
    s
}

/// Renders the report page as a string (what [`report`] writes).
pub fn render_report(runs_dir: &Path, opts: &ReportOptions) -> Result<String> {
    let runs = collect_runs(runs_dir)?;
    let studies = find_studies(runs_dir);
    let mut body = String::new();
    let mut nav = Vec::new();

    nav.push(("runs", "Runs"));
    let _ = write!(body, "<section id=\"runs\"><h2>Runs</h2>");
    if runs.is_empty() {
        body.push_str("<p class=\"muted\">No runs found.</p>");
    } else {
        body.push_str(&runs_table(&runs));
        body.push_str(&comparison_charts(&runs));
    }
    body.push_str("</section>");

    if !studies.is_empty() {
        nav.push(("studies", "Studies"));
        let _ = write!(body, "<section id=\"studies\"><h2>Studies</h2>");
        for st in &studies {
            body.push_str(&render_study(st, runs_dir));
        }
        body.push_str("</section>");
    }

    if let Some(dir) = &opts.explore_dir {
        nav.push(("data", "Dataset"));
        let _ = write!(body, "<section id=\"data\"><h2>Dataset</h2>");
        if dir.join(STATS_JSON).is_file() {
            let (stats, gallery) = read_explore_dir(dir)?;
            let _ = write!(
                body,
                "<p class=\"small muted\">{} samples from <code>{}</code>; exploration page: <code>{}</code></p>",
                cilp_track::compare::format_thousands(stats.samples as u64),
                escape_html(&stats.root),
                escape_html(&dir.join(crate::explore::INDEX_HTML).display().to_string())
            );
            body.push_str(&render_sections(&stats, 3));
            if opts.include_gallery {
                body.push_str(&render_gallery(&gallery, 3));
            }
        } else {
            let _ = write!(
                body,
                "<p class=\"muted\">No exploration found in <code>{}</code> (run the explore step first).</p>",
                escape_html(&dir.display().to_string())
            );
        }
        body.push_str("</section>");
    }

    if !runs.is_empty() {
        nav.push(("details", "Run details"));
        let _ = write!(body, "<section id=\"details\"><h2>Run details</h2>");
        for (i, r) in runs.iter().enumerate() {
            body.push_str(&run_section(i, r));
        }
        body.push_str("</section>");
    }

    let nav_html: String = nav.iter().map(|(id, t)| format!("<a href=\"#{id}\">{t}</a>")).collect();
    let sub = format!(
        "{} run(s) in <code>{}</code>{}",
        runs.len(),
        escape_html(&runs_dir.display().to_string()),
        if studies.is_empty() { String::new() } else { format!(", {} study table(s)", studies.len()) }
    );
    Ok(html::page(&opts.title, &sub, &nav_html, &body))
}

/// Writes the report for the runs under `runs_dir` to `out_html` (parent folders created).
pub fn report(runs_dir: &Path, out_html: &Path, opts: &ReportOptions) -> Result<()> {
    let page = render_report(runs_dir, opts)?;
    if let Some(parent) = out_html.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::error::create_dir(parent)?;
    }
    write_file(out_html, page)
}
