//! The fusion study: every fusion architecture trained over the same seeds, each compared with
//! the best one (lowest mean best validation loss).

use std::path::{Path, PathBuf};

use cilp_track::compare::format_thousands;
use cilp_track::study::{Metric, ModelSummary, StudyKind, Verdict};
use serde_json::Value;

use crate::runner::{ModelRuns, StudyOptions, StudyRuns, StudySettings, run_models};
use crate::stats;
use crate::summary::{FinishedStudy, StudySummary, StudyTable, assemble, compare_models, summarise};
use cilp_train::error::{Result, TrainError};

/// The five fusion architectures of the study, in the order they are reported.
pub const FUSION_MODELS: [&str; 5] = ["early-fusion", "late-fusion", "intermediate-concat", "intermediate-add", "intermediate-hadamard"];

/// Metrics compared between fusion models and the best one.
pub const FUSION_COMPARED: [Metric; 4] = [Metric::BestValLoss, Metric::ValAccuracy, Metric::SecondsPerEpoch, Metric::PeakMemoryMb];

/// Chart label of a fusion model.
pub fn fusion_label(model: &str) -> String {
    match model {
        "early-fusion" => "early".into(),
        "late-fusion" => "late".into(),
        m => m.strip_prefix("intermediate-").unwrap_or(m).to_owned(),
    }
}

/// Chart label of a study arm: the fusion label, plus the grid point in a grid.
fn arm_label(m: &ModelRuns) -> String {
    let base = fusion_label(crate::runner::arm_model(&m.model));
    match m.point {
        Some(p) => format!("{base} {:e} {}", p.lr, p.lr_schedule.name()),
        None => base,
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

/// Builds the fusion summary from finished runs (no training, no files; `charts` is empty
/// until `cilp_report::study_files::write` draws them).
pub fn fusion_summary(st: &StudyRuns) -> StudySummary {
    let best = best_index(&st.models);
    let bm = &st.models[best];
    let summaries: Vec<ModelSummary> = st.models.iter().map(|m| summarise(m, arm_label(m))).collect();
    let mut comparisons = Vec::new();
    for (i, m) in st.models.iter().enumerate() {
        if i != best {
            for metric in FUSION_COMPARED {
                comparisons.push(compare_models(metric, bm, m, st.split.val));
            }
        }
    }
    let grid = !st.settings.grid.is_empty();
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
    let columns = if grid { std::iter::once("rank".to_owned()).chain(columns).collect() } else { columns };
    let mut rows = Vec::new();
    for (i, (m, s)) in st.models.iter().zip(&summaries).enumerate() {
        let cell = |k: Metric| k.format_summary(&s.metrics[k.key()]);
        let mut row = vec![
            m.model.clone(),
            format_thousands(m.parameters),
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
                row.push(format!("{} (p {})", metric.format_difference(c.comparison.difference), c.comparison.format_p()));
                row.push(c.comparison.verdict.as_str().to_owned());
            }
        }
        rows.push(row);
    }
    if grid {
        // A grid's table ranks its arms by mean best validation loss (missing values last).
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let key = |i: usize| stats::mean(&st.models[i].values(Metric::BestValLoss));
        order.sort_by(|&a, &b| key(a).is_nan().cmp(&key(b).is_nan()).then(key(a).total_cmp(&key(b))));
        rows = order.iter().enumerate().map(|(r, &i)| std::iter::once((r + 1).to_string()).chain(rows[i].clone()).collect()).collect();
    }
    let mut findings = Vec::new();
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
        findings.push(format!(
            "{} vs {}: larger than seed spread: {}; within seed spread: {}",
            metric.label(),
            bm.model,
            crate::summary::names_or_none(&larger),
            crate::summary::names_or_none(&within)
        ));
    }
    let (title, about) = if grid {
        (
            format!("Learning-rate grid: {} arms ({} preset, {} seed(s))", st.models.len(), st.settings.preset, st.seed_count()),
            format!(
                "every model is trained at every grid point (one run per arm and seed, named <model>-lr<rate>-<schedule>-s<seed>); \
                 arms ranked by mean best validation loss; best arm: {}; every other arm is compared with it",
                bm.model
            ),
        )
    } else {
        (
            format!("Fusion comparison ({} preset, {} seed(s))", st.settings.preset, st.seed_count()),
            format!("best model: {} (lowest mean best validation loss); every other model is compared with it", bm.model),
        )
    };
    let table = StudyTable { title, columns, rows, about, findings };
    assemble(st, StudyKind::Fusion, &bm.model, table, summaries, comparisons)
}

/// Runs the fusion study (`models`, default [`FUSION_MODELS`]) and summarises it; the caller
/// writes its files (`cilp_report::study_files::write`) while it holds the returned lock.
pub fn fusion(settings: &StudySettings, models: &[String], opts: &StudyOptions) -> Result<FinishedStudy> {
    let st = run_models(settings, models, opts)?;
    Ok(FinishedStudy { summary: fusion_summary(&st), lock: st.lock })
}

/// The best model recorded in a fusion study's `summary.json` (file or folder).
pub fn best_fusion_model(path: &Path) -> Result<String> {
    let file: PathBuf = if path.is_dir() { path.join(cilp_track::run::SUMMARY_JSON) } else { path.to_owned() };
    let bad = |reason: String| TrainError::BadFile { path: file.clone(), reason };
    let text = cilp_data::io::read_bounded_to_string(&file, cilp_track::run::MAX_RUN_FILE_BYTES, "a fusion study summary (JSON)")
        .map_err(cilp_data::DataError::from)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v.get("study").and_then(Value::as_str) != Some("fusion") {
        return Err(bad("is not a fusion study summary".into()));
    }
    // A grid's best arm is a model at a grid point: the ablation takes its model.
    v.get("baseline")
        .and_then(Value::as_str)
        .map(|b| crate::runner::arm_model(b).to_owned())
        .ok_or_else(|| bad("no best model recorded".into()))
}
