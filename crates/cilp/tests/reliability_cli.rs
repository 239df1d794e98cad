//! Issue 17, end to end: checkpoint and weights reads refuse special files, `last.json` may only
//! name files inside its run's `checkpoints/`, a bit-flipped checkpoint is refused by checksum,
//! two `cilp train` processes never write one run folder, and CLI messages name real flags.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn train_args<'a>(data: &'a Path, out: &'a Path, name: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--model", "nvidia-lidar-classifier", "--data", s(data), "--out", s(out), "--name", name, "--epochs",
        epochs, "--batch-size", "8", "--lr", "0.001", "--seed", "3",
    ]
}

/// `--checkpoint /dev/zero` and `--weights /dev/zero` used to read until memory ran out.
#[test]
fn special_files_given_as_weights_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let depth = dir.path().join("x.npy");
    std::fs::write(&depth, npy_bytes("<f4", "(64, 64)", &f32_bytes(&[30.0; 4096]))).unwrap();
    for flag in ["--checkpoint", "--weights"] {
        let err = fails(&["predict", "--model", "nvidia-lidar-classifier", flag, "/dev/zero", s(&depth)]);
        assert!(err.contains("/dev/zero") && err.contains("character device") && err.contains("not a regular file"), "{flag}: {err}");
    }
}

/// A `last.json` naming a file outside `checkpoints/` is refused; a bit-flipped checkpoint is
/// refused with "checksum mismatch"; a `last.json` without checksums (older cilp) still resumes.
#[test]
fn resume_checks_the_names_and_checksums_in_last_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 8, 5);
    let runs = dir.path().join("runs");
    // Killed (abort: no cleanup) at the start of epoch 2: epoch 1 is committed, resumable.
    let out = cilp().args(train_args(&data, &runs, "r", "2")).env("CILP_TEST_ABORT_AT", "2:0").output().unwrap();
    assert!(!out.status.success(), "the abort hook must kill the run");
    let ckpt = runs.join("r/checkpoints");
    let last = ckpt.join("last.json");
    let good = std::fs::read_to_string(&last).unwrap();
    let state: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert_eq!(state["model_sha256"].as_str().map(str::len), Some(64), "{state}");
    assert_eq!(state["epoch"], 1, "{state}");
    let resume = ["train", "--resume", "--out", s(&runs), "--name", "r"];

    let mut evil = state.clone();
    evil["model_file"] = "../../../../etc/passwd".into();
    std::fs::write(&last, evil.to_string()).unwrap();
    let err = fails(&resume);
    assert!(err.contains("last.json") && err.contains("../../../../etc/passwd") && err.contains("not a plain file name"), "{err}");

    std::fs::write(&last, &good).unwrap();
    let model = ckpt.join(state["model_file"].as_str().unwrap());
    let pristine = std::fs::read(&model).unwrap();
    let mut flipped = pristine.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&model, &flipped).unwrap();
    let err = fails(&resume);
    assert!(err.contains(s(&model)) && err.contains("checksum mismatch"), "{err}");

    // As an older cilp wrote it: no checksums. Read unchecked, the run resumes.
    std::fs::write(&model, &pristine).unwrap();
    let mut old = state.clone();
    let obj = old.as_object_mut().unwrap();
    obj.remove("model_sha256");
    obj.remove("optim_sha256");
    std::fs::write(&last, old.to_string()).unwrap();
    ok(&resume);
    let now: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&last).unwrap()).unwrap();
    assert_eq!(now["epoch"], 2);
    assert!(now["model_sha256"].is_string(), "the next save records checksums again: {now}");
}

/// While one `cilp train` writes a run folder, a second one (`--resume` or `--force`) is refused
/// at once naming the first's pid, and writes nothing into it; once the first is gone the lock is
/// free.
#[test]
fn a_second_train_on_a_busy_run_folder_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 12, 7);
    let runs = dir.path().join("runs");
    let run = runs.join("busy");
    let mut child = cilp()
        .args(train_args(&data, &runs, "busy", "100000"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until it has written an epoch (its folder, config and first metrics exist).
    let start = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|m| m.lines().count() >= 2) {
        assert!(child.try_wait().unwrap().is_none(), "the first run ended early");
        assert!(start.elapsed() < Duration::from_secs(300), "the first run did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second_resume = ["train", "--resume", "--out", s(&runs), "--name", "busy"];
    let mut second_force = train_args(&data, &runs, "busy", "2");
    second_force.push("--force");
    for args in [&second_resume[..], &second_force[..]] {
        let t = Instant::now();
        let err = fails(args);
        assert!(t.elapsed() < Duration::from_secs(30), "not refused at once: {:?}", t.elapsed());
        assert!(
            err.contains(s(&run)) && err.contains(&format!("being written by process {pid}")),
            "{args:?}: {err}"
        );
        assert!(run.join("config.toml").is_file(), "--force deleted the busy folder");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // No epoch was written twice: the second processes never appended.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut seen = std::collections::HashSet::new();
    for line in metrics.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(row) = serde_json::from_str::<serde_json::Value>(line) else { continue }; // a torn last line
        let key = (row["epoch"].as_u64(), row["split"].to_string());
        assert!(seen.insert(key.clone()), "duplicated metrics row {key:?} in\n{metrics}");
    }
    // The killed holder's lock died with it.
    let lock = cilp_track::FolderLock::acquire(&run, "run folder").expect("the lock is free after the holder died");
    drop(lock);
}

/// Flag values and messages: `--epochs -1` is an invalid value (not "unexpected argument"),
/// `--per-class 0` is refused before anything is written, and errors name flags that exist.
#[test]
fn cli_values_and_messages_name_real_flags() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&["train", "--model", "nvidia-lidar-classifier", "--epochs", "-1"]);
    assert!(err.contains("--epochs") && err.contains("must be a non-negative integer") && !err.contains("unexpected argument"), "{err}");
    let empty = dir.path().join("empty");
    let err = fails(&["generate", "--out", s(&empty), "--per-class", "0"]);
    assert!(err.contains("--per-class") && err.contains("at least 1"), "{err}");
    assert!(!empty.exists(), "nothing is written for --per-class 0");
    let huge = dir.path().join("huge");
    let err = fails(&["generate", "--out", s(&huge), "--per-class", "100000000"]);
    assert!(err.contains("need at least") && err.contains("free") && err.contains("--per-class"), "{err}");
    assert!(!huge.exists());

    let data = generate(dir.path(), "data", 2, 1);
    let err = fails(&["generate", "--out", s(&data), "--per-class", "2"]);
    assert!(err.contains("--force") && !err.contains("set overwrite"), "{err}");

    let missing = dir.path().join("no-such-run");
    let err = fails(&["runs", "compare", s(&missing)]);
    assert!(err.contains(s(&missing)) && err.contains("does not exist"), "{err}");

    std::fs::remove_dir_all(data.join("cubes")).unwrap();
    let err = fails(&["info", "--data", s(&data)]);
    assert!(err.contains("class folder missing") && !err.contains("pass the classes explicitly"), "{err}");
}

/// Settings that cannot train are refused before the run folder is created (a folder holding
/// only a config used to block the next try); so are splits with an empty side and a third
/// class folder (which used to panic inside burn).
#[test]
fn untrainable_settings_leave_no_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 4, 2);
    let runs = dir.path().join("runs");
    let base = |model: &'static str| -> Vec<String> {
        ["train", "--model", model, "--data", s(&data), "--out", s(&runs), "--name", "t", "--epochs", "1", "--batch-size", "4"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let with = |model: &'static str, extra: &[&str]| {
        let mut a = base(model);
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (base("projector"), "not a classifier"),
        (base("cilp"), "not a classifier"),
        (with("nvidia-lidar-classifier", &["--device", "wgpu"]), "unknown device"),
        (with("nvidia-lidar-classifier", &["--val-fraction", "0.001"]), "0 validation"),
        (with("nvidia-lidar-classifier", &["--val-fraction", "0.999"]), "0 training"),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!runs.join("t").exists(), "{args:?} left a run folder");
    }
    // A third class folder: refused at load, naming it.
    copy_dir(&data.join("cubes"), &data.join("cones"));
    let args = base("nvidia-lidar-classifier");
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains(s(&data.join("cones"))) && err.contains("exactly 2"), "{err}");
    assert!(!runs.join("t").exists());
}
