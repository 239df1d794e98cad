//! The resolved configuration of a supervised training run. It is plain data: a run writes it
//! to `config.toml` before its first step, and `--resume`, `predict` and reports read it back.

use std::path::PathBuf;

use cilp_data::tensorize::XyzaConvention;
use serde::{Deserialize, Serialize};

use crate::schedule::LrSchedule;

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
    /// Adam learning rate (the base rate of `lr_schedule`).
    pub lr: f64,
    /// How the rate moves over the run (left out of `config.toml` when constant).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// Seeds model initialisation, the per-epoch shuffling and (unless `data.split_seed` is set)
    /// the split.
    pub seed: u64,
    pub device: crate::device::DeviceSpec,
    /// Drop the last incomplete batch (NVIDIA's loaders do).
    pub drop_last: bool,
    /// Weights the model starts from instead of its seeded initialisation (`cilp train
    /// --init FILE`: a `.safetensors` export or a PyTorch `.pt` with the model's PyTorch
    /// names). The engine reads it through [`crate::RunOptions::init_loader`]; it knows no
    /// file format. Left out of `config.toml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Adam's epsilon when it is not burn's 1e-5 (`--adam-epsilon`; PyTorch's default is 1e-8;
    /// the seed assessment's stages use it). Left out of `config.toml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_epsilon: Option<f64>,
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
            lr_schedule: LrSchedule::Constant,
            seed: cilp_data::split::DEFAULT_SEED,
            device: crate::device::DeviceSpec::Cpu,
            drop_last: false,
            init: None,
            adam_epsilon: None,
        }
    }

    /// Checks values that would make training meaningless.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(e) = self.adam_epsilon
            && !(e.is_finite() && e > 0.0)
        {
            return Err(format!("adam_epsilon must be a positive number, got {e}"));
        }
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("lr must be a positive number, got {}", self.lr));
        }
        if let SplitConfig::Ratio { val_fraction } = self.data.split
            && !(val_fraction > 0.0 && val_fraction < 1.0)
        {
            return Err(format!("val_fraction must be in (0, 1), got {val_fraction}"));
        }
        Ok(())
    }
}

/// A setting that `--resume` may change, and its old and new values (see
/// [`TrainConfig::resume_changes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeChange {
    /// The config field, e.g. `epochs`.
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for ResumeChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.field, self.from, self.to)
    }
}

impl TrainConfig {
    /// What resuming a run saved with `self` under `new` changes.
    ///
    /// Allowed (and then recorded in the run's config): `epochs` (more, or as many as are already
    /// done), `lr` (Adam's moments are kept; the new rate applies from the next step),
    /// `data.dir` (a moved dataset) and `device`. Any other difference is refused, naming the
    /// field: it would make the run a different experiment (start a new run instead).
    /// `done_epochs` is the last committed epoch.
    pub fn resume_changes(&self, new: &TrainConfig, done_epochs: usize) -> Result<Vec<ResumeChange>, String> {
        let mut fixed = new.clone();
        let mut changes = Vec::new();
        let mut note = |field: &'static str, from: String, to: String| {
            if from != to {
                changes.push(ResumeChange { field, from, to });
            }
        };
        if new.epochs < done_epochs {
            return Err(format!(
                "epochs {} is fewer than the {done_epochs} this run has already trained (a resumed run can only go on)",
                new.epochs
            ));
        }
        note("epochs", self.epochs.to_string(), new.epochs.to_string());
        note("lr", self.lr.to_string(), new.lr.to_string());
        note("data.dir", self.data.dir.display().to_string(), new.data.dir.display().to_string());
        note("device", self.device.to_string(), new.device.to_string());
        fixed.epochs = self.epochs;
        fixed.lr = self.lr;
        fixed.data.dir = self.data.dir.clone();
        fixed.device = self.device;
        if fixed != *self {
            let a = toml::Value::try_from(self).map_err(|e| e.to_string())?;
            let b = toml::Value::try_from(&fixed).map_err(|e| e.to_string())?;
            let diffs: Vec<String> =
                diff_fields("", &a, &b).into_iter().map(|(field, d)| format!("{} ({field}: {d})", flag_of(&field))).collect();
            return Err(format!(
                "{} cannot change when a run is resumed (only epochs, lr, data.dir and device can); \
                 start a new run (another --name, or --force) to change it",
                diffs.join(", ")
            ));
        }
        Ok(changes)
    }
}

/// The command-line flag that sets a config field (`data.split.val_fraction` -> `--val-fraction`).
fn flag_of(field: &str) -> String {
    match field {
        "data.split.kind" => "--split".into(),
        "data.dir" => "--data".into(),
        f => format!("--{}", f.rsplit('.').next().unwrap_or(f).replace('_', "-")),
    }
}

/// The dotted names of the fields that differ between two TOML values, with both values.
fn diff_fields(prefix: &str, a: &toml::Value, b: &toml::Value) -> Vec<(String, String)> {
    match (a, b) {
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => diff_fields(&name, u, v),
                        (u, v) => vec![(name, format!("saved {}, given {}", show(u), show(v)))],
                    }
                })
                .collect()
        }
        _ if a == b => vec![],
        _ => vec![(prefix.to_owned(), format!("saved {a}, given {b}"))],
    }
}

fn show(v: Option<&toml::Value>) -> String {
    v.map_or_else(|| "unset".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_may_change_epochs_lr_data_dir_and_device_only() {
        let saved = TrainConfig::new("late-fusion", "data");
        let mut new = saved.clone();
        assert_eq!(saved.resume_changes(&new, 3).unwrap(), vec![]);
        new.epochs = 9;
        new.lr = 1e-5;
        new.data.dir = "/moved/data".into();
        let ch = saved.resume_changes(&new, 3).unwrap();
        let fields: Vec<&str> = ch.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["epochs", "lr", "data.dir"]);
        assert_eq!(ch[1].to_string(), "lr 0.0001 -> 0.00001");
        new.epochs = 2;
        assert!(saved.resume_changes(&new, 3).unwrap_err().contains("fewer than the 3"));
        new.epochs = 9;
        new.batch_size = 64;
        new.data.split = SplitConfig::Ratio { val_fraction: 0.3 };
        let e = saved.resume_changes(&new, 3).unwrap_err();
        assert!(e.contains("--batch-size (batch_size: saved 32, given 64)"), "{e}");
        assert!(e.contains("--val-fraction (data.split.val_fraction: saved 0.2, given 0.3)"), "{e}");
        new.data.split = SplitConfig::Nvidia;
        let e = saved.resume_changes(&new, 3).unwrap_err();
        assert!(e.contains("--split (data.split.kind: saved \"ratio\", given \"nvidia\")"), "{e}");
        let mut other = saved.clone();
        other.data.limit_per_class = Some(5);
        let e = saved.resume_changes(&other, 0).unwrap_err();
        assert!(e.contains("--limit-per-class (data.limit_per_class: saved unset, given 5)"), "{e}");
    }

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
