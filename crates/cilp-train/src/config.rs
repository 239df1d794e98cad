//! The resolved configuration of a supervised training run. It is plain data: a run writes it
//! to `config.toml` before its first step, and `--resume`, `predict` and reports read it back.

use std::path::PathBuf;

use cilp_data::tensorize::XyzaConvention;
use serde::{Deserialize, Serialize};

/// How the dataset is split into training and validation samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SplitConfig {
    /// NVIDIA's per-class index split (indices [0, 9679) train, the rest validation).
    Nvidia,
    /// A seeded, per-class stratified split with this fraction held out for validation.
    Ratio { val_fraction: f64 },
}

/// Where the data comes from and how it is turned into model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset root holding one folder per class.
    pub dir: PathBuf,
    /// Load at most this many pairs per class (quick runs); `None` loads everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_per_class: Option<usize>,
    pub split: SplitConfig,
    /// Seed of the ratio split when it must not follow the run's `seed` (the studies keep one
    /// split for every seed and vary only initialisation and shuffling); `None`: the run's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Depth-to-XYZA convention for models that take XYZA input.
    pub xyza: XyzaConvention,
}

/// Everything that determines a supervised training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Name of a model in the zoo (`cilp models`).
    pub model: String,
    pub data: DataConfig,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seeds model initialisation, the per-epoch shuffling and (unless `data.split_seed` is set)
    /// the split.
    pub seed: u64,
    /// `cpu` or `wgpu`.
    pub device: String,
    /// Drop the last incomplete batch (NVIDIA's loaders do).
    pub drop_last: bool,
}

impl TrainConfig {
    /// Defaults of the seed implementation: Adam 1e-4, batch 32, seed 51, 80/20 split.
    pub fn new(model: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        TrainConfig {
            model: model.into(),
            data: DataConfig {
                dir: data_dir.into(),
                limit_per_class: None,
                split: SplitConfig::Ratio { val_fraction: 0.2 },
                split_seed: None,
                xyza: XyzaConvention::default(),
            },
            epochs: 5,
            batch_size: 32,
            lr: 1e-4,
            seed: cilp_data::split::DEFAULT_SEED,
            device: "cpu".into(),
            drop_last: false,
        }
    }

    /// Checks values that would make training meaningless.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("lr must be a positive number, got {}", self.lr));
        }
        if let SplitConfig::Ratio { val_fraction } = self.data.split {
            if !(val_fraction > 0.0 && val_fraction < 1.0) {
                return Err(format!("val_fraction must be in (0, 1), got {val_fraction}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_roundtrip_and_unknown_fields() {
        let mut c = TrainConfig::new("late-fusion", "data");
        c.data.limit_per_class = Some(10);
        let text = toml::to_string(&c).unwrap();
        let back: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        let bad = text.replace("epochs", "epochz");
        assert!(toml::from_str::<TrainConfig>(&bad).is_err());
        assert!(c.validate().is_ok());
        c.lr = f64::NAN;
        assert!(c.validate().unwrap_err().contains("lr"));
    }
}
