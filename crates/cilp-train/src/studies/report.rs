//! The fusion comparison and the MaxPool2d-vs-strided ablation: statistics over seeds, and the
//! files a study writes into its folder (summary.json, study_table.json, results.md, CSVs, SVG
//! charts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cilp_report::svg;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Result, TrainError};
use crate::studies::runner::{Metric, ModelRuns, StudyOptions, StudyRuns, StudySettings, run_models};
use crate::studies::stats::{self, Comparison, MetricSummary, Verdict};

/// The five fusion architectures of the study, in the order they are reported.
pub const FUSION_MODELS: [&str; 5] = ["early-fusion", "late-fusion", "intermediate-concat", "intermediate-add", "intermediate-hadamard"];

/// The two strided styles of the ablation: (zoo suffix, label).
pub const STRIDED_STYLES: [(&str, &str); 2] =
    [("-strided", "separate stride-2 conv after each block"), ("-strided-conv", "stride-2 main conv, no pool")];

/// Metrics compared between fusion models and the best one.
pub const FUSION_COMPARED: [Metric; 4] = [Metric::BestValLoss, Metric::ValAccuracy, Metric::SecondsPerEpoch, Metric::PeakMemoryMb];

/// Files every study writes next to its run directories.
pub const SUMMARY_JSON: &str = "summary.json";
pub const STUDY_TABLE_JSON: &str = "study_table.json";
pub const RESULTS_MD: &str = "results.md";
pub const RESULTS_CSV: &str = "results.csv";
pub const RUNS_CSV: &str = "runs.csv";

/// One model's results over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub model: String,
    /// Short label used in charts.
    pub label: String,
    pub parameters: u64,
    /// Mean +- sample std per metric key (see [`Metric::key`]).
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Validation loss per epoch, mean over seeds.
    pub mean_val_loss_curve: Vec<f64>,
    pub runs: Vec<crate::studies::runner::SeedRun>,
}

/// One comparison of a metric between two models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub metric: Metric,
    pub baseline: String,
    pub other: String,
    pub baseline_mean: f64,
    pub other_mean: f64,
    /// `other_mean - baseline_mean`, with the test and the verdict.
    #[serde(flatten)]
    pub comparison: Comparison,
}

impl ComparisonRow {
    /// `n_val`: validation samples, which set the accuracy's resolution.
    fn new(metric: Metric, a: &ModelRuns, b: &ModelRuns, n_val: usize) -> ComparisonRow {
        let (va, vb) = (a.values(metric), b.values(metric));
        ComparisonRow {
            metric,
            baseline: a.model.clone(),
            other: b.model.clone(),
            baseline_mean: stats::mean(&va),
            other_mean: stats::mean(&vb),
            comparison: stats::compare_resolved(&va, &vb, metric.resolution(n_val)),
        }
    }
}

/// What `summary.json` holds. Its `title`/`columns`/`rows`/`notes`/`charts` follow the study
/// table convention of cilp-report; the `study` key marks the file as a study summary (so the
/// folder is listed as a group of runs, see `cilp_track::run::is_study_summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    /// `fusion` or `ablation`.
    pub study: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub notes: Vec<String>,
    pub charts: Vec<String>,
    /// The model every other one is compared with: the best fusion model (lowest mean best
    /// validation loss) or the ablation's MaxPool2d model.
    pub baseline: String,
    pub settings: StudySettings,
    pub split: crate::studies::runner::SplitInfo,
    /// Wall time of the invocation that wrote this summary (reused runs take none of it).
    pub wall_seconds: f64,
    /// Training plus validation seconds of all runs, summed (earlier sittings included).
    #[serde(default)]
    pub run_seconds: f64,
    /// The verdict rule, in words.
    pub rule: String,
    pub models: Vec<ModelSummary>,
    pub comparisons: Vec<ComparisonRow>,
}

fn summarise(m: &ModelRuns, label: String) -> ModelSummary {
    ModelSummary {
        model: m.model.clone(),
        label,
        parameters: m.parameters,
        metrics: Metric::ALL.iter().map(|&k| (k.key().to_owned(), m.summary(k))).collect(),
        mean_val_loss_curve: m.mean_val_curve(),
        runs: m.runs.clone(),
    }
}

fn rule_text(n_seeds: usize, n_val: usize) -> String {
    format!(
        "verdict: 'larger than seed spread' when Welch's two-sided t-test gives p < {} AND |difference| > {} x pooled \
         sample std (sqrt((sa^2 + sb^2)/2)); otherwise 'within seed spread'. Accuracy moves in steps of one \
         validation sample (1/{n_val}), so each model's accuracy std is taken as at least one step: seeds that \
         all miss the same sample do not make a one-sample difference significant. With {n_seeds} seed(s) per \
         model the test has little power: 'within' means not shown to differ, not equal.",
        stats::ALPHA,
        stats::SPREAD_FACTOR
    )
}

// ---------------------------------------------------------------- formatting

use cilp_track::compare::format_thousands as thousands;

fn sig(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1e-3 {
        format!("{v:.2e}")
    } else if a < 1.0 {
        format!("{v:.4}")
    } else if a < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

/// A value of a metric, as shown in tables.
fn fmt_value(m: Metric, v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match m {
        Metric::ValAccuracy => format!("{:.2}%", 100.0 * v),
        Metric::Parameters => thousands(v.round() as u64),
        Metric::TrainingSeconds | Metric::SecondsPerEpoch => format!("{v:.1}"),
        Metric::PeakMemoryMb => format!("{v:.0}"),
        Metric::BestValLoss => sig(v),
    }
}

/// mean +- std (or just the mean with one seed).
fn fmt_summary(m: Metric, s: &MetricSummary) -> String {
    if s.n == 0 {
        return "-".into();
    }
    match (m, s.std) {
        (Metric::Parameters, _) => fmt_value(m, s.mean),
        (_, Some(sd)) => format!("{} ± {}", fmt_value(m, s.mean), fmt_spread(m, sd)),
        (_, None) => fmt_value(m, s.mean),
    }
}

fn fmt_spread(m: Metric, sd: f64) -> String {
    match m {
        Metric::ValAccuracy => format!("{:.2}", 100.0 * sd),
        _ => fmt_value(m, sd),
    }
}

/// A signed difference (accuracy in percentage points).
fn fmt_diff(m: Metric, d: f64) -> String {
    if !d.is_finite() {
        return "-".into();
    }
    let sign = if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "-"
    } else {
        ""
    };
    let a = d.abs();
    let body = match m {
        Metric::ValAccuracy => format!("{:.2} pp", 100.0 * a),
        Metric::Parameters => thousands(a.round() as u64),
        _ => fmt_value(m, a),
    };
    // A difference that rounds to zero is shown without a sign.
    if body.chars().filter(char::is_ascii_digit).all(|c| c == '0') {
        return body;
    }
    format!("{sign}{body}")
}

fn fmt_p(c: &Comparison) -> String {
    match c.welch {
        Some(w) if w.p < 1e-4 => "<0.0001".into(),
        Some(w) => format!("{:.4}", w.p),
        None => "-".into(),
    }
}

fn fmt_effect(c: &Comparison) -> String {
    match c.effect_size {
        Some(e) if e.is_infinite() => "inf".into(),
        Some(e) => format!("{e:.2}"),
        None => "-".into(),
    }
}

fn md_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}|\n", columns.join(" | "), columns.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        let _ = writeln!(s, "| {} |", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    }
    s
}

use cilp_track::metrics::csv_field;

fn num(v: f64) -> String {
    if v.is_finite() { format!("{v}") } else { String::new() }
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

/// Training plus validation time of every run of the study, summed: unlike the invocation's
/// wall time it does not shrink when runs are reused.
fn run_seconds(st: &StudyRuns) -> f64 {
    st.models.iter().flat_map(|m| &m.runs).map(|r| r.total_seconds).filter(|t| t.is_finite()).sum()
}

fn settings_line(st: &StudyRuns) -> String {
    let s = &st.settings;
    format!(
        "preset {}, data {} ({} pairs loaded, {}), {} train / {} validation samples (one split, seed {}), {} epoch(s), \
         batch {}, Adam lr {}, device {}, seeds {} (vary initialisation and shuffling); {:.0} s inside the runs \
         (training + validation, summed over runs, earlier sittings included), wall time of this invocation {:.0} s \
         (runs kept by --resume or copied from another study are only loaded, not trained)",
        s.preset,
        s.data.dir.display(),
        st.split.train + st.split.val,
        s.data.limit_per_class.map(|l| format!("at most {l} per class")).unwrap_or_else(|| "all of them".into()),
        st.split.train,
        st.split.val,
        st.split.split_seed,
        s.epochs,
        s.batch_size,
        s.lr,
        s.device,
        s.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        run_seconds(st),
        st.wall_seconds
    )
}

// ---------------------------------------------------------------- charts

fn write_file(path: &Path, text: &str) -> Result<()> {
    cilp_track::atomic::write_atomic_str(path, text).map_err(TrainError::Track)
}

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
    write_file(&out.join("val_loss.svg"), &chart)?;
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
        write_file(&out.join(file), &chart)?;
        files.push(file.to_owned());
    }
    Ok(files)
}

fn write_runs_csv(out: &Path, models: &[ModelSummary]) -> Result<()> {
    let mut s = String::from(
        "model,seed,run,parameters,best_val_loss,best_epoch_val_accuracy,final_val_accuracy,training_seconds,seconds_per_epoch,peak_memory_mb\n",
    );
    for m in models {
        for r in &m.runs {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{}",
                csv_field(&m.model),
                r.seed,
                csv_field(&r.run),
                m.parameters,
                num(r.best_val_loss),
                opt(r.best_epoch_val_accuracy),
                num(r.final_val_accuracy),
                num(r.total_seconds),
                num(r.seconds_per_epoch),
                opt(r.peak_memory_mb)
            );
        }
    }
    write_file(&out.join(RUNS_CSV), &s)
}

fn write_summary_files(out: &Path, summary: &StudySummary, markdown: &str, results_csv: &str) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| TrainError::Other(format!("{}: {e}", out.display())))?;
    let table = json!({
        "title": summary.title,
        "columns": summary.columns,
        "rows": summary.rows,
        "notes": summary.notes,
        "charts": summary.charts,
    });
    let pretty = |v: &Value| serde_json::to_string_pretty(v).map_err(|e| TrainError::Other(e.to_string()));
    write_file(&out.join(STUDY_TABLE_JSON), &pretty(&table)?)?;
    let full = serde_json::to_value(summary).map_err(|e| TrainError::Other(e.to_string()))?;
    write_file(&out.join(SUMMARY_JSON), &pretty(&full)?)?;
    write_file(&out.join(RESULTS_MD), markdown)?;
    write_file(&out.join(RESULTS_CSV), results_csv)?;
    write_runs_csv(out, &summary.models)
}

// ---------------------------------------------------------------- fusion

/// Chart label of a fusion model.
pub fn fusion_label(model: &str) -> String {
    match model {
        "early-fusion" => "early".into(),
        "late-fusion" => "late".into(),
        m => m.strip_prefix("intermediate-").unwrap_or(m).to_owned(),
    }
}

/// Index of the best model: lowest mean best validation loss, ties broken by accuracy.
fn best_index(models: &[ModelRuns]) -> usize {
    let key = |m: &ModelRuns| (stats::mean(&m.values(Metric::BestValLoss)), -stats::mean(&m.values(Metric::ValAccuracy)));
    let mut best = 0;
    for (i, m) in models.iter().enumerate() {
        let (a, b) = (key(m), key(&models[best]));
        if a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) || b.0.is_nan() {
            best = i;
        }
    }
    best
}

/// Builds the fusion summary from finished runs (no training, no files).
pub fn fusion_summary(st: &StudyRuns) -> StudySummary {
    let best = best_index(&st.models);
    let bm = &st.models[best];
    let summaries: Vec<ModelSummary> = st.models.iter().map(|m| summarise(m, fusion_label(&m.model))).collect();
    let mut comparisons = Vec::new();
    for (i, m) in st.models.iter().enumerate() {
        if i != best {
            for metric in FUSION_COMPARED {
                comparisons.push(ComparisonRow::new(metric, bm, m, st.split.val));
            }
        }
    }
    let columns: Vec<String> = [
        "model",
        "parameters",
        "best val loss",
        "val accuracy (best epoch)",
        "training time (s)",
        "time/epoch (s)",
        "peak memory (MiB)",
        "val loss vs best",
        "verdict (val loss)",
        "accuracy vs best",
        "verdict (accuracy)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows = Vec::new();
    for (i, (m, s)) in st.models.iter().zip(&summaries).enumerate() {
        let cell = |k: Metric| fmt_summary(k, &s.metrics[k.key()]);
        let mut row = vec![
            m.model.clone(),
            thousands(m.parameters),
            cell(Metric::BestValLoss),
            cell(Metric::ValAccuracy),
            cell(Metric::TrainingSeconds),
            cell(Metric::SecondsPerEpoch),
            cell(Metric::PeakMemoryMb),
        ];
        if i == best {
            row.extend(["best".into(), "-".into(), "best".into(), "-".into()]);
        } else {
            for metric in [Metric::BestValLoss, Metric::ValAccuracy] {
                let c = comparisons.iter().find(|c| c.other == m.model && c.metric == metric).expect("compared");
                row.push(format!("{} (p {})", fmt_diff(metric, c.comparison.difference), fmt_p(&c.comparison)));
                row.push(c.comparison.verdict.as_str().to_owned());
            }
        }
        rows.push(row);
    }
    let n_seeds = st.settings.seeds.len();
    let mut notes = vec![
        settings_line(st),
        format!("best model: {} (lowest mean best validation loss); every other model is compared with it", bm.model),
        rule_text(n_seeds, st.split.val),
    ];
    for metric in [Metric::BestValLoss, Metric::ValAccuracy] {
        let larger: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.metric == metric && c.comparison.verdict == Verdict::Larger)
            .map(|c| c.other.as_str())
            .collect();
        let within: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.metric == metric && c.comparison.verdict == Verdict::Within)
            .map(|c| c.other.as_str())
            .collect();
        notes.push(format!(
            "{} vs {}: larger than seed spread for [{}]; within seed spread for [{}]",
            metric.label(),
            bm.model,
            larger.join(", "),
            within.join(", ")
        ));
    }
    notes.push(
        "time/epoch is the training pass only; training time includes validation; peak memory is the process's \
         resident high-water mark (VmHWM) during training, dataset included"
            .into(),
    );
    StudySummary {
        study: "fusion".into(),
        title: format!("Fusion comparison ({} preset, {} seed(s))", st.settings.preset, n_seeds),
        columns,
        rows: rows.into_iter().map(|r| r.into_iter().map(Value::String).collect()).collect(),
        notes,
        charts: Vec::new(),
        baseline: bm.model.clone(),
        settings: st.settings.clone(),
        split: st.split,
        wall_seconds: st.wall_seconds,
        run_seconds: run_seconds(st),
        rule: rule_text(n_seeds, st.split.val),
        models: summaries,
        comparisons,
    }
}

fn comparison_md(summary: &StudySummary, metrics: &[Metric]) -> String {
    let cols: Vec<String> =
        ["model", "metric", "model mean", "baseline mean", "difference", "Welch t", "df", "p", "abs diff / pooled sd", "verdict"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let rows: Vec<Vec<String>> = summary
        .comparisons
        .iter()
        .filter(|c| metrics.contains(&c.metric))
        .map(|c| {
            let w = c.comparison.welch;
            vec![
                c.other.clone(),
                c.metric.label().to_owned(),
                fmt_value(c.metric, c.other_mean),
                fmt_value(c.metric, c.baseline_mean),
                fmt_diff(c.metric, c.comparison.difference),
                w.map(|w| if w.t.is_finite() { format!("{:.2}", w.t) } else { "inf".into() }).unwrap_or("-".into()),
                w.map(|w| format!("{:.1}", w.df)).unwrap_or("-".into()),
                fmt_p(&c.comparison),
                fmt_effect(&c.comparison),
                c.comparison.verdict.as_str().to_owned(),
            ]
        })
        .collect();
    md_table(&cols, &rows)
}

fn charts_md(charts: &[String]) -> String {
    charts.iter().map(|c| format!("![{c}]({c})\n")).collect()
}

fn cells(rows: &[Vec<Value>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(cilp_report::study::cell_text).collect()).collect()
}

fn fusion_markdown(s: &StudySummary) -> String {
    let mut md = format!("# {}\n\n{}\n\n", s.title, s.notes[0]);
    md.push_str(&md_table(&s.columns, &cells(&s.rows)));
    let _ = write!(md, "\nValues are mean ± sample standard deviation over seeds.\n\n## Each model against the best ({})\n\n", s.baseline);
    md.push_str(&comparison_md(s, &FUSION_COMPARED));
    let _ = write!(md, "\n{}\n\n## Notes\n\n", s.rule);
    for n in s.notes[1..].iter().filter(|n| **n != s.rule) {
        let _ = writeln!(md, "- {n}");
    }
    let _ = write!(md, "\n## Charts\n\n{}", charts_md(&s.charts));
    md
}

fn aggregate_csv(models: &[ModelSummary], extra_cols: &[&str], extra: impl Fn(&ModelSummary) -> Vec<String>) -> String {
    let mut s = String::from("model,seeds");
    for m in Metric::ALL {
        if m == Metric::Parameters {
            s.push_str(",parameters");
        } else {
            let _ = write!(s, ",{0}_mean,{0}_std", m.key());
        }
    }
    for c in extra_cols {
        let _ = write!(s, ",{c}");
    }
    s.push('\n');
    for m in models {
        let _ = write!(s, "{},{}", csv_field(&m.model), m.runs.len());
        for k in Metric::ALL {
            let ms = &m.metrics[k.key()];
            if k == Metric::Parameters {
                let _ = write!(s, ",{}", m.parameters);
            } else {
                let _ = write!(s, ",{},{}", num(ms.mean), opt(ms.std));
            }
        }
        for e in extra(m) {
            let _ = write!(s, ",{}", csv_field(&e));
        }
        s.push('\n');
    }
    s
}

/// Writes a fusion study's files into `out` (charts, summary.json, study_table.json,
/// results.md, results.csv, runs.csv) and returns the completed summary.
pub fn write_fusion(out: &Path, st: &StudyRuns) -> Result<StudySummary> {
    let mut summary = fusion_summary(st);
    std::fs::create_dir_all(out).map_err(|e| TrainError::Other(format!("{}: {e}", out.display())))?;
    summary.charts = write_charts(out, "Fusion", &summary.models)?;
    let csv = aggregate_csv(
        &summary.models,
        &["p_val_loss_vs_best", "verdict_val_loss_vs_best", "p_accuracy_vs_best", "verdict_accuracy_vs_best"],
        |m| {
            let mut v = Vec::new();
            for metric in [Metric::BestValLoss, Metric::ValAccuracy] {
                match summary.comparisons.iter().find(|c| c.other == m.model && c.metric == metric) {
                    Some(c) => {
                        v.push(c.comparison.welch.map(|w| num(w.p)).unwrap_or_default());
                        v.push(c.comparison.verdict.as_str().to_owned());
                    }
                    None => v.extend([String::new(), "best".to_owned()]),
                }
            }
            v
        },
    );
    write_summary_files(out, &summary, &fusion_markdown(&summary), &csv)?;
    Ok(summary)
}

/// Runs the fusion study (`models`, default [`FUSION_MODELS`]) and writes its files.
pub fn fusion(settings: &StudySettings, models: &[String], opts: &StudyOptions) -> Result<StudySummary> {
    let st = run_models(settings, models, opts)?;
    write_fusion(&opts.out, &st)
}

// ---------------------------------------------------------------- ablation

/// The models of the ablation of `base`: the MaxPool2d model and its two strided variants.
pub fn ablation_models(base: &str) -> Result<Vec<String>> {
    let base = base.strip_suffix("-strided-conv").or_else(|| base.strip_suffix("-strided")).unwrap_or(base);
    let models: Vec<String> = std::iter::once(base.to_owned()).chain(STRIDED_STYLES.iter().map(|(s, _)| format!("{base}{s}"))).collect();
    for m in &models {
        cilp_models::model_info(m)
            .map_err(|e| TrainError::Config(format!("{base} has no strided variants in the zoo ({m}: {e}); pick a fusion model")))?;
    }
    Ok(models)
}

fn ablation_label(i: usize) -> String {
    ["MaxPool2d", "strided", "strided-conv"].get(i).copied().unwrap_or("?").to_owned()
}

/// Builds the ablation summary from finished runs of [`ablation_models`] (no training, no files).
pub fn ablation_summary(st: &StudyRuns) -> StudySummary {
    let summaries: Vec<ModelSummary> = st.models.iter().enumerate().map(|(i, m)| summarise(m, ablation_label(i))).collect();
    let base = &st.models[0];
    let mut comparisons = Vec::new();
    let mut rows = Vec::new();
    for (j, m) in st.models.iter().enumerate().skip(1) {
        let style = STRIDED_STYLES.get(j - 1).map(|s| s.1).unwrap_or("");
        for metric in Metric::ALL {
            let c = ComparisonRow::new(metric, base, m, st.split.val);
            rows.push(vec![
                format!("{} ({style})", m.model),
                metric.label().to_owned(),
                fmt_summary(metric, &summaries[0].metrics[metric.key()]),
                fmt_summary(metric, &summaries[j].metrics[metric.key()]),
                fmt_diff(metric, c.comparison.difference),
                fmt_p(&c.comparison),
                c.comparison.verdict.as_str().to_owned(),
            ]);
            comparisons.push(c);
        }
    }
    let n_seeds = st.settings.seeds.len();
    let mut notes = vec![
        settings_line(st),
        format!("MaxPool2d model: {}; difference = strided - MaxPool2d", base.model),
        rule_text(n_seeds, st.split.val),
    ];
    for (j, m) in st.models.iter().enumerate().skip(1) {
        let larger: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.other == m.model && c.comparison.verdict == Verdict::Larger)
            .map(|c| c.metric.label())
            .collect();
        notes.push(format!(
            "{} ({}) vs MaxPool2d: larger than seed spread for [{}]; every other metric within seed spread",
            m.model,
            STRIDED_STYLES.get(j - 1).map(|s| s.1).unwrap_or(""),
            larger.join(", ")
        ));
    }
    notes.push(
        "time/epoch is the training pass only; training time includes validation; peak memory is the process's \
         resident high-water mark (VmHWM) during training, dataset included"
            .into(),
    );
    StudySummary {
        study: "ablation".into(),
        title: format!("Ablation on {}: MaxPool2d vs strided ({} preset, {} seed(s))", base.model, st.settings.preset, n_seeds),
        columns: ["strided model", "metric", "MaxPool2d", "strided", "difference", "Welch p", "verdict"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows: rows.into_iter().map(|r| r.into_iter().map(Value::String).collect()).collect(),
        notes,
        charts: Vec::new(),
        baseline: base.model.clone(),
        settings: st.settings.clone(),
        split: st.split,
        wall_seconds: st.wall_seconds,
        run_seconds: run_seconds(st),
        rule: rule_text(n_seeds, st.split.val),
        models: summaries,
        comparisons,
    }
}

fn ablation_markdown(s: &StudySummary) -> String {
    let mut md = format!("# {}\n\n{}\n\n", s.title, s.notes[0]);
    let cols: Vec<String> = ["metric", "MaxPool2d", "strided", "difference", "Welch p", "verdict"].iter().map(|s| s.to_string()).collect();
    let mut styles: Vec<String> = Vec::new();
    for r in &s.rows {
        let k = cilp_report::study::cell_text(&r[0]);
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
    let _ = write!(
        md,
        "Values are mean ± sample standard deviation over seeds; difference = strided - MaxPool2d.\n\n{}\n\n## Notes\n\n",
        s.rule
    );
    for n in s.notes[1..].iter().filter(|n| **n != s.rule) {
        let _ = writeln!(md, "- {n}");
    }
    let _ = write!(md, "\n## Charts\n\n{}", charts_md(&s.charts));
    md
}

/// Writes an ablation study's files into `out` and returns the completed summary.
pub fn write_ablation(out: &Path, st: &StudyRuns) -> Result<StudySummary> {
    let mut summary = ablation_summary(st);
    std::fs::create_dir_all(out).map_err(|e| TrainError::Other(format!("{}: {e}", out.display())))?;
    let title = format!("Ablation ({})", summary.baseline);
    summary.charts = write_charts(out, &title, &summary.models)?;
    let mut csv = String::from(
        "strided_model,metric,maxpool_mean,maxpool_std,strided_mean,strided_std,difference,welch_t,welch_df,p,effect_size,verdict\n",
    );
    for c in &summary.comparisons {
        let a = summary.models.iter().find(|m| m.model == c.baseline).map(|m| &m.metrics[c.metric.key()]);
        let b = summary.models.iter().find(|m| m.model == c.other).map(|m| &m.metrics[c.metric.key()]);
        let w = c.comparison.welch;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&c.other),
            c.metric.key(),
            a.map(|s| num(s.mean)).unwrap_or_default(),
            a.and_then(|s| s.std).map(num).unwrap_or_default(),
            b.map(|s| num(s.mean)).unwrap_or_default(),
            b.and_then(|s| s.std).map(num).unwrap_or_default(),
            num(c.comparison.difference),
            w.map(|w| num(w.t)).unwrap_or_default(),
            w.map(|w| num(w.df)).unwrap_or_default(),
            w.map(|w| num(w.p)).unwrap_or_default(),
            opt(c.comparison.effect_size),
            c.comparison.verdict.as_str()
        );
    }
    write_summary_files(out, &summary, &ablation_markdown(&summary), &csv)?;
    Ok(summary)
}

/// Runs the ablation of `base` (MaxPool2d vs both strided styles) and writes its files.
pub fn ablation(settings: &StudySettings, base: &str, opts: &StudyOptions) -> Result<StudySummary> {
    let models = ablation_models(base)?;
    let st = run_models(settings, &models, opts)?;
    write_ablation(&opts.out, &st)
}

/// The best model recorded in a fusion study's `summary.json` (file or folder).
pub fn best_fusion_model(path: &Path) -> Result<String> {
    let file: PathBuf = if path.is_dir() { path.join(SUMMARY_JSON) } else { path.to_owned() };
    let text = std::fs::read_to_string(&file).map_err(|e| TrainError::Other(format!("{}: {e}", file.display())))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| TrainError::Other(format!("{}: {e}", file.display())))?;
    if v.get("study").and_then(Value::as_str) != Some("fusion") {
        return Err(TrainError::Other(format!("{} is not a fusion study summary", file.display())));
    }
    v.get("baseline")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TrainError::Other(format!("{}: no best model recorded", file.display())))
}
