//! The run report: one self-contained HTML file comparing training runs, like a W&B project
//! page, plus the dataset exploration and the study tables.
//!
//! Sections, in order: the runs table (name, kind, model, status, params, best val loss, final
//! val accuracy, epochs, total time, s/epoch, peak memory), which sorts on a click on a header
//! and filters on the text typed above it; the validation curves per study (see
//! [`comparison_groups`]: one chart per study folder and run kind, one line per model, the mean
//! over its seeds with a min-max band); the study tables (see [`crate::study`]); the dataset
//! exploration (from [`ReportOptions::explore_dir`]); and per run the training curves
//! (train/val loss and accuracy per epoch), config and summary. The page makes no network
//! request: CSS and the table's few lines of JavaScript ([`RUNS_TABLE_SCRIPT`]) are inline,
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

fn accuracy_chart(title: &str, series: &[Series], w: f64) -> String {
    svg::line_chart(title, series, "epoch", "accuracy (%)", w, 280.0, false)
}

fn run_anchor(i: usize) -> String {
    format!("run-{i}")
}

/// The number a column sorts by (`None`: unknown, sorted last).
fn sort_value(c: Column, r: &RunRecord) -> Option<f64> {
    let st = &r.stats;
    match c {
        Column::Params => r.summary.as_ref().map(|s| s.parameters as f64).filter(|p| *p > 0.0),
        Column::BestValLoss => st.best_val_loss,
        Column::FinalValAccuracy => st.final_val_accuracy.map(|a| a * 100.0),
        Column::Epochs => Some(st.epochs as f64).filter(|e| *e > 0.0),
        Column::TotalTime => st.total_seconds,
        Column::SecondsPerEpoch => st.seconds_per_epoch,
        Column::PeakMemory => st.peak_memory_bytes.map(|b| b as f64),
        Column::Seed => r.summary.as_ref().map(|s| s.seed as f64),
        Column::Name | Column::Kind | Column::Model | Column::Status => None,
    }
    .filter(|v| v.is_finite())
}

fn is_text_column(c: Column) -> bool {
    matches!(c, Column::Name | Column::Kind | Column::Model | Column::Status)
}

/// Sorts the runs table on a click on a header (again: the other way; numbers by value, unknown
/// last) and shows only the rows containing every word typed in the filter box. Plain
/// JavaScript, no library, no network, no console output.
pub const RUNS_TABLE_SCRIPT: &str = r#"(function () {
  var table = document.getElementById("runs-table"), box = document.getElementById("runs-filter");
  if (!table || !box) return;
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells, count = document.getElementById("runs-count");
  function key(row, i, num) {
    var c = row.cells[i];
    if (!num) return c.textContent.toLowerCase();
    var v = parseFloat(c.getAttribute("data-v"));
    return isNaN(v) ? null : v;
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending", num = th.classList.contains("num");
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows).map(function (r, n) { return [key(r, i, num), n, r]; });
      rows.sort(function (a, b) {
        if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null) || a[1] - b[1];
        var d = num ? a[0] - b[0] : a[0].localeCompare(b[0], undefined, { numeric: true });
        return (asc ? d : -d) || a[1] - b[1];
      });
      rows.forEach(function (r) { body.appendChild(r[2]); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  function filter() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var text = r.textContent.toLowerCase();
      r.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      if (!r.hidden) shown++;
    });
    count.textContent = shown + " of " + body.rows.length + " runs";
  }
  box.addEventListener("input", filter);
  filter();
})();"#;

fn runs_table(runs: &[RunRecord], colours: &[&str]) -> String {
    let mut s = format!(
        "<p class=\"tools\"><input type=\"search\" id=\"runs-filter\" placeholder=\"filter runs: name, model, status…\" \
         aria-label=\"filter runs\"> <span id=\"runs-count\" class=\"small muted\">{} runs</span> \
         <span class=\"small muted\">(click a header to sort)</span></p>",
        runs.len()
    );
    s.push_str("<table id=\"runs-table\" class=\"sortable\"><thead><tr>");
    for c in RUN_COLUMNS {
        let class = if is_text_column(c) { "" } else { " class=\"num\"" };
        let _ = write!(s, "<th{class} title=\"sort by {0}\">{0}</th>", escape_html(c.header()));
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
                        colours[i],
                        run_anchor(i)
                    );
                }
                c if is_text_column(c) => {
                    let _ = write!(s, "<td>{text}</td>");
                }
                c => match sort_value(c, r) {
                    Some(v) => {
                        let _ = write!(s, "<td class=\"num\" data-v=\"{v}\">{text}</td>");
                    }
                    None => {
                        let _ = write!(s, "<td class=\"num\">{text}</td>");
                    }
                },
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

fn run_section(i: usize, r: &RunRecord, colour: &str) -> String {
    let mut s = format!(
        "<div class=\"run\" id=\"{}\"><h3><span class=\"swatch\" style=\"background:{}\"></span>{}</h3>",
        run_anchor(i),
        colour,
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
                ..Default::default()
            },
            Series {
                name: "val loss".into(),
                colour: svg::colour(1).into(),
                points: points(r, names::VAL, |m| Some(m.loss)),
                dashed: false,
                ..Default::default()
            },
        ];
        let acc = vec![
            Series {
                name: "train accuracy".into(),
                colour: svg::colour(0).into(),
                points: points(r, names::TRAIN, |m| m.accuracy.map(|a| a * 100.0)),
                dashed: true,
                ..Default::default()
            },
            Series {
                name: "val accuracy".into(),
                colour: svg::colour(1).into(),
                points: points(r, names::VAL, |m| m.accuracy.map(|a| a * 100.0)),
                dashed: false,
                ..Default::default()
            },
        ];
        let _ = write!(s, "<div class=\"charts\">{}", loss_chart(&format!("{} — loss", r.name), &loss, 540.0));
        if acc.iter().any(|a| !a.points.is_empty()) {
            s.push_str(&accuracy_chart(&format!("{} — accuracy", r.name), &acc, 540.0));
        }
        s.push_str("</div>");
    }
    let mut rows = Vec::new();
    if let Some(cfg) = &r.config {
        flatten_config("", cfg, &mut rows);
    }
    if !rows.is_empty() {
        let _ = write!(s, "<details><summary>Config ({} values)</summary>{}</details>", rows.len(), html::table(&["key", "value"], &rows));
    }
    if let Some(sum) = &r.summary {
        let mut rows = vec![
            vec!["kind".to_owned(), sum.kind.clone()],
            vec!["device".into(), sum.device.clone()],
            vec!["seed".into(), sum.seed.to_string()],
            vec!["git commit".into(), sum.git_commit.clone().unwrap_or_else(|| "-".into())],
            vec!["CPU kernels".into(), sum.kernels.clone().unwrap_or_else(|| "-".into())],
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
    let _ = write!(s, "<p class=\"small muted\">Directory: <code>{}</code></p></div>", escape_html(&r.path.display().to_string()));
    s
}

/// Runs of one study folder and run kind, by model: the unit of the comparison charts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunGroup {
    /// The study folder (the first part of the run names; empty for runs at the top level).
    pub study: String,
    /// The runs' kind (`train`, `cilp`, `projector`, ...); runs of different kinds have
    /// losses that cannot be compared, so they are charted apart.
    pub kind: String,
    /// Whether the study holds runs of more than one kind (the kind is then named in titles).
    pub mixed_kinds: bool,
    /// Model name and the indices (into the run list) of its runs (one per seed), in the
    /// order the models first appear.
    pub models: Vec<(String, Vec<usize>)>,
}

impl RunGroup {
    /// Heading of the group's charts.
    pub fn title(&self) -> String {
        let study = if self.study.is_empty() { "top-level runs" } else { self.study.as_str() };
        if self.mixed_kinds { format!("{study} · {}", self.kind) } else { study.to_owned() }
    }
}

fn model_of(r: &RunRecord) -> String {
    let from_summary = r.summary.as_ref().map(|s| s.model.clone()).filter(|m| !m.is_empty());
    let from_config = || r.config.as_ref().and_then(|c| c.get("model")).and_then(Value::as_str).map(str::to_owned);
    from_summary.or_else(from_config).unwrap_or_else(|| r.name.rsplit('/').next().unwrap_or(&r.name).to_owned())
}

/// Groups the runs for the comparison charts: by study folder (the part of the name before
/// the first `/`) and run kind, then by model, in the order of first appearance.
pub fn comparison_groups(runs: &[RunRecord]) -> Vec<RunGroup> {
    let mut groups: Vec<RunGroup> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let study = r.name.split_once('/').map(|(s, _)| s.to_owned()).unwrap_or_default();
        let kind = r.summary.as_ref().map(|s| s.kind.clone()).filter(|k| !k.is_empty()).unwrap_or_else(|| "-".into());
        let model = model_of(r);
        let g = match groups.iter().position(|g| g.study == study && g.kind == kind) {
            Some(g) => &mut groups[g],
            None => {
                groups.push(RunGroup { study, kind, mixed_kinds: false, models: Vec::new() });
                groups.last_mut().unwrap()
            }
        };
        match g.models.iter_mut().find(|(m, _)| *m == model) {
            Some((_, idx)) => idx.push(i),
            None => g.models.push((model, vec![i])),
        }
    }
    let studies: Vec<String> = groups.iter().map(|g| g.study.clone()).collect();
    for g in &mut groups {
        g.mixed_kinds = studies.iter().filter(|s| **s == g.study).count() > 1;
    }
    groups
}

/// Each run's colour: its model's colour in its group's charts.
fn run_colours(runs: &[RunRecord], groups: &[RunGroup]) -> Vec<&'static str> {
    let mut out = vec![svg::colour(0); runs.len()];
    for g in groups {
        for (m, (_, idx)) in g.models.iter().enumerate() {
            for &i in idx {
                out[i] = svg::colour(m);
            }
        }
    }
    out
}

/// A band of (x, low, high) points.
pub type Band = Vec<(f64, f64, f64)>;

/// Mean over runs per epoch, with the min-max band when more than one run has the epoch.
/// An epoch only some runs reached is averaged over those.
pub fn mean_curve(curves: &[Vec<(f64, f64)>]) -> (Vec<(f64, f64)>, Band) {
    let mut by_epoch: Vec<(f64, Vec<f64>)> = Vec::new();
    for c in curves {
        for &(x, y) in c.iter().filter(|(x, y)| x.is_finite() && y.is_finite()) {
            match by_epoch.iter_mut().find(|(e, _)| *e == x) {
                Some((_, v)) => v.push(y),
                None => by_epoch.push((x, vec![y])),
            }
        }
    }
    by_epoch.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mean = by_epoch.iter().map(|(x, v)| (*x, v.iter().sum::<f64>() / v.len() as f64)).collect();
    let band = by_epoch
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(x, v)| (*x, v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)))
        .collect();
    (mean, band)
}

fn group_series(runs: &[RunRecord], g: &RunGroup, f: impl Fn(&cilp_track::EpochMetrics) -> Option<f64> + Copy) -> Vec<Series> {
    let counts = runs_per_model(runs, g);
    let counts_differ = counts.iter().any(|&n| n != counts[0]);
    g.models
        .iter()
        .enumerate()
        .map(|(m, (model, idx))| {
            let curves: Vec<Vec<(f64, f64)>> = idx.iter().map(|&i| points(&runs[i], names::VAL, f)).filter(|c| !c.is_empty()).collect();
            let (points, band) = mean_curve(&curves);
            // The legend names the number of runs only where it differs between the models (the
            // text above the charts gives it otherwise), which keeps the legend narrow.
            let n = curves.len();
            let name = if counts_differ { format!("{model} ({n} run{})", if n == 1 { "" } else { "s" }) } else { model.clone() };
            Series { name, colour: svg::colour(m).into(), points, band, dashed: false }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// The number of runs with validation metrics of each model of `g`.
fn runs_per_model(runs: &[RunRecord], g: &RunGroup) -> Vec<usize> {
    g.models
        .iter()
        .map(|(_, idx)| idx.iter().filter(|&&i| runs[i].metrics.iter().any(|m| m.split == names::VAL)).count())
        .filter(|&n| n > 0)
        .collect()
}

/// The validation loss and accuracy charts of every group that has metrics, under one heading
/// per study folder (its kinds' charts flow side by side).
fn comparison_charts(runs: &[RunRecord], groups: &[RunGroup]) -> String {
    let mut studies: Vec<&str> = Vec::new();
    for g in groups {
        if !studies.contains(&g.study.as_str()) {
            studies.push(&g.study);
        }
    }
    let mut s = String::new();
    for study in studies {
        let (mut charts, mut counts) = (String::new(), Vec::new());
        for g in groups.iter().filter(|g| g.study == study) {
            let loss = group_series(runs, g, |m| Some(m.loss));
            if loss.is_empty() {
                continue;
            }
            counts.extend(runs_per_model(runs, g));
            let acc = group_series(runs, g, |m| m.accuracy.map(|a| a * 100.0));
            let title = g.title();
            charts.push_str(&loss_chart(&format!("{title}: validation loss"), &loss, 540.0));
            if !acc.is_empty() {
                charts.push_str(&accuracy_chart(&format!("{title}: validation accuracy"), &acc, 540.0));
            }
        }
        if counts.is_empty() {
            continue;
        }
        let each = match counts.iter().all(|&n| n == counts[0]) {
            true if counts[0] == 1 => "one run each".to_owned(),
            true => format!("{} runs each", counts[0]),
            false => "runs per model in the legend".to_owned(),
        };
        let what = if counts.iter().any(|&n| n > 1) {
            "the line is the mean over the model's runs (seeds), the shaded band spans their minimum to maximum"
        } else {
            "one line per run"
        };
        let _ = write!(
            s,
            "<h3>{}</h3><p class=\"small muted\">Validation curves per model ({each}): {what}. Runs of different \
             kinds are charted apart (their losses differ).</p><div class=\"charts\">{charts}</div>",
            escape_html(if study.is_empty() { "top-level runs" } else { study }),
        );
    }
    s
}

/// Renders the report page as a string (what [`report`] writes).
pub fn render_report(runs_dir: &Path, opts: &ReportOptions) -> Result<String> {
    let runs = collect_runs(runs_dir)?;
    let groups = comparison_groups(&runs);
    let colours = run_colours(&runs, &groups);
    let studies = find_studies(runs_dir);
    let mut body = String::new();
    let mut nav = Vec::new();

    nav.push(("runs", "Runs"));
    let _ = write!(body, "<section id=\"runs\"><h2>Runs</h2>");
    if runs.is_empty() {
        body.push_str("<p class=\"muted\">No runs found.</p>");
    } else {
        body.push_str(&runs_table(&runs, &colours));
        body.push_str(&comparison_charts(&runs, &groups));
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
            body.push_str(&run_section(i, r, colours[i]));
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
    if !runs.is_empty() {
        let _ = write!(body, "<script>{RUNS_TABLE_SCRIPT}</script>");
    }
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
