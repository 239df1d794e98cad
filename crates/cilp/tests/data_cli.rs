//! End-to-end tests of `cilp generate` and `cilp info`, including hostile input.

mod common;

use common::*;

#[test]
fn generate_is_deterministic_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), "a", 12, 7);
    let b = generate(dir.path(), "b", 12, 7);
    let c = generate(dir.path(), "c", 12, 8);
    for rel in ["cubes/rgb/0003.png", "spheres/lidar/0011.npy", "cubes/azimuth.npy", "spheres/zenith.npy"] {
        let fa = std::fs::read(a.join(rel)).unwrap();
        assert_eq!(fa, std::fs::read(b.join(rel)).unwrap(), "{rel} differs between runs with the same seed");
        if rel.contains("0003") || rel.contains("0011") {
            assert_ne!(fa, std::fs::read(c.join(rel)).unwrap(), "{rel} identical across seeds");
        }
    }
    let v: serde_json::Value = serde_json::from_str(&ok(&["info", "--data", s(&a), "--json"])).unwrap();
    assert_eq!(v["pairs"], 24);
    assert_eq!(v["pairs_per_class"]["cubes"], 12);
    assert_eq!(v["pairs_per_class"]["spheres"], 12);
    // Refuses to overwrite a dataset without --force.
    let err = fails(&["generate", "--out", s(&a), "--per-class", "2"]);
    assert!(err.contains(s(&a)), "{err}");
}

#[test]
fn unpaired_files_are_reported_not_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = generate(dir.path(), "d", 6, 1);
    std::fs::remove_file(d.join("spheres/rgb/0002.png")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&["info", "--data", s(&d), "--json"])).unwrap();
    assert_eq!(v["pairs"], 11);
    let report = v["report"].to_string();
    assert!(report.contains("0002"), "unpaired stem must be named in the report: {report}");
    // The text output says it in words, naming the file.
    let text = ok(&["info", "--data", s(&d)]);
    assert!(text.contains("warning: spheres: 1 LiDAR file(s) have no RGB partner and were skipped (e.g. 0002)"), "{text}");
    assert_eq!(text.matches("0002").count(), 1, "each problem is told once: {text}");
    // A file name with an escape sequence is shown escaped, never sent raw to the terminal.
    std::fs::copy(d.join("cubes/lidar/0000.npy"), d.join("cubes/lidar/\u{1b}[2Jclear.npy")).unwrap();
    let text = ok(&["info", "--data", s(&d)]);
    assert!(!text.contains('\u{1b}') && text.contains("\\u{1b}[2Jclear"), "{text}");
    std::fs::remove_file(d.join("cubes/lidar/\u{1b}[2Jclear.npy")).unwrap();
    // So does `explore`, on stderr (its stdout is the page's path).
    let out = run(&["explore", "--data", s(&d), "--out", s(&dir.path().join("ex"))]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: spheres: 1 LiDAR file(s) have no RGB partner") && err.contains("0002"), "{err}");
    let clean = ok(&["info", "--data", s(&generate(dir.path(), "clean", 3, 1))]);
    assert!(clean.contains("every file paired, nothing skipped"), "{clean}");
}

/// Each kind of corruption gives a non-zero exit and an error naming the file.
#[test]
fn corrupt_inputs_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = generate(dir.path(), "base", 4, 3);
    type Corrupt = fn(&std::path::Path) -> String;
    let cases: Vec<(&str, Corrupt)> = vec![
        ("truncated png", |d| {
            let f = d.join("cubes/rgb/0001.png");
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
            "cubes/rgb/0001.png".into()
        }),
        ("npy wrong dtype", |d| {
            let f = d.join("spheres/lidar/0002.npy");
            let mut bytes = std::fs::read(&f).unwrap();
            let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
            bytes[pos..pos + 3].copy_from_slice(b"<i4");
            std::fs::write(&f, bytes).unwrap();
            "spheres/lidar/0002.npy".into()
        }),
        ("npy big endian", |d| {
            let f = d.join("spheres/lidar/0001.npy");
            let mut bytes = std::fs::read(&f).unwrap();
            let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
            bytes[pos..pos + 3].copy_from_slice(b">f4");
            std::fs::write(&f, bytes).unwrap();
            "spheres/lidar/0001.npy".into()
        }),
        ("npy fortran order", |d| {
            let f = d.join("cubes/lidar/0000.npy");
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            assert!(text.contains("'fortran_order': False"));
            let bytes = std::fs::read(&f).unwrap();
            let pos = bytes.windows(5).position(|w| w == b"False").unwrap();
            let mut out = bytes[..pos].to_vec();
            out.extend_from_slice(b"True ");
            out.extend_from_slice(&bytes[pos + 5..]);
            std::fs::write(&f, out).unwrap();
            "cubes/lidar/0000.npy".into()
        }),
        ("npy wrong shape", |d| {
            let f = d.join("cubes/lidar/0003.npy");
            cilp_data_write(&f, &[32, 128]);
            "cubes/lidar/0003.npy".into()
        }),
        ("nan depth", |d| {
            let f = d.join("cubes/lidar/0002.npy");
            let mut v = vec![50.0f32; 64 * 64];
            v[100] = f32::NAN;
            write_npy(&f, &[64, 64], &v);
            "cubes/lidar/0002.npy".into()
        }),
        ("infinite depth", |d| {
            let f = d.join("spheres/lidar/0003.npy");
            let mut v = vec![50.0f32; 64 * 64];
            v[7] = f32::INFINITY;
            write_npy(&f, &[64, 64], &v);
            "spheres/lidar/0003.npy".into()
        }),
        ("missing azimuth", |d| {
            std::fs::remove_file(d.join("cubes/azimuth.npy")).unwrap();
            "cubes/azimuth.npy".into()
        }),
        ("empty class folder", |d| {
            for sub in ["rgb", "lidar"] {
                let p = d.join("spheres").join(sub);
                std::fs::remove_dir_all(&p).unwrap();
                std::fs::create_dir(&p).unwrap();
            }
            "spheres".into()
        }),
        ("missing class folder", |d| {
            std::fs::remove_dir_all(d.join("spheres")).unwrap();
            "spheres".into()
        }),
    ];
    for (i, (what, corrupt)) in cases.into_iter().enumerate() {
        let d = dir.path().join(format!("case{i}"));
        copy_dir(&base, &d);
        let needle = corrupt(&d);
        let err = fails(&["info", "--data", s(&d)]);
        assert!(err.contains(&needle), "{what}: error should name {needle}: {err}");
    }
}

fn write_npy(f: &std::path::Path, shape: &[usize], v: &[f32]) {
    let shape = format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "));
    std::fs::write(f, npy_bytes("<f4", &shape, &f32_bytes(v))).unwrap();
}

fn cilp_data_write(f: &std::path::Path, shape: &[usize]) {
    write_npy(f, shape, &vec![10.0; shape.iter().product()]);
}
