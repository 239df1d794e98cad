//! Dataset exploration (what users of the original looked at in FiftyOne and their notebooks):
//! counts, splits, formats, unpaired files, LiDAR and RGB statistics, charts, a gallery of RGB |
//! LiDAR depth | LiDAR point cloud per sample, and written observations.
//!
//! [`explore`] writes into its output directory:
//!
//! | file | content |
//! |---|---|
//! | `stats.json` | [`ExploreStats`] (everything on the page except the gallery images) |
//! | `gallery.json` | [`GalleryItem`]s: class, stem and the three images as PNG data URIs |
//! | `index.html` | one self-contained page (inline CSS, inline SVG charts, images as data URIs) |
//!
//! The code: [`stats`] computes the numbers, [`observations`] words them, [`page`] renders them.

use std::path::{Path, PathBuf};

use cilp_data::dataset::{Dataset, LoadOptions};
use cilp_data::split::DEFAULT_SEED;
use serde::{Deserialize, Serialize};

use crate::error::{Result, create_dir, write_file};

mod observations;
mod page;
mod stats;

pub use self::observations::observations;
pub use self::page::{render_gallery, render_page, render_sections};
pub use self::stats::{ArrayFormat, ClassExplore, ExploreStats, GalleryItem, Histogram, SplitSizes, compute_stats, gallery, hsv};

/// File names written by [`explore`].
pub const STATS_JSON: &str = "stats.json";

/// See [`STATS_JSON`].
pub const GALLERY_JSON: &str = "gallery.json";

/// See [`STATS_JSON`].
pub const INDEX_HTML: &str = "index.html";

/// Options of [`explore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExploreOptions {
    /// How the dataset is read (classes, per-class limit).
    pub load: LoadOptions,
    /// Gallery samples per class, evenly spaced through the class (0 = no gallery).
    pub gallery_per_class: usize,
    /// Nearest-neighbour upscale factor of the 64x64 gallery images.
    pub scale: usize,
    /// Validation fraction of the seeded ratio split.
    pub val_fraction: f64,
    /// Seed of the ratio split.
    pub seed: u64,
    /// Page title.
    pub title: String,
    /// At most this many samples per class in the colour scatter plot.
    pub max_scatter_points: usize,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            load: LoadOptions::default(),
            gallery_per_class: 4,
            scale: 4,
            val_fraction: 0.2,
            seed: DEFAULT_SEED,
            title: "cilp dataset exploration".into(),
            max_scatter_points: 400,
        }
    }
}

/// What [`explore`] produced.
#[derive(Debug, Clone)]
pub struct ExploreSummary {
    pub stats: ExploreStats,
    pub gallery: Vec<GalleryItem>,
    pub stats_json: PathBuf,
    pub gallery_json: PathBuf,
    pub index_html: PathBuf,
}

/// Opens the dataset at `data`, computes statistics and the gallery, and writes `stats.json`,
/// `gallery.json` and `index.html` into `out` (created if needed).
pub fn explore(data: &Path, out: &Path, opts: &ExploreOptions) -> Result<ExploreSummary> {
    let (ds, report) = Dataset::open(data, &opts.load)?;
    let stats = compute_stats(&ds, &report, opts)?;
    let gallery = gallery(&ds, opts.gallery_per_class, opts.scale);
    create_dir(out)?;
    let stats_json = out.join(STATS_JSON);
    let gallery_json = out.join(GALLERY_JSON);
    let index_html = out.join(INDEX_HTML);
    write_file(&stats_json, serde_json::to_string_pretty(&stats).expect("stats serialise"))?;
    write_file(&gallery_json, serde_json::to_string(&gallery).expect("gallery serialises"))?;
    write_file(&index_html, render_page(&stats, &gallery))?;
    Ok(ExploreSummary { stats, gallery, stats_json, gallery_json, index_html })
}

/// Reads `stats.json` (and `gallery.json` if present) written by [`explore`].
pub fn read_explore_dir(dir: &Path) -> Result<(ExploreStats, Vec<GalleryItem>)> {
    let stats: ExploreStats = crate::error::read_json(&dir.join(STATS_JSON))?;
    let g = dir.join(GALLERY_JSON);
    let gallery = if g.is_file() { crate::error::read_json(&g)? } else { Vec::new() };
    Ok((stats, gallery))
}

fn thousands(n: usize) -> String {
    cilp_track::compare::format_thousands(n as u64)
}
