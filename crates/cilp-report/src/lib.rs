//! # cilp-report — dataset exploration, FiftyOne export, the HTML run report and the study files
//!
//! What the users of the Python original did with FiftyOne (look at the data) and Weights &
//! Biases (compare runs), as plain files that need no service and no network, and the files a
//! study writes next to its runs. This crate does not depend on burn, nor on the training crate:
//! it reads run directories and study tables ([`cilp_track`]), and writes what it is given.
//!
//! | function | reads | writes |
//! |---|---|---|
//! | [`explore()`] | a dataset folder (`cilp_data` layout) | `out/index.html`, `out/stats.json`, `out/gallery.json` |
//! | [`export_fiftyone()`] | a dataset folder | `out/rgb/<class>/<stem>.png`, `out/lidar/<class>/<stem>.pcd`, `out/samples.json`, `out/samples.csv`, `out/load_fiftyone.py` |
//! | [`report()`] | a runs directory (`cilp_track` layout), optionally an `explore` output folder | one HTML file |
//! | [`study_files::write`] | a study's summary ([`cilp_track::study::StudySummary`], computed by `cilp-train`'s studies) | `out/summary.json`, `out/study_table.json`, `out/results.md`, `out/results.csv`, `out/runs.csv`, six SVG charts |
//!
//! ## Pages
//!
//! Every page is **one self-contained HTML file**: inline CSS, charts as inline SVG
//! ([`svg`]), images as `data:` URIs, no fonts, stylesheets or scripts to fetch, no link
//! leaving the page. The only script is the run report's few inline lines that sort and filter
//! its runs table ([`report::RUNS_TABLE_SCRIPT`]). Everything that comes from a file (class and file names, run names, config
//! values, paths, study titles and notes) is escaped with [`html::escape_html`]; a run named
//! `<img src=x onerror=alert(1)>` shows as that text.
//!
//! * The **exploration page** ([`mod@explore`] module) shows written observations derived from the
//!   numbers (class balance, LiDAR coverage per class, the share of black pixels, lit pixels,
//!   object colours, unpaired files), file shapes and dtypes, samples per class (bar chart) and
//!   both splits (NVIDIA's and the seeded 80/20), LiDAR depth range, hit ratio and hits per
//!   sample (histogram), lit pixels and colours (histograms and a hue/saturation scatter), the
//!   loader's unpaired and ignored files, and a gallery: per sample the RGB image, the LiDAR
//!   depth (viridis, no return in light grey) and the LiDAR point cloud rendered in 3-D
//!   ([`render`]), upscaled with nearest neighbour.
//! * The **run report** ([`mod@report`] module) shows the W&B-style runs table (sortable,
//!   filterable), validation curves per study (mean over seeds per model, min-max band), the
//!   study tables ([`study`]: a documented `study_table.json` convention plus
//!   generic rendering of `fusion/`, `ablation/`, `assess/` `summary.json` files), the dataset
//!   exploration, and per run its loss and accuracy curves, config and summary.
//! * The **study files** ([`study_files`]) of `cilp fusion` and `cilp ablation`: the summary as
//!   JSON, the table as `study_table.json` (what the run report shows), Markdown and CSV, and
//!   standalone SVG charts ([`svg`]). The numbers and the table's cells come with the summary;
//!   this crate lays them out.
//!
//! ## FiftyOne export
//!
//! [`fiftyone`] writes the RGB PNGs (copied), the LiDAR hit points as PCD v0.7 files ([`pcd`],
//! fields `x y z intensity`, ASCII or binary), a manifest with labels and split tags, and
//! `load_fiftyone.py`, which builds a grouped FiftyOne dataset (slices `rgb` and `lidar`,
//! `fo.Classification` labels, `train`/`val` tags).
//!
//! ## Example
//!
//! ```no_run
//! use std::path::Path;
//! use cilp_report::{explore, export_fiftyone, report, ExploreOptions, ExportOptions, ReportOptions};
//! # fn main() -> cilp_report::Result<()> {
//! let summary = explore(Path::new("data"), Path::new("out/explore"), &ExploreOptions::default())?;
//! for o in &summary.stats.observations {
//!     println!("- {o}");
//! }
//! export_fiftyone(Path::new("data"), Path::new("out/fiftyone"), &ExportOptions::default())?;
//! let opts = ReportOptions { explore_dir: Some("out/explore".into()), ..Default::default() };
//! report(Path::new("runs"), Path::new("out/report.html"), &opts)?;
//! # Ok(()) }
//! ```
//!
//! ## Tests and their external tools
//!
//! * `tests/report.rs` reads the PCD files back with the `pypcd4` Python package (PyPI name
//!   `pypcd4`; Python from `$CILP_PYTHON`, default `python3`) and compiles `load_fiftyone.py`
//!   with `python3 -m py_compile`.
//! * `tests/chromium.rs` opens both pages in headless Chromium (Debian package `chromium`;
//!   `$CILP_CHROMIUM` overrides the binary), takes screenshots and fails on console messages,
//!   failed loads or any image that does not decode (`naturalWidth` 0, read back from the DOM);
//!   it also opens every kind of chart as a standalone SVG file and clicks through the runs
//!   table's sorting and filtering. `$CILP_SCREENSHOT_DIR` keeps the pages and screenshots.
//!
//! Both skip with a message when the tool is missing, and fail instead when `$CI` is set.
#![forbid(unsafe_code)]

pub mod error;
pub mod explore;
pub mod fiftyone;
pub mod html;
pub mod pcd;
pub mod render;
pub mod report;
pub mod study;
pub mod study_files;
pub mod svg;

pub use error::{ReportError, Result};
pub use explore::{ExploreOptions, ExploreStats, ExploreSummary, explore};
pub use fiftyone::{ExportOptions, ExportSummary, export_fiftyone};
pub use report::{ReportOptions, report};
