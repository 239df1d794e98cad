//! The files a study (`cilp fusion`, `cilp ablation`) writes next to its runs, from its
//! [`StudySummary`] (computed by `cilp_train::studies`):
//!
//! | file | content |
//! |---|---|
//! | `summary.json` | the whole summary, pretty-printed; its `"study"` key marks the folder as a group of runs |
//! | `study_table.json` | `title`, `columns`, `rows`, `notes`, `charts`: the table the run report shows ([`crate::study`]) |
//! | `results.md` | the table and the comparisons as Markdown (also printed by `cilp`) |
//! | `results.csv` | fusion: mean/std per model with p and verdict against the best; ablation: one row per comparison |
//! | `runs.csv` | one row per run |
//! | `val_loss.svg`, `accuracy.svg`, `best_val_loss.svg`, `parameters.svg`, `time_per_epoch.svg`, `peak_memory.svg` | validation loss per epoch (mean over seeds, min-max band) and bars per model |
//!
//! Every file is written atomically. Numbers in the CSVs are Rust's shortest round-trip form
//! (`f64`'s `Display`), empty when not finite; the CSV records are written by the `csv` crate
//! (quoted only where RFC 4180 needs it).

use std::fmt::Write as _;
use std::path::Path;

use cilp_track::study::{Metric, ModelSummary, StudyKind, StudySummary};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ReportError, Result, create_dir, write_file};
use crate::study::{STUDY_TABLE_JSON, cell_text};
use crate::svg;

/// The summary's file (the same name as a run's summary: the `"study"` key tells them apart).
pub const SUMMARY_JSON: &str = cilp_track::run::SUMMARY_JSON;
pub const RESULTS_MD: &str = "results.md";
pub const RESULTS_CSV: &str = "results.csv";
pub const RUNS_CSV: &str = "runs.csv";

/// Writes a study's files into `out` (created if needed): the charts first, whose names go
/// into `summary.charts`, then `study_table.json`, `summary.json`, `results.md`, `results.csv`
/// and `runs.csv`.
pub fn write<S: Serialize>(out: &Path, summary: &mut StudySummary<S>) -> Result<()> {
    create_dir(out)?;
    let chart_title = match summary.study {
        StudyKind::Fusion => "Fusion".to_owned(),
        StudyKind::Ablation => format!("Ablation ({})", summary.baseline),
    };
    summary.charts = write_charts(out, &chart_title, &summary.models)?;
    let (markdown, results_csv) = match summary.study {
        StudyKind::Fusion => (fusion_markdown(summary), fusion_csv(summary)?),
        StudyKind::Ablation => (ablation_markdown(summary), ablation_csv(summary)?),
    };
    let table = json!({
        "title": summary.title,
        "columns": summary.columns,
        "rows": summary.rows,
        "notes": summary.notes,
        "charts": summary.charts,
    });
    write_file(&out.join(STUDY_TABLE_JSON), pretty(&out.join(STUDY_TABLE_JSON), &table)?)?;
    // Through a `Value`, whose objects keep their keys sorted: summary.json lists them
    // alphabetically, not in the struct's order.
    let full = serde_json::to_value(&*summary).map_err(|e| ReportError::Json { path: out.join(SUMMARY_JSON), reason: e.to_string() })?;
    write_file(&out.join(SUMMARY_JSON), pretty(&out.join(SUMMARY_JSON), &full)?)?;
    write_file(&out.join(RESULTS_MD), markdown)?;
    write_file(&out.join(RESULTS_CSV), results_csv)?;
    write_file(&out.join(RUNS_CSV), runs_csv(&summary.models)?)
}

fn pretty(path: &Path, v: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| ReportError::Json { path: path.to_owned(), reason: e.to_string() })
}

// ---------------------------------------------------------------- numbers

/// A number in a CSV cell: `f64`'s shortest round-trip form, empty when not finite.
fn num(v: f64) -> String {
    if v.is_finite() { format!("{v}") } else { String::new() }
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

// ---------------------------------------------------------------- CSV

/// CSV text of `header` and `records` (RFC 4180 quoting, `\n` line ends).
fn csv_text(header: &[String], records: &[Vec<String>]) -> Result<String> {
    let invalid = |e: &dyn std::fmt::Display| ReportError::Invalid(format!("study CSV: {e}"));
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in std::iter::once(header).chain(records.iter().map(Vec::as_slice)) {
        w.write_record(r).map_err(|e| invalid(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| invalid(&e))?;
    String::from_utf8(bytes).map_err(|e| invalid(&e))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn runs_csv(models: &[ModelSummary]) -> Result<String> {
    let header = strings(&[
        "model",
        "seed",
        "run",
        "parameters",
        "best_val_loss",
        "best_epoch_val_accuracy",
        "final_val_accuracy",
        "training_seconds",
        "seconds_per_epoch",
        "peak_memory_mb",
    ]);
    let records: Vec<Vec<String>> = models
        .iter()
        .flat_map(|m| {
            m.runs.iter().map(|r| {
                vec![
                    m.model.clone(),
                    r.seed.to_string(),
                    r.run.clone(),
                    m.parameters.to_string(),
                    num(r.best_val_loss),
                    opt(r.best_epoch_val_accuracy),
                    num(r.final_val_accuracy),
                    num(r.total_seconds),
                    num(r.seconds_per_epoch),
                    opt(r.peak_memory_mb),
                ]
            })
        })
        .collect();
    csv_text(&header, &records)
}

/// Mean and std of every metric per model (parameters once), then `extra_cols` from `extra`.
fn aggregate_csv(models: &[ModelSummary], extra_cols: &[&str], extra: impl Fn(&ModelSummary) -> Vec<String>) -> Result<String> {
    let mut header = strings(&["model", "seeds"]);
    for m in Metric::ALL {
        if m == Metric::Parameters {
            header.push("parameters".into());
        } else {
            header.extend([format!("{}_mean", m.key()), format!("{}_std", m.key())]);
        }
    }
    header.extend(extra_cols.iter().map(|c| c.to_string()));
    let records: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let mut r = vec![m.model.clone(), m.runs.len().to_string()];
            for k in Metric::ALL {
                let ms = &m.metrics[k.key()];
                if k == Metric::Parameters {
                    r.push(m.parameters.to_string());
                } else {
                    r.extend([num(ms.mean), opt(ms.std)]);
                }
            }
            r.extend(extra(m));
            r
        })
        .collect();
    csv_text(&header, &records)
}

fn fusion_csv<S>(s: &StudySummary<S>) -> Result<String> {
    aggregate_csv(&s.models, &["p_val_loss_vs_best", "verdict_val_loss_vs_best", "p_accuracy_vs_best", "verdict_accuracy_vs_best"], |m| {
        let mut v = Vec::new();
        for metric in [Metric::BestValLoss, Metric::ValAccuracy] {
            match s.comparisons.iter().find(|c| c.other == m.model && c.metric == metric) {
                Some(c) => {
                    let p = c.comparison.paired.map(|p| p.p).or(c.comparison.welch.map(|w| w.p));
                    v.push(p.map(num).unwrap_or_default());
                    v.push(c.comparison.verdict.as_str().to_owned());
                }
                None => v.extend([String::new(), "best".to_owned()]),
            }
        }
        v
    })
}

fn ablation_csv<S>(s: &StudySummary<S>) -> Result<String> {
    let header = strings(&[
        "strided_model",
        "metric",
        "maxpool_mean",
        "maxpool_std",
        "strided_mean",
        "strided_std",
        "difference",
        "welch_t",
        "welch_df",
        "p",
        "effect_size",
        "paired_t",
        "paired_df",
        "paired_p",
        "ci_low",
        "ci_high",
        "detectable",
        "verdict",
    ]);
    let records: Vec<Vec<String>> = s
        .comparisons
        .iter()
        .map(|c| {
            let of = |model: &str| s.models.iter().find(|m| m.model == model).map(|m| &m.metrics[c.metric.key()]);
            let (a, b) = (of(&c.baseline), of(&c.other));
            let (w, pr) = (c.comparison.welch, c.comparison.paired);
            vec![
                c.other.clone(),
                c.metric.key().to_owned(),
                a.map(|s| num(s.mean)).unwrap_or_default(),
                a.and_then(|s| s.std).map(num).unwrap_or_default(),
                b.map(|s| num(s.mean)).unwrap_or_default(),
                b.and_then(|s| s.std).map(num).unwrap_or_default(),
                num(c.comparison.difference),
                w.map(|w| num(w.t)).unwrap_or_default(),
                w.map(|w| num(w.df)).unwrap_or_default(),
                w.map(|w| num(w.p)).unwrap_or_default(),
                opt(c.comparison.effect_size),
                pr.map(|p| num(p.t)).unwrap_or_default(),
                pr.map(|p| num(p.df)).unwrap_or_default(),
                pr.map(|p| num(p.p)).unwrap_or_default(),
                pr.map(|p| num(p.ci_low)).unwrap_or_default(),
                pr.map(|p| num(p.ci_high)).unwrap_or_default(),
                pr.map(|p| num(p.detectable)).unwrap_or_default(),
                c.comparison.verdict.as_str().to_owned(),
            ]
        })
        .collect();
    csv_text(&header, &records)
}

// ---------------------------------------------------------------- Markdown

fn md_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}|\n", columns.join(" | "), columns.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        let _ = writeln!(s, "| {} |", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    }
    s
}

fn cells(rows: &[Vec<Value>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(cell_text).collect()).collect()
}

fn charts_md(charts: &[String]) -> String {
    charts.iter().map(|c| format!("![{c}]({c})\n")).collect()
}

/// Every comparison of the summary, one row each.
fn comparison_md<S>(summary: &StudySummary<S>) -> String {
    let cols = strings(&[
        "model",
        "metric",
        "model mean",
        "baseline mean",
        "difference",
        "95% CI (paired)",
        "paired t",
        "df",
        "p",
        "Welch p",
        "detectable",
        "verdict",
    ]);
    let rows: Vec<Vec<String>> = summary
        .comparisons
        .iter()
        .map(|c| {
            let pr = c.comparison.paired;
            let d = |x: f64| c.metric.format_difference(x);
            vec![
                c.other.clone(),
                c.metric.label().to_owned(),
                c.metric.format(c.other_mean),
                c.metric.format(c.baseline_mean),
                d(c.comparison.difference),
                pr.map(|p| format!("[{}, {}]", d(p.ci_low), d(p.ci_high))).unwrap_or("-".into()),
                pr.map(|p| if p.t.is_finite() { format!("{:.2}", p.t) } else { "inf".into() }).unwrap_or("-".into()),
                pr.map(|p| format!("{:.0}", p.df)).unwrap_or("-".into()),
                c.comparison.format_p(),
                c.comparison.format_welch_p(),
                pr.map(|p| c.metric.format(p.detectable.abs())).unwrap_or("-".into()),
                c.comparison.verdict.as_str().to_owned(),
            ]
        })
        .collect();
    md_table(&cols, &rows)
}

/// The notes after the first (the settings line, shown under the title) that are not the rule
/// (shown on its own), as a list; then the charts.
fn notes_and_charts_md<S>(s: &StudySummary<S>) -> String {
    let mut md = String::from("## Notes\n\n");
    for n in s.notes[1..].iter().filter(|n| **n != s.rule) {
        let _ = writeln!(md, "- {n}");
    }
    let _ = write!(md, "\n## Charts\n\n{}", charts_md(&s.charts));
    md
}

fn fusion_markdown<S>(s: &StudySummary<S>) -> String {
    let mut md = format!("# {}\n\n{}\n\n", s.title, s.notes[0]);
    md.push_str(&md_table(&s.columns, &cells(&s.rows)));
    let _ = write!(md, "\nValues are mean ± sample standard deviation over seeds.\n\n## Each model against the best ({})\n\n", s.baseline);
    md.push_str(&comparison_md(s));
    let _ = write!(md, "\n{}\n\n", s.rule);
    md.push_str(&notes_and_charts_md(s));
    md
}

fn ablation_markdown<S>(s: &StudySummary<S>) -> String {
    let mut md = format!("# {}\n\n{}\n\n", s.title, s.notes[0]);
    let cols = strings(&["metric", "MaxPool2d", "strided", "difference", "p", "verdict"]);
    let mut styles: Vec<String> = Vec::new();
    for r in &s.rows {
        let k = cell_text(&r[0]);
        if !styles.contains(&k) {
            styles.push(k);
        }
    }
    for style in styles {
        let rows: Vec<Vec<String>> = cells(&s.rows).into_iter().filter(|r| r[0] == style).map(|r| r[1..].to_vec()).collect();
        let _ = write!(md, "## {} vs {}\n\n", style, s.baseline);
        md.push_str(&md_table(&cols, &rows));
        md.push('\n');
    }
    let _ = write!(md, "Values are mean ± sample standard deviation over seeds; difference = strided - MaxPool2d.\n\n{}\n\n", s.rule);
    md.push_str(&notes_and_charts_md(s));
    md
}

// ---------------------------------------------------------------- charts

/// Lowest and highest validation loss over seeds per epoch (1-based), over the epochs every
/// seed reached (those of [`ModelSummary::mean_val_loss_curve`]); empty with fewer than two seeds.
fn min_max_band(m: &ModelSummary) -> Vec<(f64, f64, f64)> {
    if m.runs.len() < 2 {
        return Vec::new();
    }
    (0..m.mean_val_loss_curve.len())
        .map(|e| {
            let v = m.runs.iter().filter_map(|r| r.val_loss_curve.get(e).copied());
            let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
            ((e + 1) as f64, lo, hi)
        })
        .collect()
}

/// Writes the study's charts and returns their file names (relative to `out`). Each is a
/// standalone SVG file (it opens on its own, as `results.md` links it, and as an `<img>`).
fn write_charts(out: &Path, title: &str, models: &[ModelSummary]) -> Result<Vec<String>> {
    let labels: Vec<String> = models.iter().map(|m| m.label.clone()).collect();
    let colours: Vec<String> = (0..models.len()).map(|i| svg::colour(i).to_owned()).collect();
    let n = models.first().map(|m| m.runs.len()).unwrap_or(0);
    let mut files = Vec::new();
    let series: Vec<svg::Series> = models
        .iter()
        .enumerate()
        .map(|(i, m)| svg::Series {
            name: m.label.clone(),
            colour: svg::colour(i).to_owned(),
            points: m.mean_val_loss_curve.iter().enumerate().map(|(e, &l)| ((e + 1) as f64, l)).collect(),
            band: min_max_band(m),
            dashed: false,
        })
        .collect();
    let all: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| *v > 0.0).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let log_y = hi / lo > 20.0;
    let band = if n > 1 { ", band: min-max" } else { "" };
    let chart = svg::line_chart(
        &format!("{title}: validation loss per epoch (mean of {n} seeds{band})"),
        &series,
        "epoch",
        if log_y { "val loss (log)" } else { "val loss" },
        720.0,
        360.0,
        log_y,
    );
    write_file(&out.join("val_loss.svg"), chart)?;
    files.push("val_loss.svg".to_owned());
    let bars: [(&str, Metric, f64, &str); 5] = [
        ("accuracy.svg", Metric::ValAccuracy, 100.0, "val accuracy (%)"),
        ("best_val_loss.svg", Metric::BestValLoss, 1.0, "best val loss"),
        ("parameters.svg", Metric::Parameters, 1e-6, "parameters (millions)"),
        ("time_per_epoch.svg", Metric::SecondsPerEpoch, 1.0, "seconds per training epoch"),
        ("peak_memory.svg", Metric::PeakMemoryMb, 1.0, "peak memory (MiB)"),
    ];
    for (file, metric, scale, y_label) in bars {
        let values: Vec<f64> =
            models.iter().map(|m| m.metrics.get(metric.key()).map(|s| s.mean * scale).filter(|v| v.is_finite()).unwrap_or(0.0)).collect();
        let what = if metric == Metric::Parameters { String::new() } else { format!(" (mean of {n} seeds; ± in the table)") };
        let chart = svg::bar_chart(&format!("{title}: {}{what}", metric.label()), &labels, &values, &colours, y_label, 720.0, 320.0);
        write_file(&out.join(file), chart)?;
        files.push(file.to_owned());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_where_needed() {
        let text = csv_text(&strings(&["model", "note"]), &[strings(&["a,b", "say \"hi\""]), strings(&["plain", ""])]).unwrap();
        assert_eq!(text, "model,note\n\"a,b\",\"say \"\"hi\"\"\"\nplain,\n");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(1e-5), "0.00001");
        assert_eq!(num(f64::NAN), "");
        assert_eq!(opt(None), "");
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let t = md_table(&strings(&["a", "b"]), &[strings(&["x|y", "z"])]);
        assert_eq!(t, "| a | b |\n|---|---|\n| x\\|y | z |\n");
    }
}
