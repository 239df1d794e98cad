//! Learning-rate schedules, evaluated per optimiser step.

use serde::{Deserialize, Serialize};

/// Share of a warm-up schedule's steps spent warming up.
pub const WARMUP_FRACTION: f64 = 0.1;

/// How the learning rate moves over a run's optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The base rate at every step.
    #[default]
    Constant,
    /// Linear warm-up over the first [`WARMUP_FRACTION`] of the steps (from `base / w` up to
    /// `base` at step `w`), then a half cosine from `base` down towards 0 at the last step,
    /// recomputed every step.
    WarmupCosine,
}

impl LrSchedule {
    /// The learning rate of step `step` (0-based) of `total` steps at base rate `base`.
    pub fn lr(self, base: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::WarmupCosine => {
                let total = total.max(1);
                let warmup = ((total as f64 * WARMUP_FRACTION).round() as usize).max(1).min(total);
                if step < warmup {
                    return base * (step + 1) as f64 / warmup as f64;
                }
                // Steps after the warm-up run from progress 0 (base) to just before 1 (near 0).
                let rest = (total - warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / rest).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_the_base_rate() {
        assert_eq!(LrSchedule::Constant.lr(1e-3, 0, 10), 1e-3);
        assert_eq!(LrSchedule::Constant.lr(1e-3, 9, 10), 1e-3);
    }

    #[test]
    fn warmup_cosine_rises_then_decays_towards_zero() {
        let s = LrSchedule::WarmupCosine;
        let total = 100;
        let lrs: Vec<f64> = (0..total).map(|t| s.lr(1.0, t, total)).collect();
        // 10 warm-up steps: 0.1, 0.2, ..., 1.0.
        for (t, lr) in lrs.iter().take(10).enumerate() {
            assert!((lr - (t + 1) as f64 / 10.0).abs() < 1e-12, "step {t}: {lr}");
        }
        // Then non-increasing from the base rate, halfway down at the middle of the decay.
        assert!(lrs[10..].windows(2).all(|w| w[1] <= w[0]), "{lrs:?}");
        assert!((lrs[10] - 1.0).abs() < 1e-12);
        assert!((lrs[10 + 45] - 0.5).abs() < 1e-12, "{}", lrs[55]);
        // The last step is small but still moves the weights.
        assert!(lrs[99] > 0.0 && lrs[99] < 0.002, "{}", lrs[99]);
        // Never above the base rate.
        assert!(lrs.iter().all(|&l| l > 0.0 && l <= 1.0));
    }

    #[test]
    fn warmup_cosine_handles_tiny_runs() {
        let s = LrSchedule::WarmupCosine;
        assert_eq!(s.lr(1.0, 0, 1), 1.0);
        let two: Vec<f64> = (0..2).map(|t| s.lr(1.0, t, 2)).collect();
        assert!(two.iter().all(|l| l.is_finite() && *l > 0.0), "{two:?}");
    }

    #[test]
    fn serialises_as_kebab_case() {
        #[derive(Serialize, Deserialize)]
        struct W {
            s: LrSchedule,
        }
        assert_eq!(toml::to_string(&W { s: LrSchedule::WarmupCosine }).unwrap().trim(), "s = \"warmup-cosine\"");
        assert_eq!(toml::from_str::<W>("s = \"constant\"").unwrap().s, LrSchedule::Constant);
    }
}
