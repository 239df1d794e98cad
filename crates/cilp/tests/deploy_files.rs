//! The cluster examples in deploy/: the Slurm scripts pass shellcheck, the Kubernetes manifests
//! pass kubernetes-validate (the API's own schemas, offline), and the Indexed Job has one
//! completion per run of the study it runs. The validators are installed by `.ci/run`; a missing
//! one skips its check with a message, unless `$CI` is set, in which case the test fails.

mod common;

use std::process::Command;

use common::*;

/// Runs a validator, or says why it could not (skip locally, fail in CI).
fn validate(program: &str, args: &[String]) -> Option<std::process::Output> {
    match Command::new(program).args(args).output() {
        Ok(o) => Some(o),
        Err(e) => {
            let msg = format!("{program} not runnable ({e}): check skipped");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("skipped: {msg}");
            None
        }
    }
}

fn files(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let dir = workspace_root().join(dir);
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| keep(p))
        .collect();
    v.sort();
    v
}

#[test]
fn slurm_scripts_pass_shellcheck() {
    let scripts = files("deploy/slurm", |p| p.ends_with(".sh") || p.ends_with(".sbatch"));
    assert_eq!(scripts.len(), 3, "{scripts:?}");
    if let Some(o) = validate("shellcheck", &scripts) {
        assert!(o.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&o.stdout));
    }
}

/// scripts/: the GPU check (and any other script there) passes shellcheck too.
#[test]
fn scripts_pass_shellcheck() {
    let scripts = files("scripts", |p| p.ends_with(".sh"));
    assert!(scripts.iter().any(|p| p.ends_with("gpu-check.sh")), "{scripts:?}");
    if let Some(o) = validate("shellcheck", &scripts) {
        assert!(o.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn kubernetes_manifests_are_valid_and_sized_to_the_plan() {
    let manifests = files("deploy/k8s", |p| p.ends_with(".yaml"));
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    let mut args = vec!["--strict".to_string()];
    args.extend(manifests.iter().cloned());
    if let Some(o) = validate("kubernetes-validate", &args) {
        assert!(o.status.success(), "kubernetes-validate:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    // The Indexed Job runs the full fusion study: one completion per planned run.
    let plan: serde_json::Value = serde_json::from_str(&ok(&["fusion", "--data", "data/default", "--preset", "full", "--plan"])).unwrap();
    let job = std::fs::read_to_string(workspace_root().join("deploy/k8s/fusion-job.yaml")).unwrap();
    assert!(job.contains("\"--preset\", \"full\""), "{job}");
    assert!(
        job.contains(&format!("completions: {} ", plan["tasks"])),
        "the job's completions differ from the plan's {} tasks",
        plan["tasks"]
    );
}
