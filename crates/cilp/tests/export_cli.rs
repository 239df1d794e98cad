//! `cilp export` (safetensors and ONNX), `cilp predict --weights FILE.safetensors` and `cilp train --init FILE`, end to end.

mod common;

use std::path::Path;

use common::*;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn train(data: &str, runs: &str, name: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--model",
        "late-fusion",
        "--data",
        data,
        "--out",
        runs,
        "--name",
        name,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn logits(args: &[&str]) -> Vec<Vec<f64>> {
    ok(args)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn export_predict_and_train_from_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 10, 4);
    let runs = dir.path().join("runs");
    let (d, r) = (s(&data), s(&runs));
    let out = train(d, r, "a", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Export the best epoch: the file, its sidecar, and a line saying which epoch.
    let file = dir.path().join("late.safetensors");
    let exported = cilp().args(["export", "--checkpoint", s(&runs.join("a")), "--out", s(&file)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(exported.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&exported.stdout).trim(), s(&file));
    assert!(stderr.contains("exported late-fusion at its best epoch (1, from") && stderr.contains("LateFusionModel()"), "{stderr}");
    let side = json(&dir.path().join("late.safetensors.json"));
    assert_eq!(side["model"], "late-fusion");
    assert_eq!(side["key_names"], "original");
    assert_eq!(side["class_names"], serde_json::json!(["cubes", "spheres"]));
    assert_eq!(side["inputs"][1]["name"], "xyza");
    assert_eq!(side["inputs"][1]["shape"], serde_json::json!(["N", 4, 64, 64]));
    assert_eq!(side["inputs"][1]["convention"], "seed");
    assert_eq!(side["run"]["which"], "best");
    assert_eq!(side["run"]["epoch"], 1);
    let config = std::fs::read(runs.join("a/config.toml")).unwrap();
    let sha = cilp_sha256(&config);
    assert_eq!(side["run"]["config_sha256"], sha.as_str());

    // An existing file is kept unless --force; --epoch last says so.
    let err = fails(&["export", "--checkpoint", s(&runs.join("a")), "--out", s(&file)]);
    assert!(err.contains("late.safetensors") && err.contains("--force"), "{err}");
    let again =
        cilp().args(["export", "--checkpoint", s(&runs.join("a")), "--epoch", "last", "--force", "--out", s(&file)]).output().unwrap();
    assert!(again.status.success() && String::from_utf8_lossy(&again.stderr).contains("at its last epoch (1,"));

    // The ONNX graph of the same run: its sidecar says how to feed it; it is not a weights file
    // cilp reads back.
    let onnx = dir.path().join("late.onnx");
    let exported = cilp().args(["export", "--checkpoint", s(&runs.join("a")), "--format", "onnx", "--out", s(&onnx)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(exported.status.success(), "{stderr}");
    assert!(stderr.contains("an ONNX graph (opset 17, inputs rgb, xyza, output logits [N, 2]) with 28 weight tensors"), "{stderr}");
    let bytes = std::fs::read(&onnx).unwrap();
    assert!(bytes.len() > 4 * 13_147_202, "the weights are in the graph: {} bytes", bytes.len());
    let side = json(&dir.path().join("late.onnx.json"));
    assert_eq!(side["model"], "late-fusion");
    assert_eq!(
        side["onnx"],
        serde_json::json!({"opset": 17, "ir_version": 8, "inputs": ["rgb", "xyza"], "output": "logits", "batch_axis": "N"})
    );
    assert_eq!(side["run"]["config_sha256"], sha.as_str());
    let err = fails(&["predict", "--weights", s(&onnx), s(&data.join("cubes/rgb/0001.png"))]);
    assert!(err.contains("ONNX export"), "{err}");

    // Predicting from the export gives exactly the checkpoint's logits (the sidecar names the model).
    let inputs = [data.join("cubes/rgb/0001.png"), data.join("spheres/lidar/0002.npy")];
    let (i0, i1) = (s(&inputs[0]), s(&inputs[1]));
    let from_run = logits(&["predict", "--checkpoint", s(&runs.join("a")), "--json", i0, i1]);
    let from_file = logits(&["predict", "--weights", s(&file), "--json", i0, i1]);
    assert_eq!(from_run, from_file);
    let err = fails(&["predict", "--weights", s(&file), "--model", "early-fusion", i0]);
    assert!(err.contains("holds a 'late-fusion' export"), "{err}");

    // Training from the export: the path is in the run's config, and with a negligible rate the
    // model stays where the export put it (a run without --init starts elsewhere).
    let out = train(d, r, "b", &["--init", s(&file), "--lr", "1e-12"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("starting from the weights in"), "{stderr}");
    let cfg = std::fs::read_to_string(runs.join("b/config.toml")).unwrap();
    let abs = std::path::absolute(&file).unwrap();
    assert!(cfg.contains(&format!("init = {:?}", s(&abs))), "{cfg}");
    let from_init = logits(&["predict", "--checkpoint", s(&runs.join("b")), "--json", i0, i1]);
    let close = |x: &[Vec<f64>], y: &[Vec<f64>]| x.iter().flatten().zip(y.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-4);
    assert!(close(&from_init, &from_run), "{from_init:?} vs {from_run:?}");
    assert!(train(d, r, "c", &["--lr", "1e-12"]).status.success());
    let fresh = logits(&["predict", "--checkpoint", s(&runs.join("c")), "--json", i0, i1]);
    assert!(!close(&fresh, &from_run), "the control run should differ: {fresh:?}");

    // Weights of another model: every bad key named, and no run folder left behind.
    let err = fails(&["train", "--model", "intermediate-add", "--data", d, "--out", r, "--name", "bad", "--init", s(&file)]);
    assert!(
        err.contains("does not fit model 'intermediate-add'") && err.contains("missing 18 keys") && err.contains("unexpected 28 keys"),
        "{err}"
    );
    assert!(!runs.join("bad").exists());
}

/// SHA-256 via the system's `sha256sum` (what the sidecar's `config_sha256` must equal).
fn cilp_sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}
