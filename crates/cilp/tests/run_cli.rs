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
    let args = ["run", "--preset", "smoke", "--data", s(&data), "--out", s(&runs), "--lidar-classifier", s(&fixture)];
    let stdout = ok(&args);
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
}

/// What must not depend on when (or whether) the job was killed: every number but times,
/// memory and machine facts. Removes keys that hold those, and comparisons of those metrics.
fn without_timing(v: &Value) -> Value {
    const TIMING: [&str; 9] = ["seconds", "peak_memory", "samples_per_s", "wall", "elapsed", "_at", "git_commit", "notes", "rows"];
    let timing = |k: &str| TIMING.iter().any(|t| k.contains(t));
    match v {
        Value::Object(m) => Value::Object(m.iter().filter(|(k, _)| !timing(k)).map(|(k, x)| (k.clone(), without_timing(x))).collect()),
        Value::Array(a) => {
            Value::Array(a.iter().filter(|x| !x.get("metric").and_then(Value::as_str).is_some_and(timing)).map(without_timing).collect())
        }
        other => other.clone(),
    }
}

/// Every file under `dir` (relative paths), sorted.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The (epoch, split, loss, accuracy) rows of a metrics.jsonl.
fn metric_rows(p: &std::path::Path) -> Vec<(u64, String, String, String)> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (r["epoch"].as_u64().unwrap(), r["split"].as_str().unwrap().to_owned(), r["loss"].to_string(), r["accuracy"].to_string())
        })
        .collect()
}

#[test]
fn killed_anywhere_the_main_job_still_finishes_with_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 48, 3);
    let fixture = lidar_cnn_fixture();
    let job = |out: &std::path::Path| {
        let mut c = cilp();
        c.args(["run", "--preset", "smoke", "--data", s(&data), "--out", s(out), "--lidar-classifier", s(&fixture)]);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        c
    };
    // Uninterrupted, timed: the kills land anywhere within that time.
    let reference = tmp.path().join("reference");
    let t = std::time::Instant::now();
    let out = job(&reference).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let total = t.elapsed().as_secs_f64();

    // SIGKILL at five seeded random moments of the job's progress, restarting it each time: the
    // moments are sorted and each run is killed after the gap to the next one, so the kills
    // spread over the stages (a restart redoes little). A run that ends before its kill just ends.
    let cut = tmp.path().join("cut");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut moments: Vec<f64> = (0..5)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (0.02 + 0.96 * (state >> 11) as f64 / (1u64 << 53) as f64) * total
        })
        .collect();
    moments.sort_by(f64::total_cmp);
    let mut killed = 0;
    let mut previous = 0.0;
    for at in moments {
        let gap = (at - previous).max(0.2);
        previous = at;
        let mut child = job(&cut).spawn().unwrap();
        let t = std::time::Instant::now();
        while t.elapsed().as_secs_f64() < gap && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait_with_output().unwrap();
    }
    assert!(killed >= 3, "only {killed} of 5 kills landed before the job ended");
    let out = job(&cut).output().unwrap();
    assert!(out.status.success(), "the job did not finish after being killed: {}", String::from_utf8_lossy(&out.stderr));

    // The same files, no temporary ones, and the same results in each.
    let files = files_below(&cut);
    let temps: Vec<_> = files.iter().filter(|p| p.to_string_lossy().contains(".tmp.")).collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    let is_result = |p: &&std::path::PathBuf| !p.to_string_lossy().contains("events.out.tfevents") && !p.to_string_lossy().contains("/.");
    let a: Vec<_> = files_below(&reference).into_iter().filter(|p| is_result(&p)).collect();
    let b: Vec<_> = files.iter().filter(is_result).cloned().collect();
    assert_eq!(a, b, "the interrupted job left other files than the uninterrupted one");
    for study in ["fusion/summary.json", "ablation/summary.json", "assess/summary.json"] {
        assert_eq!(without_timing(&read_json(&reference.join(study))), without_timing(&read_json(&cut.join(study))), "{study} differs");
    }
    let mut runs = 0;
    for p in a.iter().filter(|p| p.ends_with("metrics.jsonl")) {
        let (x, y) = (metric_rows(&reference.join(p)), metric_rows(&cut.join(p)));
        let mut keys: Vec<_> = y.iter().map(|r| (r.0, r.1.clone())).collect();
        keys.dedup();
        assert_eq!(keys.len(), y.len(), "{}: duplicated metric rows", p.display());
        assert_eq!(x, y, "{}: other metric rows than the uninterrupted run", p.display());
        runs += 1;
    }
    // Five fusion runs, three of the ablation, three assessment stages.
    assert!(runs >= 11, "only {runs} runs compared");
}
