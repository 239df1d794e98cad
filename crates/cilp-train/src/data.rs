//! Loading and splitting the dataset a run's config names.

use cilp_data::dataset::{Dataset, LoadOptions};
use cilp_data::split::{nvidia_split, ratio_split};

use crate::config::{DataConfig, SplitConfig};
use crate::engine::PreparedData;
use crate::error::Result;

/// Loads the dataset and splits it as configured: the ratio split uses `cfg.split_seed` when
/// set, otherwise `seed` (the run's seed).
pub fn prepare(cfg: &DataConfig, seed: u64) -> Result<(PreparedData, cilp_data::dataset::LoadReport)> {
    let opts = LoadOptions { limit_per_class: cfg.limit_per_class, ..LoadOptions::default() };
    let (dataset, report) = Dataset::open(&cfg.dir, &opts)?;
    let split = match cfg.split {
        SplitConfig::Nvidia => nvidia_split(&dataset),
        SplitConfig::Ratio { val_fraction } => ratio_split(&dataset, val_fraction, cfg.split_seed.unwrap_or(seed)),
    };
    Ok((PreparedData { dataset, split }, report))
}
