//! End-to-end tests of `cilp models`, `train`, `predict` and `runs` on tiny generated data.

mod common;

use std::path::Path;

use common::*;

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The fields that must be bit-identical across runs (times and memory legitimately vary).
fn learned(rows: &[serde_json::Value]) -> Vec<(u64, String, String, String)> {
    rows.iter().map(|r| (r["epoch"].as_u64().unwrap(), r["split"].to_string(), r["loss"].to_string(), r["accuracy"].to_string())).collect()
}

#[test]
fn models_json_has_the_reference_parameter_counts() {
    let v: serde_json::Value = serde_json::from_str(&ok(&["models", "--json"])).unwrap();
    let want = [
        ("late-fusion", 13147202u64),
        ("late-fusion-strided", 13383802),
        ("intermediate-concat", 13015952),
        ("intermediate-add", 6615952),
        ("intermediate-hadamard", 6615952),
        ("intermediate-add-strided", 6852552),
        ("nvidia-lidar-classifier", 906201),
        ("projector", 2304700),
    ];
    for (name, params) in want {
        let m = v.as_array().unwrap().iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m["parameters"].as_u64(), Some(params), "{name}");
    }
}

/// By default (`CILP_CHECKPOINT_EVERY` unset) a run commits a checkpoint at most once a minute,
/// and always at its last epoch: a run of three short epochs killed in its last one has committed
/// nothing, and its improved epochs' models waited in memory for a commit (no `best.bpk` yet);
/// resumed, it trains again from epoch 1 and ends exactly like a run that committed every epoch.
#[test]
fn short_epochs_commit_once_a_minute_and_still_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 20, 11);
    let runs = dir.path().join("runs");
    let (d, r) = (s(&data), s(&runs));
    ok(&train_args(d, r, "every-epoch"));
    let by_default = || {
        let mut c = cilp();
        c.env_remove("CILP_CHECKPOINT_EVERY");
        c
    };
    let out = by_default().args(train_args(d, r, "cut")).env("CILP_TEST_ABORT_AT", "3:1").output().unwrap();
    assert!(!out.status.success(), "the abort hook must kill the run");
    let ckpt = runs.join("cut/checkpoints");
    assert!(!ckpt.join("last.json").exists(), "no epoch is committed within the first minute");
    assert!(!ckpt.join("best.bpk").exists(), "an improved epoch's model waits for the next commit");
    assert_eq!(metrics(&runs.join("cut")).len(), 4, "epochs 1 and 2 were logged");
    let out = by_default().args(["train", "--resume", "--out", r, "--name", "cut"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("training starts again from epoch 1"), "{err}");
    assert_eq!(learned(&metrics(&runs.join("cut"))), learned(&metrics(&runs.join("every-epoch"))));
    let last: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ckpt.join("last.json")).unwrap()).unwrap();
    assert_eq!(last["epoch"], 3, "the last epoch always commits");
    // (The checkpoint files differ in burnpack's parameter ids only; the learned values above agree.)
    let every: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("every-epoch/checkpoints/last.json")).unwrap()).unwrap();
    assert_eq!(last["best_epoch"], every["best_epoch"]);
    assert!(ckpt.join("best.bpk").is_file() && ckpt.join("best.bpk.sha256").is_file(), "the resumed run's commits wrote best.bpk");

    let out = cilp().args(["models"]).env("CILP_CHECKPOINT_EVERY", "soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CILP_CHECKPOINT_EVERY=soon"));
}

fn train_args<'a>(data: &'a str, out: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--model",
        "nvidia-lidar-classifier",
        "--data",
        data,
        "--out",
        out,
        "--name",
        name,
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "0.001",
        "--seed",
        "5",
    ]
}

#[test]
fn training_is_deterministic_resumable_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 20, 11);
    let runs = dir.path().join("runs");
    let (d, r) = (s(&data), s(&runs));

    // Two uninterrupted runs with the same seed: bit-identical losses and accuracies.
    ok(&train_args(d, r, "a"));
    ok(&train_args(d, r, "b"));
    let (a, b) = (metrics(&runs.join("a")), metrics(&runs.join("b")));
    assert_eq!(a.len(), 6, "3 epochs x (train, val)");
    assert_eq!(learned(&a), learned(&b));
    // Training learns something on this easy task.
    let last_train = &a[4];
    let first_train = &a[0];
    assert!(last_train["loss"].as_f64().unwrap() < first_train["loss"].as_f64().unwrap(), "loss should fall: {a:?}");

    // A run killed mid-epoch (abort: no cleanup, like SIGKILL) and resumed ends identical.
    let out = cilp().args(train_args(d, r, "c")).env("CILP_TEST_ABORT_AT", "2:1").output().unwrap();
    assert!(!out.status.success(), "the abort hook must kill the run");
    let partial = metrics(&runs.join("c"));
    assert_eq!(partial.len(), 2, "only epoch 1 was recorded before the crash");
    let resumed = ok(&["train", "--resume", "--out", r, "--name", "c"]);
    assert!(resumed.contains("c"));
    assert_eq!(learned(&metrics(&runs.join("c"))), learned(&a), "resumed run must match an uninterrupted one");
    // The checkpoints hold bit-identical weights: both give exactly the same logits (JSON floats
    // round-trip exactly). (The files themselves differ in burn's random parameter ids.)
    let probe: Vec<String> = (0..6).map(|i| s(&data.join(format!("spheres/lidar/{i:04}.npy"))).to_string()).collect();
    let logits = |run: &str| {
        let mut args = vec!["predict", "--checkpoint", run, "--json"];
        args.extend(probe.iter().map(String::as_str));
        ok(&args).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["logits"].to_string()).collect::<Vec<_>>()
    };
    let (la, lc) = (logits(s(&runs.join("a"))), logits(s(&runs.join("c"))));
    assert!(la == lc, "resumed checkpoint differs: {la:?} vs {lc:?}");

    // A run directory is never overwritten without --force or --resume.
    let err = fails(&train_args(d, r, "a"));
    assert!(err.contains("--force") || err.contains("--resume"), "{err}");

    // Summary and run listing.
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(runs.join("a/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["parameters"], 906201);
    let listing = ok(&["runs", "list", r]);
    for name in ["a", "b", "c"] {
        assert!(listing.contains(name), "{listing}");
    }

    // Predict with the run directory on two depth maps.
    let inputs = [data.join("cubes/lidar/0000.npy"), data.join("spheres/lidar/0000.npy")];
    let out = ok(&["predict", "--checkpoint", s(&runs.join("a")), "--json", s(&inputs[0]), s(&inputs[1])]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["logits"].as_array().unwrap().len(), 1);
        let p = l["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p), "probability of the predicted class: {p}");
        assert!(l["prediction"] == "cubes" || l["prediction"] == "spheres");
    }
}

#[test]
fn non_finite_loss_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 8, 2);
    let runs = dir.path().join("runs");
    let out = cilp().args(train_args(s(&data), s(&runs), "nan")).env("CILP_TEST_NAN_AT", "2:0").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("diverged") && err.contains("epoch 2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Epoch 1's checkpoint survives and the run can be resumed from it.
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(runs.join("nan/checkpoints/last.json")).unwrap()).unwrap();
    assert_eq!(state["epoch"], 1);
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(runs.join("nan/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "failed");
}

/// NVIDIA's pretrained classifier (trained on the real scans) must load from its PyTorch file and
/// recognise generated scans: the generator's fidelity check.
#[test]
fn pretrained_lidar_cnn_classifies_generated_scans() {
    let weights = lidar_cnn_fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 150, 51);
    let mut args = vec!["predict".to_string(), "--weights".into(), s(&weights).into(), "--json".into()];
    let mut truth = Vec::new();
    for class in ["cubes", "spheres"] {
        for i in 0..150 {
            args.push(s(&data.join(format!("{class}/lidar/{i:04}.npy"))).to_string());
            truth.push(class);
        }
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&argv);
    let preds: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(preds.len(), truth.len());
    let correct = preds.iter().zip(&truth).filter(|(p, t)| p["prediction"] == **t).count();
    let acc = correct as f64 / truth.len() as f64;
    eprintln!("lidar_cnn.pt accuracy on 300 generated scans: {acc:.4}");
    assert!(acc >= 0.95, "NVIDIA's classifier gets {acc:.3} on generated scans (need >= 0.95)");
}

/// `--adam-epsilon` reaches the optimizer (PyTorch's 1e-8 trains differently from burn's 1e-5)
/// and is recorded in the run's config only when given; a non-positive one is refused.
#[test]
fn adam_epsilon_is_recorded_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(dir.path(), "data", 12, 21);
    let runs = dir.path().join("runs");
    let (d, r) = (s(&data), s(&runs));
    ok(&train_args(d, r, "burn"));
    let mut torch = train_args(d, r, "torch");
    torch.extend(["--adam-epsilon", "1e-8"]);
    ok(&torch);
    let config = |name: &str| std::fs::read_to_string(runs.join(name).join("config.toml")).unwrap();
    assert!(!config("burn").contains("adam_epsilon"), "{}", config("burn"));
    assert!(config("torch").contains("adam_epsilon = 0.00000001"), "{}", config("torch"));
    let loss = |name: &str| metrics(&runs.join(name)).last().unwrap()["loss"].as_f64().unwrap();
    assert_ne!(loss("burn"), loss("torch"), "the epsilon must change the updates");
    let mut bad = train_args(d, r, "bad");
    bad.extend(["--adam-epsilon", "0"]);
    assert!(fails(&bad).contains("adam_epsilon must be a positive number"));
    assert!(!runs.join("bad").exists());
}
