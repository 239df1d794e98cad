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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cilp_data::dataset::{DEPTH_LEN, Dataset, LoadOptions, LoadReport, NameList, RGBA_LEN};
use cilp_data::image::IMAGE_SIZE;
use cilp_data::split::{DEFAULT_SEED, Split, nvidia_split, ratio_split};
use cilp_data::stats::{ClassStats, dataset_stats};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result, create_dir, write_file};
use crate::html::{self, escape_html, table};
use crate::render;
use crate::svg;

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

/// What [`explore`] produced.
#[derive(Debug, Clone)]
pub struct ExploreSummary {
    pub stats: ExploreStats,
    pub gallery: Vec<GalleryItem>,
    pub stats_json: PathBuf,
    pub gallery_json: PathBuf,
    pub index_html: PathBuf,
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

fn thousands(n: usize) -> String {
    cilp_track::compare::format_thousands(n as u64)
}

/// Written observations derived from the statistics.
pub fn observations(st: &ExploreStats) -> Vec<String> {
    let mut o = Vec::new();
    let cl = &st.classes;
    if cl.is_empty() {
        return o;
    }
    // Balance.
    let counts: Vec<usize> = cl.iter().map(|c| c.stats.count).collect();
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    let list = cl.iter().map(|c| format!("{} {}", thousands(c.stats.count), c.stats.name)).collect::<Vec<_>>().join(", ");
    if min == max {
        o.push(format!("The classes are balanced: {list} ({} samples in all).", thousands(st.samples)));
    } else {
        o.push(format!(
            "The classes are imbalanced: {list} (the largest has {:.1}x the smallest); accuracy alone can mislead.",
            max as f64 / min.max(1) as f64
        ));
    }
    // LiDAR coverage.
    let hits = |c: &ClassExplore| {
        let h = c.stats.hits_per_sample;
        format!("mean {:.0}, range {:.0}-{:.0}", h.mean, h.min, h.max)
    };
    if cl.len() == 2 {
        let (a, b) = (&cl[0], &cl[1]);
        let (ma, mb) = (a.stats.hits_per_sample.mean, b.stats.hits_per_sample.mean);
        let (small, large) = if ma <= mb { (a, b) } else { (b, a) };
        o.push(format!(
            "{} cover fewer LiDAR pixels than {} ({} vs {}).",
            capitalise(&small.stats.name),
            large.stats.name,
            hits(small),
            hits(large)
        ));
    } else {
        o.push(format!(
            "LiDAR pixels on the object per sample: {}.",
            cl.iter().map(|c| format!("{} {}", c.stats.name, hits(c))).collect::<Vec<_>>().join("; ")
        ));
    }
    let ratio = cl.iter().map(|c| c.stats.hit_ratio * c.stats.count as f64).sum::<f64>() / st.samples.max(1) as f64;
    let (dlo, dhi) = cl
        .iter()
        .filter_map(|c| c.stats.hit_depth_range)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
    if dlo.is_finite() {
        o.push(format!(
            "Only {:.1}% of LiDAR beams return; every other beam reads the 50 m maximum (no return). Returns lie between {:.1} m and {:.1} m.",
            ratio * 100.0,
            dlo,
            dhi
        ));
    } else {
        o.push("No LiDAR beam returns in any sample: every depth is 50 m (no return).".into());
    }
    // RGB darkness.
    o.push(format!(
        "Images are {:.1}% black: mean pixel value {:.4} (on a 0-1 scale); only the lit faces of the object are visible.",
        st.black_fraction * 100.0,
        st.mean_pixel_value
    ));
    o.push(format!(
        "Lit RGB pixels per image: {}.",
        cl.iter()
            .map(|c| {
                let l = c.stats.lit_pixels_per_sample;
                format!("{} mean {:.0} ({:.0}-{:.0})", c.stats.name, l.mean, l.min, l.max)
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Colours.
    let with_colour: usize = cl.iter().map(|c| c.hue_histogram.counts.iter().sum::<usize>()).sum();
    if with_colour > 0 {
        let low: usize = cl.iter().map(|c| c.low_saturation).sum();
        let mut bins = [0usize; 12];
        for c in cl {
            for (b, n) in bins.iter_mut().zip(&c.hue_histogram.counts) {
                *b += n;
            }
        }
        let used = bins.iter().filter(|&&n| n * 50 >= with_colour).count();
        o.push(format!(
            "Object colours vary: the mean lit colour's hue covers {used} of 12 hue bins (30 degrees each, counting bins with at least 2% of samples); {:.0}% of objects look grey or white (saturation < 0.15).",
            low as f64 / with_colour as f64 * 100.0
        ));
    }
    // Unpaired and ignored files.
    if st.unpaired_total > 0 {
        let parts: Vec<String> = cl
            .iter()
            .filter(|c| c.rgb_without_lidar.count + c.lidar_without_rgb.count > 0)
            .map(|c| {
                format!(
                    "{}: {} RGB without LiDAR, {} LiDAR without RGB",
                    c.stats.name, c.rgb_without_lidar.count, c.lidar_without_rgb.count
                )
            })
            .collect();
        o.push(format!("{} unpaired files were skipped ({}).", thousands(st.unpaired_total), parts.join("; ")));
    } else {
        o.push("Every RGB file has a LiDAR partner: no unpaired files.".into());
    }
    let ignored: usize = cl.iter().map(|c| c.ignored_files.count).sum();
    if ignored > 0 {
        o.push(format!("{ignored} files with other extensions were ignored."));
    }
    let nested: usize = cl.iter().map(|c| c.nested_dirs.len()).sum();
    if nested > 0 {
        o.push(format!("{nested} nested folder(s) inside rgb/ or lidar/ (e.g. a duplicate lidar/lidar/) were not read."));
    }
    o
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
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

/// The exploration page (self-contained HTML).
pub fn render_page(stats: &ExploreStats, gallery: &[GalleryItem]) -> String {
    let sub =
        format!("{} samples in {} classes from <code>{}</code>", thousands(stats.samples), stats.classes.len(), escape_html(&stats.root));
    let body = format!("{}{}", render_sections(stats, 2), render_gallery(gallery, 2));
    html::page(&stats.title, &sub, "", &body)
}

fn class_colour(i: usize) -> String {
    svg::colour(i).to_owned()
}

fn swatch(c: [u8; 3]) -> String {
    format!("<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>", c[0], c[1], c[2])
}

/// The statistics sections (observations, formats, counts and splits, LiDAR, RGB, colours,
/// unpaired files). `h` is the heading level of the section titles (2 on the exploration
/// page, 3 when nested in the run report).
pub fn render_sections(st: &ExploreStats, h: usize) -> String {
    let mut s = String::new();
    let hh = |t: &str| format!("<h{h}>{}</h{h}>", escape_html(t));
    // Observations first: they are the summary.
    let _ = write!(s, "<section>{}<ul class=\"obs\">", hh("Observations"));
    for ob in &st.observations {
        let _ = write!(s, "<li>{}</li>", escape_html(ob));
    }
    s.push_str("</ul></section>");

    // Formats.
    let rows: Vec<Vec<String>> = st
        .formats
        .iter()
        .map(|f| {
            vec![
                f.what.clone(),
                f.file.clone(),
                format!("({})", f.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
                f.dtype.clone(),
                f.note.clone(),
            ]
        })
        .collect();
    let _ =
        write!(s, "<section>{}{}</section>", hh("Files, shapes and dtypes"), table(&["data", "file", "shape", "dtype", "notes"], &rows));

    // Counts and splits.
    let names: Vec<String> = st.classes.iter().map(|c| c.stats.name.clone()).collect();
    let counts: Vec<f64> = st.classes.iter().map(|c| c.stats.count as f64).collect();
    let colours: Vec<String> = (0..names.len()).map(class_colour).collect();
    let bar = svg::bar_chart("Samples per class", &names, &counts, &colours, "samples", 360.0, 260.0);
    let mut headers = vec!["split".to_owned(), "train".into(), "val".into()];
    for n in &names {
        headers.push(format!("{n} train/val"));
    }
    let rows: Vec<Vec<String>> = st
        .splits
        .iter()
        .map(|sp| {
            let mut r = vec![sp.name.clone(), thousands(sp.train), thousands(sp.val)];
            r.extend(sp.per_class.iter().map(|(t, v)| format!("{} / {}", thousands(*t), thousands(*v))));
            r
        })
        .collect();
    let hdr: Vec<&str> = headers.iter().map(String::as_str).collect();
    let count_rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            vec![
                c.stats.name.clone(),
                c.stats.label.to_string(),
                thousands(c.stats.count),
                thousands(c.rgb_files),
                thousands(c.lidar_files),
                thousands(c.rgb_without_lidar.count + c.lidar_without_rgb.count),
            ]
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}<div class=\"charts\"><div>{bar}</div><div>{}<h4>Splits</h4>{}</div></div></section>",
        hh("Samples per class and splits"),
        table(&["class", "label", "pairs", "RGB files", "LiDAR files", "unpaired"], &count_rows),
        table(&hdr, &rows)
    );

    // LiDAR.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let h = c.stats.hits_per_sample;
            vec![
                c.stats.name.clone(),
                c.stats.hit_depth_range.map(|(a, b)| format!("{a:.2} - {b:.2}")).unwrap_or_else(|| "-".into()),
                format!("{:.2}%", c.stats.hit_ratio * 100.0),
                format!("{:.0}", h.min),
                format!("{:.1}", h.mean),
                format!("{:.0}", h.max),
            ]
        })
        .collect();
    let hist = |title: &str, f: &dyn Fn(&ClassExplore) -> &Histogram, x: &str| {
        let series: Vec<(String, String, Vec<usize>)> =
            st.classes.iter().enumerate().map(|(i, c)| (c.stats.name.clone(), class_colour(i), f(c).counts.clone())).collect();
        let (lo, hi) = st.classes.first().map(|c| (f(c).lo, f(c).hi)).unwrap_or((0.0, 1.0));
        svg::histogram(title, &series, lo, hi, x, 520.0, 260.0)
    };
    let _ = write!(
        s,
        "<section>{}{}<div class=\"charts\">{}</div></section>",
        hh("LiDAR depth"),
        table(&["class", "hit depth range (m)", "hit ratio", "hits/sample min", "mean", "max"], &rows),
        hist("LiDAR hits per sample", &|c| &c.hits_histogram, "beams returning (of 4096)")
    );

    // RGB.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let l = c.stats.lit_pixels_per_sample;
            vec![
                c.stats.name.clone(),
                format!("{:.0}", l.min),
                format!("{:.1}", l.mean),
                format!("{:.0}", l.max),
                format!("{:.2}%", c.black_fraction * 100.0),
                c.mean_pixel.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>().join(" / "),
                c.stats.mean_lit_colour.map(|m| m.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ")).unwrap_or("-".into()),
            ]
        })
        .collect();
    let mut t = table(&["class", "lit px min", "mean", "max", "black pixels", "mean R / G / B (0-1)", "mean lit colour (0-255)"], &rows);
    // Colour swatches after the table (kept out of the escaped cells).
    let sw: Vec<String> = st
        .classes
        .iter()
        .filter_map(|c| c.stats.mean_lit_colour.map(|m| format!("{}{}", swatch(m.map(|v| v.round() as u8)), escape_html(&c.stats.name))))
        .collect();
    if !sw.is_empty() {
        let _ = write!(t, "<p class=\"small muted\">Mean lit colour: {}</p>", sw.join(" &nbsp; "));
    }
    let hue_series: Vec<(String, String, Vec<usize>)> =
        st.classes.iter().enumerate().map(|(i, c)| (c.stats.name.clone(), class_colour(i), c.hue_histogram.counts.clone())).collect();
    let pts: Vec<(f64, f64, String)> = st
        .classes
        .iter()
        .flat_map(|c| c.colour_samples.iter())
        .map(|&c| {
            let (h, sat, _) = hsv(c.map(f64::from));
            (h, sat, format!("rgb({},{},{})", c[0], c[1], c[2]))
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}{t}<div class=\"charts\">{}{}{}</div></section>",
        hh("RGB images and object colours"),
        hist("Lit RGB pixels per image", &|c| &c.lit_histogram, "pixels with R, G or B > 0"),
        svg::histogram("Hue of the mean lit colour", &hue_series, 0.0, 360.0, "hue (degrees)", 520.0, 260.0),
        svg::scatter(
            "Object colours (mean lit colour per sample)",
            &pts,
            (0.0, 360.0),
            (0.0, 1.0),
            "hue (degrees)",
            "saturation",
            520.0,
            260.0
        )
    );

    // Unpaired files.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let ex = |n: &NameList| {
                if n.count == 0 {
                    "0".to_owned()
                } else {
                    format!("{} ({}{})", n.count, n.examples.join(", "), if n.count > n.examples.len() { ", ..." } else { "" })
                }
            };
            vec![
                c.stats.name.clone(),
                ex(&c.rgb_without_lidar),
                ex(&c.lidar_without_rgb),
                ex(&c.ignored_files),
                c.nested_dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}{}{}</section>",
        hh("Unpaired and ignored files"),
        table(&["class", "RGB without LiDAR", "LiDAR without RGB", "ignored files", "nested folders"], &rows),
        if st.warnings.is_empty() {
            "<p class=\"muted small\">The reader reported no problems.</p>".to_owned()
        } else {
            format!("<p class=\"small\">Reader warnings:</p>{}", html::list(&st.warnings))
        }
    );
    s
}

/// The gallery section: per sample RGB | LiDAR depth | LiDAR point cloud.
pub fn render_gallery(items: &[GalleryItem], h: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<section><h{h}>Gallery</h{h}><p class=\"small muted\">Per sample: the RGB image; the LiDAR depth as stored \
         (rows = azimuth, columns = zenith; viridis, near = yellow, far = purple, scaled per sample; no return = light grey); \
         the LiDAR hit points as a 3-D point cloud (oblique orthographic view, coloured by height z, same scale for every sample). \
         64x64 images are upscaled with nearest neighbour.</p><div class=\"gallery\">"
    );
    for it in items {
        let name = format!("{} / {}", it.class, it.stem);
        let fig = |uri: &str, what: &str| {
            // Only data URIs produced by this crate are accepted as image sources.
            let src = if uri.starts_with("data:image/png;base64,") { escape_html(uri) } else { String::new() };
            format!(
                "<figure><img class=\"px\" alt=\"{} {}\" src=\"{src}\"><figcaption>{}</figcaption></figure>",
                escape_html(&name),
                escape_html(what),
                escape_html(what)
            )
        };
        let _ = write!(
            s,
            "<div class=\"sample\"><div class=\"cap\"><b>{}</b> &middot; {} LiDAR hits &middot; {} lit pixels</div><div class=\"triple\">{}{}{}</div></div>",
            escape_html(&name),
            it.hits,
            it.lit,
            fig(&it.rgb, "RGB"),
            fig(&it.depth, "LiDAR depth"),
            fig(&it.cloud, "LiDAR point cloud")
        );
    }
    s.push_str("</div></section>");
    s
}

/// Reads `stats.json` (and `gallery.json` if present) written by [`explore`].
pub fn read_explore_dir(dir: &Path) -> Result<(ExploreStats, Vec<GalleryItem>)> {
    let stats: ExploreStats = crate::error::read_json(&dir.join(STATS_JSON))?;
    let g = dir.join(GALLERY_JSON);
    let gallery = if g.is_file() { crate::error::read_json(&g)? } else { Vec::new() };
    Ok((stats, gallery))
}
