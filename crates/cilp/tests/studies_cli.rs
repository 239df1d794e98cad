//! End to end: `cilp fusion` then `cilp ablation` on a tiny dataset (2 models, 2 seeds, 1 epoch),
//! then `cilp runs list` and `cilp report` over the runs directory holding both studies.

mod common;

use common::*;
use serde_json::Value;

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

const TINY: [&str; 8] = ["--seeds", "51,52", "--epochs", "1", "--limit-per-class", "12", "--batch-size", "8"];

#[test]
fn fusion_then_ablation_then_runs_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 12, 7);
    let runs = tmp.path().join("runs");
    let fusion = runs.join("fusion");
    let mut args = vec!["fusion", "--data", s(&data), "--out", s(&fusion), "--quiet", "--models", "intermediate-add,early-fusion"];
    args.extend(TINY);
    let stdout = ok(&args);
    assert!(stdout.contains("| model | parameters | best val loss |"), "{stdout}");
    assert!(stdout.contains("seed spread"), "{stdout}");

    let summary = read_json(&fusion.join("summary.json"));
    assert_eq!(summary["study"], "fusion");
    let best = summary["baseline"].as_str().unwrap().to_owned();
    assert!(best == "intermediate-add" || best == "early-fusion", "{best}");
    let models = summary["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["parameters"], 6_615_952);
    assert_eq!(models[0]["metrics"]["best_val_loss"]["n"], 2);
    assert!(models[0]["metrics"]["best_val_loss"]["std"].as_f64().is_some());
    assert_eq!(summary["split"]["split_seed"], 51);
    assert_eq!(summary["rows"].as_array().unwrap().len(), 2);
    // 1 other model x 4 compared metrics.
    assert_eq!(summary["comparisons"].as_array().unwrap().len(), 4);
    for c in summary["comparisons"].as_array().unwrap() {
        let v = c["verdict"].as_str().unwrap();
        assert!(["larger", "within"].contains(&v), "{v}");
    }
    for f in [
        "study_table.json",
        "results.md",
        "results.csv",
        "runs.csv",
        "val_loss.svg",
        "accuracy.svg",
        "parameters.svg",
        "time_per_epoch.svg",
        "peak_memory.svg",
    ] {
        assert!(fusion.join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(fusion.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    for r in ["intermediate-add-s51", "intermediate-add-s52", "early-fusion-s51", "early-fusion-s52"] {
        assert!(fusion.join(r).join("config.toml").is_file(), "{r}");
        let cfg = std::fs::read_to_string(fusion.join(r).join("config.toml")).unwrap();
        assert!(cfg.contains("split_seed = 51"), "{cfg}");
    }

    // Refuses to overwrite; --resume reads finished runs back without training.
    let err = fails(&args);
    assert!(err.contains("--force") && err.contains("--resume"), "{err}");
    let mut resume = args.clone();
    resume.push("--resume");
    ok(&resume);

    // The ablation picks the best fusion model from the sibling fusion folder.
    let ablation = runs.join("ablation");
    let mut args = vec!["ablation", "--data", s(&data), "--out", s(&ablation), "--quiet"];
    args.extend(TINY);
    let stdout = ok(&args);
    assert!(stdout.contains("| metric | MaxPool2d | strided | difference |"), "{stdout}");
    let summary = read_json(&ablation.join("summary.json"));
    assert_eq!(summary["study"], "ablation");
    assert_eq!(summary["baseline"], best.as_str());
    // 2 strided styles x 6 metrics.
    assert_eq!(summary["rows"].as_array().unwrap().len(), 12);
    // The summary reads back as the typed summary `cilp run` reads for its closing sentence: the
    // parameter counts never vary across seeds, so their t statistics are infinite (written as
    // null before session 12, which failed that read and `cilp run` with it).
    let text = std::fs::read_to_string(ablation.join("summary.json")).unwrap();
    let typed: cilp_track::study::StudySummary = serde_json::from_str(&text).expect("the ablation summary reads back typed");
    assert!(
        typed.comparisons.iter().flat_map(|c| c.comparison.paired).any(|p| p.t.is_infinite()),
        "expected an infinite paired t (a metric that does not vary)"
    );
    assert!(!cilp_studies::finding(&typed).is_empty());
    assert!(ablation.join(format!("{best}-strided-conv-s52")).join("summary.json").is_file());
    // The MaxPool2d baseline is the fusion study's run, reused rather than trained again: a
    // retrained run would record other epoch times.
    for seed in [51, 52] {
        let run = format!("{best}-s{seed}");
        let metrics = |dir: &std::path::Path| std::fs::read(dir.join(&run).join("metrics.jsonl")).unwrap();
        assert_eq!(metrics(&ablation), metrics(&fusion), "{run} was trained again instead of reused");
    }
    let baseline = summary["models"].as_array().unwrap().iter().find(|m| m["model"] == best.as_str()).unwrap().clone();
    let fusion_summary = read_json(&fusion.join("summary.json"));
    let fused = fusion_summary["models"].as_array().unwrap().iter().find(|m| m["model"] == best.as_str()).unwrap().clone();
    assert_eq!(baseline["metrics"]["best_val_loss"], fused["metrics"]["best_val_loss"]);
    // Other settings (2 epochs) give another config: the baseline is trained, not reused.
    let other = tmp.path().join("ablation-2ep");
    ok(&[
        "ablation",
        "--data",
        s(&data),
        "--out",
        s(&other),
        "--quiet",
        "--fusion",
        s(&fusion),
        "--seeds",
        "51",
        "--epochs",
        "2",
        "--limit-per-class",
        "12",
        "--batch-size",
        "8",
    ]);
    let trained = std::fs::read_to_string(other.join(format!("{best}-s51/metrics.jsonl"))).unwrap();
    assert_eq!(trained.lines().count(), 4, "2 epochs x (train, val) rows: {trained}");

    // The runs listing sees the study folders as groups of runs, not as broken runs.
    let list = ok(&["runs", "list", s(&runs)]);
    assert!(list.contains(&format!("fusion/{best}-s51")), "{list}");
    assert!(list.contains(&format!("ablation/{best}-strided-s52")), "{list}");
    assert!(!list.contains("broken"), "{list}");

    let r1 = fusion.join(format!("{best}-s51"));
    let r2 = ablation.join(format!("{best}-strided-s51"));
    let cmp = ok(&["runs", "compare", s(&r1), s(&r2)]);
    assert!(cmp.contains(&format!("{best}-strided-s51")), "{cmp}");

    let html = tmp.path().join("report.html");
    ok(&["report", "--runs", s(&runs), "--out", s(&html)]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Fusion comparison") && page.contains("MaxPool2d vs strided"), "report lacks the study tables");
    assert_eq!(page.matches("Fusion comparison (").count(), 1, "the fusion table is shown once");

    // A bad model name fails cleanly.
    let err = fails(&["ablation", "--data", s(&data), "--out", s(&tmp.path().join("x")), "--model", "embedder-rgb"]);
    assert!(err.contains("strided"), "{err}");
}

#[test]
fn study_reports_the_pairs_it_really_loaded() {
    // The quick preset asks for more pairs per class than this dataset holds: the study must
    // say how many it loaded, not echo the preset's limit.
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 6, 3);
    let out = tmp.path().join("fusion");
    let args =
        ["fusion", "--data", s(&data), "--out", s(&out), "--models", "early-fusion", "--seeds", "51", "--epochs", "1", "--batch-size", "8"];
    let o = run(&args);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("loaded 12 pairs: 6 cubes, 6 spheres (fewer than the"), "{stderr}");
    assert!(stdout.contains("12 pairs loaded"), "{stdout}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("12 pairs loaded") && !md.contains("pairs per class)"), "{md}");
    // --seeds overrides the preset's seeds.
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["settings"]["seeds"].as_array().unwrap().len(), 1);
}

#[test]
fn learning_rate_grid_trains_every_point_and_ranks_them() {
    // --lrs x --lr-schedules: every model at every point, each an ordinary run with its own
    // config, ranked in the table, the ablation taking the best arm's model.
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "data", 8, 5);
    let out = tmp.path().join("runs").join("fusion");
    let args = [
        "fusion",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--quiet",
        "--models",
        "early-fusion",
        "--seeds",
        "51,52",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lrs",
        "1e-3,1e-5",
        "--lr-schedules",
        "constant,cosine",
    ];
    let stdout = ok(&args);
    assert!(stdout.contains("Learning-rate grid: 4 arms") && stdout.contains("| rank | model |"), "{stdout}");
    let summary = read_json(&out.join("summary.json"));
    let grid = summary["settings"]["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 4);
    let arms = ["early-fusion-lr1e-3-constant", "early-fusion-lr1e-3-cosine", "early-fusion-lr1e-5-constant", "early-fusion-lr1e-5-cosine"];
    let names: Vec<&str> = summary["models"].as_array().unwrap().iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(names, arms);
    for (arm, lr) in arms.iter().zip(["0.001", "0.001", "0.00001", "0.00001"]) {
        for seed in [51, 52] {
            let cfg = std::fs::read_to_string(out.join(format!("{arm}-s{seed}")).join("config.toml")).unwrap();
            assert!(cfg.contains(&format!("lr = {lr}\n")), "{arm}: {cfg}");
            // Constant is the default and left out of the config.
            assert_eq!(cfg.contains("lr_schedule = \"cosine\""), arm.ends_with("cosine"), "{arm}: {cfg}");
            // Cosine over 2 epochs: epoch 1 at the base rate, epoch 2 at half of it.
            let m = std::fs::read_to_string(out.join(format!("{arm}-s{seed}")).join("metrics.jsonl")).unwrap();
            let lrs: Vec<f64> = m
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["split"] == "train")
                .map(|v| v["lr"].as_f64().unwrap())
                .collect();
            let base: f64 = lr.parse().unwrap();
            let want = if arm.ends_with("cosine") { [base, base / 2.0] } else { [base, base] };
            assert_eq!(lrs.len(), 2, "{arm}: {m}");
            assert!(lrs.iter().zip(want).all(|(a, b)| (a - b).abs() <= 1e-12 * b), "{arm}: {lrs:?} vs {want:?}");
        }
    }
    // Ranked by mean best validation loss, the best arm first.
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let mean = |arm: &str| {
        summary["models"].as_array().unwrap().iter().find(|m| m["model"] == arm).unwrap()["metrics"]["best_val_loss"]["mean"]
            .as_f64()
            .unwrap()
    };
    let ranked: Vec<f64> = rows.iter().map(|r| mean(r[1].as_str().unwrap())).collect();
    assert!(ranked.windows(2).all(|w| w[0] <= w[1]), "{ranked:?}");
    assert_eq!(rows[0][0], "1");
    assert_eq!(rows[0][1], summary["baseline"]);
    // 3 other arms x 4 compared metrics.
    assert_eq!(summary["comparisons"].as_array().unwrap().len(), 12);
    // --lrs conflicts with --lr.
    let err = fails(&["fusion", "--data", s(&data), "--out", s(&out), "--lr", "1e-3", "--lrs", "1e-3,1e-4"]);
    assert!(err.contains("--lr"), "{err}");
    // The ablation after a grid ablates the best arm's model.
    let err_or_ok = run(&[
        "ablation",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("runs").join("ablation")),
        "--quiet",
        "--seeds",
        "51",
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ]);
    let stderr = String::from_utf8_lossy(&err_or_ok.stderr);
    assert!(err_or_ok.status.success() && stderr.contains("ablating early-fusion, the best model"), "{stderr}");
}
