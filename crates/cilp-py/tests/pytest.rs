//! Drives the Python side of cilp: assembles the `cilp` package from the extension cargo built
//! (`lib_cilp.so`, the same file maturin puts in a wheel as `cilp/_cilp.abi3.so`) and
//! `python/cilp/`, then runs pytest on `tests/python` and executes the four notebooks
//! (`notebooks/*.ipynb`, with nbclient) on a small generated dataset.
//!
//! Python comes from `CILP_PYTHON` (default `python3`) and needs numpy, pytest, pandas, tqdm,
//! matplotlib, nbclient, nbformat and ipykernel (`.ci/run` installs them). Without them the tests
//! print `skipped: ...`, unless `CI` is set, in which case they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // target/<profile>/deps/pytest-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn python() -> String {
    std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether Python has `modules`; if not, skip (or fail in CI) with a message.
fn python_has(modules: &[&str]) -> bool {
    let code = format!("import {}", modules.join(", "));
    let ok = Command::new(python()).args(["-c", &code]).output().is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{} cannot import {}: Python tests skipped", python(), modules.join(", "));
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
    }
    ok
}

/// The package folder (`<tmp>/site/cilp/...`) and the `cilp` binary.
fn package(tmp: &Path) -> (PathBuf, PathBuf) {
    let target = target_dir();
    // `cargo test` leaves the library it builds for the tests in deps/; `cargo build` copies it
    // up one level. The one in deps/ is this test run's.
    let lib = [target.join("deps/lib_cilp.so"), target.join("lib_cilp.so")].into_iter().find(|p| p.is_file());
    let lib = lib.unwrap_or_else(|| panic!("no lib_cilp.so in {} or its deps/: cargo builds it with this test", target.display()));
    let bin = target.join("cilp");
    assert!(bin.is_file(), "{} is missing: run `cargo build -p cilp` (cargo test --workspace builds it)", bin.display());
    let site = tmp.join("site");
    let pkg = site.join("cilp");
    std::fs::create_dir_all(&pkg).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/cilp");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, pkg.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(&lib, pkg.join("_cilp.abi3.so")).unwrap();
    (site, bin)
}

fn generate(bin: &Path, out: &Path, per_class: usize) {
    let o = Command::new(bin)
        .args(["generate", "--out"])
        .arg(out)
        .args(["--per-class", &per_class.to_string(), "--seed", "5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn pytest_of_the_python_api() {
    if !python_has(&["numpy", "pytest", "pandas"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (site, bin) = package(tmp.path());
    let data = tmp.path().join("data");
    generate(&bin, &data, 12);
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let o = Command::new(python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&tests)
        .env("PYTHONPATH", &site)
        .env("CILP_BIN", &bin)
        .env("CILP_TEST_DATA", &data)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("{out}");
    assert!(o.status.success(), "pytest failed:\n{out}");
    assert!(out.contains(" passed"), "{out}");
}

#[test]
fn the_four_notebooks_run() {
    if !python_has(&["numpy", "nbclient", "nbformat", "ipykernel", "matplotlib", "pandas"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (site, bin) = package(tmp.path());
    let data = tmp.path().join("data");
    generate(&bin, &data, 16);
    let notebooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notebooks").canonicalize().unwrap();
    let script = "import sys, nbformat\nfrom nbclient import NotebookClient\n\
                  for path in sys.argv[1:]:\n\
                  \x20   nb = nbformat.read(path, as_version=4)\n\
                  \x20   NotebookClient(nb, timeout=900, kernel_name='python3').execute()\n\
                  \x20   print('ran', path, flush=True)\n";
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&notebooks).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "ipynb")).collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    let o = Command::new(python())
        .args(["-c", script])
        .args(&names)
        .env("PYTHONPATH", &site)
        .env("CILP_DATA", &data)
        .env("CILP_NOTEBOOK_SMALL", "1")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "a notebook failed:\n{out}");
    assert_eq!(out.matches("ran ").count(), 4, "{out}");
}
