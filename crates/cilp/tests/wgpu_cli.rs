//! The GPU path (`--device wgpu`), run for real. CI has no GPU: it installs Debian's
//! `mesa-vulkan-drivers`, whose lavapipe is a Vulkan device on the CPU, and these tests run
//! cilp's wgpu backend on it. The test build always has the `wgpu` feature (a dev-dependency of
//! this crate turns it on; the default `cargo build` stays CPU-only).
//!
//! Every test here needs a Vulkan adapter and fails, saying how to get one, where there is none.

mod common;
use common::*;

use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The adapter line, or a failure that says what to install.
fn require_vulkan() -> String {
    let line = ok(&["device-check", "--device", "wgpu", "--adapters"]);
    assert!(
        !line.contains("no adapter found"),
        "no Vulkan adapter on this machine: these tests need one; install Debian's mesa-vulkan-drivers \
         (lavapipe, a Vulkan device on the CPU; .ci/run does) or run them where a GPU driver is installed. Got: {line}"
    );
    line
}

/// Every zoo architecture computes on wgpu what it computes on the CPU: outputs, loss, every
/// gradient and one Adam step, within the tolerances the report states; the fused CPU kernels
/// (convolution, Adam) are not used on the device (they fall back to burn's ops there).
/// Several processes of seven models each keep a process's memory and shader cache small.
#[test]
fn every_zoo_model_agrees_with_the_cpu_on_wgpu() {
    let adapter = require_vulkan();
    eprintln!("{adapter}");
    let models: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&ok(&["models", "--json"]))
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert!(models.len() >= 21, "{models:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (i, group) in models.chunks(7).enumerate() {
        let out = dir.path().join(format!("agreement-{i}.json"));
        let list = group.join(",");
        let table = ok(&["device-check", "--device", "wgpu", "--models", &list, "--batch-size", "4", "--out", s(&out)]);
        eprintln!("{table}");
        let report = json(&out);
        assert_eq!(report["device"], "wgpu");
        assert!(report["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{report}");
        assert_eq!(report["fast_conv_calls_on_device"], 0, "cilp's CPU convolution ran on the device");
        assert_eq!(report["fused_adam_steps_on_device"], 0, "cilp's CPU Adam ran on the device");
        rows.extend(report["rows"].as_array().unwrap().clone());
    }
    let names: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, models.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &rows {
        assert_eq!(r["ok"], true, "{r}");
        // The comparison compared something: real losses, gradients of every tensor.
        assert!(r["loss_cpu"].as_f64().unwrap() > 0.0 && r["tensors"].as_u64().unwrap() >= 6, "{r}");
        assert!(r["output_max_abs"].as_f64().unwrap() > 0.0, "{r}");
    }
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn train(data: &Path, runs: &Path, name: &str, device: &str) -> String {
    ok(&[
        "train",
        "--model",
        "nvidia-lidar-classifier",
        "--data",
        s(data),
        "--out",
        s(runs),
        "--name",
        name,
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.001",
        "--seed",
        "5",
        "--device",
        device,
    ])
}

/// Every logit `cilp predict` prints for `inputs`, in order.
fn logits(run: &Path, device: &str, inputs: &[String]) -> Vec<f64> {
    let mut args = vec!["predict", "--checkpoint", s(run), "--json", "--device", device];
    args.extend(inputs.iter().map(String::as_str));
    ok(&args)
        .lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>()
        })
        .collect()
}

/// `cilp train --device wgpu` writes a normal run folder; it starts from the same weights as the
/// CPU run of the same seed and follows it within rounding; each device's checkpoint predicts
/// the same on the other device.
#[test]
fn training_on_wgpu_matches_the_cpu_and_checkpoints_cross_devices() {
    require_vulkan();
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 12, 4);
    let runs = dir.path().join("runs");
    train(&data, &runs, "gpu", "wgpu");
    train(&data, &runs, "cpu", "cpu");
    let (gpu, cpu) = (runs.join("gpu"), runs.join("cpu"));

    let summary = json(&gpu.join("summary.json"));
    assert_eq!(summary["status"], "completed", "{summary}");
    let config = std::fs::read_to_string(gpu.join("config.toml")).unwrap();
    assert!(config.contains("device = \"wgpu\""), "{config}");
    for f in ["checkpoints/best.bpk", "checkpoints/last.json", "metrics.csv"] {
        assert!(gpu.join(f).exists(), "{f} missing in the wgpu run");
    }
    let (g, c) = (metrics(&gpu), metrics(&cpu));
    assert_eq!(g.len(), 4, "2 epochs x (train, val): {g:?}");
    for (a, b) in g.iter().zip(&c) {
        let (la, lb) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!(la.is_finite() && (la - lb).abs() <= 1e-3 * lb.abs().max(1.0), "wgpu {a} vs cpu {b}");
    }

    let inputs: Vec<String> =
        (0..4).flat_map(|i| ["cubes", "spheres"].map(|c| s(&data.join(format!("{c}/lidar/{i:04}.npy"))).to_string())).collect();
    for run in [&gpu, &cpu] {
        let on_cpu = logits(run, "cpu", &inputs);
        let on_gpu = logits(run, "wgpu", &inputs);
        assert_eq!(on_cpu.len(), inputs.len(), "one logit per input (nvidia-lidar-classifier)");
        assert!(on_cpu.iter().any(|x| *x != on_cpu[0]), "logits depend on the input: {on_cpu:?}");
        for (a, b) in on_cpu.iter().zip(&on_gpu) {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{}: cpu {on_cpu:?} vs wgpu {on_gpu:?}", run.display());
        }
    }
}
