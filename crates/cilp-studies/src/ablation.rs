//! The MaxPool2d-vs-strided ablation: a fusion model and its two strided variants trained over
//! the same seeds, each strided style compared with the MaxPool2d model on every metric.

use cilp_track::study::{Metric, ModelSummary, StudyKind, Verdict};

use crate::runner::{StudyOptions, StudyRuns, StudySettings, run_models};
use crate::summary::{FinishedStudy, StudySummary, StudyTable, assemble, compare_models, summarise};
use cilp_train::error::{Result, TrainError};

/// The two strided styles of the ablation: (zoo suffix, label).
pub const STRIDED_STYLES: [(&str, &str); 2] =
    [("-strided", "separate stride-2 conv after each block"), ("-strided-conv", "stride-2 main conv, no pool")];

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

/// Builds the ablation summary from finished runs of [`ablation_models`] (no training, no files;
/// `charts` is empty until `cilp_report::study_files::write` draws them).
pub fn ablation_summary(st: &StudyRuns) -> StudySummary {
    let summaries: Vec<ModelSummary> = st.models.iter().enumerate().map(|(i, m)| summarise(m, ablation_label(i))).collect();
    let base = &st.models[0];
    let mut comparisons = Vec::new();
    let mut rows = Vec::new();
    for (j, m) in st.models.iter().enumerate().skip(1) {
        let style = STRIDED_STYLES.get(j - 1).map(|s| s.1).unwrap_or("");
        for metric in Metric::ALL {
            let c = compare_models(metric, base, m, st.split.val);
            rows.push(vec![
                format!("{} ({style})", m.model),
                metric.label().to_owned(),
                metric.format_summary(&summaries[0].metrics[metric.key()]),
                metric.format_summary(&summaries[j].metrics[metric.key()]),
                metric.format_difference(c.comparison.difference),
                c.comparison.format_p(),
                c.comparison.verdict.as_str().to_owned(),
            ]);
            comparisons.push(c);
        }
    }
    let mut findings = Vec::new();
    for (j, m) in st.models.iter().enumerate().skip(1) {
        let larger: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.other == m.model && c.comparison.verdict == Verdict::Larger)
            .map(|c| c.metric.label())
            .collect();
        findings.push(format!(
            "{} ({}) vs MaxPool2d: larger than seed spread: {}; every other metric within seed spread",
            m.model,
            STRIDED_STYLES.get(j - 1).map(|s| s.1).unwrap_or(""),
            crate::summary::names_or_none(&larger)
        ));
    }
    let table = StudyTable {
        title: format!("Ablation on {}: MaxPool2d vs strided ({} preset, {} seed(s))", base.model, st.settings.preset, st.seed_count()),
        columns: ["strided model", "metric", "MaxPool2d", "strided", "difference", "Welch p", "verdict"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
        about: format!("MaxPool2d model: {}; difference = strided - MaxPool2d", base.model),
        findings,
    };
    assemble(st, StudyKind::Ablation, &base.model, table, summaries, comparisons)
}

/// Runs the ablation of `base` (MaxPool2d vs both strided styles) and summarises it; the caller
/// writes its files (`cilp_report::study_files::write`) while it holds the returned lock.
pub fn ablation(settings: &StudySettings, base: &str, opts: &StudyOptions) -> Result<FinishedStudy> {
    let models = ablation_models(base)?;
    let st = run_models(settings, &models, opts)?;
    Ok(FinishedStudy { summary: ablation_summary(&st), lock: st.lock })
}
