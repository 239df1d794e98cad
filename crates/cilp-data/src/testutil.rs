//! Test support: running a check in a child process under a hard memory limit.

/// Environment variable naming the test that runs as the memory-limited child.
const CHILD_ENV: &str = "CILP_DATA_TEST_LIMITED_CHILD";

/// Address-space limit of the child: 1 GiB, far below the 5 GB sparse files the tests make,
/// far above what the test binary needs.
const LIMIT_KIB: u64 = 1 << 20;

/// Runs `check` in a child process (this test binary, re-executed with `--exact test`) whose
/// address space is capped by `ulimit -v` at 1 GiB, and fails if the child fails. A reader
/// that regresses to reading a 5 GB sparse file whole then fails inside the child (allocation
/// failure) instead of taking 5 GB of the machine. `test` is the test's full path inside the
/// crate, e.g. `npy::tests::huge_sparse_file_is_refused_before_reading`. In the child, `check`
/// runs directly.
pub fn under_memory_limit(test: &str, check: impl FnOnce()) {
    if std::env::var(CHILD_ENV).is_ok_and(|t| t == test) {
        check();
        println!("\nCHILD-PASSED {test}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .output()
        .expect("re-run the test binary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains(&format!("CHILD-PASSED {test}")),
        "{test} failed in its memory-limited child ({:?}):\n{text}",
        out.status
    );
}
