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
    // Every model of a study trains with the same seeds on the same split: pair them by seed.
    let same_seeds =
        a.runs.iter().map(|r| r.seed).eq(b.runs.iter().map(|r| r.seed)) && va.len() == a.runs.len() && vb.len() == b.runs.len();
    let resolution = metric.resolution(n_val);
    ComparisonRow {
        metric,
        baseline: a.model.clone(),
        other: b.model.clone(),
        baseline_mean: stats::mean(&va),
        other_mean: stats::mean(&vb),
        comparison: if same_seeds { stats::compare_paired(&va, &vb, resolution) } else { stats::compare_resolved(&va, &vb, resolution) },
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
        "verdict: every model trains on the same split with the same seeds, so models are compared seed by seed: \
         'larger than seed spread' when the paired t-test on the per-seed differences gives p < {alpha} (the 95% \
         interval of the mean difference excludes 0); otherwise 'within seed spread'. (Models without the same \
         seeds fall back to Welch's test with p < {alpha} AND |difference| > {k} x pooled sample std.) Accuracy \
         moves in steps of one validation sample (1/{n_val}), so each std is taken as at least one step: seeds \
         that all miss the same sample do not make a one-sample difference significant. With {n_seeds} seed(s) \
         the test has little power: 'within' means not shown to differ, not equal; 'detectable' is the smallest \
         mean difference the paired test would find with {power:.0}% power at the observed spread.",
        alpha = stats::ALPHA,
        k = stats::SPREAD_FACTOR,
        power = 100.0 * stats::POWER
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
         batch {}, Adam {}, device {}, seeds {} (vary initialisation and shuffling); {:.0} s inside the runs \
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
        lr_text(s),
        s.device,
        s.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        run_seconds(st),
        st.wall_seconds
    )
}

/// How a schedule reads after a rate: "" for constant.
fn schedule_text(s: cilp_train::LrSchedule) -> &'static str {
    match s {
        cilp_train::LrSchedule::Constant => "",
        cilp_train::LrSchedule::Cosine => " (cosine, per epoch)",
        cilp_train::LrSchedule::WarmupCosine => " (warm-up then cosine, per step)",
    }
}

/// The learning rate(s) of a study in words: `lr 0.001` or the grid's points.
fn lr_text(s: &StudySettings) -> String {
    if s.grid.is_empty() {
        return format!("lr {}{}", s.lr, schedule_text(s.lr_schedule));
    }
    let points: Vec<String> = s.grid.iter().map(|p| format!("{:e}{}", p.lr, schedule_text(p.lr_schedule))).collect();
    format!("learning-rate grid of {} points ({})", points.len(), points.join("; "))
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

/// `names` joined by commas, or "none".
pub(crate) fn names_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// What a study found and how sure it is, in one sentence (the main job ends with it): how many
/// models differ from the baseline in best validation loss by more than the seed spread, and
/// how small a difference its seeds could detect.
pub fn finding<S>(s: &cilp_track::study::StudySummary<S>) -> String {
    let loss: Vec<&ComparisonRow> = s.comparisons.iter().filter(|c| c.metric == Metric::BestValLoss).collect();
    let larger: Vec<&str> =
        loss.iter().filter(|c| c.comparison.verdict == cilp_track::study::Verdict::Larger).map(|c| c.other.as_str()).collect();
    let seeds = s.models.first().map_or(0, |m| m.runs.len());
    let who = match s.study {
        StudyKind::Fusion => format!("{} has the lowest best validation loss", s.baseline),
        StudyKind::Ablation => format!("against the MaxPool2d {}", s.baseline),
    };
    let which = if larger.is_empty() { String::new() } else { format!(" ({})", larger.join(", ")) };
    let mut d: Vec<f64> = loss.iter().filter_map(|c| c.comparison.paired.map(|p| p.detectable)).filter(|x| x.is_finite()).collect();
    d.sort_by(f64::total_cmp);
    let tell = d
        .get(d.len() / 2)
        .map(|m| format!("; differences below about {} cannot be told apart with these seeds", Metric::BestValLoss.format(*m)))
        .unwrap_or_default();
    format!(
        "{}: {who}; {} of the other {} model(s) differ in it by more than the seed spread{which} (paired t-test over {seeds} seed(s), p < {}){tell}.",
        s.study.as_str(),
        larger.len(),
        loss.len(),
        stats::ALPHA
    )
}

/// How small a best-validation-loss difference the study could tell apart: the median of the
/// paired tests' detectable differences, in one sentence.
fn detectable_note(comparisons: &[ComparisonRow], seeds: usize) -> Option<String> {
    let mut d: Vec<f64> = comparisons
        .iter()
        .filter(|c| c.metric == Metric::BestValLoss)
        .filter_map(|c| c.comparison.paired.map(|p| p.detectable))
        .filter(|x| x.is_finite())
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let median = d[d.len() / 2];
    Some(format!(
        "With {seeds} seeds this study detects (paired t-test, {:.0}% power) a difference in best validation loss of about \
         {} or more (median over the comparisons; from {} to {}); smaller differences need more seeds.",
        100.0 * stats::POWER,
        Metric::BestValLoss.format(median),
        Metric::BestValLoss.format(d[0]),
        Metric::BestValLoss.format(d[d.len() - 1])
    ))
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
    let seeds = st.seed_count();
    let rule = rule_text(seeds, st.split.val);
    let mut notes = vec![settings_line(st)];
    if !st.missing.is_empty() {
        let list: Vec<String> = st.missing.iter().map(|m| format!("{} ({})", m.run, m.reason)).collect();
        notes.push(format!(
            "INCOMPLETE: {} of the study's runs are missing and left out of every statistic below: {}",
            st.missing.len(),
            list.join("; ")
        ));
    }
    notes.extend([table.about, rule.clone()]);
    notes.extend(table.findings);
    notes.extend(detectable_note(&comparisons, seeds));
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
        missing_runs: st.missing.clone(),
    }
}
