//! The ONNX export, run by the real onnxruntime: every zoo classifier.
//!
//! For EVERY zoo classifier: export with random init (seeded; weights scaled by about `sqrt(6)`
//! so that the logits depend on the input, see `common::with_gain`), compute cilp's logits on a fixed
//! batch of 3, and write the `.onnx` (with its sidecar), the inputs (`rgb.npy`, `xyza.npy`,
//! `depth.npy`) and the logits (`MODEL.logits.npy`) into `CILP_PY_CHECK_OUT` (a temporary
//! folder when unset). Then `tests/python/check_onnx.py`, run with `CILP_PYTHON` (default
//! `python3`), loads each graph in onnxruntime (and checks it with `onnx.checker` where the
//! `onnx` package is installed), compares its logits with cilp's within 1e-4 and runs batches of
//! 1 and 5 (the dynamic batch axis), whose rows must equal the batch-3 rows. Where that Python
//! lacks onnxruntime or numpy the test prints `skipped: ...` and passes (`pip install onnxruntime
//! numpy`); with `CI` set it fails instead.

mod common;

use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use cilp_interop::{ExportOptions, export_onnx};
use cilp_models::ModelSpec;
use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/check_onnx.py");

#[test]
fn onnxruntime_reproduces_every_classifier() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("CILP_PY_CHECK_OUT").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    let python = std::env::var("CILP_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import numpy, onnxruntime"]).output();
    let have_ort = probe.as_ref().is_ok_and(|o| o.status.success());
    if !have_ort && std::env::var_os("CI").is_some() {
        panic!("onnxruntime and numpy are not importable with `{python}`; run `pip install onnxruntime numpy`");
    }

    let device = Device::flex();
    let inputs = batch_of_3(11, &device, &out);
    let specs = classifier_specs();
    assert_eq!(specs.len(), 21, "the zoo's classifiers");
    let opts = ExportOptions { overwrite: true, ..Default::default() };
    for (i, spec) in specs.iter().enumerate() {
        // Weights scaled so that the logits depend on the input (see `scaled_classifier`).
        let model = scaled_classifier(*spec, 100 + i as u64, &device);
        let name = spec.name();
        let report = export_onnx(&model, *spec, &out.join(format!("{name}.onnx")), &opts).unwrap();
        assert_eq!(report.info.onnx.as_ref().unwrap().opset, 17);
        let logits = model.forward(&inputs);
        assert_eq!(logits.dims(), [3, spec.outputs()]);
        write_npy(&out.join(format!("{name}.logits.npy")), logits);
    }

    // The contrastive and regression models have no ONNX graph: refused by name.
    let cilp = ModelSpec::parse("cilp").unwrap();
    let any = specs[0].build_classifier(&device).unwrap();
    let err = export_onnx(&any, cilp, &out.join("cilp.onnx"), &opts).unwrap_err().to_string();
    assert!(err.contains("'cilp' is a contrastive model"), "{err}");

    if !have_ort {
        eprintln!("skipped: onnxruntime not installed (`pip install onnxruntime numpy`, or set CILP_PYTHON to a Python that has them)");
        return;
    }
    let run = Command::new(&python).arg(Path::new(SCRIPT)).arg(&out).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    eprintln!("{text}");
    assert!(run.status.success(), "check_onnx.py failed:\n{text}");
    assert!(text.contains(&format!("ok   all {} ONNX exports", specs.len())), "{text}");
}
