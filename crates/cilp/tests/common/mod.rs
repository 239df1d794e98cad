//! Helpers shared by the end-to-end tests: run the real `cilp` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn cilp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cilp"));
    c.env_remove("CILP_TEST_ABORT_AT").env_remove("CILP_TEST_NAN_AT");
    // Every epoch commits, so that a test killing a run knows which epoch it continues from
    // (`train_cli.rs` checks the default, a commit at most once a minute).
    c.env("CILP_CHECKPOINT_EVERY", "0");
    c
}

pub fn run(args: &[&str]) -> Output {
    cilp().args(args).output().expect("cilp binary runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "cilp {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs cilp expecting failure; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "cilp {args:?} should fail but succeeded: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "cilp {args:?} panicked: {err}");
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates a small dataset once per test binary run into `dir/name`.
pub fn generate(dir: &Path, name: &str, per_class: usize, seed: u64) -> PathBuf {
    let out = dir.join(name);
    ok(&["generate", "--out", s(&out), "--per-class", &per_class.to_string(), "--seed", &seed.to_string()]);
    out
}

/// Workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// NVIDIA's pretrained LiDAR classifier in ../shared (the tests never copy it into the repo).
pub fn lidar_cnn_fixture() -> PathBuf {
    let p = workspace_root().join("../shared/fixtures/lidar_cnn.pt");
    assert!(
        p.exists(),
        "missing fixture {}: this test needs NVIDIA's pretrained lidar_cnn.pt at ../shared/fixtures/ beside the repository",
        p.display()
    );
    p
}

/// Copies a directory tree (a dataset) so that a test can corrupt its copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A `.npy` file (format 1.0) with the given dtype descriptor, shape literal (e.g. `(64, 64)`)
/// and raw little-endian data, written by hand so tests can build malformed ones.
pub fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(data);
    v
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `cilp train` of NVIDIA's LiDAR classifier with the end-to-end tests' small settings
/// (batch 8, Adam 1e-3, seed 3).
pub fn train_args(data: &Path, out: &Path, name: &str, epochs: usize) -> Vec<String> {
    [
        "train",
        "--model",
        "nvidia-lidar-classifier",
        "--data",
        s(data),
        "--out",
        s(out),
        "--name",
        name,
        "--epochs",
        &epochs.to_string(),
        "--batch-size",
        "8",
        "--lr",
        "0.001",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What must not depend on when (or whether) the job was killed: every number but times,
/// memory and machine facts. Removes keys that hold those, and comparisons of those metrics.
pub fn without_timing(v: &serde_json::Value) -> serde_json::Value {
    const TIMING: [&str; 9] = ["seconds", "peak_memory", "samples_per_s", "wall", "elapsed", "_at", "git_commit", "notes", "rows"];
    let timing = |k: &str| TIMING.iter().any(|t| k.contains(t));
    match v {
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.iter().filter(|(k, _)| !timing(k)).map(|(k, x)| (k.clone(), without_timing(x))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.iter().filter(|x| !x.get("metric").and_then(serde_json::Value::as_str).is_some_and(timing)).map(without_timing).collect(),
        ),
        other => other.clone(),
    }
}
