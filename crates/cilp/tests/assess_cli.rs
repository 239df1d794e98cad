//! End to end: `cilp assess` on a tiny generated dataset, then `cilp predict` with its final model.

mod common;

use common::*;
use serde_json::Value;

fn assess_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "assess",
        "--data",
        data,
        "--out",
        out,
        "--quiet",
        "--split",
        "ratio",
        "--val-fraction",
        "0.5",
        "--batch-size",
        "8",
        "--cilp-epochs",
        "1",
        "--projector-epochs",
        "2",
    ]
}

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn has_tag(run: &std::path::Path, tag: &str) -> bool {
    std::fs::read_dir(run).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("events.out.tfevents")
            && std::fs::read(e.path()).unwrap().windows(tag.len()).any(|w| w == tag.as_bytes())
    })
}

#[test]
fn assess_with_pretrained_lidar_classifier_then_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 40, 5);
    let runs = tmp.path().join("runs");
    let out = runs.join("assess");
    let fixture = lidar_cnn_fixture();
    let mut args = assess_args(s(&data), s(&out));
    args.extend(["--lidar-classifier", s(&fixture), "--finetune-epochs", "1"]);
    let stdout = ok(&args);
    assert!(stdout.contains("| metric | value | threshold | margin | pass |"), "{stdout}");
    assert!(stdout.contains("margins: CILP loss") && stdout.contains("points)"), "{stdout}");
    assert!(stdout.contains("graded model: fine-tuning epoch"), "{stdout}");
    assert!(
        stdout.contains("CILP validation loss") && stdout.contains("projector validation MSE") && stdout.contains("classifier accuracy"),
        "{stdout}"
    );

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["cilp_loss_variant"], "nvidia");
    for k in ["cilp_val_loss", "projector_val_mse", "classifier_accuracy"] {
        assert!(summary[k].as_f64().is_some_and(f64::is_finite), "{k}: {}", summary[k]);
    }
    assert_eq!(summary["classifier_batch_accuracies"].as_array().unwrap().len(), 5);
    let passed = summary["passed"].as_object().unwrap();
    for k in ["cilp_val_loss", "projector_val_mse", "classifier_accuracy"] {
        assert!(passed[k].is_boolean(), "passed.{k}");
    }
    assert_eq!(summary["lidar_classifier"]["source"], "pretrained");
    for dir in ["rgb_to_lidar", "lidar_to_rgb"] {
        let r = &summary["retrieval"][dir];
        assert!(r["R@1"].as_f64().unwrap() <= r["R@5"].as_f64().unwrap());
        assert!(r["mean_rank"].as_f64().unwrap() >= 1.0);
    }
    // Each threshold's margin is its distance to the threshold, positive exactly when it passes.
    let rows = summary["thresholds"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let m = r["margin"].as_f64().unwrap();
        assert_eq!(m > 0.0, r["passed"].as_bool().unwrap(), "{r}");
    }
    assert!((rows[0]["margin"].as_f64().unwrap() - (3.2 - summary["cilp_val_loss_nvidia"].as_f64().unwrap())).abs() < 1e-12);
    // The graded fine-tuned model was chosen on pairs held out of the training split: 10% of
    // each class's 20 training pairs, scored after epoch 0 (the assembled chain) and epoch 1.
    let sel = &summary["finetune_selection"];
    assert_eq!(sel["samples"], 4, "{sel}");
    assert_eq!(sel["accuracies"].as_array().unwrap().len(), 2, "{sel}");
    assert!(sel["epoch"].as_u64().unwrap() <= 1);
    let graded = sel["epoch"].as_u64().unwrap() as usize;
    let vacc = sel["val_accuracies"].as_array().unwrap()[graded].as_f64().unwrap();
    assert_eq!(vacc, summary["classifier_accuracy"].as_f64().unwrap(), "the graded accuracy is the chosen epoch's");
    let metrics = std::fs::read_to_string(out.join("rgb-to-lidar/metrics.jsonl")).unwrap();
    assert!(metrics.contains("selection/accuracy") && metrics.contains("lr_end"), "{metrics}");
    let table = read_json(&out.join("study_table.json"));
    assert_eq!(table["rows"].as_array().unwrap().len(), 3);
    for f in ["similarity_matrix.png", "predictions.png", "assess.toml"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Stage runs with checkpoints; no LiDAR classifier run with pretrained weights.
    for run in ["cilp", "projector", "rgb-to-lidar"] {
        assert!(out.join(run).join("checkpoints/best.bpk").is_file(), "{run}");
        assert!(out.join(run).join("metrics.jsonl").is_file(), "{run}");
    }
    assert!(!out.join("lidar-classifier").exists());
    assert!(has_tag(&out.join("cilp"), "val/similarity_matrix"));
    assert!(has_tag(&out.join("cilp"), "val/rgb_to_lidar/R@1"));
    assert!(has_tag(&out.join("rgb-to-lidar"), "val/predictions"));

    // `cilp runs list` on the parent sees the stage runs (the folder is a group, not a run).
    let listing = ok(&["runs", "list", s(&runs), "--json"]);
    let names: Vec<String> = serde_json::from_str::<Value>(&listing)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    for n in ["assess/cilp", "assess/projector", "assess/rgb-to-lidar"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }

    // The final model classifies an RGB PNG.
    let png = data.join("spheres/rgb/0001.png");
    let pred = ok(&["predict", "--model", "rgb-to-lidar", "--checkpoint", s(&out.join("rgb-to-lidar")), "--json", s(&png)]);
    let line: Value = serde_json::from_str(pred.lines().next().unwrap()).unwrap();
    assert!(["cubes", "spheres"].contains(&line["prediction"].as_str().unwrap()));
    assert!(line["probability"].as_f64().unwrap() >= 0.5);

    // A second run into the same folder needs --force.
    let err = fails(&args);
    assert!(err.contains("--force"), "{err}");

    // --resume reuses the completed CILP stage (same config): not retrained, same numbers.
    let stamp = |p: &std::path::Path| std::fs::metadata(p.join("metrics.jsonl")).unwrap().modified().unwrap();
    let before = stamp(&out.join("cilp"));
    let mut again = args.clone();
    again.push("--resume");
    let o = cilp().args(&again).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reusing the completed stage"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stamp(&out.join("cilp")), before, "the CILP stage was trained again");
    let resumed = read_json(&out.join("summary.json"));
    for k in ["cilp_val_loss", "projector_val_mse", "classifier_accuracy"] {
        assert_eq!(resumed[k], summary[k], "{k} differs after --resume");
    }
    assert_eq!(resumed["retrieval"], summary["retrieval"]);
}

#[test]
fn assess_trains_its_own_lidar_classifier_with_clip_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 40, 6);
    let out = tmp.path().join("assess-clip");
    let mut args = assess_args(s(&data), s(&out));
    args.extend(["--loss", "clip", "--lidar-epochs", "1", "--finetune-epochs", "0"]);
    ok(&args);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["cilp_loss_variant"], "clip");
    assert_eq!(summary["lidar_classifier"]["source"], "trained");
    let scales = summary["logit_scale_per_epoch"].as_array().unwrap();
    assert_eq!(scales.len(), 1);
    assert!(scales[0].as_f64().unwrap() <= 100.0 + 1e-3, "clamped to exp(ln 100)");
    assert!(out.join("lidar-classifier/checkpoints/best.bpk").is_file());
    assert!(has_tag(&out.join("cilp"), "train/logit_scale"));
}

#[test]
fn assess_reports_a_missing_lidar_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    let err =
        fails(&["assess", "--data", s(tmp.path()), "--out", s(&tmp.path().join("o")), "--lidar-classifier", "/nonexistent/lidar_cnn.pt"]);
    assert!(err.contains("lidar_cnn.pt") && err.contains("not found"), "{err}");
}

/// The (epoch, split, loss, accuracy, extra) rows of a stage, as text (exact comparison).
fn stage_rows(run: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            format!("{} {} {} {} {}", r["epoch"], r["split"], r["loss"], r["accuracy"], r["extra"])
        })
        .collect()
}

/// The arguments of an assessment of `data` into `out` with NVIDIA's LiDAR classifier and
/// `epochs` (CILP, projector, fine-tuning), its per-epoch lines on stderr.
fn chain_args(data: &std::path::Path, out: &std::path::Path, epochs: (usize, usize, usize)) -> Vec<String> {
    let mut a: Vec<String> = assess_args(s(data), s(out)).into_iter().map(String::from).collect();
    a.retain(|x| x != "--quiet");
    for (flag, n) in [("--cilp-epochs", epochs.0), ("--projector-epochs", epochs.1)] {
        let i = a.iter().position(|x| x == flag).unwrap();
        a[i + 1] = n.to_string();
    }
    a.extend(["--lidar-classifier".into(), s(&lidar_cnn_fixture()).into(), "--finetune-epochs".into(), epochs.2.to_string()]);
    a
}

/// Checks that the assessment in `b` ended as the one in `a`: every stage's rows, and the
/// summary's graded values.
fn assert_same_assessment(a: &std::path::Path, b: &std::path::Path, what: &str) {
    for stage in ["cilp", "projector", "rgb-to-lidar"] {
        assert_eq!(stage_rows(&a.join(stage)), stage_rows(&b.join(stage)), "{stage}: rows differ from {what}");
    }
    let (a, b) = (read_json(&a.join("summary.json")), read_json(&b.join("summary.json")));
    for k in ["cilp_val_loss", "projector_val_mse", "classifier_accuracy", "classifier_batch_accuracies", "retrieval", "finetune_selection"]
    {
        assert_eq!(a[k], b[k], "{k}");
    }
}

/// Runs an uninterrupted assessment into `reference` and the same one killed by the abort hook
/// at `abort_at` into `cut`, then resumes `cut`. `epochs` are the (CILP, projector, fine-tuning)
/// epochs; the LiDAR classifier is NVIDIA's. Checks the kill left `committed_rows` rows in
/// `cut/stage`, that the resumed assessment ends with every stage's rows and the summary values
/// equal to the uninterrupted one's, and returns the resume's stderr.
fn cut_and_resume(epochs: (usize, usize, usize), abort_at: &str, stage: &str, committed_rows: usize) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 24, 5);
    let args = |out: &std::path::Path| chain_args(&data, out, epochs);
    let reference = tmp.path().join("reference");
    let out = cilp().args(args(&reference)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cut = tmp.path().join("cut");
    let out = cilp().args(args(&cut)).env("CILP_TEST_ABORT_AT", abort_at).output().unwrap();
    assert!(!out.status.success(), "the abort hook must kill the assessment");
    assert_eq!(stage_rows(&cut.join(stage)).len(), committed_rows, "rows committed before the kill");
    let mut resume = args(&cut);
    resume.push("--resume".into());
    let out = cilp().args(&resume).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");

    assert_same_assessment(&reference, &cut, "the uninterrupted run");
    for stage in ["cilp", "projector", "rgb-to-lidar"] {
        assert_eq!(read_json(&cut.join(stage).join("summary.json"))["status"], "completed", "{stage}");
    }
    err
}

/// An assessment killed half-way through its CILP stage continues that stage from its last
/// committed epoch with `--resume` (not from epoch 1), and ends exactly as an uninterrupted one.
#[test]
fn a_cilp_stage_cut_off_half_way_resumes_from_its_last_epoch() {
    // Killed at the first step of CILP epoch 3 of 3: epochs 1 and 2 (2 rows each) committed.
    let err = cut_and_resume((3, 2, 1), "3:0", "cilp", 4);
    assert!(err.contains("cilp: resuming") && err.contains("after epoch 2 of 3"), "{err}");
    assert!(!err.contains("cilp: epoch 1/3") && err.contains("cilp: epoch 3/3"), "epoch 1 trained again: {err}");
}

/// An assessment killed in its last fine-tuning epoch continues with `--resume`: the CILP stage
/// and the projector are reused, fine-tuning resumes after its committed epoch, and everything,
/// the graded epoch included, ends as in an uninterrupted assessment.
#[test]
fn a_finetuning_stage_cut_off_resumes_and_grades_the_same_epoch() {
    // One CILP and one projector epoch, so that only fine-tuning reaches epoch 2; epoch 0 (its
    // validation row) and epoch 1 (2 rows) are committed before the kill.
    let err = cut_and_resume((1, 1, 2), "2:0", "rgb-to-lidar", 3);
    for stage in ["cilp", "projector"] {
        assert!(err.contains(&format!("{stage}: reusing the completed stage")), "{stage}: {err}");
    }
    assert!(err.contains("rgb-to-lidar: resuming") && err.contains("after epoch 1 of 2"), "{err}");
    assert!(!err.contains("rgb-to-lidar: epoch 1/2") && err.contains("rgb-to-lidar: epoch 2/2"), "epoch 1 trained again: {err}");
}

/// `--variant seed`: the seed's own assessment (REFERENCE §7) on a tiny set, with the
/// original's split (per class the first 9,679/9,999 of the pairs train), one epoch a stage.
/// Its four stage runs, the summary beside the original's numbers, and `--resume` reusing
/// every completed stage.
#[test]
fn seed_variant_runs_its_four_stages_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 40, 7);
    let out = tmp.path().join("seed");
    let args = [
        "assess",
        "--variant",
        "seed",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--quiet",
        "--batch-size",
        "8",
        "--lidar-epochs",
        "1",
        "--cilp-epochs",
        "1",
        "--projector-epochs",
        "2",
    ];
    let stdout = ok(&args);
    assert!(stdout.contains("| metric | original, real data | original code, generated data | cilp |"), "{stdout}");
    assert!(stdout.contains("| CILP validation loss, last epoch | 0.1609 | 0.0983 |"), "{stdout}");
    assert!(stdout.contains("| projector MSE (last training epoch) | 0.7599 | 0.7137 |"), "{stdout}");
    assert!(stdout.contains("98.59%") && stdout.contains("98.44%") && !stdout.contains("| pass |"), "{stdout}");

    let summary = read_json(&out.join("summary.json"));
    assert_eq!((summary["study"].as_str(), summary["variant"].as_str()), (Some("assess"), Some("seed")));
    // 40 pairs per class: round(9679 * 40 / 9999) = 39 train, 1 validation per class.
    assert_eq!((summary["train_samples"].as_u64(), summary["val_samples"].as_u64()), (Some(78), Some(2)));
    for k in
        ["cilp_val_loss", "cilp_train_loss", "projector_mse", "projector_val_mse", "classifier_accuracy", "classifier_accuracy_with_relu"]
    {
        assert!(summary[k].as_f64().is_some_and(f64::is_finite), "{k}: {}", summary[k]);
    }
    let len = |k: &str| summary[k].as_array().unwrap_or_else(|| panic!("{k}")).len();
    assert_eq!((len("lidar_train_accuracy_per_epoch"), len("lidar_val_accuracy_per_epoch")), (1, 1));
    assert_eq!((len("cilp_val_loss_per_epoch"), len("logit_scale_per_epoch")), (1, 1));
    assert_eq!((len("projector_train_mse_per_epoch"), len("projector_val_mse_per_epoch")), (2, 2));
    // The validation set in order, in batches of 8: one batch of the 2 validation pairs.
    assert_eq!(len("classifier_batch_accuracies"), 1);
    assert_eq!(summary["projector_mse"], summary["projector_train_mse_per_epoch"][1], "the last training MSE");
    assert!(summary["loss_mean"].as_str().unwrap().contains("per-batch means"));
    assert_eq!(summary["retrieval"]["samples"], 2);
    assert_eq!(summary["config"]["data"]["xyza"], "seed");
    assert_eq!(summary["config"]["data"]["split"]["kind"], "nvidia");
    let table = read_json(&out.join("study_table.json"));
    assert_eq!(table["columns"].as_array().unwrap().len(), 4);
    assert!(table["rows"].as_array().unwrap().len() >= 6);
    assert!(out.join("assess.toml").is_file());
    for run in ["seed-lidar-classifier", "seed-cilp", "seed-projector", "seed-rgb-to-lidar"] {
        assert!(out.join(run).join("checkpoints/best.bpk").is_file(), "{run}");
        assert_eq!(read_json(&out.join(run).join("summary.json"))["status"], "completed", "{run}");
    }
    // The original's epoch loss (mean of per-batch means) is in the training rows.
    let metrics = std::fs::read_to_string(out.join("seed-projector/metrics.jsonl")).unwrap();
    assert!(metrics.contains("loss_batch_mean"), "{metrics}");
    // The chain is a run: `cilp predict` classifies an RGB PNG with it.
    let png = data.join("spheres/rgb/0001.png");
    let pred = ok(&["predict", "--model", "seed-rgb-to-lidar", "--checkpoint", s(&out.join("seed-rgb-to-lidar")), "--json", s(&png)]);
    assert!(pred.contains("prediction"), "{pred}");

    // --resume reuses every completed stage: nothing is trained again, the numbers are the same.
    let stamp = |run: &str| std::fs::metadata(out.join(run).join("metrics.jsonl")).unwrap().modified().unwrap();
    let runs = ["seed-lidar-classifier", "seed-cilp", "seed-projector", "seed-rgb-to-lidar"];
    let before: Vec<_> = runs.iter().map(|r| stamp(r)).collect();
    let mut again = args.to_vec();
    again.push("--resume");
    let o = cilp().args(&again).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for r in runs {
        assert!(err.contains(&format!("{r}: reusing the completed stage")), "{r}: {err}");
    }
    assert_eq!(runs.iter().map(|r| stamp(r)).collect::<Vec<_>>(), before, "a stage was trained again");
    let resumed = read_json(&out.join("summary.json"));
    for k in ["cilp_val_loss", "projector_mse", "projector_val_mse", "classifier_accuracy", "classifier_batch_accuracies", "retrieval"] {
        assert_eq!(resumed[k], summary[k], "{k} differs after --resume");
    }

    // NVIDIA-only flags are refused by name.
    let mut bad = args.to_vec();
    bad.extend(["--force", "--finetune-epochs", "2", "--loss", "clip"]);
    let err = fails(&bad);
    assert!(err.contains("--loss, --finetune-epochs only apply to NVIDIA's assessment"), "{err}");
}

/// `cilp run`'s assessment beside the studies (`--start-threads 1`, hidden): one thread until its
/// stdin closes, then all of `RAYON_NUM_THREADS`. Closed part-way (once the CILP stage has
/// logged an epoch), it ends with every stage's rows and the graded values equal to an
/// assessment on one thread throughout.
#[test]
fn an_assessment_given_more_threads_part_way_ends_as_on_one_thread() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 24, 5);
    // assess_args' 2 projector epochs.
    let args = |out: &std::path::Path| chain_args(&data, out, (3, 2, 2));
    let one = tmp.path().join("one");
    let out = cilp().args(args(&one)).env("RAYON_NUM_THREADS", "1").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let widened = tmp.path().join("widened");
    let mut a = args(&widened);
    a.extend(["--start-threads".into(), "1".into()]);
    let mut child = cilp()
        .args(&a)
        .env("RAYON_NUM_THREADS", "2")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written data is not the end of file: it stays narrow.
    stdin.write_all(b"still running\n").unwrap();
    let first_epoch = widened.join("cilp/metrics.jsonl");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&first_epoch).is_ok_and(|m| m.contains("\"val\"")) && t.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    // Printed when it widened, before it ended.
    assert!(err.contains("computing on 2 threads from the next step"), "{err}");

    assert_same_assessment(&one, &widened, "one thread's");
}
