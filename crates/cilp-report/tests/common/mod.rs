//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cilp_track::{CreateMode, EpochMetrics, RunDir, RunStatus, RunSummary, names};

/// A file name (no `/`, so it can exist on disk) that is also an XSS probe.
pub const EVIL: &str = "<img src=x onerror=alert(1)>";
/// The classic probe; used where the text does not have to be a file name.
pub const SCRIPT: &str = "<script>alert(1)</script>";

/// Generates a small synthetic dataset (`per_class` samples per class) under `dir/data`.
pub fn make_data(dir: &Path, per_class: usize) -> PathBuf {
    let data = dir.join("data");
    let mut o = cilp_synth::GenerateOptions::preset("default").unwrap();
    o.per_class = per_class;
    o.seed = 7;
    o.supersample = 1;
    cilp_synth::generate(&data, &o).unwrap();
    data
}

/// Adds an unpaired LiDAR file named [`EVIL`] to `data/cubes/lidar`.
pub fn add_evil_unpaired(data: &Path) {
    let lidar = data.join("cubes").join("lidar");
    let first = std::fs::read_dir(&lidar).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(first, lidar.join(format!("{EVIL}.npy"))).unwrap();
}

/// A runs directory with two completed runs (one named [`EVIL`]), a running one without
/// metrics, and a study table with a chart.
pub fn make_runs(dir: &Path) -> PathBuf {
    let root = dir.join("runs");
    for (k, name) in ["fusion/late", &format!("fusion/{EVIL}")].iter().enumerate() {
        let mut run = RunDir::create(&root, name, CreateMode::New).unwrap();
        let cfg = serde_json::json!({
            "model": if k == 0 { "late" } else { "concat" },
            "lr": 1e-3,
            "batch_size": 32,
            "epochs": 4,
            "note": SCRIPT,
            "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
        });
        run.write_config(&cfg).unwrap();
        let mut s = RunSummary::started(run.name(), "train");
        s.model = if k == 0 { "late".into() } else { "concat".into() };
        s.parameters = 13_147_202 - k as u64 * 131_250;
        s.device = "cpu".into();
        run.write_summary(&s).unwrap();
        for e in 1..=4usize {
            let mut tr = EpochMetrics::new(e, names::TRAIN, 0.7 / (e as f64).powi(2 + k as i32));
            tr.accuracy = Some(0.6 + 0.09 * e as f64);
            tr.epoch_seconds = 10.0 + k as f64;
            tr.peak_memory_bytes = Some(300 << 20);
            let mut va = EpochMetrics::new(e, names::VAL, 0.8 / (e as f64).powi(2 + k as i32));
            va.accuracy = Some(0.55 + 0.1 * e as f64);
            va.epoch_seconds = 1.0;
            run.log_epoch(&[tr, va]).unwrap();
        }
        s.update_from_metrics(&run.read_metrics().unwrap());
        s.total_seconds = 44.0 + k as f64;
        s.finish(RunStatus::Completed);
        run.write_summary(&s).unwrap();
    }
    let run = RunDir::create(&root, "cilp_pretrain", CreateMode::New).unwrap();
    run.write_config(&serde_json::json!({"lr": 1e-4})).unwrap();
    run.write_summary(&RunSummary::started("cilp_pretrain", "cilp")).unwrap();

    let study = root.join("ablation");
    std::fs::create_dir_all(&study).unwrap();
    std::fs::write(
        study.join("study_table.json"),
        serde_json::to_string(&serde_json::json!({
            "title": format!("MaxPool vs strided {SCRIPT}"),
            "columns": ["metric", "MaxPool2d", "Strided", "difference"],
            "rows": [["val loss", 0.0123, 0.0150, 0.0027], ["params", 13147202, 13383802, 236600], [EVIL, null, true, "x"]],
            "notes": ["3 epochs, CPU", SCRIPT],
            "charts": ["chart.svg", "missing.png"],
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        study.join("chart.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"60\"><rect width=\"120\" height=\"60\" fill=\"#4e79a7\"/></svg>",
    )
    .unwrap();
    root
}

/// Every `src="..."` / `href="..."` attribute value of an HTML page.
pub fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    html.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Asserts that a page loads nothing from outside: no scripts, stylesheets links or `url()`,
/// images only as data URIs, links only to anchors inside the page.
pub fn assert_self_contained(html: &str) {
    assert!(!html.contains("<script"), "page has a <script> element (or unescaped text)");
    assert!(!html.contains("<link"), "page links a resource");
    assert!(!html.contains("url("), "page uses url()");
    assert!(!html.contains("@import"));
    for v in attr_values(html, "src") {
        assert!(v.starts_with("data:image/"), "image source is not a data URI: {}", &v[..v.len().min(80)]);
    }
    for v in attr_values(html, "href") {
        assert!(v.starts_with('#'), "link leaves the page: {v}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "page mentions a web address");
}
