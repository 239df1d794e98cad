//! The records of a study (`cilp fusion`, `cilp ablation`): a group of runs of several models
//! over several seeds, summarised per model and compared between models.
//!
//! These are plain data, shared by the crate that computes them (`cilp-train`'s studies: the
//! statistics and the verdicts) and the crate that writes them out (`cilp-report`'s study
//! files: `summary.json`, `study_table.json`, `results.md`, the CSVs and the charts). Both sit
//! above this crate and neither depends on the other. How a metric's values are shown in the
//! study tables is fixed here too ([`Metric::format`] and friends), because the summary's table
//! rows and the report's Markdown tables both use it.
//!
//! [`StudySummary`] is what a study's `summary.json` holds (`crate::run::SUMMARY_JSON` in the
//! study folder); its `"study"` key marks the folder as a group of runs, see
//! [`crate::run::is_study_summary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compare::format_thousands;

/// Which study a summary belongs to (its `"study"` key: `fusion` or `ablation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudyKind {
    /// Every fusion model against the best one.
    Fusion,
    /// A MaxPool2d model against its strided variants.
    Ablation,
}

impl StudyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StudyKind::Fusion => "fusion",
            StudyKind::Ablation => "ablation",
        }
    }
}

impl std::fmt::Display for StudyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric a study reports per model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    BestValLoss,
    ValAccuracy,
    Parameters,
    TrainingSeconds,
    SecondsPerEpoch,
    PeakMemoryMb,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::BestValLoss,
        Metric::ValAccuracy,
        Metric::Parameters,
        Metric::TrainingSeconds,
        Metric::SecondsPerEpoch,
        Metric::PeakMemoryMb,
    ];

    /// Key in JSON and CSV.
    pub fn key(self) -> &'static str {
        match self {
            Metric::BestValLoss => "best_val_loss",
            Metric::ValAccuracy => "val_accuracy",
            Metric::Parameters => "parameters",
            Metric::TrainingSeconds => "training_seconds",
            Metric::SecondsPerEpoch => "seconds_per_epoch",
            Metric::PeakMemoryMb => "peak_memory_mb",
        }
    }

    /// Smallest step the metric can move by with `n_val` validation samples: one sample for
    /// accuracy, 0 (continuous) for the rest. The verdict floors each model's seed spread at it
    /// (see `cilp_train::studies::stats`).
    pub fn resolution(self, n_val: usize) -> f64 {
        match self {
            Metric::ValAccuracy if n_val > 0 => 1.0 / n_val as f64,
            // Peak memory is a resident-set high-water mark shown in whole MiB; runs of one model
            // differ by about a MiB from allocation order alone, so seeds that agree to the MiB
            // do not make a one-MiB difference significant.
            Metric::PeakMemoryMb => 1.0,
            _ => 0.0,
        }
    }

    /// Label in tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::BestValLoss => "best val loss",
            Metric::ValAccuracy => "val accuracy (best epoch)",
            Metric::Parameters => "parameters",
            Metric::TrainingSeconds => "training time (s)",
            Metric::SecondsPerEpoch => "time/epoch (s)",
            Metric::PeakMemoryMb => "peak memory (MiB)",
        }
    }

    /// A value of the metric, as shown in tables (`-` when not finite).
    pub fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "-".into();
        }
        match self {
            Metric::ValAccuracy => format!("{:.2}%", 100.0 * v),
            Metric::Parameters => format_thousands(v.round() as u64),
            Metric::TrainingSeconds | Metric::SecondsPerEpoch => format!("{v:.1}"),
            Metric::PeakMemoryMb => format!("{v:.0}"),
            Metric::BestValLoss => significant(v),
        }
    }

    /// mean ± std (or just the mean with one seed, and for parameter counts).
    pub fn format_summary(self, s: &MetricSummary) -> String {
        if s.n == 0 {
            return "-".into();
        }
        match (self, s.std) {
            (Metric::Parameters, _) => self.format(s.mean),
            (_, Some(sd)) => format!("{} ± {}", self.format(s.mean), self.format_spread(sd)),
            (_, None) => self.format(s.mean),
        }
    }

    fn format_spread(self, sd: f64) -> String {
        match self {
            Metric::ValAccuracy => format!("{:.2}", 100.0 * sd),
            _ => self.format(sd),
        }
    }

    /// A signed difference (accuracy in percentage points); one that rounds to zero has no sign.
    pub fn format_difference(self, d: f64) -> String {
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
        let body = match self {
            Metric::ValAccuracy => format!("{:.2} pp", 100.0 * a),
            Metric::Parameters => format_thousands(a.round() as u64),
            _ => self.format(a),
        };
        if body.chars().filter(char::is_ascii_digit).all(|c| c == '0') {
            return body;
        }
        format!("{sign}{body}")
    }
}

/// About four significant digits: `9.55e-4`, `0.6940`, `12.35`, `1234`.
fn significant(v: f64) -> String {
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

/// Mean ± sample std of one metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub mean: f64,
    /// Sample standard deviation; `None` with one seed.
    pub std: Option<f64>,
    pub n: usize,
    /// The per-seed values, in seed order.
    pub values: Vec<f64>,
}

/// `f64` fields that may be infinite or NaN (the t statistic of two samples that do not vary,
/// such as a parameter count): JSON has no such numbers and serde_json writes them as `null`,
/// which it then refuses to read back as a number. They are written as the strings `"inf"`,
/// `"-inf"` and `"NaN"`, and read from those, from numbers, and from `null` (as NaN: what
/// summaries written before this held).
pub mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Option::<Repr>::deserialize(d)? {
            None => Ok(f64::NAN),
            Some(Repr::Number(v)) => Ok(v),
            Some(Repr::Text(t)) => match t.as_str() {
                "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
                "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                "NaN" | "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!("expected a number, \"inf\", \"-inf\" or \"NaN\", got \"{other}\""))),
            },
        }
    }
}

/// Result of Welch's unequal-variances t-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// (mean b - mean a) / standard error; infinite when neither side varies but the means differ.
    #[serde(with = "non_finite")]
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom (na + nb - 2 when neither side varies).
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Whether a difference between two models is larger than the seed-to-seed spread (the rule is
/// in `cilp_train::studies::stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// p < 0.05 and |difference| > 2 pooled standard deviations.
    Larger,
    /// Not shown to differ with these seeds.
    Within,
    /// Fewer than two seeds on a side.
    NotEnoughSeeds,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Larger => "larger than seed spread",
            Verdict::Within => "within seed spread",
            Verdict::NotEnoughSeeds => "n/a (one seed)",
        }
    }
}

/// One two-sample comparison of a metric over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// mean(b) - mean(a).
    pub difference: f64,
    /// sqrt((sa^2 + sb^2) / 2), each std at least `resolution`; `None` with fewer than two
    /// seeds on a side.
    pub pooled_std: Option<f64>,
    /// |difference| / pooled_std (infinite when the pooled std is 0 and the means differ).
    pub effect_size: Option<f64>,
    pub welch: Option<Welch>,
    /// The paired analysis over the seeds both models share (the studies train every model on
    /// the same split with the same seeds): what the verdict uses when present. Absent in
    /// summaries written before it existed, or when the seeds differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<Paired>,
    pub verdict: Verdict,
    /// Smallest step the metric can show (1 / n_val for accuracy, 1 MiB for peak memory, 0 for
    /// continuous metrics); the
    /// floor of each side's std. 0 in summaries written before it existed.
    #[serde(default)]
    pub resolution: f64,
}

/// A paired t-test on the per-seed differences `d_s = other_s - baseline_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Seeds paired.
    pub seeds: usize,
    /// Sample std of the differences (at least the metric's resolution).
    pub std: f64,
    /// Mean difference / standard error; infinite when the differences do not vary.
    #[serde(with = "non_finite")]
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// 95% confidence interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
    /// The smallest mean difference this many seeds would detect (two-sided 5%, 80% power) at
    /// the observed spread of the differences.
    pub detectable: f64,
}

/// A p-value as shown in tables: four decimals or `<0.0001`.
fn show_p(p: f64) -> String {
    if p < 1e-4 { "<0.0001".into() } else { format!("{p:.4}") }
}

impl Comparison {
    /// The p-value the verdict used, as shown in tables: four decimals, `<0.0001`, or `-`
    /// without a test (the paired test's when there is one, else Welch's).
    pub fn format_p(&self) -> String {
        match (self.paired, self.welch) {
            (Some(pr), _) => show_p(pr.p),
            (None, Some(w)) => show_p(w.p),
            (None, None) => "-".into(),
        }
    }

    /// Welch's p-value as shown in tables.
    pub fn format_welch_p(&self) -> String {
        self.welch.map_or_else(|| "-".into(), |w| show_p(w.p))
    }
}

/// The numbers one run contributes to a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    /// Run directory, relative to the study folder.
    pub run: String,
    /// Lowest validation loss over the epochs.
    pub best_val_loss: f64,
    /// Validation accuracy after the last epoch, in [0, 1].
    pub final_val_accuracy: f64,
    /// Validation accuracy at the epoch with the lowest validation loss, in [0, 1]: the model in
    /// `checkpoints/best.bpk`, which `cilp predict` uses. Steadier than the last epoch's at a
    /// constant learning rate. Absent in summaries written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch_val_accuracy: Option<f64>,
    /// Training plus validation wall time of the run, seconds.
    pub total_seconds: f64,
    /// Mean wall time of a training epoch (without validation), seconds.
    pub seconds_per_epoch: f64,
    /// Highest training peak resident memory of the process (VmHWM), MiB.
    pub peak_memory_mb: Option<f64>,
    /// Validation loss per epoch.
    pub val_loss_curve: Vec<f64>,
}

/// Size of the split every run of a study used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub train: usize,
    pub val: usize,
    pub split_seed: u64,
}

/// One model's results over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub model: String,
    /// Short label used in charts.
    pub label: String,
    pub parameters: u64,
    /// Mean ± sample std per metric key (see [`Metric::key`]).
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Validation loss per epoch, mean over seeds.
    pub mean_val_loss_curve: Vec<f64>,
    pub runs: Vec<SeedRun>,
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

/// What a study's `summary.json` holds. Its `title`/`columns`/`rows`/`notes`/`charts` follow
/// the study table convention of cilp-report; the `study` key marks the file as a study summary
/// (so the folder is listed as a group of runs, see [`crate::run::is_study_summary`]).
///
/// `S` is the study's settings as the trainer records them (`cilp_train::studies::StudySettings`);
/// a reader that does not know them takes them as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySummary<S = Value> {
    pub study: StudyKind,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub notes: Vec<String>,
    /// Chart files in the study folder, filled in when they are drawn (`cilp_report::study_files`).
    pub charts: Vec<String>,
    /// The model every other one is compared with: the best fusion model (lowest mean best
    /// validation loss) or the ablation's MaxPool2d model.
    pub baseline: String,
    pub settings: S,
    pub split: SplitInfo,
    /// Wall time of the invocation that wrote this summary (reused runs take none of it).
    pub wall_seconds: f64,
    /// Training plus validation seconds of all runs, summed (earlier sittings included).
    #[serde(default)]
    pub run_seconds: f64,
    /// The verdict rule, in words.
    pub rule: String,
    pub models: Vec<ModelSummary>,
    pub comparisons: Vec<ComparisonRow>,
    /// Planned runs that were not finished when the study was summarised (collected from an
    /// array job's folder): named here and in the notes, left out of the statistics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_runs: Vec<MissingRun>,
}

/// A run of a study that could not be read back as finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingRun {
    pub run: String,
    /// Why: not started, still running (or its worker died), failed, interrupted, or trained
    /// with another config than the study's.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[f64], std: Option<f64>) -> MetricSummary {
        MetricSummary { mean: values.iter().sum::<f64>() / values.len() as f64, std, n: values.len(), values: values.to_vec() }
    }

    #[test]
    fn values_as_tables_show_them() {
        assert_eq!(Metric::BestValLoss.format(0.69403), "0.6940");
        assert_eq!(Metric::BestValLoss.format(9.551e-4), "9.55e-4");
        assert_eq!(Metric::BestValLoss.format(12.345), "12.35");
        assert_eq!(Metric::BestValLoss.format(1234.4), "1234");
        assert_eq!(Metric::BestValLoss.format(0.0), "0");
        assert_eq!(Metric::ValAccuracy.format(0.5625), "56.25%");
        assert_eq!(Metric::Parameters.format(13_147_202.0), "13,147,202");
        assert_eq!(Metric::SecondsPerEpoch.format(1.44), "1.4");
        assert_eq!(Metric::PeakMemoryMb.format(478.54), "479");
        assert_eq!(Metric::PeakMemoryMb.format(f64::NAN), "-");
        assert_eq!(Metric::ValAccuracy.format_summary(&summary(&[0.5, 0.625], Some(0.0884))), "56.25% ± 8.84");
        assert_eq!(Metric::Parameters.format_summary(&summary(&[7.0, 7.0], Some(0.0))), "7");
        assert_eq!(Metric::BestValLoss.format_summary(&summary(&[0.5], None)), "0.5000");
        assert_eq!(Metric::BestValLoss.format_summary(&summary(&[], None)), "-");
    }

    #[test]
    fn differences_have_a_sign_unless_they_round_to_zero() {
        assert_eq!(Metric::BestValLoss.format_difference(0.0022), "+0.0022");
        assert_eq!(Metric::SecondsPerEpoch.format_difference(-0.54), "-0.5");
        assert_eq!(Metric::SecondsPerEpoch.format_difference(-0.01), "0.0");
        assert_eq!(Metric::ValAccuracy.format_difference(0.0625), "+6.25 pp");
        assert_eq!(Metric::Parameters.format_difference(236_600.0), "+236,600");
        assert_eq!(Metric::Parameters.format_difference(f64::INFINITY), "-");
    }

    #[test]
    fn p_values_and_kinds() {
        let c = |p: Option<f64>| Comparison {
            difference: 0.0,
            pooled_std: None,
            effect_size: None,
            welch: p.map(|p| Welch { t: 1.0, df: 2.0, p }),
            paired: None,
            verdict: Verdict::Within,
            resolution: 0.0,
        };
        assert_eq!(c(Some(0.30436)).format_p(), "0.3044");
        // With a paired test, the p shown is the paired one (the verdict's); Welch's stays apart.
        let paired = Paired { seeds: 3, std: 0.1, t: 5.0, df: 2.0, p: 0.0377, ci_low: 0.1, ci_high: 0.5, detectable: 0.3 };
        let both = Comparison { paired: Some(paired), ..c(Some(0.2)) };
        assert_eq!((both.format_p().as_str(), both.format_welch_p().as_str()), ("0.0377", "0.2000"));
        assert_eq!(c(Some(5e-5)).format_p(), "<0.0001");
        assert_eq!(c(None).format_p(), "-");
        assert_eq!(serde_json::to_value(StudyKind::Ablation).unwrap(), "ablation");
        assert_eq!(StudyKind::Fusion.to_string(), "fusion");
        assert_eq!(serde_json::to_value(Verdict::NotEnoughSeeds).unwrap(), "not-enough-seeds");
    }

    #[test]
    fn infinite_t_statistics_survive_json() {
        // Two models whose parameter counts never vary across seeds: t is infinite. serde_json
        // wrote it as null and then refused to read the summary back (`cilp run` failed at its
        // last step, session 12).
        let c = Comparison {
            difference: 236_600.0,
            pooled_std: Some(0.0),
            effect_size: Some(f64::INFINITY),
            welch: Some(Welch { t: f64::INFINITY, df: 8.0, p: 0.0 }),
            paired: Some(Paired {
                seeds: 5,
                std: 0.0,
                t: f64::NEG_INFINITY,
                df: 4.0,
                p: 0.0,
                ci_low: 236_600.0,
                ci_high: 236_600.0,
                detectable: 0.0,
            }),
            verdict: Verdict::Larger,
            resolution: 0.0,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""t":"inf""#) && text.contains(r#""t":"-inf""#), "{text}");
        let back: Comparison = serde_json::from_str(&text).unwrap();
        assert_eq!(back.welch.unwrap().t, f64::INFINITY);
        assert_eq!(back.paired.unwrap().t, f64::NEG_INFINITY);
        assert!(back.effect_size.is_none(), "an infinite effect size reads back as none (null)");
        // What earlier summaries hold: null reads as NaN; a NaN round-trips as "NaN".
        let legacy = text.replace(r#""t":"inf""#, r#""t":null"#);
        assert!(serde_json::from_str::<Comparison>(&legacy).unwrap().welch.unwrap().t.is_nan());
        let nan = serde_json::to_string(&Welch { t: f64::NAN, df: 1.0, p: 1.0 }).unwrap();
        assert!(serde_json::from_str::<Welch>(&nan).unwrap().t.is_nan(), "{nan}");
        let bad = serde_json::from_str::<Welch>(r#"{"t":"big","df":1,"p":1}"#).unwrap_err().to_string();
        assert!(bad.contains("\"big\""), "{bad}");
    }
}
