//! End-to-end tests: exploration statistics against a direct computation, the exploration page,
//! the FiftyOne export (PCD files read back by our parser and, when installed, by the `pypcd4`
//! Python package; loader script compiled by `python3 -m py_compile`), the run report and HTML
//! escaping of everything that comes from files.
//!
//! Python is `$CILP_PYTHON` or `python3`. If `pypcd4` is not importable the interop test is
//! skipped with a message, unless `$CI` is set, in which case it fails (`pip install pypcd4`).

mod common;

use std::path::Path;
use std::process::Command;

use cilp_data::dataset::{Dataset, LoadOptions, NO_RETURN};
use cilp_data::split::{nvidia_split, ratio_split};
use cilp_data::tensorize::XyzaConvention;
use cilp_report::explore::{ExploreStats, GalleryItem};
use cilp_report::fiftyone::{Manifest, SplitChoice};
use cilp_report::html::escape_html;
use cilp_report::pcd::{PcdEncoding, read_pcd};
use cilp_report::render::hit_points;
use cilp_report::{ExploreOptions, ExportOptions, ReportOptions, explore, export_fiftyone, report};
use common::*;

const PER_CLASS: usize = 6;

#[test]
fn explore_matches_direct_computation_and_page_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_data(tmp.path(), PER_CLASS);
    add_evil_unpaired(&data);
    let out = tmp.path().join("explore");
    let opts = ExploreOptions { gallery_per_class: 3, scale: 3, ..Default::default() };
    let sum = explore(&data, &out, &opts).unwrap();

    // Direct computation from the dataset.
    let (ds, rep) = Dataset::open(&data, &LoadOptions::default()).unwrap();
    let st_text = std::fs::read(out.join("stats.json")).unwrap();
    let st: ExploreStats = serde_json::from_slice(&st_text).unwrap();
    // (Compared as text: serde_json's float parsing may change the last bit.)
    assert_eq!(serde_json::to_string_pretty(&sum.stats).unwrap().as_bytes(), st_text.as_slice());
    assert_eq!(st.samples, 2 * PER_CLASS);
    assert_eq!(st.unpaired_total, 1);
    assert_eq!(rep.total_unpaired(), 1);
    let (mut sum_px, mut black) = (0u64, 0usize);
    for (c, cl) in st.classes.iter().enumerate() {
        assert_eq!(cl.stats.name, ds.classes()[c]);
        assert_eq!(cl.stats.count, PER_CLASS);
        let r = ds.class_range(c);
        let hits: Vec<usize> = r.clone().map(|i| ds.sample(i).depth.iter().filter(|d| **d < NO_RETURN).count()).collect();
        let lit: Vec<usize> = r.clone().map(|i| ds.sample(i).rgb.chunks(4).filter(|p| p[0] > 0 || p[1] > 0 || p[2] > 0).count()).collect();
        let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len() as f64;
        assert!((cl.stats.hits_per_sample.mean - mean(&hits)).abs() < 1e-9);
        assert_eq!(cl.stats.hits_per_sample.max, *hits.iter().max().unwrap() as f64);
        assert!((cl.stats.lit_pixels_per_sample.mean - mean(&lit)).abs() < 1e-9);
        assert!((cl.stats.hit_ratio - hits.iter().sum::<usize>() as f64 / (PER_CLASS * 4096) as f64).abs() < 1e-12);
        assert_eq!(cl.hits_histogram.counts.iter().sum::<usize>(), PER_CLASS);
        assert_eq!(cl.lit_histogram.counts.iter().sum::<usize>(), PER_CLASS);
        let (lo, hi) = r
            .clone()
            .flat_map(|i| ds.sample(i).depth.iter().copied().filter(|d| *d < NO_RETURN).collect::<Vec<_>>())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), d| (a.min(d), b.max(d)));
        assert_eq!(cl.stats.hit_depth_range, Some((lo, hi)));
        for i in r {
            let s = ds.sample(i);
            for p in s.rgb.chunks(4) {
                sum_px += p[..3].iter().map(|&v| v as u64).sum::<u64>();
                black += (p[..3] == [0, 0, 0]) as usize;
            }
        }
    }
    let px = (2 * PER_CLASS * 4096) as f64;
    assert!((st.mean_pixel_value - sum_px as f64 / (px * 3.0 * 255.0)).abs() < 1e-12);
    assert!((st.black_fraction - black as f64 / px).abs() < 1e-12);
    assert!(st.black_fraction > 0.9, "synthetic images are mostly black");
    // Splits.
    let nv = nvidia_split(&ds);
    let rs = ratio_split(&ds, 0.2, 51);
    assert_eq!((st.splits[0].train, st.splits[0].val), (nv.train.len(), nv.val.len()));
    assert_eq!((st.splits[1].train, st.splits[1].val), (rs.train.len(), rs.val.len()));
    assert_eq!(st.splits[1].per_class.iter().map(|p| p.1).sum::<usize>(), rs.val.len());
    // Formats.
    assert_eq!(st.formats[0].shape, vec![64, 64, 4]);
    assert!(st.formats[0].dtype.starts_with("uint8"));
    assert_eq!((st.formats[1].shape.clone(), st.formats[1].dtype.as_str()), (vec![64, 64], "float32"));
    // Observations.
    let obs = st.observations.join("\n");
    assert!(obs.contains("cover fewer LiDAR pixels than"), "{obs}");
    assert!(obs.contains("% black: mean pixel value"), "{obs}");
    assert!(obs.contains("1 unpaired files were skipped (cubes: 0 RGB without LiDAR, 1 LiDAR without RGB)"), "{obs}");
    assert!(obs.contains("The classes are balanced"), "{obs}");

    // The page.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_self_contained(&html);
    for o in &st.observations {
        assert!(html.contains(&escape_html(o)), "observation missing from the page: {o}");
    }
    let gallery: Vec<GalleryItem> = serde_json::from_slice(&std::fs::read(out.join("gallery.json")).unwrap()).unwrap();
    assert_eq!(gallery.len(), 6);
    for g in &gallery {
        for uri in [&g.rgb, &g.depth, &g.cloud] {
            assert!(uri.starts_with("data:image/png;base64,"));
            assert!(html.contains(uri.as_str()), "gallery image of {} missing", g.stem);
        }
    }
    assert_eq!(attr_values(&html, "src").len(), 18);
    assert!(html.contains("Samples per class"), "class-distribution chart");
    assert!(html.matches("<svg").count() >= 5);
    // The unpaired file's name is shown as text, never as markup.
    assert!(!html.contains(EVIL));
    assert!(html.contains(&escape_html(EVIL)));
}

fn python() -> String {
    std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn python_has(py: &str, module: &str, pip_name: &str) -> bool {
    let ok = Command::new(py).args(["-c", &format!("import {module}")]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        let msg = format!(
            "the {module} Python package is not importable with `{py}`; run `pip install {pip_name}` (or set CILP_PYTHON to a Python that has it)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {module} not installed ({msg})");
    }
    ok
}

fn check_export(data: &Path, out: &Path, opts: &ExportOptions) -> Manifest {
    let sum = export_fiftyone(data, out, opts).unwrap();
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(out.join("samples.json")).unwrap()).unwrap();
    let (ds, _) = Dataset::open(data, &LoadOptions::default()).unwrap();
    assert_eq!(sum.samples, ds.len());
    assert_eq!(manifest.samples.len(), ds.len());
    assert_eq!(sum.train + sum.val, ds.len());
    assert_eq!(manifest.pcd_fields, vec!["x", "y", "z", "intensity"]);
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(csv.lines().count(), ds.len() + 1);
    for s in &manifest.samples {
        let i = ds.find(s.label, &s.stem).unwrap();
        let smp = ds.sample(i);
        // RGB copied byte for byte.
        let orig = std::fs::read(data.join(&s.class).join("rgb").join(format!("{}.png", s.stem))).unwrap();
        assert_eq!(std::fs::read(out.join(&s.rgb)).unwrap(), orig);
        // PCD: header and every point.
        let pcd = read_pcd(&std::fs::read(out.join(&s.lidar)).unwrap()).unwrap();
        assert_eq!(pcd.encoding, opts.encoding);
        let (az, ze) = ds.angles(smp.class);
        let want = hit_points(smp.depth, az, ze, XyzaConvention::Spherical);
        assert_eq!(pcd.points.len(), want.len());
        assert_eq!(s.points, want.len());
        for (p, w) in pcd.points.iter().zip(&want) {
            assert_eq!(p.as_slice(), w.as_slice());
            assert!((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() - p[3] < 1e-3, "point lies on its beam");
        }
        assert!(s.split == "train" || s.split == "val");
        assert_eq!(&s.split, if opts.split == SplitChoice::Nvidia { &s.nvidia_split } else { &s.ratio_split });
    }
    manifest
}

#[test]
fn fiftyone_export_round_trips_and_python_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_data(tmp.path(), 4);
    let ascii_out = tmp.path().join("fo-ascii");
    let manifest = check_export(&data, &ascii_out, &ExportOptions::default());
    let bin_out = tmp.path().join("fo-bin");
    check_export(&data, &bin_out, &ExportOptions { encoding: PcdEncoding::Binary, split: SplitChoice::Nvidia, ..Default::default() });

    let py = python();
    // The loader script must at least be valid Python (FiftyOne itself is too heavy for tests).
    let out = Command::new(&py).args(["-m", "py_compile"]).arg(ascii_out.join("load_fiftyone.py")).output();
    match out {
        Ok(o) => {
            assert!(o.status.success(), "load_fiftyone.py does not compile: {}", String::from_utf8_lossy(&o.stderr))
        }
        Err(e) if std::env::var_os("CI").is_none() => eprintln!("skipped py_compile: cannot run {py}: {e}"),
        Err(e) => panic!("cannot run {py}: {e}"),
    }
    let script = ascii_out.join("load_fiftyone.py");
    let text = std::fs::read_to_string(&script).unwrap();
    for needle in ["fo.Group()", "group.element(\"rgb\")", "group.element(\"lidar\")", "fo.Classification", "add_group_field"] {
        assert!(text.contains(needle), "{needle}");
    }

    if !python_has(&py, "pypcd4", "pypcd4") {
        return;
    }
    let reader = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("read_pcd.py");
    for dir in [&ascii_out, &bin_out] {
        let paths: Vec<String> = manifest.samples.iter().map(|s| dir.join(&s.lidar).display().to_string()).collect();
        let o = Command::new(&py).arg(&reader).args(&paths).output().unwrap();
        assert!(o.status.success(), "pypcd4 failed: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for (s, p) in manifest.samples.iter().zip(&paths) {
            let got = &v[p.as_str()];
            assert_eq!(got["fields"], serde_json::json!(["x", "y", "z", "intensity"]));
            assert_eq!(got["points"].as_u64().unwrap() as usize, s.points, "{p}");
            let ours = read_pcd(&std::fs::read(p).unwrap()).unwrap();
            let theirs = got["data"].as_array().unwrap();
            assert_eq!(theirs.len(), ours.points.len());
            for (a, b) in theirs.iter().zip(&ours.points) {
                let a: Vec<f32> = a.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                assert_eq!(&a, b, "{p}");
            }
        }
    }
}

#[test]
fn report_shows_runs_curves_studies_and_escapes_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = make_runs(tmp.path());
    let data = make_data(tmp.path(), 3);
    let ex = tmp.path().join("explore");
    explore(&data, &ex, &ExploreOptions { gallery_per_class: 1, ..Default::default() }).unwrap();
    let out = tmp.path().join("out").join("report.html");
    let opts = ReportOptions { explore_dir: Some(ex), ..Default::default() };
    report(&runs, &out, &opts).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert_self_contained(&html);
    // Runs: names (escaped), table values, curves.
    for name in ["fusion/late", "cilp_pretrain"] {
        assert!(html.contains(name), "{name}");
    }
    assert!(html.contains(&escape_html(&format!("fusion/{EVIL}"))));
    assert!(html.contains("13,147,202"), "params column");
    assert!(html.contains("late — loss") && html.contains("late — accuracy"));
    // Comparison charts per study folder, one line per model: the two `late` seeds are one
    // mean line with a min-max band (no chart of all runs at once).
    assert!(!html.contains("all runs"));
    assert!(html.contains("fusion: validation loss") && html.contains("fusion: validation accuracy"));
    assert!(html.contains(">late (2 runs)<") && html.contains(">concat (1 run)<"), "mean of the late seeds");
    assert_eq!(html.matches("fill-opacity=\"0.18\"").count(), 2, "one band per chart, for late only");
    // The runs table sorts and filters (the Chromium test clicks through it).
    assert!(html.contains("<table id=\"runs-table\" class=\"sortable\">") && html.contains("id=\"runs-filter\""));
    assert!(html.contains("<td class=\"num\" data-v=\"13147202\">13,147,202</td>"), "numeric sort key");
    assert_eq!(html.matches("<script>").count(), 1);
    assert!(html.contains("No metrics recorded."), "running run without metrics");
    assert!(html.contains("<path d=\"M"), "curves drawn");
    // Config values, study table and its chart.
    assert!(html.contains("optimizer.name") && html.contains("adam"));
    assert!(html.contains("MaxPool vs strided") && html.contains("13383802"));
    assert!(html.contains("data:image/svg+xml;base64,"), "study chart embedded");
    assert!(html.contains("chart missing.png:"), "missing chart noted");
    // Dataset section with gallery.
    assert!(html.contains("Observations") && html.contains("Gallery"));
    assert_eq!(attr_values(&html, "src").iter().filter(|v| v.starts_with("data:image/png")).count(), 6);
    // Escaping: no probe survives as markup.
    assert!(!html.contains(SCRIPT) && !html.contains(EVIL));
    assert!(html.contains(&escape_html(SCRIPT)));

    // Without an exploration, and with a missing one.
    let plain = cilp_report::report::render_report(&runs, &ReportOptions::default()).unwrap();
    assert!(!plain.contains("Gallery"));
    let missing = ReportOptions { explore_dir: Some(tmp.path().join("nope")), ..Default::default() };
    assert!(cilp_report::report::render_report(&runs, &missing).unwrap().contains("No exploration found"));
    // A runs directory that does not exist is an error naming it.
    let err = cilp_report::report::render_report(&tmp.path().join("no-runs"), &ReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no-runs"), "{err}");
}

#[test]
fn study_summary_json_in_fusion_folder_is_a_table_and_its_runs_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = make_runs(tmp.path());
    std::fs::write(
        runs.join("fusion").join("summary.json"),
        r#"{"title": "Fusion comparison", "table": [{"model": "late", "val_loss": 0.01}, {"model": "add", "val_loss": 0.02}]}"#,
    )
    .unwrap();
    let recs = cilp_report::report::collect_runs(&runs).unwrap();
    let names: Vec<&str> = recs.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"fusion/late"), "{names:?}");
    assert!(!names.contains(&"fusion"), "{names:?}");
    let html = cilp_report::report::render_report(&runs, &ReportOptions::default()).unwrap();
    assert!(html.contains("Fusion comparison") && html.contains("val_loss"));
}
