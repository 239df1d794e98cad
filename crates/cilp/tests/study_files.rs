//! The files the studies write (summarised by `cilp_studies`, written by
//! `cilp_report::study_files`), as `cilp run` leaves them: the Markdown and CSV tables, every SVG
//! chart opens on its own (as `results.md` links it) and the run report built from the study
//! folders (its charts embedded as data URIs) shows every image in headless Chromium, with no
//! console message.
//!
//! The XML check needs Python (`$CILP_PYTHON`, default `python3`; only its standard library);
//! the browser checks need Chromium (see `cilp-report/tests/common/browser.rs`). Either is
//! skipped with a message when missing, unless `$CI` is set, in which case the test fails.

#[path = "../../cilp-report/tests/common/browser.rs"]
mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

use cilp_report::study_files;
use cilp_studies::runner::{ModelRuns, SeedRun, StudyRuns, run_name};
use cilp_studies::{StudySummary, ablation_summary, best_fusion_model, fusion_summary};
use cilp_track::{CreateMode, EpochMetrics, RunDir, RunStatus, RunSummary, names};

const EPOCHS: usize = 4;

fn model(name: &str, params: u64, base: f64) -> ModelRuns {
    let runs = [51u64, 52, 53]
        .iter()
        .enumerate()
        .map(|(i, &seed)| {
            let curve: Vec<f64> = (1..=EPOCHS).map(|e| base * (1.0 + 0.1 * i as f64) / e as f64).collect();
            SeedRun {
                seed,
                run: run_name(name, seed),
                best_val_loss: curve[EPOCHS - 1],
                final_val_accuracy: 0.9 + 0.01 * i as f64,
                best_epoch_val_accuracy: None,
                total_seconds: 10.0 + i as f64,
                seconds_per_epoch: 2.5,
                peak_memory_mb: Some(500.0),
                val_loss_curve: curve,
            }
        })
        .collect();
    ModelRuns { model: name.into(), parameters: params, runs, point: None }
}

/// The run directories of a study (what the runner trains), so that the report lists them.
fn write_run_dirs(runs_root: &Path, study: &str, st: &StudyRuns) {
    for m in &st.models {
        for r in &m.runs {
            let mut run = RunDir::create(runs_root, &format!("{study}/{}", r.run), CreateMode::New).unwrap();
            run.write_config(&serde_json::json!({"model": m.model, "seed": r.seed, "epochs": EPOCHS})).unwrap();
            let mut s = RunSummary::started(run.name(), "train");
            s.model = m.model.clone();
            s.parameters = m.parameters;
            s.seed = r.seed;
            for (e, &loss) in r.val_loss_curve.iter().enumerate() {
                let mut tr = EpochMetrics::new(e + 1, names::TRAIN, loss * 0.9);
                tr.epoch_seconds = r.seconds_per_epoch;
                let mut va = EpochMetrics::new(e + 1, names::VAL, loss);
                va.accuracy = Some(r.final_val_accuracy - 0.05 * (EPOCHS - 1 - e) as f64);
                run.log_epoch(&[tr, va]).unwrap();
            }
            s.update_from_metrics(&run.read_metrics().unwrap());
            s.total_seconds = r.total_seconds;
            s.finish(RunStatus::Completed);
            run.write_summary(&s).unwrap();
        }
    }
}

/// A runs folder with a fusion study and an ablation, as `cilp run` writes them; returns the
/// root and every SVG file the studies wrote.
fn write_studies(root: &Path) -> (PathBuf, Vec<PathBuf>) {
    let runs = root.join("runs");
    let fusion = StudyRuns::example(vec![
        model("early-fusion", 6_560_000, 0.9),
        model("late-fusion", 13_147_202, 0.5),
        model("intermediate-concat", 13_015_952, 0.6),
        model("intermediate-add", 6_615_952, 0.7),
        model("intermediate-hadamard", 6_615_952, 0.8),
    ]);
    let ablation = StudyRuns::example(vec![
        model("late-fusion", 13_147_202, 0.5),
        model("late-fusion-strided", 13_383_802, 0.55),
        model("late-fusion-strided-conv", 13_147_202, 0.65),
    ]);
    let mut svgs = Vec::new();
    for (name, st) in [("fusion", &fusion), ("ablation", &ablation)] {
        write_run_dirs(&runs, name, st);
        let out = runs.join(name);
        let mut s: StudySummary = if name == "fusion" { fusion_summary(st) } else { ablation_summary(st) };
        study_files::write(&out, &mut s).unwrap();
        assert_eq!(s.charts.len(), 6, "{name}");
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        for c in &s.charts {
            assert!(md.contains(&format!("]({c})")), "results.md links {c}");
            if c.ends_with(".svg") {
                svgs.push(out.join(c));
            }
        }
    }
    assert_eq!(svgs.len(), 12);
    (runs, svgs)
}

/// The tables: results.md with the summary's table and one comparison table (fusion) or one
/// table per strided style (ablation), the CSVs with their headers and one row per model, run or
/// comparison, and summary.json read back for the ablation's default model.
#[test]
fn study_tables_as_markdown_csv_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (runs, _) = write_studies(tmp.path());
    let (fusion, ablation) = (runs.join("fusion"), runs.join("ablation"));
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));

    let md = read(fusion.join(study_files::RESULTS_MD));
    assert!(md.starts_with("# Fusion comparison (quick preset, 3 seed(s))\n\npreset quick, data data "), "{md}");
    assert!(md.contains("| model | parameters | best val loss | val accuracy (best epoch) |"), "{md}");
    assert!(md.contains("| late-fusion | 13,147,202 | "), "{md}");
    assert!(md.contains("## Each model against the best (late-fusion)"), "{md}");
    assert!(
        md.contains(
            "| model | metric | model mean | baseline mean | difference | 95% CI (paired) | paired t | df | p | Welch p | detectable | verdict |"
        ),
        "{md}"
    );
    // The models share their seeds: each comparison carries the paired test and its interval.
    assert!(md.contains("paired t-test") && md.contains(" | 2 | "), "{md}");
    assert!(md.contains("larger than seed spread") && md.contains("within seed spread"));
    assert!(md.ends_with("![peak_memory.svg](peak_memory.svg)\n"), "{md}");
    let csv = read(fusion.join(study_files::RESULTS_CSV));
    assert_eq!(csv.lines().count(), 6);
    assert!(csv.starts_with("model,seeds,best_val_loss_mean,best_val_loss_std,val_accuracy_mean,val_accuracy_std,parameters,"), "{csv}");
    assert!(csv.lines().next().unwrap().ends_with(",p_accuracy_vs_best,verdict_accuracy_vs_best"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("late-fusion,3,") && l.ends_with(",,best,,best")), "{csv}");
    let runs_csv = read(fusion.join(study_files::RUNS_CSV));
    assert_eq!(runs_csv.lines().count(), 16);
    assert!(runs_csv.starts_with("model,seed,run,parameters,best_val_loss,best_epoch_val_accuracy,final_val_accuracy,"), "{runs_csv}");
    // No best-epoch accuracy recorded: that cell is empty, the last epoch's follows.
    assert!(runs_csv.lines().nth(1).unwrap().starts_with("early-fusion,51,early-fusion-s51,6560000,0.225,,0.9,10,2.5,500"), "{runs_csv}");
    assert_eq!(best_fusion_model(&fusion).unwrap(), "late-fusion");
    let table: serde_json::Value = serde_json::from_str(&read(fusion.join("study_table.json"))).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&read(fusion.join(study_files::SUMMARY_JSON))).unwrap();
    for key in ["title", "columns", "rows", "notes", "charts"] {
        assert_eq!(table[key], summary[key], "{key}");
    }
    assert_eq!(summary["study"], "fusion");

    let md = read(ablation.join(study_files::RESULTS_MD));
    assert_eq!(md.matches("| metric | MaxPool2d | strided | difference | p | verdict |").count(), 2, "{md}");
    assert!(md.contains("## late-fusion-strided (separate stride-2 conv after each block) vs late-fusion"), "{md}");
    let csv = read(ablation.join(study_files::RESULTS_CSV));
    assert_eq!(csv.lines().count(), 13, "{csv}");
    assert!(csv.starts_with("strided_model,metric,maxpool_mean,maxpool_std,strided_mean,strided_std,difference,welch_t,"), "{csv}");
    // Constant values: Welch and the paired test see no spread (t = inf, written empty), the
    // interval is the difference itself and nothing smaller is detectable.
    assert!(
        csv.contains("\nlate-fusion-strided,parameters,13147202,0,13383802,0,236600,,4,0,,,2,0,236600,236600,0,larger than seed spread\n"),
        "{csv}"
    );
    assert!(best_fusion_model(&ablation).is_err());
}

/// Every SVG a study writes is an XML document whose root is `svg` in the SVG namespace: what a
/// browser needs to open it as a file or an `<img>` (without the namespace it renders inline in
/// HTML only). Parsed by Python's standard-library XML parser.
#[test]
fn study_svgs_are_xml_in_the_svg_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, svgs) = write_studies(tmp.path());
    for f in &svgs {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "), "{}", f.display());
    }
    let python = std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, xml.etree.ElementTree as ET\n\
                  bad = [f for f in sys.argv[1:] if ET.parse(f).getroot().tag != '{http://www.w3.org/2000/svg}svg']\n\
                  print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n";
    let out = match Command::new(&python).arg("-c").arg(script).args(&svgs).output() {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("{python} not runnable ({e}): XML check skipped");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("skipped: {msg}");
            return;
        }
    };
    assert!(
        out.status.success(),
        "SVG files that are not SVG documents:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The report of a runs folder holding the studies: every image decodes in Chromium, every
/// study SVG opens on its own, and the page logs nothing.
#[test]
fn report_of_the_studies_shows_every_image_in_chromium() {
    let Some(chromium) = browser::chromium_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("CILP_SCREENSHOT_DIR").map(PathBuf::from);
    let (runs, svgs) = write_studies(tmp.path());
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("studies-report.html");
    cilp_report::report(&runs, &page, &cilp_report::ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("src=\"data:image/svg+xml;base64,").count(), 12, "both studies' charts embedded");
    // One comparison chart pair per study (no chart of all runs), each model with its seed band.
    for study in ["fusion", "ablation"] {
        assert!(html.contains(&format!("{study}: validation loss")), "{study} chart");
    }
    assert!(html.contains("Validation curves per model (3 runs each): the line is the mean"));

    let profile = tmp.path().join("profile");
    let (n, broken, problems) = browser::images_that_fail(&chromium, &page, &profile);
    assert_eq!(n, 12, "images in the DOM");
    assert!(broken.is_empty(), "images that do not decode: {broken:?}");
    assert!(problems.is_empty(), "console problems:\n{}", problems.join("\n"));
    let png = dir.join("studies-report.png");
    let log = browser::screenshot(&chromium, &page, &png, &profile, (1280, 4000));
    let problems = browser::problems(&log);
    assert!(problems.is_empty(), "console problems:\n{}", problems.join("\n"));

    let broken = browser::files_that_fail_as_images(&chromium, &svgs, &dir, &profile);
    assert!(broken.is_empty(), "study SVG files that do not open on their own: {broken:?}");
    if keep.is_some() {
        eprintln!("kept {} and {}", page.display(), png.display());
    }
}
