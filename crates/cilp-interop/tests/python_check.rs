//! The other side of the interface: the real `safetensors` package reads cilp's exports.
//!
//! Writes late-fusion and seed-cilp exports, late-fusion's input batch and cilp's logits as
//! `.npy` into `CILP_PY_CHECK_OUT` (a temporary folder when unset), then runs
//! `tests/python/check_safetensors.py` with `CILP_PYTHON` (default `python3`): keys and shapes
//! against `seed_state_dicts.json`, and late-fusion's logits recomputed in numpy within 1e-4.
//! Where that Python lacks `safetensors` or `numpy` the test prints `skipped: ...` and passes
//! (`pip install safetensors numpy`; no torch needed); with `CI` set it fails instead.

mod common;

use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use cilp_models::{ModelInputs, ModelSpec};
use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/check_safetensors.py");

#[test]
fn python_safetensors_reads_the_export_and_recomputes_the_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("CILP_PY_CHECK_OUT").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    let device = Device::flex();
    device.seed(7);
    let spec = ModelSpec::parse("late-fusion").unwrap();
    let Zoo::Classifier(classifier) = build(spec, &device) else { unreachable!() };
    // Weights scaled so that the logits depend on the input well beyond the tolerance (see
    // `with_gain`; at burn's default init their spread over this batch is about 3e-4).
    let classifier = with_gain(classifier, 6f32.sqrt());
    let opts = cilp_interop::ExportOptions { overwrite: true, ..Default::default() };
    cilp_interop::export_safetensors(&classifier, spec, &out.join("late-fusion.safetensors"), &opts).unwrap();
    let (rgb, xyza) = (input(3, 4, 11, &device), input(3, 4, 12, &device).mul_scalar(2.0).sub_scalar(1.0));
    let logits = classifier.forward(&ModelInputs { rgb: Some(rgb.clone()), xyza: Some(xyza.clone()), depth: None });
    for (name, t) in [("rgb", rgb.into_data()), ("xyza", xyza.into_data()), ("logits", logits.into_data())] {
        let shape = t.shape().to_vec();
        cilp_data::npy::write_npy(&out.join(format!("{name}.npy")), &shape, &t.try_to_vec::<f32>().unwrap()).unwrap();
    }
    build(ModelSpec::SeedCilp, &device).export(ModelSpec::SeedCilp, &out.join("seed-cilp.safetensors")).unwrap();

    let python = std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import numpy, safetensors.numpy"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let msg = format!(
            "the safetensors and numpy Python packages are not importable with `{python}`; run `pip install safetensors numpy` \
             (or set CILP_PYTHON to a Python that has them)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: safetensors not installed ({msg})");
        return;
    }
    let reference = shared_file("reference/seed_state_dicts.json");
    let run = Command::new(&python).arg(Path::new(SCRIPT)).arg(&out).arg(&reference).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    eprintln!("{text}");
    assert!(run.status.success(), "check_safetensors.py failed:\n{text}");
    assert!(text.contains("ok   late-fusion logits"), "{text}");
}
