//! Issue 17, end to end: checkpoint and weights reads refuse special files, `last.json` may only
//! name files inside its run's `checkpoints/`, a bit-flipped checkpoint is refused by checksum,
//! two `cilp train` processes never write one run folder, and CLI messages name real flags.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

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
    let out = cilp().args(train_args(&data, &runs, "r", 2)).env("CILP_TEST_ABORT_AT", "2:0").output().unwrap();
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
    let mut child = cilp().args(train_args(&data, &runs, "busy", 100000)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    // Wait until it has written an epoch (its folder, config and first metrics exist).
    let start = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|m| m.lines().count() >= 2) {
        assert!(child.try_wait().unwrap().is_none(), "the first run ended early");
        assert!(start.elapsed() < Duration::from_secs(300), "the first run did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second_resume = ["train", "--resume", "--out", s(&runs), "--name", "busy"];
    let mut second_force = train_args(&data, &runs, "busy", 2);
    second_force.push("--force".into());
    let second_force: Vec<&str> = second_force.iter().map(String::as_str).collect();
    for args in [&second_resume[..], &second_force[..]] {
        let t = Instant::now();
        let err = fails(args);
        assert!(t.elapsed() < Duration::from_secs(30), "not refused at once: {:?}", t.elapsed());
        assert!(err.contains(s(&run)) && err.contains(&format!("being written by process {pid}")), "{args:?}: {err}");
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
        (with("nvidia-lidar-classifier", &["--device", "cuda"]), "device cuda is not in this build"),
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

fn summary_of(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

fn metric_keys(run: &Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            (r["epoch"].as_u64().unwrap(), r["split"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// `--resume` applies the changes it allows (more epochs, a lower rate, a moved dataset: recorded
/// in the config), refuses the others naming the flag, resumes from another working directory
/// (the data folder is saved absolute), and says so when the run is already complete.
#[test]
fn resume_applies_allowed_changes_refuses_others_and_never_lies() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 8, 5);
    let runs = dir.path().join("runs");
    // Relative --data from the temporary folder: saved absolute.
    let out = cilp()
        .current_dir(dir.path())
        .args(["train", "--model", "nvidia-lidar-classifier", "--data", "data", "--out", "runs", "--name", "r", "--epochs", "1"])
        .args(["--batch-size", "8", "--lr", "0.001", "--seed", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = runs.join("r");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains(&format!("dir = \"{}\"", data.display())), "data folder not saved absolute: {cfg}");

    let resume = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["train", "--resume", "--out", s(&runs), "--name", "r"];
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    // Completed: says so, trains nothing.
    let out = run_args(&r(&resume(&[])));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already completed all 1 epochs") && err.contains("--epochs"), "{err}");
    assert_eq!(metric_keys(&run).len(), 2);

    // Refused, naming the flag; nothing changes.
    for (flag, value, field) in [
        ("--batch-size", "16", "batch_size"),
        ("--seed", "4", "seed"),
        ("--val-fraction", "0.5", "val_fraction"),
        ("--split", "nvidia", "kind"),
        ("--limit-per-class", "3", "limit_per_class"),
        ("--xyza", "spherical", "xyza"),
    ] {
        let err = fails(&r(&resume(&[flag, value])));
        assert!(err.contains(flag) && err.contains(field) && err.contains("cannot change when a run is resumed"), "{flag}: {err}");
    }
    assert_eq!(std::fs::read_to_string(run.join("config.toml")).unwrap(), cfg, "a refused resume changed the config");
    let err = fails(&r(&resume(&["--config", s(&run.join("config.toml"))])));
    assert!(err.contains("--config") && err.contains("--resume"), "{err}");

    // Allowed: more epochs at a lower rate from a moved dataset, from another directory.
    let moved = dir.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let out = cilp().current_dir("/").args(r(&resume(&["--epochs", "3", "--lr", "0.0001", "--data", s(&moved)]))).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("epochs 1 -> 3") && err.contains("lr 0.001 -> 0.0001") && err.contains("recorded in its config.toml"), "{err}");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("epochs = 3") && cfg.contains("lr = 0.0001") && cfg.contains(&format!("dir = \"{}\"", moved.display())), "{cfg}");
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let lrs: Vec<f64> = rows.iter().filter(|r| r["split"] == "train").map(|r| r["lr"].as_f64().unwrap()).collect();
    assert_eq!(lrs, [0.001, 0.0001, 0.0001], "the new rate applies from the resumed epoch on");
    let err = fails(&r(&resume(&["--epochs", "2"])));
    assert!(err.contains("fewer than the 3"), "{err}");
}

fn r(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn run_args(args: &[&str]) -> std::process::Output {
    cilp().args(args).output().unwrap()
}

/// Killed before its first checkpoint commit (here: `last.json` removed after epoch 1 as well),
/// a resumed run starts again at epoch 1 and lists every epoch once.
#[test]
fn resume_without_a_committed_checkpoint_drops_the_uncommitted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 8, 5);
    let runs = dir.path().join("runs");
    let out = cilp().args(train_args(&data, &runs, "r", 2)).env("CILP_TEST_ABORT_AT", "2:0").output().unwrap();
    assert!(!out.status.success(), "the abort hook must kill the run");
    let run = runs.join("r");
    assert_eq!(metric_keys(&run), [(1, "train".to_owned()), (1, "val".to_owned())]);
    std::fs::remove_file(run.join("checkpoints/last.json")).unwrap();
    let out = run_args(&["train", "--resume", "--out", s(&runs), "--name", "r"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("no committed checkpoint") && err.contains("2 uncommitted metric rows dropped"), "{err}");
    let keys = metric_keys(&run);
    assert_eq!(keys, [(1, "train".into()), (1, "val".into()), (2, "train".into()), (2, "val".into())], "rows duplicated or lost");
    assert_eq!(summary_of(&run)["status"], "completed");
}

/// SIGTERM and SIGINT mark the run `interrupted` with a one-line message, exit 128 + signal,
/// and `--resume` finishes it.
#[test]
fn sigterm_and_sigint_mark_the_run_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 16, 5);
    let runs = dir.path().join("runs");
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let name = format!("sig{signal}");
        let mut child = cilp().args(train_args(&data, &runs, &name, 10000)).stderr(Stdio::piped()).spawn().unwrap();
        let run = runs.join(&name);
        // Wait until the first epoch is committed (the run is being written).
        let t = Instant::now();
        while !run.join("checkpoints/last.json").is_file() {
            assert!(t.elapsed() < Duration::from_secs(120), "no checkpoint after 2 min");
            assert!(child.try_wait().unwrap().is_none(), "the run ended early");
            std::thread::sleep(Duration::from_millis(20));
        }
        let kill = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "SIG{signal}");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with(&format!("interrupted by SIG{signal}: marked")) && last.contains(&name) && last.contains("--resume"),
            "{err}"
        );
        let summary = summary_of(&run);
        assert_eq!(summary["status"], "interrupted", "{summary}");
        let msg = summary["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("interrupted by SIG{signal} at ")) && !msg.contains('\n'), "{msg}");
        // Continue it to a short end, two epochs past the last commit: the run completes, each
        // epoch listed once.
        let last: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("checkpoints/last.json")).unwrap()).unwrap();
        let end = last["epoch"].as_u64().unwrap() + 2;
        let out = run_args(&["train", "--resume", "--out", s(&runs), "--name", &name, "--epochs", &end.to_string()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary = summary_of(&run);
        assert_eq!(summary["status"], "completed", "{summary}");
        assert!(summary.get("message").is_none(), "{summary}");
        let mut keys = metric_keys(&run);
        let n = keys.len();
        keys.dedup();
        assert_eq!((keys.len(), n), (2 * end as usize, 2 * end as usize), "{keys:?}");
    }
}
