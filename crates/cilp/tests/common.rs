//! Helpers shared by the end-to-end tests: run the real `cilp` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn cilp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cilp"));
    c.env_remove("CILP_TEST_ABORT_AT").env_remove("CILP_TEST_NAN_AT");
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
