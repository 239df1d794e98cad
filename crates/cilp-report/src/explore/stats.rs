//! The numbers of an exploration: counts, splits, formats and per-class RGB/LiDAR statistics
//! ([`compute_stats`]), and the gallery samples ([`gallery`]).

use std::path::PathBuf;

use cilp_data::dataset::{DEPTH_LEN, Dataset, LoadReport, NameList, RGBA_LEN};
use cilp_data::image::IMAGE_SIZE;
use cilp_data::split::{Split, nvidia_split, ratio_split};
use cilp_data::stats::{ClassStats, dataset_stats};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};
use crate::html::{self};
use crate::render;
use crate::svg;

use super::{ExploreOptions, observations};

/// Train/validation sizes of one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Human-readable description (`NVIDIA [0, 9679) / [9679, 9999) per class`, ...).
    pub name: String,
    pub train: usize,
    pub val: usize,
    /// `(train, val)` per class, in label order.
    pub per_class: Vec<(usize, usize)>,
}

/// Shape and element type of one array kind in the dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrayFormat {
    pub what: String,
    pub file: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    pub note: String,
}

/// A histogram: `counts.len()` equal bins spanning `[lo, hi]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<usize>,
}

/// One class: the data crate's [`ClassStats`] plus exploration extras.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassExplore {
    #[serde(flatten)]
    pub stats: ClassStats,
    /// Mean R, G, B over all pixels of the class, in `[0, 1]`.
    pub mean_pixel: [f64; 3],
    /// Fraction of pixels that are pure black (R = G = B = 0).
    pub black_fraction: f64,
    /// LiDAR hits per sample.
    pub hits_histogram: Histogram,
    /// Lit RGB pixels per sample.
    pub lit_histogram: Histogram,
    /// Hue (degrees) of each sample's mean lit colour.
    pub hue_histogram: Histogram,
    /// Samples whose mean lit colour is nearly grey/white (HSV saturation < 0.15).
    pub low_saturation: usize,
    /// Mean lit colours (0-255) of an evenly spaced subset of samples (for the scatter plot).
    pub colour_samples: Vec<[u8; 3]>,
    /// Sample files the reader found for this class and what it left unpaired or ignored.
    pub rgb_files: usize,
    pub lidar_files: usize,
    pub rgb_without_lidar: NameList,
    pub lidar_without_rgb: NameList,
    pub ignored_files: NameList,
    pub nested_dirs: Vec<PathBuf>,
}

/// Everything [`explore`] computed (written to `stats.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExploreStats {
    pub title: String,
    /// The dataset root as given.
    pub root: String,
    pub samples: usize,
    pub classes: Vec<ClassExplore>,
    pub splits: Vec<SplitSizes>,
    pub formats: Vec<ArrayFormat>,
    /// Unpaired files over all classes.
    pub unpaired_total: usize,
    /// The reader's warnings, verbatim.
    pub warnings: Vec<String>,
    /// Mean pixel value over all images and RGB channels, in `[0, 1]`.
    pub mean_pixel_value: f64,
    /// Fraction of all pixels that are pure black.
    pub black_fraction: f64,
    /// Written observations derived from the numbers above.
    pub observations: Vec<String>,
}

/// One gallery sample (written to `gallery.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryItem {
    pub class: String,
    pub stem: String,
    /// LiDAR returns of this sample.
    pub hits: usize,
    /// Lit RGB pixels of this sample.
    pub lit: usize,
    /// PNG data URIs: upscaled RGB, depth colour map, point-cloud rendering.
    pub rgb: String,
    pub depth: String,
    pub cloud: String,
}

/// Numbers of one sample.
#[derive(Clone, Copy)]
struct Per {
    hits: usize,
    lit: usize,
    black: usize,
    sum: [u64; 3],
    mean_lit: Option<[f64; 3]>,
}

fn per_sample(rgba: &[u8], depth: &[f32]) -> Per {
    let hits = cilp_data::stats::hit_count(depth);
    let (mut lit, mut black, mut sum, mut lit_sum) = (0, 0, [0u64; 3], [0u64; 3]);
    for p in rgba.chunks_exact(4) {
        for c in 0..3 {
            sum[c] += p[c] as u64;
        }
        if p[0] | p[1] | p[2] == 0 {
            black += 1;
        } else {
            lit += 1;
            for c in 0..3 {
                lit_sum[c] += p[c] as u64;
            }
        }
    }
    let mean_lit = (lit > 0).then(|| lit_sum.map(|s| s as f64 / lit as f64));
    Per { hits, lit, black, sum, mean_lit }
}

/// HSV of an RGB colour in 0-255: hue in degrees `[0, 360)`, saturation and value in `[0, 1]`.
pub fn hsv(rgb: [f64; 3]) -> (f64, f64, f64) {
    let [r, g, b] = rgb.map(|v| v / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d <= 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    (h % 360.0, if max > 0.0 { d / max } else { 0.0 }, max)
}

/// Round `v` up to a multiple of `step` (at least `step`).
fn round_up(v: f64, step: f64) -> f64 {
    ((v / step).ceil() * step).max(step)
}

fn split_sizes(name: String, ds: &Dataset, split: &Split) -> SplitSizes {
    let per_class = (0..ds.classes().len())
        .map(|c| {
            let r = ds.class_range(c);
            (split.train.iter().filter(|i| r.contains(i)).count(), split.val.iter().filter(|i| r.contains(i)).count())
        })
        .collect();
    SplitSizes { name, train: split.train.len(), val: split.val.len(), per_class }
}

/// Computes [`ExploreStats`] of an opened dataset.
pub fn compute_stats(ds: &Dataset, report: &LoadReport, opts: &ExploreOptions) -> Result<ExploreStats> {
    if !(0.0..=1.0).contains(&opts.val_fraction) {
        return Err(ReportError::Invalid(format!("val_fraction {} is not within [0, 1]", opts.val_fraction)));
    }
    let base = dataset_stats(ds);
    let per: Vec<Per> = (0..ds.len())
        .into_par_iter()
        .map(|i| {
            let s = ds.sample(i);
            per_sample(s.rgb, s.depth)
        })
        .collect();
    let hits_hi = round_up(per.iter().map(|p| p.hits).max().unwrap_or(0) as f64 + 1.0, 50.0);
    let lit_hi = round_up(per.iter().map(|p| p.lit).max().unwrap_or(0) as f64 + 1.0, 25.0);
    let pixels_per_image = (IMAGE_SIZE * IMAGE_SIZE) as f64;
    let mut classes = Vec::new();
    for (c, cs) in base.classes.into_iter().enumerate() {
        let p = &per[ds.class_range(c)];
        let n = p.len().max(1) as f64;
        let mut sum = [0u64; 3];
        for x in p {
            for (acc, v) in sum.iter_mut().zip(x.sum) {
                *acc += v;
            }
        }
        let hues: Vec<(f64, f64, f64)> = p.iter().filter_map(|x| x.mean_lit).map(hsv).collect();
        let step = (p.len() / opts.max_scatter_points.max(1)).max(1);
        let cr = report.classes.iter().find(|r| r.name == cs.name).cloned().unwrap_or_default();
        classes.push(ClassExplore {
            mean_pixel: sum.map(|s| s as f64 / (n * pixels_per_image * 255.0)),
            black_fraction: p.iter().map(|x| x.black).sum::<usize>() as f64 / (n * pixels_per_image),
            hits_histogram: Histogram { lo: 0.0, hi: hits_hi, counts: svg::bin_counts(p.iter().map(|x| x.hits as f64), 0.0, hits_hi, 25) },
            lit_histogram: Histogram { lo: 0.0, hi: lit_hi, counts: svg::bin_counts(p.iter().map(|x| x.lit as f64), 0.0, lit_hi, 25) },
            hue_histogram: Histogram { lo: 0.0, hi: 360.0, counts: svg::bin_counts(hues.iter().map(|h| h.0), 0.0, 360.0, 12) },
            low_saturation: hues.iter().filter(|h| h.1 < 0.15).count(),
            colour_samples: p
                .iter()
                .step_by(step)
                .filter_map(|x| x.mean_lit)
                .take(opts.max_scatter_points)
                .map(|c| c.map(|v| v.round().clamp(0.0, 255.0) as u8))
                .collect(),
            rgb_files: cr.rgb_files,
            lidar_files: cr.lidar_files,
            rgb_without_lidar: cr.rgb_without_lidar,
            lidar_without_rgb: cr.lidar_without_rgb,
            ignored_files: cr.ignored_files,
            nested_dirs: cr.nested_dirs,
            stats: cs,
        });
    }
    let total_pixels = (ds.len().max(1) as f64) * pixels_per_image;
    let mean_pixel_value = per.iter().map(|x| x.sum.iter().sum::<u64>()).sum::<u64>() as f64 / (total_pixels * 3.0 * 255.0);
    let black_fraction = per.iter().map(|x| x.black).sum::<usize>() as f64 / total_pixels;
    let nv = nvidia_split(ds);
    let rs = ratio_split(ds, opts.val_fraction, opts.seed);
    let splits = vec![
        split_sizes("NVIDIA (first 9679/9999 per class train)".into(), ds, &nv),
        split_sizes(
            format!("seeded {:.0}/{:.0} (seed {})", (1.0 - opts.val_fraction) * 100.0, opts.val_fraction * 100.0, opts.seed),
            ds,
            &rs,
        ),
    ];
    let formats = vec![
        ArrayFormat {
            what: "RGB image".into(),
            file: "{class}/rgb/NNNN.png".into(),
            shape: vec![IMAGE_SIZE, IMAGE_SIZE, RGBA_LEN / DEPTH_LEN],
            dtype: "uint8 (PNG, mode RGBA)".into(),
            note: "HWC; loaders scale to [0, 1] and transpose to [4, 64, 64]".into(),
        },
        ArrayFormat {
            what: "LiDAR depth".into(),
            file: "{class}/lidar/NNNN.npy".into(),
            shape: vec![IMAGE_SIZE, IMAGE_SIZE],
            dtype: "float32".into(),
            note: "metres; rows = azimuth, columns = zenith; >= 50.0 = no return".into(),
        },
        ArrayFormat {
            what: "beam angles".into(),
            file: "{class}/azimuth.npy, zenith.npy".into(),
            shape: vec![IMAGE_SIZE],
            dtype: "float32".into(),
            note: "radians, one pair per class folder".into(),
        },
    ];
    let mut stats = ExploreStats {
        title: opts.title.clone(),
        root: ds.root().display().to_string(),
        samples: ds.len(),
        classes,
        splits,
        formats,
        unpaired_total: report.total_unpaired(),
        warnings: report.warnings.clone(),
        mean_pixel_value,
        black_fraction,
        observations: Vec::new(),
    };
    stats.observations = observations(&stats);
    Ok(stats)
}

/// Gallery samples: `per_class` evenly spaced samples of each class, rendered.
pub fn gallery(ds: &Dataset, per_class: usize, scale: usize) -> Vec<GalleryItem> {
    let mut picks = Vec::new();
    for c in 0..ds.classes().len() {
        let r = ds.class_range(c);
        let k = per_class.min(r.len());
        for j in 0..k {
            picks.push(r.start + j * r.len() / k);
        }
    }
    picks
        .into_par_iter()
        .map(|i| {
            let s = ds.sample(i);
            let (az, ze) = ds.angles(s.class);
            let [rgb, depth, cloud] = render::sample_pngs(s.rgb, s.depth, az, ze, scale);
            GalleryItem {
                class: ds.classes()[s.class].clone(),
                stem: s.stem.to_owned(),
                hits: cilp_data::stats::hit_count(s.depth),
                lit: cilp_data::stats::lit_count(s.rgb),
                rgb: html::data_uri("image/png", &rgb),
                depth: html::data_uri("image/png", &depth),
                cloud: html::data_uri("image/png", &cloud),
            }
        })
        .collect()
}
