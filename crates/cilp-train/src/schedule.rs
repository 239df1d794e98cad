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
    /// PyTorch's `CosineAnnealingLR(T_max = epochs, eta_min = 0)` stepped once per epoch, as the
    /// original study's notebooks used it: epoch `e` (0-based) runs at
    /// `base * (1 + cos(pi * e / epochs)) / 2`.
    Cosine,
}

impl LrSchedule {
    /// The schedule's name as configs and flags spell it (`constant`, `warmup-cosine`, `cosine`).
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::WarmupCosine => "warmup-cosine",
            LrSchedule::Cosine => "cosine",
        }
    }

    /// True for [`LrSchedule::Constant`] (configs leave the default out).
    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// The learning rate of step `step` (0-based) of `total` steps at base rate `base`, with
    /// `steps_per_epoch` steps in each epoch.
    pub fn lr(self, base: f64, step: usize, steps_per_epoch: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let per = steps_per_epoch.max(1);
                let epochs = total.div_ceil(per).max(1);
                let epoch = (step / per).min(epochs - 1);
                base * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs as f64).cos())
            }
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
    fn names_are_the_serde_names() {
        for s in [LrSchedule::Constant, LrSchedule::WarmupCosine, LrSchedule::Cosine] {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
    }

    #[test]
    fn constant_is_the_base_rate() {
        assert_eq!(LrSchedule::Constant.lr(1e-3, 0, 5, 10), 1e-3);
        assert_eq!(LrSchedule::Constant.lr(1e-3, 9, 5, 10), 1e-3);
    }

    /// The rates PyTorch's `CosineAnnealingLR(opt, T_max=4)` gives epochs 0..4 at lr 1.0 when
    /// `scheduler.step()` follows each epoch: 1.0, 0.8536, 0.5, 0.1464.
    #[test]
    fn cosine_steps_once_per_epoch_like_pytorch() {
        let s = LrSchedule::Cosine;
        let per_epoch: Vec<f64> = (0..4).map(|e| s.lr(1.0, e * 3, 3, 12)).collect();
        let torch = [1.0, 0.853_553_390_593_273_8, 0.5, 0.146_446_609_406_726_3];
        for (a, b) in per_epoch.iter().zip(torch) {
            assert!((a - b).abs() < 1e-12, "{per_epoch:?}");
        }
        // Every step of an epoch has the epoch's rate.
        assert_eq!(s.lr(1.0, 4, 3, 12), s.lr(1.0, 5, 3, 12));
    }

    #[test]
    fn warmup_cosine_rises_then_decays_towards_zero() {
        let s = LrSchedule::WarmupCosine;
        let total = 100;
        let lrs: Vec<f64> = (0..total).map(|t| s.lr(1.0, t, 10, total)).collect();
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
        assert_eq!(s.lr(1.0, 0, 1, 1), 1.0);
        let two: Vec<f64> = (0..2).map(|t| s.lr(1.0, t, 1, 2)).collect();
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
