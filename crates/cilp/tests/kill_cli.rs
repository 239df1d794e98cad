//! End to end: `cilp run --preset smoke` killed with SIGKILL at seeded random moments and started
//! again finishes with the same results as an uninterrupted run. In a test binary of its own, so
//! that no other test shares the machine while the kill moments are timed.

mod common;

use common::*;
use serde_json::Value;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
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
            (0.02 + 0.93 * (state >> 11) as f64 / (1u64 << 53) as f64) * total
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
