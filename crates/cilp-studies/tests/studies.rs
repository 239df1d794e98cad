//! The study tables and verdicts from hand-made results (no training), and the study folder as
//! a group of runs for the run listing. The files written from these summaries are tested with
//! their writer, in the `cilp` crate's `tests/study_files.rs`.

use std::path::Path;

use cilp_studies::runner::{ModelRuns, SeedRun, StudyRuns};
use cilp_studies::stats::Verdict;
use cilp_studies::{
    StudyOptions, StudyPreset, StudySettings, StudySummary, ablation_models, ablation_summary, best_fusion_model, fusion_summary,
    run_models,
};

fn model(name: &str, params: u64, losses: &[f64], accs: &[f64]) -> ModelRuns {
    let runs = losses
        .iter()
        .zip(accs)
        .enumerate()
        .map(|(i, (&l, &a))| SeedRun {
            seed: 51 + i as u64,
            run: format!("{name}-s{}", 51 + i),
            best_val_loss: l,
            final_val_accuracy: a,
            best_epoch_val_accuracy: None,
            total_seconds: 10.0 + i as f64,
            seconds_per_epoch: 4.0 + 0.1 * i as f64,
            peak_memory_mb: Some(500.0 + i as f64),
            val_loss_curve: vec![2.0 * l, l],
        })
        .collect();
    ModelRuns { model: name.into(), parameters: params, runs, point: None }
}

/// The summary's `summary.json` in `out`, as the study files are written.
fn write_summary_json(out: &Path, s: &StudySummary) {
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(s).unwrap()).unwrap();
}

#[test]
fn fusion_tables_and_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs").join("fusion");
    let st = StudyRuns::example(vec![
        model("late-fusion", 13_147_202, &[0.10, 0.11, 0.12], &[0.95, 0.96, 0.97]),
        // Clearly worse: d = 0.4, sd 0.02.
        model("intermediate-add", 6_615_952, &[0.50, 0.52, 0.48], &[0.80, 0.81, 0.79]),
        // Within noise of the best.
        model("intermediate-concat", 13_015_952, &[0.105, 0.125, 0.115], &[0.96, 0.95, 0.97]),
    ]);
    let s = fusion_summary(&st);
    assert_eq!(s.baseline, "late-fusion");
    assert!(s.charts.is_empty(), "drawn by the study files' writer");
    let verdict = |other: &str, metric: &str| {
        let c = s.comparisons.iter().find(|c| c.other == other && serde_json::to_value(c.metric).unwrap() == metric).unwrap();
        c.comparison.verdict
    };
    assert_eq!(verdict("intermediate-add", "best_val_loss"), Verdict::Larger);
    assert_eq!(verdict("intermediate-add", "val_accuracy"), Verdict::Larger);
    assert_eq!(verdict("intermediate-concat", "best_val_loss"), Verdict::Within);
    assert_eq!(verdict("intermediate-concat", "val_accuracy"), Verdict::Within);
    // Run time is summed over runs (10 + 11 + 12 s per model), separate from this invocation's
    // wall time (42 s here), which shrinks when runs are reused.
    assert_eq!(s.run_seconds, 99.0);
    assert!(s.notes[0].contains("99 s inside the runs") && s.notes[0].contains("this invocation 42 s"), "{}", s.notes[0]);
    let add = s.comparisons.iter().find(|c| c.other == "intermediate-add").unwrap();
    assert!((add.comparison.difference - 0.39).abs() < 1e-12);
    // Rows: model, params, loss mean ± sd, ...
    assert_eq!(s.rows[0][0], "late-fusion");
    assert_eq!(s.rows[0][2], "0.1100 ± 0.0100");
    assert_eq!(s.rows[0][3], "96.00% ± 1.00");
    assert_eq!(s.rows[0][7], "best");
    assert_eq!(s.rows[1][8], "larger than seed spread");
    assert_eq!(s.rows[2][8], "within seed spread");
    assert_eq!(s.columns[..4], ["model", "parameters", "best val loss", "val accuracy (best epoch)"]);
    write_summary_json(&out, &s);
    assert_eq!(best_fusion_model(&out).unwrap(), "late-fusion");
    assert_eq!(best_fusion_model(&out.join("summary.json")).unwrap(), "late-fusion");

    // The study folder holds a summary.json but is a group of runs, not a (broken) run.
    let run = out.join("late-fusion-s51");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("metrics.jsonl"), "").unwrap();
    assert!(!cilp_track::run::holds_run(&out));
    let listed = cilp_track::compare::list_runs(&tmp.path().join("runs")).unwrap();
    assert_eq!(listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["fusion/late-fusion-s51"]);
}

#[test]
fn accuracy_is_taken_at_the_best_loss_epoch_when_known() {
    // The last epoch's accuracy swings; the table reports the accuracy of the best-loss
    // checkpoint (what `cilp predict` loads), falling back to the last epoch for old summaries.
    let mut m = model("late-fusion", 13_147_202, &[0.10, 0.11, 0.12], &[0.50, 0.50, 0.50]);
    for (r, a) in m.runs.iter_mut().zip([0.90, 0.92, 0.94]) {
        r.best_epoch_val_accuracy = Some(a);
    }
    let old = model("intermediate-add", 6_615_952, &[0.50, 0.52, 0.48], &[0.80, 0.81, 0.79]);
    let s = fusion_summary(&StudyRuns::example(vec![m, old]));
    assert_eq!(s.rows[0][3], "92.00% ± 2.00");
    assert_eq!(s.rows[1][3], "80.00% ± 1.00");
    // Both accuracies of each run stay in the summary (runs.csv has both).
    assert_eq!((s.models[0].runs[0].best_epoch_val_accuracy, s.models[0].runs[0].final_val_accuracy), (Some(0.9), 0.5));
}

#[test]
fn a_one_sample_accuracy_gap_between_zero_spread_models_is_within_seed_spread() {
    // 80 validation samples: every seed of intermediate-add scores 100%, every seed of
    // late-fusion misses the same one sample (98.75%). Both stds are 0, but accuracy cannot
    // move by less than one sample, so the one-sample gap is not "larger"; five samples are.
    let st = StudyRuns::example(vec![
        model("intermediate-add", 6_615_952, &[0.10, 0.11, 0.12], &[1.0, 1.0, 1.0]),
        model("late-fusion", 13_147_202, &[0.11, 0.12, 0.13], &[0.9875, 0.9875, 0.9875]),
        model("early-fusion", 6_560_000, &[0.12, 0.11, 0.13], &[0.9375, 0.9375, 0.9375]),
    ]);
    let s = fusion_summary(&st);
    assert_eq!(s.baseline, "intermediate-add");
    let acc = |other: &str| {
        s.comparisons.iter().find(|c| c.other == other && serde_json::to_value(c.metric).unwrap() == "val_accuracy").unwrap().clone()
    };
    let late = acc("late-fusion");
    assert_eq!(late.comparison.verdict, Verdict::Within);
    assert!((late.comparison.resolution - 1.0 / 80.0).abs() < 1e-15);
    assert!(late.comparison.welch.unwrap().t.is_finite());
    assert_eq!(acc("early-fusion").comparison.verdict, Verdict::Larger);
    assert_eq!(s.rows[1][10], "within seed spread");
    assert_eq!(s.rows[2][10], "larger than seed spread");
    assert!(s.rule.contains("1/80"), "{}", s.rule);
    // Loss and time are continuous: no floor; peak memory is shown in whole MiB.
    for c in s.comparisons.iter().filter(|c| serde_json::to_value(c.metric).unwrap() != "val_accuracy") {
        let floor = if serde_json::to_value(c.metric).unwrap() == "peak_memory_mb" { 1.0 } else { 0.0 };
        assert_eq!(c.comparison.resolution, floor, "{:?}", c.metric);
    }
}

#[test]
fn ablation_table() {
    assert_eq!(ablation_models("late-fusion").unwrap(), ["late-fusion", "late-fusion-strided", "late-fusion-strided-conv"]);
    assert_eq!(ablation_models("intermediate-add-strided").unwrap()[0], "intermediate-add");
    assert!(ablation_models("embedder-rgb").is_err());
    let st = StudyRuns::example(vec![
        model("late-fusion", 13_147_202, &[0.10, 0.11, 0.12], &[0.95, 0.96, 0.97]),
        model("late-fusion-strided", 13_383_802, &[0.10, 0.12, 0.11], &[0.96, 0.95, 0.97]),
        model("late-fusion-strided-conv", 13_147_202, &[0.30, 0.31, 0.32], &[0.95, 0.96, 0.97]),
    ]);
    let s = ablation_summary(&st);
    assert_eq!(s.rows.len(), 12);
    assert_eq!(s.columns[1..5], ["metric", "MaxPool2d", "strided", "difference"]);
    let get = |model: &str, metric: &str| {
        s.rows.iter().find(|r| r[0].as_str().unwrap().starts_with(&format!("{model} (")) && r[1] == metric).unwrap().clone()
    };
    assert_eq!(get("late-fusion-strided", "best val loss")[6], "within seed spread");
    assert_eq!(get("late-fusion-strided", "parameters")[4], "+236,600");
    assert_eq!(get("late-fusion-strided", "parameters")[6], "larger than seed spread");
    assert_eq!(get("late-fusion-strided-conv", "best val loss")[6], "larger than seed spread");
    assert_eq!(get("late-fusion-strided-conv", "parameters")[6], "within seed spread");
    // An ablation summary names no best fusion model.
    let tmp = tempfile::tempdir().unwrap();
    write_summary_json(tmp.path(), &s);
    assert!(best_fusion_model(tmp.path()).unwrap_err().to_string().contains("not a fusion study summary"));
}

#[test]
fn bad_study_settings_fail_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = StudySettings::preset(StudyPreset::Quick, tmp.path().join("nodata"));
    let opts = StudyOptions::new(tmp.path().join("out"));
    settings.seeds = vec![51, 51];
    let err = run_models(&settings, &["late-fusion".into()], &opts).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    settings.seeds = vec![51];
    let err = run_models(&settings, &["no-such-model".into()], &opts).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("no-such-model"), "{err}");
}

/// A study folder has one writer: while it is locked (here by this test, as another `cilp
/// study` would), run_models is refused at once naming the holder's pid, before it writes or
/// loads anything; the returned StudyRuns of a finished study holds the lock.
#[test]
fn a_locked_study_folder_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = StudySettings::preset(StudyPreset::Quick, tmp.path().join("nodata"));
    let out = tmp.path().join("fusion");
    let held = cilp_track::FolderLock::acquire(&out, "study folder").unwrap();
    let err = run_models(&settings, &["late-fusion".into()], &StudyOptions::new(&out)).unwrap_err();
    assert!(
        matches!(&err, cilp_train::TrainError::Track(cilp_track::Error::Locked { pid: Some(p), .. }) if *p == std::process::id()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("study folder") && msg.contains(&std::process::id().to_string()), "{msg}");
    assert!(!out.exists(), "nothing written while another holds the folder");
    drop(held);
    // Free again: the same call now gets past the lock (and fails on the missing data instead).
    let err = run_models(&settings, &["late-fusion".into()], &StudyOptions::new(&out)).unwrap_err();
    assert!(!matches!(err, cilp_train::TrainError::Track(cilp_track::Error::Locked { .. })), "{err:?}");
}

/// The main job's one sentence: which models differ from the best by more than the seed spread
/// (paired by seed) and how small a difference the seeds could detect. A model planted 0.05 worse
/// on every seed is named; one that is worse on average but not seed by seed is not.
#[test]
fn the_finding_names_a_planted_difference_and_what_is_detectable() {
    let st = StudyRuns::example(vec![
        model("late-fusion", 1, &[0.30, 0.40, 0.35], &[0.9, 0.9, 0.9]),
        model("early-fusion", 1, &[0.351, 0.449, 0.402], &[0.9, 0.9, 0.9]),
        model("intermediate-add", 1, &[0.45, 0.31, 0.39], &[0.9, 0.9, 0.9]),
    ]);
    let s = fusion_summary(&st);
    let f = cilp_studies::finding(&s);
    assert!(
        f.starts_with("fusion: late-fusion has the lowest best validation loss; 1 of the other 2 model(s) differ in it by more than the seed spread (early-fusion) (paired t-test over 3 seed(s), p < 0.05); differences below about "),
        "{f}"
    );
    assert!(f.ends_with(" cannot be told apart with these seeds."), "{f}");
    assert!(s.notes.iter().any(|n| n.starts_with("With 3 seeds this study detects (paired t-test, 80% power)")), "{:?}", s.notes);
}

/// `--lr-schedule` reaches every run's config and the settings line; constant stays out of it.
#[test]
fn a_learning_rate_schedule_reaches_every_run_and_the_settings_line() {
    let models = || {
        vec![model("late-fusion", 1, &[0.3, 0.4, 0.35], &[0.9, 0.9, 0.9]), model("early-fusion", 1, &[0.4, 0.5, 0.45], &[0.8, 0.8, 0.8])]
    };
    let mut st = StudyRuns::example(models());
    assert!(fusion_summary(&st).notes[0].contains("Adam lr 0.001, device"), "{}", fusion_summary(&st).notes[0]);
    st.settings.lr_schedule = cilp_train::LrSchedule::Cosine;
    assert_eq!(st.settings.train_config("late-fusion", 52).lr_schedule, cilp_train::LrSchedule::Cosine);
    let s = fusion_summary(&st);
    assert!(s.notes[0].contains("Adam lr 0.001 (cosine, per epoch), device"), "{}", s.notes[0]);
}
