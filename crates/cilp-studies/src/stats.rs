//! Seed statistics for the studies: mean and sample standard deviation over seeds, Welch's
//! t-test (with its own Student-t CDF) and the verdict rule that says whether a difference
//! between two models is larger than the seed-to-seed spread.
//!
//! ## The verdict rule
//!
//! For two sets of per-seed values `a` (baseline) and `b` (other), with means `ma`, `mb` and
//! sample standard deviations `sa`, `sb`:
//!
//! * difference `d = mb - ma`; pooled spread `sp = sqrt((sa^2 + sb^2) / 2)`;
//! * Welch's t statistic `t = d / sqrt(sa^2/na + sb^2/nb)` with Welch–Satterthwaite degrees of
//!   freedom, and its two-sided p-value;
//! * **"larger than seed spread"** when `p < 0.05` **and** `|d| > 2 sp`: the difference is both
//!   unlikely under "no difference" and large against the spread between seeds;
//!   otherwise **"within seed spread"**. With fewer than two seeds on either side there is no
//!   spread to compare against: **"n/a (one seed)"**.
//! * **Resolution.** A metric that moves in steps (validation accuracy moves by one sample,
//!   `1 / n_val`) cannot show a spread smaller than its step: three seeds that each miss the same
//!   one sample have a sample std of 0, yet that says nothing about how far apart two models are.
//!   So each side's std is taken as at least the metric's resolution, in the t-test and in the
//!   pooled spread ([`compare_resolved`]). Without the floor a one-sample accuracy difference
//!   between two zero-spread models gave t = inf and "larger". Continuous metrics use 0.
//!
//! With 3 seeds per model the test has little power (Welch df is at most 4, the two-sided 5%
//! critical t is 2.78 or more): "within seed spread" means "not shown to differ with these seeds",
//! not "equal". A difference between values that do not vary at all across seeds and have no
//! resolution floor (parameter counts) is "larger" as soon as it is non-zero.

/// The records these functions fill (plain data, shared with the study files of cilp-report).
pub use cilp_track::study::{Comparison, MetricSummary, Paired, Verdict, Welch};

/// Significance level of the verdict rule.
pub const ALPHA: f64 = 0.05;
/// The difference must also exceed this many pooled standard deviations.
pub const SPREAD_FACTOR: f64 = 2.0;

/// Arithmetic mean (NaN for no values).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (divisor n - 1); `None` for fewer than two values.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// A usable std floor: `resolution` when finite and positive, otherwise 0 (no floor).
fn std_floor(resolution: f64) -> f64 {
    if resolution.is_finite() && resolution > 0.0 { resolution } else { 0.0 }
}

/// Sample std taken as at least the metric's `resolution` (see the module docs); `None` for
/// fewer than two values.
fn floored_std(xs: &[f64], resolution: f64) -> Option<f64> {
    sample_std(xs).map(|s| s.max(std_floor(resolution)))
}

/// Mean +- sample std of one metric over seeds.
pub fn metric_summary(values: &[f64]) -> MetricSummary {
    MetricSummary { mean: mean(values), std: sample_std(values), n: values.len(), values: values.to_vec() }
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1].
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) { front * beta_cf(a, b, x) / a } else { 1.0 - front * beta_cf(b, a, 1.0 - x) / b }
}

/// Two-sided p-value of a Student t statistic with `df` (> 0, not necessarily an integer)
/// degrees of freedom: P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    inc_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Student t CDF P(T <= t).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let p = t_two_sided_p(t, df);
    if t >= 0.0 { 1.0 - p / 2.0 } else { p / 2.0 }
}

/// Welch's t-test; `None` with fewer than two values on either side.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    welch_floored(a, b, 0.0)
}

/// Welch's t-test with each side's sample std taken as at least `min_std` (see the module docs).
pub fn welch_floored(a: &[f64], b: &[f64], min_std: f64) -> Option<Welch> {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (floored_std(a, min_std)?.powi(2), floored_std(b, min_std)?.powi(2));
    let d = mean(b) - mean(a);
    let (qa, qb) = (va / na, vb / nb);
    let se2 = qa + qb;
    if se2 == 0.0 {
        let df = na + nb - 2.0;
        return Some(if d == 0.0 { Welch { t: 0.0, df, p: 1.0 } } else { Welch { t: d.signum() * f64::INFINITY, df, p: 0.0 } });
    }
    let t = d / se2.sqrt();
    let df = se2 * se2 / (qa * qa / (na - 1.0) + qb * qb / (nb - 1.0));
    Some(Welch { t, df, p: t_two_sided_p(t, df) })
}

/// The `q` quantile of Student's t with `df` degrees of freedom (bisection on [`t_cdf`]).
pub fn t_quantile(q: f64, df: f64) -> f64 {
    if !(q > 0.0 && q < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (-1e6, 1e6);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Paired t-test of `b` against `a`, value `i` of each from the same seed: the mean of the
/// per-seed differences over their standard error, the differences' std taken as at least
/// `resolution`. `None` with fewer than two pairs or unequal lengths.
pub fn paired(a: &[f64], b: &[f64], resolution: f64) -> Option<Paired> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = d.len() as f64;
    let std = floored_std(&d, std_floor(resolution))?;
    let m = mean(&d);
    let df = n - 1.0;
    let se = std / n.sqrt();
    let (t, p) = if se > 0.0 {
        let t = m / se;
        (t, t_two_sided_p(t, df))
    } else if m == 0.0 {
        (0.0, 1.0)
    } else {
        (m.signum() * f64::INFINITY, 0.0)
    };
    let half = t_quantile(1.0 - ALPHA / 2.0, df) * se;
    // Smallest detectable difference at 80% power: (t_{1-alpha/2} + t_{0.8}) * se.
    let detectable = (t_quantile(1.0 - ALPHA / 2.0, df) + t_quantile(POWER, df)) * se;
    Some(Paired { seeds: d.len(), std, t, df, p, ci_low: m - half, ci_high: m + half, detectable })
}

/// Power at which [`Paired::detectable`] is computed.
pub const POWER: f64 = 0.8;

/// Compares per-seed values `b` against the baseline `a` with the rule in the module docs, for
/// a continuous metric (no resolution floor), unpaired.
pub fn compare(a: &[f64], b: &[f64]) -> Comparison {
    compare_resolved(a, b, 0.0)
}

/// [`compare`] for a metric that moves in steps of `resolution`: each side's std is taken as at
/// least `resolution`, so a difference of a step or two between seeds that never vary is not
/// called larger than the seed spread.
pub fn compare_resolved(a: &[f64], b: &[f64], resolution: f64) -> Comparison {
    compare_with(a, b, resolution, false)
}

/// [`compare_resolved`] for values from the same seeds (`a[i]` and `b[i]` share seed `i`): the
/// verdict is the paired test's (p < [`ALPHA`], i.e. the 95% interval of the mean difference
/// excludes 0); Welch's test is kept for the record.
pub fn compare_paired(a: &[f64], b: &[f64], resolution: f64) -> Comparison {
    compare_with(a, b, resolution, true)
}

fn compare_with(a: &[f64], b: &[f64], resolution: f64, pair: bool) -> Comparison {
    let resolution = std_floor(resolution);
    let difference = mean(b) - mean(a);
    let pooled_std = match (floored_std(a, resolution), floored_std(b, resolution)) {
        (Some(sa), Some(sb)) => Some(((sa * sa + sb * sb) / 2.0).sqrt()),
        _ => None,
    };
    let effect_size = pooled_std.map(|sp| {
        if sp > 0.0 {
            difference.abs() / sp
        } else if difference == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    });
    let welch = welch_floored(a, b, resolution);
    let paired = if pair { paired(a, b, resolution) } else { None };
    let verdict = match (paired, welch, effect_size) {
        (Some(pr), _, _) if pr.p < ALPHA => Verdict::Larger,
        (Some(_), _, _) => Verdict::Within,
        (None, Some(w), Some(e)) if w.p < ALPHA && e > SPREAD_FACTOR => Verdict::Larger,
        (None, Some(_), Some(_)) => Verdict::Within,
        _ => Verdict::NotEnoughSeeds,
    };
    Comparison { difference, pooled_std, effect_size, welch, paired, verdict, resolution }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    /// Student-t quantiles as tables (and scipy.stats.t.ppf) give them.
    #[test]
    fn t_quantiles_match_the_tables() {
        close(t_quantile(0.975, 2.0), 4.302_652_7, 1e-6);
        close(t_quantile(0.975, 10.0), 2.228_138_9, 1e-6);
        close(t_quantile(0.8, 2.0), 1.060_660_2, 1e-6);
        close(t_quantile(0.5, 3.0), 0.0, 1e-6);
    }

    /// A planted difference: every seed of `b` is 0.05 worse than the same seed of `a`, while the
    /// seeds themselves spread by 0.05. Unpaired, the difference is within the seed spread;
    /// paired seed by seed it is not, and its 95% interval holds the planted 0.05.
    #[test]
    fn pairing_by_seed_finds_a_planted_difference_that_welch_misses() {
        let a = [0.30, 0.40, 0.35];
        let b = [0.351, 0.449, 0.402];
        let unpaired = compare_resolved(&a, &b, 0.0);
        assert_eq!(unpaired.verdict, Verdict::Within, "{unpaired:?}");
        let c = compare_paired(&a, &b, 0.0);
        assert_eq!(c.verdict, Verdict::Larger, "{c:?}");
        let p = c.paired.unwrap();
        assert_eq!((p.seeds, p.df), (3, 2.0));
        assert!(p.p < 0.01 && p.ci_low < 0.05 && 0.05 < p.ci_high && p.ci_low > 0.0, "{p:?}");
        assert!(p.detectable > 0.0 && p.detectable < 0.05, "{p:?}");
        // The same values with the seeds shuffled against each other carry no paired signal.
        let c = compare_paired(&a, &[0.449, 0.402, 0.351], 0.0);
        assert_eq!(c.verdict, Verdict::Within, "{c:?}");
        // Seeds that all agree exactly: a one-step accuracy difference stays within the spread.
        let c = compare_paired(&[0.9, 0.9, 0.9], &[0.905, 0.905, 0.905], 0.005);
        assert_eq!(c.verdict, Verdict::Within, "{c:?}");
    }

    #[test]
    fn mean_and_std() {
        close(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5, 1e-15);
        // Sum of squares 5, divisor 3.
        close(sample_std(&[1.0, 2.0, 3.0, 4.0]).unwrap(), (5.0f64 / 3.0).sqrt(), 1e-15);
        assert_eq!(sample_std(&[1.0]), None);
        assert!(mean(&[]).is_nan());
        let s = metric_summary(&[2.0, 4.0, 9.0]);
        close(s.mean, 5.0, 1e-15);
        close(s.std.unwrap(), 13f64.sqrt(), 1e-12); // (9 + 1 + 16) / 2 = 13
    }

    #[test]
    fn gamma_and_beta() {
        close(ln_gamma(1.0), 0.0, 1e-13);
        close(ln_gamma(5.0), 24f64.ln(), 1e-12);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12);
        // I_x(1, 1) = x; I_x(2, 1) = x^2; I_0.5(a, a) = 0.5.
        close(inc_beta(1.0, 1.0, 0.3), 0.3, 1e-12);
        close(inc_beta(2.0, 1.0, 0.6), 0.36, 1e-12);
        close(inc_beta(3.5, 3.5, 0.5), 0.5, 1e-12);
    }

    #[test]
    fn student_t_against_closed_forms_and_tables() {
        // df = 1 (Cauchy): P(|T| >= 1) = 1 - 2 atan(1) / pi = 0.5.
        close(t_two_sided_p(1.0, 1.0), 0.5, 1e-12);
        // df = 2: P(|T| >= t) = 1 - t / sqrt(2 + t^2); t = 2 -> 1 - 2/sqrt(6).
        close(t_two_sided_p(2.0, 2.0), 1.0 - 2.0 / 6f64.sqrt(), 1e-12);
        // Table critical values: two-sided 5% at df 4 is 2.776445, at df 10 is 2.228139.
        close(t_two_sided_p(2.776_445, 4.0), 0.05, 1e-6);
        close(t_two_sided_p(2.228_139, 10.0), 0.05, 1e-6);
        // One-sided 97.5% at df 4.
        close(t_cdf(2.776_445, 4.0), 0.975, 1e-6);
        close(t_cdf(-2.776_445, 4.0), 0.025, 1e-6);
        close(t_two_sided_p(0.0, 3.0), 1.0, 1e-12);
        assert_eq!(t_two_sided_p(f64::INFINITY, 3.0), 0.0);
    }

    #[test]
    fn welch_by_hand() {
        // a = 1,2,3, b = 4,5,6: d = 3, var 1 each, se = sqrt(2/3), t = 3.674235, df = 4
        // (equal variances and sizes give n1 + n2 - 2), p = 2 (1 - F_4(3.674235)) = 0.021311.
        let w = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        close(w.t, 3.0 / (2.0f64 / 3.0).sqrt(), 1e-12);
        close(w.df, 4.0, 1e-12);
        // df = 4: P(|T| >= t) = 1 - (t (t^2 + 6)) / (t^2 + 4)^{3/2} ... closed form for df = 4.
        let t = w.t;
        let x = t / (t * t + 4.0).sqrt();
        let exact = 1.0 - (1.5 * x - 0.5 * x * x * x);
        close(w.p, exact, 1e-10);
        close(w.p, 0.021_311, 1e-5);
        // Unequal variances: a = 1,2,3 (var 1), b = 10,20,30 (var 100), n = 3:
        // se^2 = 1/3 + 100/3 = 101/3; df = (101/3)^2 / ((1/9)/2 + (10000/9)/2) = 2.0398...
        let w = welch(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]).unwrap();
        close(w.t, 18.0 / (101.0f64 / 3.0).sqrt(), 1e-12);
        close(w.df, (101.0f64 / 3.0).powi(2) / (10001.0 / 18.0), 1e-12);
        assert!(welch(&[1.0], &[2.0, 3.0]).is_none());
        let w = welch(&[5.0, 5.0], &[5.0, 5.0]).unwrap();
        assert_eq!((w.t, w.p), (0.0, 1.0));
        let w = welch(&[5.0, 5.0], &[6.0, 6.0]).unwrap();
        assert_eq!(w.p, 0.0);
    }

    #[test]
    fn verdicts() {
        // Clear separation: p = 0.0213, effect 3 / 1 = 3 > 2.
        let c = compare(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(c.verdict, Verdict::Larger);
        close(c.difference, 3.0, 1e-12);
        close(c.pooled_std.unwrap(), 1.0, 1e-12);
        // Overlapping: d = 1, sd 1: p ~ 0.29.
        let c = compare(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]);
        assert_eq!(c.verdict, Verdict::Within);
        assert!(c.welch.unwrap().p > 0.2);
        // Deterministic values (parameter counts).
        assert_eq!(compare(&[7.0, 7.0], &[9.0, 9.0]).verdict, Verdict::Larger);
        assert_eq!(compare(&[7.0, 7.0], &[7.0, 7.0]).verdict, Verdict::Within);
        assert_eq!(compare(&[7.0], &[9.0]).verdict, Verdict::NotEnoughSeeds);
        assert_eq!(Verdict::Larger.as_str(), "larger than seed spread");
    }

    #[test]
    fn resolution_floor_for_stepped_metrics() {
        // 4,000 validation samples: every seed of `b` misses the same one sample, `a` none.
        let step = 1.0 / 4000.0;
        let a = [1.0, 1.0, 1.0];
        let one_miss = [1.0 - step; 3];
        // Without the floor: zero spread on both sides, t = inf, "larger".
        let raw = compare(&a, &one_miss);
        assert_eq!(raw.verdict, Verdict::Larger);
        assert!(raw.welch.unwrap().t.is_infinite());
        // With it: sd taken as one step each side, t = -step / sqrt(2 step^2 / 3) = -1.2247,
        // df = 4, p = 0.288, effect 1: within.
        let c = compare_resolved(&a, &one_miss, step);
        assert_eq!(c.verdict, Verdict::Within);
        close(c.welch.unwrap().t, -(1.5f64).sqrt(), 1e-9);
        close(c.welch.unwrap().df, 4.0, 1e-9);
        close(c.pooled_std.unwrap(), step, 1e-15);
        close(c.effect_size.unwrap(), 1.0, 1e-9);
        assert_eq!(c.resolution, step);
        // Four samples missed by every seed is a real, consistent difference: t = -4.90, p = 0.008.
        let c = compare_resolved(&a, &[1.0 - 4.0 * step; 3], step);
        assert_eq!(c.verdict, Verdict::Larger);
        assert!(c.welch.unwrap().p < 0.01);
        // A spread larger than the step is used as it is.
        let wide = [0.990, 0.995, 1.0];
        let sb = sample_std(&wide).unwrap();
        assert!(sb > step);
        close(compare_resolved(&a, &wide, step).pooled_std.unwrap(), ((step * step + sb * sb) / 2.0).sqrt(), 1e-15);
        // Two steps: t = 2.45, p = 0.07, within; three: t = 3.67, p = 0.021, effect 3, larger.
        assert_eq!(compare_resolved(&a, &[1.0 - 2.0 * step; 3], step).verdict, Verdict::Within);
        assert_eq!(compare_resolved(&a, &[1.0 - 3.0 * step; 3], step).verdict, Verdict::Larger);
        // Identical values stay within; a non-positive or NaN resolution means none.
        assert_eq!(compare_resolved(&a, &a, step).verdict, Verdict::Within);
        assert_eq!(compare_resolved(&a, &one_miss, f64::NAN).verdict, Verdict::Larger);
        assert_eq!(compare_resolved(&a, &one_miss, -1.0).resolution, 0.0);
    }
}
