//! End to end: a study fanned out as an array job. `--plan` lists the runs, three worker
//! processes started together (`--task-index N`, or the scheduler's variable) train them into
//! one study folder, `--collect` summarises; the numbers equal a study run on one machine. A
//! killed worker's task resumes when re-run; a run another worker holds is refused.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// Loss and accuracy of every epoch row of a run (what must not depend on where it ran).
fn learning_rows(run: &std::path::Path) -> Vec<(u64, String, String, String)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_else(|e| panic!("{}: {e}", run.display()));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["epoch"].as_u64().unwrap(), v["split"].to_string(), v["loss"].to_string(), v["accuracy"].to_string()))
        .collect()
}

/// What a study found, without times and memory: per run, the best loss, accuracy and curve;
/// per comparison of loss and accuracy, every number.
fn findings(summary: &Value) -> Value {
    let models: Vec<Value> = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let runs: Vec<Value> = m["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| serde_json::json!([r["run"], r["best_val_loss"], r["final_val_accuracy"], r["val_loss_curve"]]))
                .collect();
            serde_json::json!([m["model"], m["metrics"]["best_val_loss"], m["metrics"]["val_accuracy"], runs])
        })
        .collect();
    let comparisons: Vec<&Value> = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == "best_val_loss" || c["metric"] == "val_accuracy")
        .collect();
    serde_json::json!({ "baseline": summary["baseline"], "models": models, "comparisons": comparisons })
}

#[test]
fn an_array_of_workers_gives_the_study_of_one_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 8, 5);
    let study = |out: &std::path::Path| -> Vec<String> {
        ["fusion", "--data", s(&data), "--out", s(out), "--quiet", "--models", "early-fusion,intermediate-add", "--seeds", "51,52,53"]
            .into_iter()
            .chain(["--epochs", "2", "--limit-per-class", "8", "--batch-size", "8"])
            .map(String::from)
            .collect()
    };
    let with =
        |base: &[String], extra: &[&str]| -> Vec<String> { base.iter().cloned().chain(extra.iter().map(|x| x.to_string())).collect() };
    let strs = |v: &[String]| -> Vec<String> { v.to_vec() };

    // One machine.
    let one = tmp.path().join("one");
    let args = study(&one);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // The plan: 2 models x 3 seeds, in the order one machine trains them.
    let array = tmp.path().join("array");
    let base = study(&array);
    let plan: Value = serde_json::from_str(&ok(&with(&base, &["--plan"]).iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    assert_eq!(plan["tasks"], 6);
    let runs: Vec<&str> = plan["runs"].as_array().unwrap().iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(
        runs,
        [
            "early-fusion-s51",
            "early-fusion-s52",
            "early-fusion-s53",
            "intermediate-add-s51",
            "intermediate-add-s52",
            "intermediate-add-s53"
        ]
    );
    assert_eq!(plan["runs"][4]["config"]["seed"], 52);
    assert_eq!(plan["runs"][4]["config"]["model"], "intermediate-add");
    assert!(!array.exists(), "--plan wrote nothing");

    // Collecting before any task ran is an error naming the cause.
    let err = fails(&with(&base, &["--collect"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("none of the 6 runs") && err.contains("--plan"), "{err}");

    // Task 4 is killed in epoch 2 (its worker "node" dies); the other tasks run as three
    // processes at a time, indices from --task-index or from the schedulers' variables.
    let killed = cilp().args(with(&base, &["--task-index", "4"])).env("CILP_TEST_ABORT_AT", "2:1").output().unwrap();
    assert!(!killed.status.success(), "the hook kills the worker");
    let spawn = |i: usize| {
        let mut c = cilp();
        match i % 3 {
            0 => c.args(with(&strs(&base), &["--task-index", &i.to_string()])),
            1 => c.args(with(&strs(&base), &["--task-index"])).env("SLURM_ARRAY_TASK_ID", i.to_string()),
            _ => c.args(with(&strs(&base), &["--task-index"])).env("JOB_COMPLETION_INDEX", i.to_string()),
        };
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    for wave in [[0, 1, 2], [3, 5, 0]] {
        let children: Vec<_> = wave.iter().map(|&i| spawn(i)).collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }

    // Run 4 is missing from a collect, named with its state, and the command fails.
    let o = run(&with(&base, &["--collect"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    let md = std::fs::read_to_string(array.join("results.md")).unwrap();
    assert!(md.contains("INCOMPLETE: 1 of the study's runs") && md.contains("intermediate-add-s52"), "{md}");
    let partial = read_json(&array.join("summary.json"));
    assert_eq!(partial["missing_runs"][0]["run"], "intermediate-add-s52");

    // A worker given a run another process holds is refused at once, naming the holder.
    let held = cilp_track::FolderLock::acquire(&array.join("intermediate-add-s52"), "run folder").unwrap();
    let err = fails(&with(&base, &["--task-index", "4"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("intermediate-add-s52") && err.contains("being written by process"), "{err}");
    drop(held);
    // An index past the plan is refused.
    let err = fails(&with(&base, &["--task-index", "6"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("out of range") && err.contains("0 to 5"), "{err}");

    // Re-running task 4 resumes it from its last committed epoch; then the collect is whole.
    let stdout = ok(&with(&base, &["--task-index", "4"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("intermediate-add-s52 completed"), "{stdout}");
    ok(&with(&base, &["--collect"]).iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = (read_json(&one.join("summary.json")), read_json(&array.join("summary.json")));
    assert!(b.get("missing_runs").is_none(), "{b}");
    assert_eq!(findings(&a), findings(&b));
    for r in runs {
        assert_eq!(learning_rows(&one.join(r)), learning_rows(&array.join(r)), "{r}");
    }
}

/// `--jobs N` on one machine: worker processes train N runs at once, the costliest first; the
/// study equals the one trained run after run. Workers killed in epoch 2 fail the study (naming
/// each run and its log), no further run starts, and `--resume` with another N finishes it, the
/// same again.
#[test]
fn local_workers_give_the_study_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 8, 7);
    let study = |out: &std::path::Path, extra: &[&str]| -> Vec<String> {
        ["fusion", "--data", s(&data), "--out", s(out), "--models", "early-fusion,intermediate-add", "--seeds", "51,52,53"]
            .into_iter()
            .chain(["--epochs", "2", "--limit-per-class", "8", "--batch-size", "8"])
            .chain(extra.iter().copied())
            .map(String::from)
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let one = tmp.path().join("one");
    ok(&args(&study(&one, &["--quiet"])));

    // Every worker dies in epoch 2: the first three runs (intermediate fusion, the costlier model,
    // though planned second) fail, and no other run starts.
    let par = tmp.path().join("par");
    let o = cilp().args(study(&par, &["--jobs", "3"])).env("CILP_TEST_ABORT_AT", "2:1").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("3 of the study's workers failed") && err.contains("--resume"), "{err}");
    for r in ["intermediate-add-s51", "intermediate-add-s52", "intermediate-add-s53"] {
        assert!(err.contains(&format!("{r} (")) && err.contains(&format!(".workers/{r}.log")), "{r}: {err}");
        assert!(par.join(".workers").join(format!("{r}.log")).is_file(), "{r}: the failed worker's log is kept");
    }
    assert!(!par.join("early-fusion-s51").exists(), "no run starts after a failure");
    assert!(!par.join("summary.json").exists());

    // Resumed with two workers: each killed run continues from its committed epoch 1.
    let stderr = {
        let o = cilp().args(study(&par, &["--jobs", "2", "--resume"])).output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{e}");
        e
    };
    assert!(stderr.contains("6 runs in worker processes, 2 at a time"), "{stderr}");
    assert!(!par.join(".workers").exists(), "the workers' folder goes when every worker succeeded");
    let (a, b) = (read_json(&one.join("summary.json")), read_json(&par.join("summary.json")));
    assert_eq!(findings(&a), findings(&b));
    for m in ["early-fusion", "intermediate-add"] {
        for seed in [51, 52, 53] {
            let r = format!("{m}-s{seed}");
            assert_eq!(learning_rows(&one.join(&r)), learning_rows(&par.join(&r)), "{r}");
            let summary = read_json(&par.join(&r).join("summary.json"));
            assert_eq!(summary["status"], "completed", "{r}");
        }
    }
    // A completed study resumed again reads every run back without starting a worker.
    let o = cilp().args(study(&par, &["--jobs", "2", "--resume"])).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && e.matches("finished before, read back").count() == 6 && !e.contains("started"), "{e}");

    let err = fails(&args(&study(&par, &["--jobs", "0"])));
    assert!(err.contains("--jobs") && err.contains("at least 1"), "{err}");
}

/// Without `--jobs`, a study on the CPU trains two runs at once where there are two compute
/// threads, and in this process where there is one; `--jobs 1` keeps one process on any machine.
#[test]
fn a_study_takes_two_jobs_by_default_where_there_are_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 4, 11);
    let study = |out: &str, threads: &str, extra: &[&str]| -> String {
        let out = tmp.path().join(out);
        let mut args = vec!["ablation", "--data", s(&data), "--out", s(&out), "--seeds", "51", "--epochs", "1"];
        args.extend(["--model", "early-fusion", "--limit-per-class", "4", "--batch-size", "4"]);
        args.extend(extra);
        let o = cilp().args(&args).env("RAYON_NUM_THREADS", threads).output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{e}");
        assert!(out.join("summary.json").is_file(), "{e}");
        e
    };
    let two = study("two", "2", &[]);
    assert!(two.contains(" runs in worker processes, 2 at a time, 1 compute thread(s) each"), "{two}");
    for (name, threads, extra) in [("one-thread", "1", &[][..]), ("one-job", "2", &["--jobs", "1"][..])] {
        let e = study(name, threads, extra);
        assert!(!e.contains("worker processes"), "{name}: {e}");
    }
}

/// A study killed with SIGKILL (which it cannot pass on) takes its workers with it: none keeps
/// training or holds its run's lock.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_study_takes_its_workers_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 8, 9);
    let out = tmp.path().join("study");
    let args: Vec<String> = ["fusion", "--data", s(&data), "--out", s(&out), "--models", "early-fusion", "--seeds", "51,52"]
        .into_iter()
        .chain(["--epochs", "200", "--limit-per-class", "8", "--batch-size", "8", "--quiet", "--jobs", "2"])
        .map(String::from)
        .collect();
    let mut study = cilp().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until both workers have started training (their runs have metrics).
    let runs = ["early-fusion-s51", "early-fusion-s52"].map(|r| out.join(r));
    let t = std::time::Instant::now();
    while !runs.iter().all(|r| r.join("metrics.jsonl").is_file()) {
        assert!(t.elapsed().as_secs() < 120, "the workers did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    study.kill().unwrap(); // SIGKILL
    study.wait().unwrap();
    // Each run's folder lock is free within seconds: its worker is gone.
    for r in &runs {
        let t = std::time::Instant::now();
        loop {
            match cilp_track::FolderLock::acquire(r, "run folder") {
                Ok(_) => break,
                Err(e) => assert!(t.elapsed().as_secs() < 10, "{}: still held after the study was killed: {e}", r.display()),
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
