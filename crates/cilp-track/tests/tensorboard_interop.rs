//! Interop test: event files written by cilp-track are read back by the real
//! `tensorboard` Python package (tests/read_events.py).
//!
//! Python is `$CILP_PYTHON` or `python3`. Set `$CILP_TB_KEEP_LOGDIR` to keep the
//! written logdir for inspection with `tensorboard --logdir`. If `tensorboard` is not importable
//! the test is skipped with a message, unless `$CI` is set, in which case it
//! fails (install it with `pip install tensorboard`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cilp_track::tb::{HParams, HParamsStatus, encode_png_rgb8, heatmap_rgb8};
use cilp_track::{CreateMode, EpochMetrics, RunDir, names, run::scalars_for_row};
use serde_json::{Value, json};

fn python() -> String {
    std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `true` if tensorboard is importable; otherwise skip (or panic under CI).
fn tensorboard_available(py: &str) -> bool {
    let ok = Command::new(py).args(["-c", "import tensorboard"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        let msg = format!(
            "the tensorboard Python package is not importable with `{py}`; \
             run `pip install tensorboard` (or set CILP_PYTHON to a Python that has it)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: tensorboard not installed ({msg})");
    }
    ok
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("read_events.py")
}

fn rows(epoch: usize, scale: f64) -> Vec<EpochMetrics> {
    let mut train = EpochMetrics::new(epoch, names::TRAIN, 1.0 / (epoch as f64 * scale));
    train.accuracy = Some(0.1 * epoch as f64);
    train.lr = Some(1e-3 / epoch as f64);
    train.epoch_seconds = 12.3;
    train.samples_per_s = 456.7;
    train.peak_memory_bytes = Some(150 * 1024 * 1024 + 1);
    train.extra.insert("logit_scale".into(), 14.285_714);
    let mut val = EpochMetrics::new(epoch, names::VAL, 1.1 / (epoch as f64 * scale));
    val.accuracy = Some(0.333_333_333);
    val.epoch_seconds = 1.5;
    val.samples_per_s = 999.0;
    val.extra.insert("rgb_to_lidar/R@1".into(), 0.2 * epoch as f64);
    vec![train, val]
}

#[test]
fn tensorboard_reads_our_event_files() {
    let py = python();
    if !tensorboard_available(&py) {
        return;
    }
    // CILP_TB_KEEP_LOGDIR=<dir>: write there (kept) for manual inspection with `tensorboard --logdir`.
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("CILP_TB_KEEP_LOGDIR").map(PathBuf::from);
    let logdir_path = keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&logdir_path).unwrap();
    let logdir = &LogDir(logdir_path);
    let run_name = "fusion_late";

    let mut config = BTreeMap::new();
    config.insert("lr", json!(0.001));
    config.insert("model", json!("late"));
    config.insert("amp", json!(false));
    config.insert("epochs", json!(3));

    // A 3x5 "similarity matrix" heatmap, 2 px per cell -> 10x6 image.
    let sim: Vec<f32> = (0..15).map(|i| (i as f32 * 0.37).sin()).collect();
    let (rgb, w, h) = heatmap_rgb8(&sim, 3, 5, 2).unwrap();
    assert_eq!((w, h), (10, 6));
    let png = encode_png_rgb8(&rgb, w, h).unwrap();
    let text = "## Notes\n\nval loss *improved* — ünïcode ✓";

    // Session 1: epochs 1..=3, then "crash".
    let mut run = RunDir::create(logdir.path(), run_name, CreateMode::New).unwrap();
    run.write_config(&config).unwrap();
    let hp = HParams {
        values: cilp_track::tb::flatten_hparams(&config),
        metrics: vec![names::VAL_LOSS.into(), names::VAL_ACCURACY.into()],
        group_name: String::new(),
        model_uri: String::new(),
        start_time_secs: 0.0,
    };
    run.events().unwrap().add_hparams(&hp).unwrap();
    for e in 1..=3 {
        run.log_epoch(&rows(e, 1.0)).unwrap();
    }
    run.events().unwrap().add_image_png(names::IMAGE_SIMILARITY_MATRIX, &png, w, h, 2).unwrap();
    run.events().unwrap().add_text("notes", text, 1).unwrap();
    run.flush().unwrap();

    // The file is readable by TensorBoard while the writer is still open: check a
    // snapshot now, with epochs 1..=3 of session 1.
    let mut expected_scalars: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let add_rows = |exp: &mut BTreeMap<String, Vec<(i64, f64)>>, rs: &[EpochMetrics]| {
        for r in rs {
            for (tag, v) in scalars_for_row(r) {
                exp.entry(tag).or_default().push((r.epoch as i64, v as f32 as f64));
            }
        }
    };
    for e in 1..=3 {
        add_rows(&mut expected_scalars, &rows(e, 1.0));
    }
    let mut expected = json!({
        "run": run_name,
        "file_version": "brain.Event:2",
        "scalars": expected_scalars,
        "images": {
            names::IMAGE_SIMILARITY_MATRIX: {
                "step": 2, "width": 10, "height": 6,
                "png_hex": png.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            }
        },
        "texts": { "notes": text },
        "hparams": {
            "values": {"lr": 0.001, "model": "late", "amp": false, "epochs": 3.0},
            "metrics": [names::VAL_LOSS, names::VAL_ACCURACY],
            "group_name": "",
            "status": Value::Null,
        },
    });
    run_reader(&py, logdir.path(), &expected, "while running");
    drop(run);

    // Session 2: resume from the epoch-2 checkpoint and redo epoch 3 differently.
    let mut run = RunDir::create(logdir.path(), run_name, CreateMode::Resume).unwrap();
    assert_eq!(run.resume_after(2).unwrap(), 2);
    run.log_epoch(&rows(3, 10.0)).unwrap();
    run.events().unwrap().add_hparams_end(HParamsStatus::Success, 0.0).unwrap();
    run.flush().unwrap();

    let mut expected_scalars: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for e in 1..=2 {
        add_rows(&mut expected_scalars, &rows(e, 1.0));
    }
    add_rows(&mut expected_scalars, &rows(3, 10.0));
    expected["scalars"] = json!(expected_scalars);
    expected["hparams"]["status"] = json!("STATUS_SUCCESS");
    // The image was logged at step 2 (< 3) and survives the purge; text at step 1 too.
    run_reader(&py, logdir.path(), &expected, "after resume");

    // Sanity on our own files: no duplicate metrics rows.
    let rows_back = run.read_metrics().unwrap();
    assert_eq!(rows_back.len(), 6);
}

struct LogDir(PathBuf);
impl LogDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

fn run_reader(py: &str, logdir: &Path, expected: &Value, phase: &str) {
    let exp_path = logdir.join(format!("expected-{}.json", phase.replace(' ', "_")));
    std::fs::write(&exp_path, serde_json::to_vec_pretty(expected).unwrap()).unwrap();
    let out = Command::new(py).arg(script()).arg(logdir).arg(&exp_path).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "read_events.py failed {phase} (status {:?}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
    println!("{phase}: {stdout}");
    std::fs::remove_file(exp_path).unwrap();
}
