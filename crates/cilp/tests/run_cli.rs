//! End to end: the main job `cilp run` on a small generated dataset, with the smoke preset (one
//! epoch, one seed, 40 pairs per class per stage), then again to check that finished studies are
//! reused rather than retrained.

mod common;

use common::*;
use serde_json::Value;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn run_smoke_does_every_stage_and_writes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 48, 3);
    let runs = tmp.path().join("runs");
    let fixture = lidar_cnn_fixture();
    // Two jobs: the studies' runs two at a time, the assessment in a process of its own beside them.
    let args = ["run", "--preset", "smoke", "--data", s(&data), "--out", s(&runs), "--lidar-classifier", s(&fixture), "--jobs", "2"];
    let out = run(&args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("assess: started beside the studies in a process of its own"), "{stderr}");
    // (Whether the fusion study still saw it running when it started depends on timing; the
    // one-job-fewer rule is unit-tested in cilp-studies.)
    assert!(stderr.contains("runs in worker processes, 2 at a time"), "{stderr}");
    // Its output went to assess.log; its thresholds table still reaches stdout.
    let log = std::fs::read_to_string(runs.join("assess.log")).unwrap();
    assert!(log.contains("CILP validation loss"), "{log}");
    let table: Vec<&str> = log.lines().filter(|l| l.starts_with('|')).collect();
    assert!(table.len() >= 4, "no thresholds table in assess.log: {log}");
    for row in &table {
        assert!(stdout.contains(row), "stdout lacks the assessment's row {row}: {stdout}");
    }
    let html = runs.join("report.html");
    assert!(stdout.contains(&format!("report: {}", html.display())), "{stdout}");
    // The last line grades the assessment; the smoke preset reports but never grades.
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("assessment: not graded (smoke preset") && last.contains("min batch accuracy"), "{stdout}");

    // Every stage left its results.
    assert!(runs.join("explore/stats.json").is_file());
    assert!(runs.join("explore/index.html").is_file());
    let fusion = read_json(&runs.join("fusion/summary.json"));
    let models: Vec<&str> = fusion["models"].as_array().unwrap().iter().map(|m| m["model"].as_str().unwrap()).collect();
    for m in ["early-fusion", "late-fusion", "intermediate-concat", "intermediate-add", "intermediate-hadamard"] {
        assert!(models.contains(&m), "{m} missing from the fusion study: {models:?}");
    }
    // The smoke preset's overrides reached the studies: one seed, one epoch, 40 pairs per class.
    let best = fusion["baseline"].as_str().unwrap().to_owned();
    let run = runs.join("fusion").join(format!("{best}-s51"));
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("epochs = 1") && cfg.contains("limit_per_class = 40"), "{cfg}");
    assert!(!runs.join("fusion").join(format!("{best}-s52")).exists(), "smoke runs one seed");
    let ablation = read_json(&runs.join("ablation/summary.json"));
    assert_eq!(ablation["baseline"], best.as_str(), "the ablation uses the fusion study's best model");
    let assess = read_json(&runs.join("assess/summary.json"));
    assert_eq!(assess["lidar_classifier"]["source"], "pretrained");
    assert_eq!(assess["classifier_batch_accuracies"].as_array().unwrap().len(), 5);
    for k in ["cilp_val_loss", "projector_val_mse", "classifier_accuracy"] {
        assert!(assess["passed"][k].is_boolean(), "passed.{k}");
    }

    // The report holds every part, is self-contained, and names the stages' runs.
    let page = std::fs::read_to_string(&html).unwrap();
    for part in ["Fusion comparison", "MaxPool2d vs strided", "assess/cilp", "assess/rgb-to-lidar", "id=\"data\""] {
        assert!(page.contains(part), "report lacks {part}");
    }
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "report makes network requests");

    // A second run reuses every finished study: no run directory is trained again.
    // (Training is deterministic, so compare modification times rather than contents.)
    let stamp = |p: &std::path::Path| std::fs::metadata(p.join("metrics.jsonl")).unwrap().modified().unwrap();
    let before = (stamp(&run), stamp(&runs.join("assess/projector")));
    let out = cilp().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reusing the finished assessment"), "{err}");
    assert_eq!(before, (stamp(&run), stamp(&runs.join("assess/projector"))), "finished runs were retrained");
    assert!(html.is_file());

    // With one job the assessment runs in this process after the studies: the same results.
    let one = tmp.path().join("one");
    let args1 = ["run", "--preset", "smoke", "--data", s(&data), "--out", s(&one), "--lidar-classifier", s(&fixture), "--jobs", "1"];
    let out = common::run(&args1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("beside the studies") && !one.join("assess.log").exists(), "{err}");
    for f in ["fusion/summary.json", "ablation/summary.json", "assess/summary.json"] {
        assert_eq!(
            without_timing(&read_json(&runs.join(f))),
            without_timing(&read_json(&one.join(f))),
            "{f}: --jobs 2 and --jobs 1 differ"
        );
    }
}
