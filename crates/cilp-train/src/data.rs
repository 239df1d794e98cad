//! Loading and splitting the dataset a run's config names.

use cilp_data::dataset::{Dataset, LoadOptions};
use cilp_data::split::{Split, nvidia_split, ratio_split};

use crate::config::{DataConfig, SplitConfig};
use crate::error::{Result, TrainError};

/// The number of classes cilp's classifiers are built for (their heads have two outputs).
pub const TRAINABLE_CLASSES: usize = 2;

/// Data loaded once and shared by several runs (a study trains many models on one dataset).
pub struct PreparedData {
    pub dataset: Dataset,
    pub split: Split,
}

/// Loads the dataset and splits it as configured: the ratio split uses `cfg.split_seed` when
/// set, otherwise `seed` (the run's seed).
pub fn prepare(cfg: &DataConfig, seed: u64) -> Result<(PreparedData, cilp_data::dataset::LoadReport)> {
    let opts = LoadOptions { limit_per_class: cfg.limit_per_class, ..LoadOptions::default() };
    let (dataset, report) = Dataset::open(&cfg.dir, &opts)?;
    if dataset.classes().len() > TRAINABLE_CLASSES {
        // The models' heads have two outputs: a third label would index past them (a panic
        // inside burn). Supporting N classes would need N-output heads throughout.
        let extra: Vec<String> = dataset.classes()[TRAINABLE_CLASSES..].iter().map(|c| cfg.dir.join(c).display().to_string()).collect();
        return Err(TrainError::Config(format!(
            "{}: {} class folders found ({}), but cilp's models classify exactly {TRAINABLE_CLASSES} ({} and {}); \
             move the extra class folder{} out of the dataset: {}",
            cfg.dir.display(),
            dataset.classes().len(),
            dataset.classes().join(", "),
            dataset.classes()[0],
            dataset.classes()[1],
            if extra.len() > 1 { "s" } else { "" },
            extra.join(", ")
        )));
    }
    let split = match cfg.split {
        SplitConfig::Nvidia => nvidia_split(&dataset),
        SplitConfig::Ratio { val_fraction } => ratio_split(&dataset, val_fraction, cfg.split_seed.unwrap_or(seed)),
    };
    if split.train.is_empty() || split.val.is_empty() {
        let how = match cfg.split {
            SplitConfig::Nvidia => "the NVIDIA index split".to_owned(),
            SplitConfig::Ratio { val_fraction } => format!("--val-fraction {val_fraction}"),
        };
        return Err(TrainError::Config(format!(
            "{how} leaves {} training and {} validation samples of the {} pairs in {}; both need at least one \
             (choose a validation fraction that leaves samples on both sides, or load more pairs)",
            split.train.len(),
            split.val.len(),
            dataset.len(),
            cfg.dir.display()
        )));
    }
    Ok((PreparedData { dataset, split }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(dir: &std::path::Path, per_class: usize) -> std::path::PathBuf {
        let out = dir.join("data");
        let mut opts = cilp_synth::GenerateOptions::preset("default").unwrap();
        opts.per_class = per_class;
        cilp_synth::generate(&out, &opts).unwrap();
        out
    }

    fn cfg(dir: &std::path::Path, val_fraction: f64) -> DataConfig {
        DataConfig {
            dir: dir.to_path_buf(),
            limit_per_class: None,
            split: SplitConfig::Ratio { val_fraction },
            split_seed: None,
            xyza: Default::default(),
        }
    }

    #[test]
    fn a_split_with_an_empty_side_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = dataset(tmp.path(), 4);
        let (ok, _) = prepare(&cfg(&data, 0.25), 1).unwrap();
        assert!(!ok.split.train.is_empty() && !ok.split.val.is_empty());
        // 0.001 of 8 pairs rounds to no validation samples (the run used to end with val loss
        // NaN and no best.bpk); 0.999 to no training samples.
        for (f, side) in [(0.001, "0 validation"), (0.999, "0 training")] {
            let e = prepare(&cfg(&data, f), 1).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(&format!("--val-fraction {f}")) && e.contains(side) && e.contains("at least one"), "{e}");
        }
    }

    #[test]
    fn a_third_class_folder_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let data = dataset(tmp.path(), 2);
        // A third class: a copy of cubes/ under another name.
        let extra = data.join("cones");
        for sub in ["rgb", "lidar"] {
            std::fs::create_dir_all(extra.join(sub)).unwrap();
            for e in std::fs::read_dir(data.join("cubes").join(sub)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), extra.join(sub).join(e.file_name())).unwrap();
            }
        }
        for f in ["azimuth.npy", "zenith.npy"] {
            if data.join("cubes").join(f).is_file() {
                std::fs::copy(data.join("cubes").join(f), extra.join(f)).unwrap();
            }
        }
        let e = prepare(&cfg(&data, 0.5), 1).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("3 class folders") && e.contains(&extra.display().to_string()) && e.contains("exactly 2"), "{e}");
    }
}
