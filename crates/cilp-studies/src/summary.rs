//! What the fusion study and the ablation share when they summarise their runs: per-model
//! summaries, comparisons, the settings line and the verdict rule in words. The summary is plain
//! data ([`cilp_track::study`]); `cilp_report::study_files` writes it out.

use cilp_track::study::{ComparisonRow, Metric, ModelSummary, StudyKind};
use serde_json::Value;

use crate::runner::{ModelRuns, StudyLock, StudyRuns, StudySettings};
use crate::stats;

/// What a study's `summary.json` holds, with the settings this crate records.
pub type StudySummary = cilp_track::study::StudySummary<StudySettings>;

/// A study whose runs are all trained (or read back) and summarised: its summary, and the study
/// folder's lock, held until this value is dropped, so that the files written from the summary
/// (`cilp_report::study_files::write`, which also fills in `summary.charts`) are covered by it.
#[derive(Debug)]
pub struct FinishedStudy {
    pub summary: StudySummary,
    pub lock: StudyLock,
}

/// The last note of both studies: what the time and memory columns measure.
const TIME_AND_MEMORY_NOTE: &str = "time/epoch is the training pass only; training time includes validation; peak memory is \
     the process's resident high-water mark (VmHWM) during training, dataset included";

/// Compares `metric` of model `b` against the baseline `a`; `n_val`: validation samples, which
/// set the accuracy's resolution.
pub(crate) fn compare_models(metric: Metric, a: &ModelRuns, b: &ModelRuns, n_val: usize) -> ComparisonRow {
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

/// One model's summary over seeds, with its chart `label`.
pub(crate) fn summarise(m: &ModelRuns, label: String) -> ModelSummary {
    ModelSummary {
        model: m.model.clone(),
        label,
        parameters: m.parameters,
        metrics: Metric::ALL.iter().map(|&k| (k.key().to_owned(), m.summary(k))).collect(),
        mean_val_loss_curve: m.mean_val_curve(),
        runs: m.runs.clone(),
    }
}

/// The verdict rule in words (the summary's `rule`, also a note).
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

/// Training plus validation time of every run of the study, summed: unlike the invocation's
/// wall time it does not shrink when runs are reused.
fn run_seconds(st: &StudyRuns) -> f64 {
    st.models.iter().flat_map(|m| &m.runs).map(|r| r.total_seconds).filter(|t| t.is_finite()).sum()
}

/// The first note of both studies: data, split, training settings, seeds and time.
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

/// What each study puts into its summary's table.
pub(crate) struct StudyTable {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The note after the settings line: what is compared with what.
    pub about: String,
    /// The notes after the verdict rule: which differences are larger than the seed spread.
    pub findings: Vec<String>,
}

/// The summary of a study: its `table` and comparisons, with the settings, split, times and the
/// notes both studies share (settings line first, then `about`, the rule, the `findings`, and
/// what the time and memory columns measure).
pub(crate) fn assemble(
    st: &StudyRuns,
    study: StudyKind,
    baseline: &str,
    table: StudyTable,
    models: Vec<ModelSummary>,
    comparisons: Vec<ComparisonRow>,
) -> StudySummary {
    let rule = rule_text(st.settings.seeds.len(), st.split.val);
    let mut notes = vec![settings_line(st), table.about, rule.clone()];
    notes.extend(table.findings);
    notes.push(TIME_AND_MEMORY_NOTE.into());
    StudySummary {
        study,
        title: table.title,
        columns: table.columns,
        rows: table.rows.into_iter().map(|r| r.into_iter().map(Value::String).collect()).collect(),
        notes,
        charts: Vec::new(),
        baseline: baseline.to_owned(),
        settings: st.settings.clone(),
        split: st.split,
        wall_seconds: st.wall_seconds,
        run_seconds: run_seconds(st),
        rule,
        models,
        comparisons,
    }
}
