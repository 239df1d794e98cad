//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod browser;

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

/// A runs directory with three completed runs (two seeds of `late`, one run named [`EVIL`]), a
/// running one without metrics, and a study table with two charts written by
/// `cilp_report::svg`, as the studies write theirs.
pub fn make_runs(dir: &Path) -> PathBuf {
    let root = dir.join("runs");
    for (k, name) in ["fusion/late", &format!("fusion/{EVIL}"), "fusion/late-s52"].iter().enumerate() {
        let (model, k) = if k == 1 { ("concat", 1usize) } else { ("late", 0) };
        let jitter = if name.ends_with("-s52") { 1.2 } else { 1.0 };
        let mut run = RunDir::create(&root, name, CreateMode::New).unwrap();
        let cfg = serde_json::json!({
            "model": model,
            "lr": 1e-3,
            "batch_size": 32,
            "epochs": 4,
            "note": SCRIPT,
            "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
        });
        run.write_config(&cfg).unwrap();
        let mut s = RunSummary::started(run.name(), "train");
        s.model = model.into();
        s.parameters = 13_147_202 - k as u64 * 131_250;
        s.device = "cpu".into();
        run.write_summary(&s).unwrap();
        for e in 1..=4usize {
            let mut tr = EpochMetrics::new(e, names::TRAIN, 0.7 / (e as f64).powi(2 + k as i32));
            tr.accuracy = Some(0.6 + 0.09 * e as f64);
            tr.epoch_seconds = 10.0 + k as f64;
            tr.peak_memory_bytes = Some(300 << 20);
            let mut va = EpochMetrics::new(e, names::VAL, jitter * 0.8 / (e as f64).powi(2 + k as i32));
            va.accuracy = Some(0.55 + 0.1 * e as f64 - 0.05 * (jitter - 1.0));
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
            "charts": ["chart.svg", "missing.png", "curve.svg"],
        }))
        .unwrap(),
    )
    .unwrap();
    for (file, svg) in study_charts() {
        std::fs::write(study.join(file), svg).unwrap();
    }
    root
}

/// Charts made by `cilp_report::svg` the way the studies make theirs (a bar chart and a line
/// chart with a band), with a probe in the labels.
pub fn study_charts() -> Vec<(&'static str, String)> {
    use cilp_report::svg;
    let labels = vec!["MaxPool2d".to_owned(), format!("strided {EVIL}")];
    let colours: Vec<String> = (0..2).map(|i| svg::colour(i).to_owned()).collect();
    let bar = svg::bar_chart("val loss (mean of 3 seeds)", &labels, &[0.0123, 0.015], &colours, "val loss", 720.0, 320.0);
    let series: Vec<svg::Series> = (0..2)
        .map(|i| svg::Series {
            name: labels[i].clone(),
            colour: colours[i].clone(),
            points: (1..=4).map(|e| (e as f64, 0.8 / (e + i) as f64)).collect(),
            band: (1..=4).map(|e| (e as f64, 0.7 / (e + i) as f64, 0.9 / (e + i) as f64)).collect(),
            ..Default::default()
        })
        .collect();
    let line = svg::line_chart(&format!("validation loss {SCRIPT}"), &series, "epoch", "val loss", 720.0, 360.0, false);
    vec![("chart.svg", bar), ("curve.svg", line)]
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

/// Asserts that a page loads nothing from outside: no scripts but the run report's inline
/// table script, no stylesheet links or `url()`, images only as data URIs, links only to
/// anchors inside the page.
pub fn assert_self_contained(html: &str) {
    let ours = format!("<script>{}</script>", cilp_report::report::RUNS_TABLE_SCRIPT);
    let rest = html.replacen(&ours, "", 1);
    assert!(!rest.contains("<script"), "page has a <script> element (or unescaped text)");
    for bad in ["fetch(", "XMLHttpRequest", "import(", "eval(", "innerHTML", "console."] {
        assert!(!ours.contains(bad), "the table script uses {bad}");
    }
    assert!(!html.contains("<link"), "page links a resource");
    assert!(!html.contains("url("), "page uses url()");
    assert!(!html.contains("@import"));
    for v in attr_values(html, "src") {
        assert!(v.starts_with("data:image/"), "image source is not a data URI: {}", &v[..v.len().min(80)]);
    }
    for v in attr_values(html, "href") {
        assert!(v.starts_with('#'), "link leaves the page: {v}");
    }
    // The SVG namespace of inline charts is a name, not a request.
    let rest = rest.replace(&format!("xmlns=\"{}\"", cilp_report::svg::SVG_NS), "");
    assert!(!rest.contains("http://") && !rest.contains("https://"), "page mentions a web address");
}
