//! FiftyOne export: the dataset as files FiftyOne (and any PCD reader) can load.
//!
//! [`export_fiftyone`] writes into `out`:
//!
//! | path | content |
//! |---|---|
//! | `rgb/<class>/<stem>.png` | the original RGB PNG, copied byte for byte |
//! | `lidar/<class>/<stem>.pcd` | the LiDAR hit points (`d < 50`) as PCD v0.7, fields `x y z intensity` (metres; intensity = range), see [`crate::pcd`] |
//! | `samples.json` | manifest: `name`, `classes`, `split`, `convention`, `pcd_fields`, and `samples`: `{id, class, label, stem, split, nvidia_split, ratio_split, rgb, lidar, points, lit_pixels}` (paths relative to `out`) |
//! | `samples.csv` | the same sample rows as CSV |
//! | `load_fiftyone.py` | builds a grouped FiftyOne dataset (slices `rgb` and `lidar`, `fo.Classification` labels, split tags) |
//!
//! Point coordinates follow the chosen [`XyzaConvention`] (default `spherical`: true metres in
//! the sensor frame, x right, y forward, z up); with `seed` they are divided by 50 as the seed
//! implementation's model input.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cilp_data::dataset::{Dataset, LoadOptions};
use cilp_data::split::{DEFAULT_SEED, nvidia_split, ratio_split};
use cilp_data::tensorize::XyzaConvention;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result, create_dir, write_file};
use crate::pcd::{FIELDS, PcdEncoding, write_pcd};
use crate::render::hit_points;

/// The loader script written next to the manifest.
pub const LOAD_SCRIPT: &str = include_str!("load_fiftyone.py");

/// Which split becomes the `train` / `val` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitChoice {
    /// NVIDIA's per-class index split.
    Nvidia,
    /// The seeded ratio split ([`ExportOptions::val_fraction`], [`ExportOptions::seed`]).
    #[default]
    Ratio,
}

/// Options of [`export_fiftyone`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportOptions {
    pub load: LoadOptions,
    /// Dataset name used by `load_fiftyone.py`.
    pub name: String,
    pub split: SplitChoice,
    pub val_fraction: f64,
    pub seed: u64,
    /// Coordinates of the PCD points.
    pub convention: XyzaConvention,
    pub encoding: PcdEncoding,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            load: LoadOptions::default(),
            name: "cilp-cubes-spheres".into(),
            split: SplitChoice::Ratio,
            val_fraction: 0.2,
            seed: DEFAULT_SEED,
            convention: XyzaConvention::Spherical,
            encoding: PcdEncoding::Ascii,
        }
    }
}

/// One exported sample (a row of the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedSample {
    pub id: String,
    pub class: String,
    pub label: usize,
    pub stem: String,
    /// `train` or `val` in the chosen split.
    pub split: String,
    pub nvidia_split: String,
    pub ratio_split: String,
    /// Paths relative to the export directory (always with `/`).
    pub rgb: String,
    pub lidar: String,
    /// Points in the PCD file (LiDAR returns).
    pub points: usize,
    pub lit_pixels: usize,
}

/// The manifest `samples.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub classes: Vec<String>,
    pub split: SplitChoice,
    pub val_fraction: f64,
    pub seed: u64,
    pub convention: XyzaConvention,
    pub pcd_fields: Vec<String>,
    pub samples: Vec<ExportedSample>,
}

/// What [`export_fiftyone`] wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub out: PathBuf,
    pub samples: usize,
    pub points: usize,
    pub train: usize,
    pub val: usize,
    pub files: usize,
    pub manifest: PathBuf,
    pub script: PathBuf,
}

use cilp_track::metrics::csv_field;

/// Exports the dataset at `data` into `out` (see the module docs).
pub fn export_fiftyone(data: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportSummary> {
    if !(0.0..=1.0).contains(&opts.val_fraction) {
        return Err(ReportError::Invalid(format!("val_fraction {} is not within [0, 1]", opts.val_fraction)));
    }
    let (ds, _report) = Dataset::open(data, &opts.load)?;
    let tag = |set: &[usize]| {
        let mut v = vec!["train"; ds.len()];
        for &i in set {
            v[i] = "val";
        }
        v
    };
    let nv = tag(&nvidia_split(&ds).val);
    let rs = tag(&ratio_split(&ds, opts.val_fraction, opts.seed).val);
    for class in ds.classes() {
        create_dir(&out.join("rgb").join(class))?;
        create_dir(&out.join("lidar").join(class))?;
    }
    let samples: Vec<ExportedSample> =
        (0..ds.len()).into_par_iter().map(|i| export_one(&ds, i, out, opts, nv[i], rs[i])).collect::<Result<_>>()?;
    let manifest = Manifest {
        name: opts.name.clone(),
        classes: ds.classes().to_vec(),
        split: opts.split,
        val_fraction: opts.val_fraction,
        seed: opts.seed,
        convention: opts.convention,
        pcd_fields: FIELDS.iter().map(|s| s.to_string()).collect(),
        samples,
    };
    let manifest_path = out.join("samples.json");
    write_file(&manifest_path, serde_json::to_string_pretty(&manifest).expect("manifest serialises"))?;
    let mut csv = String::from("id,class,label,stem,split,nvidia_split,ratio_split,rgb,lidar,points,lit_pixels\n");
    for s in &manifest.samples {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.id),
            csv_field(&s.class),
            s.label,
            csv_field(&s.stem),
            s.split,
            s.nvidia_split,
            s.ratio_split,
            csv_field(&s.rgb),
            csv_field(&s.lidar),
            s.points,
            s.lit_pixels
        );
    }
    write_file(&out.join("samples.csv"), csv)?;
    let script = out.join("load_fiftyone.py");
    write_file(&script, LOAD_SCRIPT)?;
    let val = manifest.samples.iter().filter(|s| s.split == "val").count();
    Ok(ExportSummary {
        out: out.to_owned(),
        samples: manifest.samples.len(),
        points: manifest.samples.iter().map(|s| s.points).sum(),
        train: manifest.samples.len() - val,
        val,
        files: manifest.samples.len() * 2 + 3,
        manifest: manifest_path,
        script,
    })
}

fn export_one(ds: &Dataset, i: usize, out: &Path, opts: &ExportOptions, nv: &str, rs: &str) -> Result<ExportedSample> {
    let s = ds.sample(i);
    let class = &ds.classes()[s.class];
    let rgb_rel = format!("rgb/{class}/{}.png", s.stem);
    let lidar_rel = format!("lidar/{class}/{}.pcd", s.stem);
    // Copy the original PNG when it is where the reader found it; otherwise re-encode the
    // decoded pixels (identical image).
    let src = ds.root().join(class).join("rgb").join(format!("{}.png", s.stem));
    let dst = out.join(&rgb_rel);
    if src.is_file() {
        std::fs::copy(&src, &dst).map_err(|e| ReportError::io(&src, "copy", e))?;
    } else {
        write_file(&dst, cilp_data::image::encode_rgba_png(64, 64, s.rgb))?;
    }
    let (az, ze) = ds.angles(s.class);
    let mut pts = hit_points(s.depth, az, ze, opts.convention);
    if opts.convention == XyzaConvention::Seed {
        // hit_points scales seed coordinates back to metres; the export keeps the model's units.
        for p in &mut pts {
            for v in &mut p[..3] {
                *v /= cilp_data::dataset::NO_RETURN;
            }
        }
    }
    write_file(&out.join(&lidar_rel), write_pcd(&pts, opts.encoding))?;
    let chosen = match opts.split {
        SplitChoice::Nvidia => nv,
        SplitChoice::Ratio => rs,
    };
    Ok(ExportedSample {
        id: format!("{class}/{}", s.stem),
        class: class.clone(),
        label: s.class,
        stem: s.stem.to_owned(),
        split: chosen.to_owned(),
        nvidia_split: nv.to_owned(),
        ratio_split: rs.to_owned(),
        rgb: rgb_rel,
        lidar: lidar_rel,
        points: pts.len(),
        lit_pixels: cilp_data::stats::lit_count(s.rgb),
    })
}
