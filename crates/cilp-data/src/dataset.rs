//! Reading a whole dataset folder into memory.
//!
//! # Layout
//!
//! ```text
//! root/
//!   cubes/    azimuth.npy  zenith.npy  rgb/0000.png ...  lidar/0000.npy ...
//!   spheres/  azimuth.npy  zenith.npy  rgb/0000.png ...  lidar/0000.npy ...
//! ```
//!
//! * Classes are the sub-folders of `root` that contain `rgb/` or `lidar/` (unless
//!   [`LoadOptions::classes`] names them), ordered `cubes` first, `spheres` second and any
//!   others alphabetically, so that cubes = 0 and spheres = 1 as in the Python original.
//! * RGB and LiDAR files are paired by file stem (`rgb/0042.png` with `lidar/0042.npy`); the
//!   intersection is loaded and everything left unpaired is counted in the [`LoadReport`],
//!   never silently dropped. Sub-folders of `rgb/` and `lidar/` (one distribution of the data
//!   has a nested duplicate `lidar/lidar/`), and folders in a class folder other than these two
//!   (e.g. a nested copy `cubes/cubes/`), are not read and are listed in the report; files
//!   other than `.png` in `rgb/` and `.npy` in `lidar/` are counted as ignored.
//! * Samples are ordered by class, then by stem in natural order ([`natural_cmp`]: `9` before
//!   `10`; for the dataset's zero-padded names this is plain lexicographic order).
//! * Every pair is decoded in parallel (rayon) into two contiguous buffers: RGBA bytes
//!   (`64*64*4` per sample, row-major HWC as decoded) and depth `f32` (`64*64`, rows follow
//!   azimuth, columns zenith). Depth must be finite and positive ([`check_depth`]); values
//!   `>= NO_RETURN` mean the beam hit nothing.
//! * Each class folder holds `azimuth.npy` and `zenith.npy`, shape `(64,)`, radians, finite and
//!   within `[-pi, pi]`.
//!
//! Any bad file is a [`DataError`] naming the file and what was expected; bad input never
//! panics. Reads are bounded ([`crate::io`]): a FIFO, device or socket named like a data file
//! (`lidar/0001.npy`, `rgb/0001.png`, `azimuth.npy`, directly or through a symlink) is refused
//! by name, and so is a file larger than its format allows (a 64x64 `.npy` of at most
//! [`npy::max_npy_file_len`] bytes, a PNG of at most [`image::MAX_PNG_BYTES`]), before it is
//! read: a 5 GB sparse file costs a `stat`, not 5 GB of memory.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::image::{self, IMAGE_SIZE};
use crate::{io, npy};

/// Depth (metres) reported by a beam that hits nothing; `depth >= NO_RETURN` is "no return".
pub const NO_RETURN: f32 = 50.0;
/// Values in one depth map (64 x 64).
pub const DEPTH_LEN: usize = IMAGE_SIZE * IMAGE_SIZE;
/// Bytes in one RGBA image (64 x 64 x 4).
pub const RGBA_LEN: usize = IMAGE_SIZE * IMAGE_SIZE * 4;
/// Entries in `azimuth.npy` / `zenith.npy`.
pub const ANGLE_LEN: usize = IMAGE_SIZE;
/// The two classes of the original dataset, in label order.
pub const DEFAULT_CLASS_ORDER: [&str; 2] = ["cubes", "spheres"];

/// Options of [`Dataset::open`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    /// Class folders to load, in label order. `None`: discover them (see the module docs).
    pub classes: Option<Vec<String>>,
    /// Load only the first N pairs (in sample order) of each class; for quick runs.
    pub limit_per_class: Option<usize>,
    /// How many example names the report keeps per list of unpaired or ignored files.
    pub max_examples: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { classes: None, limit_per_class: None, max_examples: 5 }
    }
}

/// A count of files plus up to [`LoadOptions::max_examples`] of their names (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameList {
    pub count: usize,
    pub examples: Vec<String>,
}

impl NameList {
    fn from_sorted(names: &[&str], max: usize) -> Self {
        NameList { count: names.len(), examples: names.iter().take(max).map(|s| s.to_string()).collect() }
    }

    fn push(&mut self, name: String, max: usize) {
        self.count += 1;
        if self.examples.len() < max {
            self.examples.push(name);
        }
    }

    fn examples_text(&self) -> String {
        let mut s = self.examples.join(", ");
        if self.count > self.examples.len() {
            s.push_str(", ...");
        }
        s
    }
}

/// What [`Dataset::open`] found for one class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassReport {
    /// Folder name, e.g. `cubes`.
    pub name: String,
    /// Class label (index into [`Dataset::classes`]).
    pub label: usize,
    /// The class folder.
    pub dir: PathBuf,
    /// `.png` files found in `rgb/`.
    pub rgb_files: usize,
    /// `.npy` files found in `lidar/`.
    pub lidar_files: usize,
    /// Stems present in both modalities.
    pub paired: usize,
    /// Pairs actually loaded (fewer than `paired` with [`LoadOptions::limit_per_class`]).
    pub loaded: usize,
    /// RGB stems with no LiDAR file.
    pub rgb_without_lidar: NameList,
    /// LiDAR stems with no RGB file.
    pub lidar_without_rgb: NameList,
    /// Files in `rgb/` or `lidar/` with another extension (or a non-UTF-8 name), not read.
    pub ignored_files: NameList,
    /// Sub-folders of `rgb/` or `lidar/` (e.g. a nested duplicate `lidar/lidar/`), not read.
    pub nested_dirs: Vec<PathBuf>,
}

impl ClassReport {
    /// Files found but not loaded because they have no partner in the other modality.
    pub fn unpaired(&self) -> usize {
        self.rgb_without_lidar.count + self.lidar_without_rgb.count
    }
}

/// Everything [`Dataset::open`] noticed about the folder: counts per class, unpaired and
/// ignored files and human-readable warnings. Its `Display` prints only the problems (nothing
/// at all for a clean dataset), one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    pub root: PathBuf,
    pub classes: Vec<ClassReport>,
    /// Folders at the dataset root that hold neither `rgb/` nor `lidar/`, so were not taken as
    /// classes (hidden ones excepted; only when the classes are discovered, not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_dirs: Vec<PathBuf>,
    /// One line per problem worth telling the user about (unpaired files, ignored files,
    /// nested folders, folders that are not classes, limits applied).
    pub warnings: Vec<String>,
}

impl LoadReport {
    /// Pairs loaded over all classes.
    pub fn total_pairs(&self) -> usize {
        self.classes.iter().map(|c| c.loaded).sum()
    }

    /// Files left unpaired over all classes.
    pub fn total_unpaired(&self) -> usize {
        self.classes.iter().map(ClassReport::unpaired).sum()
    }

    /// True when every file found was paired and nothing was ignored.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }

    fn build_warnings(&mut self) {
        let mut w = Vec::new();
        for c in &self.classes {
            if c.rgb_without_lidar.count > 0 {
                w.push(format!(
                    "{}: {} RGB file(s) have no LiDAR partner and were skipped (e.g. {})",
                    c.name,
                    c.rgb_without_lidar.count,
                    c.rgb_without_lidar.examples_text()
                ));
            }
            if c.lidar_without_rgb.count > 0 {
                w.push(format!(
                    "{}: {} LiDAR file(s) have no RGB partner and were skipped (e.g. {})",
                    c.name,
                    c.lidar_without_rgb.count,
                    c.lidar_without_rgb.examples_text()
                ));
            }
            if c.ignored_files.count > 0 {
                w.push(format!(
                    "{}: {} file(s) that are not .png in rgb/ or .npy in lidar/ were ignored (e.g. {})",
                    c.name,
                    c.ignored_files.count,
                    c.ignored_files.examples_text()
                ));
            }
            for d in &c.nested_dirs {
                w.push(format!("{}: nested folder {} was not read (duplicate copy?)", c.name, d.display()));
            }
        }
        for d in &self.skipped_dirs {
            w.push(format!("folder {} holds neither rgb/ nor lidar/ and was not read as a class", d.display()));
        }
        self.warnings = w;
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.warnings.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// One sample, borrowed from a [`Dataset`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    /// Class label.
    pub class: usize,
    /// File stem shared by the RGB and LiDAR files, e.g. `0042`.
    pub stem: &'a str,
    /// RGBA bytes, row-major HWC, `RGBA_LEN` long.
    pub rgb: &'a [u8],
    /// Depth in metres, row-major (rows = azimuth, columns = zenith), `DEPTH_LEN` long.
    pub depth: &'a [f32],
}

/// A sample given to [`Dataset::from_memory`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSample {
    pub class: usize,
    pub stem: String,
    pub rgb: Vec<u8>,
    pub depth: Vec<f32>,
}

/// The whole dataset, in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    root: PathBuf,
    classes: Vec<String>,
    /// Per class: azimuth and zenith (radians, `ANGLE_LEN` each).
    angles: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per class: the contiguous range of sample indices.
    ranges: Vec<Range<usize>>,
    labels: Vec<u32>,
    stems: Vec<String>,
    rgb: Vec<u8>,
    depth: Vec<f32>,
}

/// Checks that a depth map is finite and positive. The error names `path`, the first bad
/// index (flat and as row/column for 64x64 maps) and its value.
pub fn check_depth(path: &Path, depth: &[f32]) -> Result<()> {
    // Fast path: one branch-free pass; only look for the index when something is wrong.
    let ok = depth.iter().fold(true, |acc, &d| acc & (d.is_finite() & (d > 0.0)));
    if ok {
        return Ok(());
    }
    let (i, &v) = depth.iter().enumerate().find(|(_, d)| !(d.is_finite() && **d > 0.0)).expect("a bad value exists");
    let at = if depth.len() == DEPTH_LEN {
        format!("index {i} (row {}, column {})", i / IMAGE_SIZE, i % IMAGE_SIZE)
    } else {
        format!("index {i}")
    };
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        reason: format!("depth must be finite and > 0 (>= {NO_RETURN} means no return), found {v} at {at}"),
    })
}

/// Checks an azimuth or zenith array: `ANGLE_LEN` finite values in `[-pi, pi]` radians.
pub fn check_angles(path: &Path, angles: &[f32]) -> Result<()> {
    if angles.len() != ANGLE_LEN {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            reason: format!("expected {ANGLE_LEN} angles, found {}", angles.len()),
        });
    }
    let pi = std::f32::consts::PI;
    if let Some((i, v)) = angles.iter().enumerate().find(|(_, a)| !(a.is_finite() && a.abs() <= pi)) {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            reason: format!("angles must be finite radians within [-pi, pi], found {v} at index {i} (degrees instead of radians?)"),
        });
    }
    Ok(())
}

/// Natural order of file stems: runs of ASCII digits compare by numeric value (`9` < `10`),
/// everything else byte by byte; ties (e.g. `01` vs `1`) fall back to plain string order, so
/// the order is total and deterministic.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i].is_ascii_digit() && y[j].is_ascii_digit() {
            let si = i;
            while i < x.len() && x[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < y.len() && y[j].is_ascii_digit() {
                j += 1;
            }
            let da = trim_zeros(&x[si..i]);
            let db = trim_zeros(&y[sj..j]);
            match da.len().cmp(&db.len()).then_with(|| da.cmp(db)) {
                Ordering::Equal => {}
                o => return o,
            }
        } else {
            match x[i].cmp(&y[j]) {
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                o => return o,
            }
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[k..]
}

fn layout(path: impl Into<PathBuf>, reason: impl Into<String>) -> DataError {
    DataError::Layout { path: path.into(), reason: reason.into() }
}

/// The files of one modality folder (`rgb/` or `lidar/`).
#[derive(Default)]
struct Listing {
    files: HashMap<String, PathBuf>,
}

/// Lists `dir`, keeping files with extension `ext` (case-insensitive) by stem; everything else
/// goes to the class report.
fn list_modality(dir: &Path, ext: &str, rep: &mut ClassReport, max: usize) -> Result<Listing> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "cannot list folder", e))?;
    let mut out = Listing::default();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    let mut ignored: Vec<String> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, "cannot list folder", e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| DataError::io(&path, "cannot stat", e))?;
        // Follow symlinks (one extra stat only for links).
        let (is_dir, is_file, meta_ok) = if ft.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) => (m.is_dir(), m.is_file(), true),
                Err(_) => (false, false, false), // dangling or looping link: counted as ignored below
            }
        } else {
            (ft.is_dir(), ft.is_file(), true)
        };
        if is_dir {
            rep.nested_dirs.push(path);
            continue;
        }
        let fname = entry.file_name();
        let Some(name) = fname.to_str() else {
            ignored.push(fname.to_string_lossy().into_owned());
            continue;
        };
        // Hidden files (`.DS_Store`, macOS `._0001.png` resource forks) are never samples.
        let stem_ext =
            name.rsplit_once('.').filter(|(s, e)| is_file && !s.is_empty() && !name.starts_with('.') && e.eq_ignore_ascii_case(ext));
        if stem_ext.is_none() && meta_ok && !is_file && !name.starts_with('.') && has_ext(name, ext) {
            // A FIFO, device or socket named like a data file (`0001.npy` -> /dev/zero): refused
            // by name rather than silently ignored or read (a FIFO would block the reader forever).
            let what = if ext == "png" { "a 64x64 PNG image" } else { "a 64x64 .npy depth map" };
            io::check_regular_file_for(&path, what)?;
        }
        match stem_ext {
            Some((stem, _)) => names.push((stem.to_string(), path)),
            None => ignored.push(name.to_string()),
        }
    }
    // Deterministic handling of duplicates such as `0001.png` + `0001.PNG`: keep the first by
    // path order, count the rest as ignored.
    names.sort_by(|a, b| a.1.cmp(&b.1));
    for (stem, path) in names {
        match out.files.entry(stem) {
            std::collections::hash_map::Entry::Occupied(_) => {
                ignored.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(path);
            }
        }
    }
    ignored.sort();
    for name in ignored {
        rep.ignored_files.push(name, max);
    }
    rep.nested_dirs.sort();
    Ok(out)
}

fn has_ext(name: &str, ext: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(s, e)| !s.is_empty() && e.eq_ignore_ascii_case(ext))
}

/// Sub-folders of a class folder other than `rgb/` and `lidar/` (hidden ones excepted).
fn extra_class_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "cannot list folder", e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, "cannot list folder", e))?;
        let name = entry.file_name();
        if name == "rgb" || name == "lidar" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        // `Path::is_dir` follows links; a looping link is not a folder.
        if entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Sub-folders of `root` that hold `rgb/` or `lidar/`, cubes first, spheres second, others
/// alphabetically; and the other (non-hidden) sub-folders, sorted.
fn discover_classes(root: &Path) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let rd = std::fs::read_dir(root).map_err(|e| DataError::io(root, "cannot list dataset folder", e))?;
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(root, "cannot list dataset folder", e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        if path.join("rgb").is_dir() || path.join("lidar").is_dir() {
            found.push(name);
        } else {
            skipped.push(path);
        }
    }
    skipped.sort();
    if found.is_empty() {
        return Err(layout(root, "no class folders found: expected sub-folders such as cubes/ and spheres/, each holding rgb/ and lidar/"));
    }
    found.sort_by(|a, b| class_rank(a).cmp(&class_rank(b)).then_with(|| a.cmp(b)));
    if found.len() < 2 {
        // A classifier needs two classes; one folder alone means the other went missing.
        let missing = DEFAULT_CLASS_ORDER.iter().find(|c| !found.iter().any(|f| f == *c)).copied().unwrap_or("spheres");
        return Err(layout(
            root.join(missing),
            format!(
                "class folder missing: only {}/ was found, and a classification dataset needs at least two classes \
                 (expected cubes/ and spheres/); restore the missing folder or generate a dataset with `cilp generate`",
                found[0]
            ),
        ));
    }
    Ok((found, skipped))
}

fn class_rank(name: &str) -> usize {
    DEFAULT_CLASS_ORDER.iter().position(|c| *c == name).unwrap_or(DEFAULT_CLASS_ORDER.len())
}

/// One pair to load.
struct Pair {
    class: usize,
    stem: String,
    rgb: PathBuf,
    lidar: PathBuf,
}

/// Per-thread scratch space: the bytes of the file being decoded.
#[derive(Default)]
struct Scratch {
    bytes: Vec<u8>,
}

/// Decodes one pair straight into its slots of the dataset's buffers. Both reads are bounded
/// (special files and oversized files are refused by name before anything is read; see
/// [`image::MAX_PNG_BYTES`] and [`npy::max_npy_file_len`]), so a hostile file cannot make the
/// loader allocate more than one image's and one depth map's worth of scratch space.
fn load_pair(pair: &Pair, scratch: &mut Scratch, rgb_out: &mut [u8], depth_out: &mut [f32]) -> Result<()> {
    image::read_dataset_png_bytes(&pair.rgb, &mut scratch.bytes)?;
    image::decode_dataset_png_into(&scratch.bytes, &pair.rgb, rgb_out)?;
    npy::read_npy_into(&pair.lidar, &[IMAGE_SIZE, IMAGE_SIZE], depth_out, &mut scratch.bytes)?;
    check_depth(&pair.lidar, depth_out)
}

fn load_angles(class_dir: &Path) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut out = Vec::with_capacity(2);
    for name in ["azimuth.npy", "zenith.npy"] {
        let p = class_dir.join(name);
        // Missing (or a dangling link): a layout error. Anything else that is not a regular
        // file (a FIFO, /dev/zero) is refused by name by the bounded reader.
        if std::fs::metadata(&p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            return Err(layout(&p, format!("missing {name}: each class folder needs azimuth.npy and zenith.npy, shape (64,), radians")));
        }
        let arr = npy::read_npy_shape(&p, &[ANGLE_LEN])?;
        check_angles(&p, &arr.data)?;
        out.push(arr.data);
    }
    let ze = out.pop().expect("two arrays");
    let az = out.pop().expect("two arrays");
    Ok((az, ze))
}

impl Dataset {
    /// Reads the dataset under `root` (see the module docs for the layout and the checks) and
    /// returns it together with the report of what was found, skipped and ignored.
    pub fn open(root: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport)> {
        if !root.is_dir() {
            return Err(layout(root, "dataset folder does not exist or is not a folder"));
        }
        if opts.limit_per_class == Some(0) {
            return Err(DataError::Invalid { path: root.to_path_buf(), reason: "limit_per_class must be at least 1".into() });
        }
        let mut skipped_dirs = Vec::new();
        let classes = match &opts.classes {
            Some(c) if c.is_empty() => return Err(layout(root, "the list of classes to load is empty")),
            Some(c) => {
                for (i, name) in c.iter().enumerate() {
                    if c[..i].contains(name) {
                        return Err(layout(root.join(name), "class listed twice"));
                    }
                }
                c.clone()
            }
            None => {
                let (found, skipped) = discover_classes(root)?;
                skipped_dirs = skipped;
                found
            }
        };

        let mut report = LoadReport { root: root.to_path_buf(), classes: Vec::new(), skipped_dirs, warnings: Vec::new() };
        let mut angles = Vec::with_capacity(classes.len());
        let mut pairs: Vec<Pair> = Vec::new();
        let mut ranges = Vec::with_capacity(classes.len());
        for (label, name) in classes.iter().enumerate() {
            let dir = root.join(name);
            if !dir.is_dir() {
                return Err(layout(&dir, format!("class folder {name:?} does not exist")));
            }
            let mut rep = ClassReport { name: name.clone(), label, dir: dir.clone(), ..Default::default() };
            let mut listings = Vec::with_capacity(2);
            for (sub, ext) in [("rgb", "png"), ("lidar", "npy")] {
                let d = dir.join(sub);
                if !d.is_dir() {
                    return Err(layout(&d, format!("missing {sub}/ folder in class {name:?} (expected {sub}/*.{ext})")));
                }
                listings.push(list_modality(&d, ext, &mut rep, opts.max_examples)?);
            }
            let lidar = listings.pop().expect("two listings");
            let rgb = listings.pop().expect("two listings");
            // Other folders inside the class folder (a nested duplicate `cubes/cubes/`, an
            // extracted archive) are not read either: listed so they are not dropped silently.
            rep.nested_dirs.extend(extra_class_dirs(&dir)?);
            rep.nested_dirs.sort();
            rep.rgb_files = rgb.files.len();
            rep.lidar_files = lidar.files.len();

            let mut paired: Vec<&str> = rgb.files.keys().filter(|s| lidar.files.contains_key(*s)).map(String::as_str).collect();
            let mut rgb_only: Vec<&str> = rgb.files.keys().filter(|s| !lidar.files.contains_key(*s)).map(String::as_str).collect();
            let mut lidar_only: Vec<&str> = lidar.files.keys().filter(|s| !rgb.files.contains_key(*s)).map(String::as_str).collect();
            paired.sort_by(|a, b| natural_cmp(a, b));
            rgb_only.sort_by(|a, b| natural_cmp(a, b));
            lidar_only.sort_by(|a, b| natural_cmp(a, b));
            rep.paired = paired.len();
            rep.rgb_without_lidar = NameList::from_sorted(&rgb_only, opts.max_examples);
            rep.lidar_without_rgb = NameList::from_sorted(&lidar_only, opts.max_examples);
            if paired.is_empty() {
                return Err(layout(
                    &dir,
                    format!(
                        "class {name:?} has no RGB/LiDAR pairs ({} .png in rgb/, {} .npy in lidar/, {} other files)",
                        rep.rgb_files, rep.lidar_files, rep.ignored_files.count
                    ),
                ));
            }
            let take = opts.limit_per_class.map_or(paired.len(), |l| l.min(paired.len()));
            rep.loaded = take;
            let start = pairs.len();
            for stem in &paired[..take] {
                pairs.push(Pair { class: label, stem: stem.to_string(), rgb: rgb.files[*stem].clone(), lidar: lidar.files[*stem].clone() });
            }
            ranges.push(start..pairs.len());
            angles.push(load_angles(&dir)?);
            report.classes.push(rep);
        }
        report.build_warnings();

        let n = pairs.len();
        let mut rgb = vec![0u8; n * RGBA_LEN];
        let mut depth = vec![0f32; n * DEPTH_LEN];
        let results: Vec<Result<()>> = rgb
            .par_chunks_mut(RGBA_LEN)
            .zip(depth.par_chunks_mut(DEPTH_LEN))
            .zip(pairs.par_iter())
            .with_min_len(16)
            .map_init(Scratch::default, |scratch, ((r, d), p)| load_pair(p, scratch, r, d))
            .collect();
        // Report the first bad file in sample order, whatever the thread timing.
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        let labels = pairs.iter().map(|p| p.class as u32).collect();
        let stems = pairs.into_iter().map(|p| p.stem).collect();
        let ds = Dataset { root: root.to_path_buf(), classes, angles, ranges, labels, stems, rgb, depth };
        Ok((ds, report))
    }

    /// Builds a dataset from samples already in memory (tests, synthetic experiments). Samples
    /// are re-ordered by class then stem (natural order), like [`Dataset::open`]; sizes, depth
    /// and angles are checked the same way. Errors name `<memory>`.
    pub fn from_memory(classes: Vec<String>, angles: Vec<(Vec<f32>, Vec<f32>)>, mut samples: Vec<OwnedSample>) -> Result<Dataset> {
        let mem = Path::new("<memory>");
        let bad = |reason: String| DataError::Invalid { path: mem.to_path_buf(), reason };
        if classes.is_empty() || angles.len() != classes.len() {
            return Err(bad(format!("{} classes but {} angle pairs", classes.len(), angles.len())));
        }
        for (az, ze) in &angles {
            check_angles(mem, az)?;
            check_angles(mem, ze)?;
        }
        for s in &samples {
            if s.class >= classes.len() || s.rgb.len() != RGBA_LEN || s.depth.len() != DEPTH_LEN {
                return Err(bad(format!(
                    "sample {:?}: class {} of {}, {} RGBA bytes (expected {RGBA_LEN}), {} depth values (expected {DEPTH_LEN})",
                    s.stem,
                    s.class,
                    classes.len(),
                    s.rgb.len(),
                    s.depth.len()
                )));
            }
            check_depth(Path::new(&format!("<memory>/{}/{}", classes[s.class], s.stem)), &s.depth)?;
        }
        samples.sort_by(|a, b| a.class.cmp(&b.class).then_with(|| natural_cmp(&a.stem, &b.stem)));
        for w in samples.windows(2) {
            if w[0].class == w[1].class && w[0].stem == w[1].stem {
                return Err(bad(format!("duplicate sample {:?} in class {}", w[0].stem, classes[w[0].class])));
            }
        }
        let mut ranges = Vec::with_capacity(classes.len());
        for c in 0..classes.len() {
            let start = samples.partition_point(|s| s.class < c);
            let end = samples.partition_point(|s| s.class <= c);
            ranges.push(start..end);
        }
        let mut ds = Dataset {
            root: mem.to_path_buf(),
            classes,
            angles,
            ranges,
            labels: Vec::with_capacity(samples.len()),
            stems: Vec::with_capacity(samples.len()),
            rgb: Vec::with_capacity(samples.len() * RGBA_LEN),
            depth: Vec::with_capacity(samples.len() * DEPTH_LEN),
        };
        for s in samples {
            ds.labels.push(s.class as u32);
            ds.stems.push(s.stem);
            ds.rgb.extend_from_slice(&s.rgb);
            ds.depth.extend_from_slice(&s.depth);
        }
        Ok(ds)
    }

    /// Number of samples (pairs).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset holds no samples (never the case for a dataset from [`Dataset::open`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Class names in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The folder the dataset was read from (`<memory>` for [`Dataset::from_memory`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sample `i`. Panics if `i >= len()`.
    pub fn sample(&self, i: usize) -> SampleRef<'_> {
        SampleRef {
            class: self.labels[i] as usize,
            stem: &self.stems[i],
            rgb: &self.rgb[i * RGBA_LEN..(i + 1) * RGBA_LEN],
            depth: &self.depth[i * DEPTH_LEN..(i + 1) * DEPTH_LEN],
        }
    }

    /// Class label of sample `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// `(azimuth, zenith)` of class `class`, radians, `ANGLE_LEN` each. Panics if out of range.
    pub fn angles(&self, class: usize) -> (&[f32], &[f32]) {
        let (az, ze) = &self.angles[class];
        (az, ze)
    }

    /// The contiguous range of sample indices belonging to class `class` (samples are ordered
    /// by class). Panics if out of range.
    pub fn class_range(&self, class: usize) -> Range<usize> {
        self.ranges[class].clone()
    }

    /// Samples per class, in label order.
    pub fn class_counts(&self) -> Vec<usize> {
        self.ranges.iter().map(|r| r.len()).collect()
    }

    /// Position of sample `i` within its class (0-based, in sample order).
    pub fn position_in_class(&self, i: usize) -> usize {
        i - self.ranges[self.label(i)].start
    }

    /// Index of the sample with this class and stem, if loaded.
    pub fn find(&self, class: usize, stem: &str) -> Option<usize> {
        let r = self.ranges.get(class)?.clone();
        let stems = &self.stems[r.clone()];
        stems.binary_search_by(|s| natural_cmp(s, stem)).ok().map(|k| r.start + k)
    }

    /// Iterates over all samples in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SampleRef<'_>> + '_ {
        (0..self.len()).map(move |i| self.sample(i))
    }

    /// Approximate heap memory held by the dataset, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.rgb.capacity()
            + self.depth.capacity() * size_of::<f32>()
            + self.labels.capacity() * size_of::<u32>()
            + self.stems.capacity() * size_of::<String>()
            + self.stems.iter().map(String::capacity).sum::<usize>()
            + self.angles.iter().map(|(a, z)| (a.capacity() + z.capacity()) * size_of::<f32>()).sum::<usize>()
            + self.classes.iter().map(String::capacity).sum::<usize>()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::write_rgba_png;
    use crate::npy::write_npy;
    use std::fs;

    /// Azimuth/zenith like the course's: -16 deg .. 15.5 deg in 0.5 deg steps.
    pub fn course_angles() -> Vec<f32> {
        (0..64).map(|i| ((i as f32) * 0.5 - 16.0).to_radians()).collect()
    }

    /// Deterministic RGBA and depth for (class, index).
    pub fn sample_data(class: usize, idx: usize) -> (Vec<u8>, Vec<f32>) {
        let rgb: Vec<u8> = (0..RGBA_LEN).map(|k| ((k * 7 + idx * 13 + class * 101) % 256) as u8).collect();
        let depth: Vec<f32> =
            (0..DEPTH_LEN).map(|k| if (k + idx).is_multiple_of(5) { 20.0 + (k % 10) as f32 + class as f32 } else { 50.0 }).collect();
        (rgb, depth)
    }

    pub fn write_class(root: &Path, name: &str, class: usize, stems: &[&str]) {
        let d = root.join(name);
        fs::create_dir_all(d.join("rgb")).unwrap();
        fs::create_dir_all(d.join("lidar")).unwrap();
        write_npy(&d.join("azimuth.npy"), &[64], &course_angles()).unwrap();
        write_npy(&d.join("zenith.npy"), &[64], &course_angles()).unwrap();
        for s in stems {
            let idx: usize = s.parse().unwrap_or(0);
            let (rgb, depth) = sample_data(class, idx);
            write_rgba_png(&d.join("rgb").join(format!("{s}.png")), 64, 64, &rgb).unwrap();
            write_npy(&d.join("lidar").join(format!("{s}.npy")), &[64, 64], &depth).unwrap();
        }
    }

    fn stems(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:04}")).collect()
    }

    fn fixture(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let s = stems(n);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        write_class(dir.path(), "spheres", 1, &s);
        write_class(dir.path(), "cubes", 0, &s);
        dir
    }

    fn open(root: &Path) -> Result<(Dataset, LoadReport)> {
        Dataset::open(root, &LoadOptions::default())
    }

    fn open_err(root: &Path) -> String {
        match open(root) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn loads_pairs_in_order_with_data() {
        let dir = fixture(4);
        let (ds, rep) = open(dir.path()).unwrap();
        assert_eq!(ds.classes(), ["cubes", "spheres"]);
        assert_eq!(ds.len(), 8);
        assert!(rep.is_clean(), "{rep}");
        assert_eq!(rep.to_string(), "");
        assert_eq!(rep.total_pairs(), 8);
        for i in 0..8 {
            let s = ds.sample(i);
            assert_eq!(s.class, i / 4);
            assert_eq!(s.stem, format!("{:04}", i % 4));
            let (rgb, depth) = sample_data(s.class, i % 4);
            assert_eq!(s.rgb, &rgb[..]);
            assert_eq!(s.depth, &depth[..]);
            assert_eq!(ds.position_in_class(i), i % 4);
            assert_eq!(ds.find(s.class, s.stem), Some(i));
        }
        let (az, ze) = ds.angles(1);
        assert_eq!(az.len(), 64);
        assert_eq!(ze[32], 0.0);
        assert_eq!(ds.class_counts(), vec![4, 4]);
        assert_eq!(ds.class_range(1), 4..8);
        assert!(ds.memory_bytes() >= 8 * (RGBA_LEN + DEPTH_LEN * 4));
    }

    #[test]
    fn class_discovery_order_and_explicit_classes() {
        let dir = fixture(2);
        write_class(dir.path(), "cylinders", 2, &["0000"]);
        write_class(dir.path(), "cones", 3, &["0000"]);
        fs::create_dir(dir.path().join("notes")).unwrap(); // no rgb/ or lidar/: not a class
        fs::write(dir.path().join("README.txt"), "hi").unwrap();
        let (ds, _) = open(dir.path()).unwrap();
        assert_eq!(ds.classes(), ["cubes", "spheres", "cones", "cylinders"]);
        assert_eq!(ds.len(), 6);
        let opts = LoadOptions { classes: Some(vec!["spheres".into(), "cubes".into()]), ..Default::default() };
        let (ds, _) = Dataset::open(dir.path(), &opts).unwrap();
        assert_eq!(ds.classes(), ["spheres", "cubes"]);
        assert_eq!(ds.sample(0).class, 0);
        assert_eq!(ds.sample(0).rgb, &sample_data(1, 0).0[..]);
    }

    #[test]
    fn limit_per_class() {
        let dir = fixture(5);
        let opts = LoadOptions { limit_per_class: Some(2), ..Default::default() };
        let (ds, rep) = Dataset::open(dir.path(), &opts).unwrap();
        assert_eq!(ds.len(), 4);
        assert_eq!(ds.sample(3).stem, "0001");
        assert_eq!(rep.classes[0].paired, 5);
        assert_eq!(rep.classes[0].loaded, 2);
        let opts = LoadOptions { limit_per_class: Some(0), ..Default::default() };
        assert!(Dataset::open(dir.path(), &opts).is_err());
    }

    #[test]
    fn unpaired_ignored_and_nested_are_reported() {
        let dir = fixture(3);
        let sph = dir.path().join("spheres");
        fs::remove_file(sph.join("rgb/0001.png")).unwrap();
        let (_, depth) = sample_data(1, 0);
        for extra in ["0100", "0007", "0009"] {
            write_npy(&sph.join(format!("lidar/{extra}.npy")), &[64, 64], &depth).unwrap();
        }
        fs::write(sph.join("rgb/Thumbs.db"), "x").unwrap();
        fs::write(sph.join("rgb/._0000.png"), "x").unwrap();
        fs::write(sph.join("lidar/notes.txt"), "x").unwrap();
        fs::create_dir(sph.join("lidar/lidar")).unwrap();
        write_npy(&sph.join("lidar/lidar/0000.npy"), &[64, 64], &depth).unwrap();
        // A corrupt file inside the nested folder must not matter: it is not read.
        fs::write(sph.join("lidar/lidar/0001.npy"), "garbage").unwrap();

        let opts = LoadOptions { max_examples: 2, ..Default::default() };
        let (ds, rep) = Dataset::open(dir.path(), &opts).unwrap();
        assert_eq!(ds.len(), 3 + 2);
        let c = &rep.classes[1];
        assert_eq!((c.rgb_files, c.lidar_files, c.paired), (2, 6, 2));
        assert_eq!(c.lidar_without_rgb, NameList { count: 4, examples: vec!["0001".into(), "0007".into()] });
        assert_eq!(c.rgb_without_lidar.count, 0);
        assert_eq!(c.ignored_files.count, 3);
        assert_eq!(c.nested_dirs, vec![sph.join("lidar/lidar")]);
        assert!(!rep.is_clean());
        let text = rep.to_string();
        assert!(text.contains("spheres: 4 LiDAR file(s) have no RGB partner"), "{text}");
        assert!(text.contains("0001, 0007, ..."), "{text}");
        assert!(text.contains("lidar/lidar"), "{text}");
        assert!(text.contains("3 file(s)"), "{text}");
        assert_eq!(rep.total_unpaired(), 4);
        // The report serialises (the CLI prints it as JSON).
        let json = serde_json::to_string(&rep).unwrap();
        assert!(json.contains("lidar_without_rgb"));
    }

    #[test]
    fn nested_class_copy_and_symlink_loops_are_reported_not_followed() {
        let dir = fixture(2);
        let cubes = dir.path().join("cubes");
        fs::create_dir_all(cubes.join("cubes/rgb")).unwrap();
        fs::create_dir(cubes.join(".cache")).unwrap();
        std::os::unix::fs::symlink(".", cubes.join("rgb/again")).unwrap();
        std::os::unix::fs::symlink("self.png", cubes.join("rgb/self.png")).unwrap();
        let (ds, rep) = Dataset::open(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(ds.len(), 4);
        let c = &rep.classes[0];
        assert_eq!(c.nested_dirs, vec![cubes.join("cubes"), cubes.join("rgb/again")]);
        assert_eq!(c.ignored_files.count, 1, "the looping link is counted");
        let text = rep.to_string();
        assert!(text.contains("cubes/cubes was not read"), "{text}");
    }

    #[test]
    fn root_folders_that_are_not_classes_are_reported() {
        let dir = fixture(2);
        fs::create_dir_all(dir.path().join("__MACOSX/cubes")).unwrap();
        fs::create_dir(dir.path().join(".ipynb_checkpoints")).unwrap();
        fs::write(dir.path().join("manifest.json"), "{}").unwrap();
        let (ds, rep) = Dataset::open(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(ds.classes(), ["cubes", "spheres"]);
        assert_eq!(rep.skipped_dirs, vec![dir.path().join("__MACOSX")], "hidden folders and files are not listed");
        let text = rep.to_string();
        assert!(text.contains("__MACOSX holds neither rgb/ nor lidar/"), "{text}");
        // Classes named explicitly: nothing is discovered, so nothing is reported.
        let opts = LoadOptions { classes: Some(vec!["cubes".into(), "spheres".into()]), ..Default::default() };
        let (_, rep) = Dataset::open(dir.path(), &opts).unwrap();
        assert!(rep.is_clean(), "{rep}");
    }

    #[test]
    fn missing_angles_file_is_named() {
        let dir = fixture(1);
        let p = dir.path().join("cubes/azimuth.npy");
        fs::remove_file(&p).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(&p.display().to_string()) && e.contains("missing azimuth.npy"), "{e}");
    }

    #[test]
    fn bad_angles_are_named() {
        let dir = fixture(1);
        let p = dir.path().join("spheres/zenith.npy");
        let deg: Vec<f32> = (0..64).map(|i| i as f32 * 0.5 - 16.0).collect();
        write_npy(&p, &[64], &deg).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("zenith.npy") && e.contains("[-pi, pi]") && e.contains("index 0"), "{e}");
        write_npy(&p, &[32], &[0.0; 32]).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("zenith.npy") && e.contains("expected shape [64]"), "{e}");
        let mut nan = course_angles();
        nan[5] = f32::NAN;
        write_npy(&p, &[64], &nan).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("zenith.npy") && e.contains("index 5"), "{e}");
    }

    #[test]
    fn bad_depth_is_named_with_index() {
        for (bad, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (-1.0, "-1"), (0.0, "found 0")] {
            let dir = fixture(3);
            let p = dir.path().join("cubes/lidar/0002.npy");
            let mut d = vec![50.0f32; DEPTH_LEN];
            d[130] = bad;
            d[131] = f32::NAN;
            write_npy(&p, &[64, 64], &d).unwrap();
            let e = open_err(dir.path());
            assert!(e.contains("0002.npy") && e.contains("index 130 (row 2, column 2)") && e.contains(what), "{e}");
        }
    }

    #[test]
    fn bad_npy_files_are_named() {
        let dir = fixture(2);
        let p = dir.path().join("spheres/lidar/0001.npy");
        // Wrong shape.
        write_npy(&p, &[64, 32], &vec![1.0; 64 * 32]).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("spheres/lidar/0001.npy") && e.contains("expected shape [64, 64]"), "{e}");
        // Wrong dtype, byte order, Fortran order: raw headers.
        let mk = |descr: &str, fortran: &str| {
            let h = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': (64, 64), }}\n");
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(h.len() as u16).to_le_bytes());
            v.extend_from_slice(h.as_bytes());
            v.extend_from_slice(&vec![0u8; DEPTH_LEN * 4]);
            v
        };
        for (bytes, want) in [
            (mk("<i4", "False"), "not supported"),
            (mk(">f4", "False"), "big-endian"),
            (mk("<f4", "True"), "Fortran"),
            (b"\x93NUMPY\x01\x00\xff".to_vec(), "magic"),
        ] {
            fs::write(&p, bytes).unwrap();
            let e = open_err(dir.path());
            assert!(e.contains("0001.npy") && e.contains(want), "{e}");
        }
        // Truncated data section.
        let good = npy::encode_npy(&[64, 64], &vec![1.0; DEPTH_LEN]);
        fs::write(&p, &good[..good.len() - 3]).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("0001.npy") && e.contains("data section") && e.contains("truncated"), "{e}");
        // Trailing bytes after the data.
        let mut long = good.clone();
        long.extend_from_slice(b"extra");
        fs::write(&p, &long).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("0001.npy") && e.contains("5 trailing bytes"), "{e}");
        // Duplicate and unknown header keys.
        let raw = |h: &str| {
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(h.len() as u16).to_le_bytes());
            v.extend_from_slice(h.as_bytes());
            v.extend_from_slice(&vec![0u8; DEPTH_LEN * 4]);
            v
        };
        for (h, want) in [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (64, 64), 'shape': (64, 64), }\n", "'shape' appears more than once"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (64, 64), 'pickle': True, }\n", "unknown header key \"pickle\""),
        ] {
            fs::write(&p, raw(h)).unwrap();
            let e = open_err(dir.path());
            assert!(e.contains("spheres/lidar/0001.npy") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn bad_png_files_are_named() {
        let dir = fixture(2);
        let p = dir.path().join("cubes/rgb/0001.png");
        let good = fs::read(&p).unwrap();
        for bytes in [good[..good.len() / 2].to_vec(), b"not a png".to_vec(), Vec::new()] {
            fs::write(&p, bytes).unwrap();
            let e = open_err(dir.path());
            assert!(e.contains("cubes/rgb/0001.png") && e.contains("PNG"), "{e}");
        }
        write_rgba_png(&p, 32, 64, &vec![0; 32 * 64 * 4]).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("0001.png") && e.contains("32x64") && e.contains("expected 64x64"), "{e}");
        // Corrupt compressed data (flip bytes in the IDAT payload).
        let mut bad = good.clone();
        let idat = bad.windows(4).position(|w| w == b"IDAT").unwrap();
        for b in &mut bad[idat + 6..idat + 30] {
            *b ^= 0x5a;
        }
        fs::write(&p, bad).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains("0001.png"), "{e}");
    }

    /// Makes `path` a valid file followed by holes up to 5 GB: sparse, no disk used.
    fn make_huge_sparse(path: &Path) {
        fs::File::options().write(true).open(path).unwrap().set_len(5_000_000_000).unwrap();
    }

    /// `Dataset::open` on folders holding a 5 GB sparse `.npy` depth map, PNG or angle file,
    /// in a child process limited to 1 GiB of address space: the refusal names the file, its
    /// size and the limit (it came from the stat, before any read), and a loader that read such
    /// a file whole would die of allocation failure in the child, failing the test, instead of
    /// taking 5 GB of the machine.
    #[test]
    fn huge_sparse_files_are_refused_by_name_under_a_memory_limit() {
        crate::testutil::under_memory_limit("dataset::tests::huge_sparse_files_are_refused_by_name_under_a_memory_limit", || {
            for (rel, limit) in [
                ("spheres/lidar/0001.npy", npy::max_npy_file_len(&[64, 64]).unwrap()),
                ("cubes/rgb/0001.png", image::MAX_PNG_BYTES),
                ("spheres/azimuth.npy", npy::max_npy_file_len(&[64]).unwrap()),
            ] {
                let dir = fixture(2);
                let p = dir.path().join(rel);
                make_huge_sparse(&p);
                let e = open_err(dir.path());
                assert!(
                    e.contains(&p.display().to_string()) && e.contains("5000000000 bytes") && e.contains(&format!("{limit}-byte limit")),
                    "{rel}: {e}"
                );
            }
        });
    }

    #[test]
    fn special_files_named_as_data_files_are_refused_by_name() {
        let cases = [
            ("spheres/lidar/0001.npy", "fifo", "FIFO"),
            ("cubes/rgb/0000.png", "fifo", "FIFO"),
            ("cubes/lidar/0001.npy", "zero", "character device"),
            ("spheres/rgb/0001.png", "zero", "character device"),
            ("cubes/zenith.npy", "fifo", "FIFO"),
            ("spheres/azimuth.npy", "zero", "character device"),
        ];
        for (rel, how, kind) in cases {
            let dir = fixture(2);
            let p = dir.path().join(rel);
            fs::remove_file(&p).unwrap();
            if how == "fifo" {
                assert!(std::process::Command::new("mkfifo").arg(&p).status().unwrap().success());
            } else {
                std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
            }
            // Watchdog: should a regression open the FIFO and block on it, a writer opens and
            // closes it after 20 s, so the read ends (and the assertion fails) instead of hanging.
            let watchdog = (how == "fifo").then(|| {
                let p = p.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(20));
                    use std::os::unix::fs::OpenOptionsExt;
                    let _ = fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&p);
                })
            });
            let e = open_err(dir.path());
            assert!(e.contains(&p.display().to_string()) && e.contains(kind) && e.contains("not a regular file"), "{rel}: {e}");
            drop(watchdog); // detached; it only ever touches this test's temporary FIFO
        }
    }

    #[test]
    fn first_bad_file_in_sample_order_is_reported() {
        let dir = fixture(40);
        fs::write(dir.path().join("spheres/lidar/0030.npy"), "x").unwrap();
        fs::write(dir.path().join("cubes/lidar/0031.npy"), "x").unwrap();
        for _ in 0..3 {
            let e = open_err(dir.path());
            assert!(e.contains("cubes/lidar/0031.npy"), "{e}");
        }
    }

    #[test]
    fn missing_and_empty_class_folders() {
        // Missing root.
        let e = open_err(Path::new("/nonexistent/cilp-data"));
        assert!(e.contains("/nonexistent/cilp-data"), "{e}");
        // Root without classes.
        let dir = tempfile::tempdir().unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(&dir.path().display().to_string()) && e.contains("no class folders"), "{e}");
        // Requested class missing.
        let dir = fixture(1);
        let opts = LoadOptions { classes: Some(vec!["cubes".into(), "cones".into()]), ..Default::default() };
        let e = Dataset::open(dir.path(), &opts).unwrap_err().to_string();
        assert!(e.contains(&dir.path().join("cones").display().to_string()), "{e}");
        // Class folder with rgb/ and lidar/ but no files.
        let cyl = dir.path().join("cylinders");
        fs::create_dir_all(cyl.join("rgb")).unwrap();
        fs::create_dir_all(cyl.join("lidar")).unwrap();
        fs::write(cyl.join("rgb/readme.md"), "x").unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(&cyl.display().to_string()) && e.contains("no RGB/LiDAR pairs") && e.contains("1 other"), "{e}");
        // Class folder with lidar/ only.
        fs::remove_dir_all(cyl.join("rgb")).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(&cyl.join("rgb").display().to_string()) && e.contains("missing rgb/"), "{e}");
    }

    #[test]
    fn disjoint_stems_is_an_error_naming_class() {
        let dir = fixture(2);
        let c = dir.path().join("cubes");
        fs::rename(c.join("rgb/0000.png"), c.join("rgb/a.png")).unwrap();
        fs::rename(c.join("rgb/0001.png"), c.join("rgb/b.png")).unwrap();
        let e = open_err(dir.path());
        assert!(e.contains(&c.display().to_string()) && e.contains("2 .png") && e.contains("2 .npy"), "{e}");
    }

    #[test]
    fn a_single_discovered_class_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_class(dir.path(), "cubes", 0, &["0", "1"]);
        let e = open_err(dir.path());
        assert!(e.contains(&dir.path().join("spheres").display().to_string()) && e.contains("class folder missing"), "{e}");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["10", "9", "0010", "a2", "a10", "a1b", "", "1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["", "1", "9", "0010", "10", "a1b", "a2", "a10"]);
        assert_eq!(natural_cmp("0001", "0002"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        // Files named 1..12 load in numeric order.
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        write_class(dir.path(), "cubes", 0, &names);
        write_class(dir.path(), "spheres", 1, &["1"]);
        let (ds, _) = open(dir.path()).unwrap();
        let got: Vec<&str> = ds.iter().filter(|s| s.class == 0).map(|s| s.stem).collect();
        assert_eq!(got, names);
    }

    #[test]
    fn from_memory_orders_and_validates() {
        let (rgb, depth) = sample_data(0, 0);
        let mk = |class, stem: &str| OwnedSample { class, stem: stem.into(), rgb: rgb.clone(), depth: depth.clone() };
        let a = course_angles();
        let ds = Dataset::from_memory(
            vec!["cubes".into(), "spheres".into()],
            vec![(a.clone(), a.clone()), (a.clone(), a.clone())],
            vec![mk(1, "2"), mk(0, "10"), mk(1, "1"), mk(0, "9")],
        )
        .unwrap();
        let got: Vec<(usize, &str)> = ds.iter().map(|s| (s.class, s.stem)).collect();
        assert_eq!(got, vec![(0, "9"), (0, "10"), (1, "1"), (1, "2")]);
        assert_eq!(ds.class_range(1), 2..4);
        let mut bad = mk(0, "x");
        bad.depth[3] = f32::NAN;
        let e = Dataset::from_memory(vec!["cubes".into()], vec![(a.clone(), a.clone())], vec![bad]).unwrap_err().to_string();
        assert!(e.contains("<memory>/cubes/x") && e.contains("index 3"), "{e}");
        assert!(Dataset::from_memory(vec!["cubes".into()], vec![(a.clone(), a)], vec![mk(1, "x")]).is_err());
    }
}
