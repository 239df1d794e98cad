//! Export with the original PyTorch names, import back, and the errors of a file that does not fit.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::*;
use burn::store::ModuleSnapshot;
use cilp_interop::{InteropError, KeyMap, load_classifier, load_weights, read_sidecar, read_weights};
use cilp_models::{ModelInputs, ModelSpec};
use common::*;

/// Which zoo models each entry of `seed_state_dicts.json` is.
fn zoo_names_of(reference: &str) -> Vec<&str> {
    match reference {
        "embedder(4,2)" => vec!["embedder-rgb", "embedder-lidar"],
        "embedder-strided(4,2)" => vec!["seed-lidar-classifier"],
        other => vec![other],
    }
}

#[test]
fn every_zoo_model_has_a_complete_key_map() {
    let device = Device::flex();
    for spec in ModelSpec::all() {
        let model = build(spec, &device);
        let shapes = model.shapes(spec).unwrap_or_else(|e| panic!("{}: {e}", spec.name()));
        let keys: BTreeSet<&str> = shapes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), shapes.len(), "{}: duplicate PyTorch keys", spec.name());
        let params: usize = shapes.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(params, model.num_params(), "{}: every parameter has one key", spec.name());
    }
}

#[test]
fn exports_have_exactly_the_original_keys_and_shapes() {
    let text = std::fs::read_to_string(shared_file("reference/seed_state_dicts.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let models = reference["models"].as_object().expect("models");
    assert_eq!(models.len(), 12, "the reference lists 12 models");
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    for (ref_name, entry) in models {
        let want: Vec<(String, Vec<usize>)> = entry["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (kv[0].as_str().unwrap().to_string(), kv[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect())
            })
            .collect();
        for zoo in zoo_names_of(ref_name) {
            let spec = ModelSpec::parse(zoo).unwrap();
            let model = build(spec, &device);
            assert_eq!(model.num_params() as u64, entry["parameters"].as_u64().unwrap(), "{zoo}: parameter count");
            // In order, before any file is written.
            assert_eq!(model.shapes(spec).unwrap(), want, "{zoo} vs {ref_name}: keys, shapes and order");
            // In the file, as a set (safetensors sorts its header).
            let path = dir.path().join(format!("{zoo}.safetensors"));
            let report = model.export(spec, &path).unwrap();
            let (_, tensors) = read_weights(&path).unwrap();
            let got: BTreeMap<String, Vec<usize>> = tensors.iter().map(|(k, t)| (k.clone(), t.shape.as_slice().to_vec())).collect();
            let want_set: BTreeMap<String, Vec<usize>> = want.iter().cloned().collect();
            assert_eq!(got, want_set, "{zoo}: the file's keys and shapes");
            assert!(tensors.values().all(|t| t.dtype == burn::tensor::DType::F32), "{zoo}: float32");
            let side = read_sidecar(&path).unwrap().expect("sidecar");
            assert_eq!(side, report.info);
            assert_eq!(side.pytorch_class.as_deref(), entry["constructor"].as_str(), "{zoo}: class");
            assert_eq!(side.key_names, "original");
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn nvidia_classifier_exports_with_the_keys_of_lidar_cnn_pt() {
    let device = Device::flex();
    let spec = ModelSpec::LidarClassifier;
    let model = build(spec, &device);
    let (_, pt) = read_weights(&shared_file("fixtures/lidar_cnn.pt")).unwrap();
    let want: BTreeMap<String, Vec<usize>> = pt.iter().map(|(k, t)| (k.clone(), t.shape.as_slice().to_vec())).collect();
    let got: BTreeMap<String, Vec<usize>> = model.shapes(spec).unwrap().into_iter().collect();
    assert_eq!(got, want);
    assert_eq!(KeyMap::of(spec).source, cilp_interop::NameSource::Nvidia);
}

fn logits(model: &cilp_models::Classifier, device: &Device) -> Vec<f32> {
    let inputs = ModelInputs {
        rgb: Some(input(2, 4, 1, device)),
        xyza: Some(input(2, 4, 2, device)),
        depth: Some(input(2, 1, 3, device).mul_scalar(50.0)),
    };
    model.forward(&inputs).into_data().try_to_vec::<f32>().unwrap()
}

fn params(model: &impl ModuleSnapshot) -> Vec<(String, Vec<f32>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|t| (t.name.clone(), burn::store::bridge::into_data(t).unwrap().try_to_vec::<f32>().unwrap()))
        .collect()
}

#[test]
fn round_trip_is_bit_exact() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "late-fusion-strided",
        "intermediate-hadamard",
        "early-fusion-strided-conv",
        "embedder-lidar",
        "nvidia-lidar-classifier",
        "rgb-to-lidar",
        "seed-rgb-to-lidar",
    ] {
        let spec = ModelSpec::parse(name).unwrap();
        device.seed(1);
        let a = spec.build_classifier(&device).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        build_export(&a, spec, &path);
        device.seed(2);
        let b = spec.build_classifier(&device).unwrap();
        assert_ne!(logits(&a, &device), logits(&b, &device), "{name}: seeds 1 and 2 differ before the import");
        let b = load_classifier(name, &path, &device).unwrap();
        assert_eq!(logits(&a, &device), logits(&b, &device), "{name}: logits after the round trip");
        assert_eq!(params(&a), params(&b), "{name}: parameters after the round trip");
    }
    // The logit scale: [1] in cilp, a 0-d tensor in PyTorch, and back.
    device.seed(1);
    let mut a = cilp_models::build_seed_cilp(&device);
    a.logit_scale = burn::module::Param::from_tensor(Tensor::from_floats([3.25], &device));
    let path = dir.path().join("seed-cilp.safetensors");
    cilp_interop::export_safetensors(&a, ModelSpec::SeedCilp, &path, &Default::default()).unwrap();
    let file = read_all(&path);
    let scale = file.iter().find(|(k, _, _)| k == "logit_scale").unwrap();
    assert_eq!((scale.1.clone(), scale.2.clone()), (vec![], vec![3.25]));
    device.seed(2);
    let b = load_weights(cilp_models::build_seed_cilp(&device), ModelSpec::SeedCilp, &path).unwrap();
    assert_eq!(params(&a), params(&b));
    assert_eq!(b.logit_scale_value(), 3.25);
}

fn build_export(model: &cilp_models::Classifier, spec: ModelSpec, path: &std::path::Path) {
    cilp_interop::export_safetensors(model, spec, path, &Default::default()).unwrap();
}

#[test]
fn linear_weights_are_transposed_to_pytorch_layout() {
    let device = Device::flex();
    let spec = ModelSpec::SeedProjector;
    let model = cilp_models::materialize(cilp_models::seed_assess::seed_projector_config().init(&device));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.safetensors");
    cilp_interop::export_safetensors(&model, spec, &path, &Default::default()).unwrap();
    let file = read_all(&path);
    let (_, shape, w) = file.iter().find(|(k, _, _)| k == "model.0.weight").unwrap();
    assert_eq!(shape, &vec![1000, 200]);
    let burn_w: Vec<f32> = model.mlp.layers[0].weight.val().into_data().try_to_vec().unwrap(); // [200, 1000]
    for (o, i) in [(0, 0), (3, 7), (999, 199), (512, 3)] {
        assert_eq!(w[o * 200 + i], burn_w[i * 1000 + o], "PyTorch [out={o}, in={i}]");
    }
}

#[test]
fn a_file_that_does_not_fit_names_every_bad_key() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    let spec = ModelSpec::parse("intermediate-add").unwrap();
    build_export(&spec.build_classifier(&device).unwrap(), spec, &good);
    let mut tensors = read_all(&good);
    tensors.retain(|(k, _, _)| k != "fc3.bias" && k != "rgb_conv2.weight"); // two missing
    for t in tensors.iter_mut() {
        if t.0 == "lidar_conv1.bias" {
            t.0 = "lidar_conv1.bais".into(); // one missing, one unexpected
        }
        if t.0 == "fc2.weight" {
            t.1 = vec![1000, 100]; // one mis-shaped (the transpose of [100, 1000])
        }
    }
    tensors.push(("extra.weight".into(), vec![2], vec![0.0, 1.0])); // unexpected
    let bad = dir.path().join("bad.safetensors");
    write_safetensors(&bad, &tensors);
    let err = load_classifier("intermediate-add", &bad, &device).unwrap_err();
    let msg = err.to_string();
    match &err {
        InteropError::Mismatch { missing, unexpected, mismatched, .. } => {
            let missing: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(missing, ["rgb_conv2.weight", "lidar_conv1.bias", "fc3.bias"], "{msg}");
            assert_eq!(unexpected, &["extra.weight", "lidar_conv1.bais"], "{msg}");
            assert_eq!(mismatched.len(), 1, "{msg}");
        }
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    for part in [
        "bad.safetensors",
        "intermediate-add",
        "6 problems",
        "missing 3 keys (rgb_conv2.weight [50, 25, 3, 3], lidar_conv1.bias [25], fc3.bias [2])",
        "unexpected 2 keys (extra.weight, lidar_conv1.bais)",
        "fc2.weight: shape [1000, 100] in the file, the model needs [100, 1000]",
    ] {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }
    // Another model's export: every key is named, nothing is loaded.
    let err = load_classifier("late-fusion", &good, &device).unwrap_err().to_string();
    assert!(err.contains("missing 28 keys") && err.contains("unexpected 18 keys"), "{err}");
}

#[test]
fn lidar_cnn_pt_imports_like_the_existing_reader() {
    let device = Device::flex();
    let pt = shared_file("fixtures/lidar_cnn.pt");
    let a = cilp_models::Classifier::Lidar(cilp_models::load_lidar_classifier_pt(&pt, &device).unwrap());
    let b = load_classifier("nvidia-lidar-classifier", &pt, &device).unwrap();
    assert_eq!(logits(&a, &device), logits(&b, &device));
    assert_eq!(params(&a), params(&b));
    // Into a model with other names: all of them are listed.
    let err = load_classifier("embedder-lidar", &pt, &device).unwrap_err().to_string();
    assert!(err.contains("lidar_cnn.pt") && err.contains("missing 12 keys") && err.contains("unexpected 12 keys"), "{err}");
}

#[test]
fn unreadable_files_are_named() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    assert!(matches!(load_classifier("late-fusion", &missing, &device), Err(InteropError::NotFound { .. })));
    let e = load_classifier("late-fusion", std::path::Path::new("/dev/zero"), &device).unwrap_err().to_string();
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    let big = dir.path().join("big.safetensors");
    std::fs::File::create(&big).unwrap().set_len(cilp_interop::MAX_WEIGHTS_BYTES + 1).unwrap();
    let e = load_classifier("late-fusion", &big, &device).unwrap_err().to_string();
    assert!(e.contains("big.safetensors") && e.contains("limit"), "{e}");
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\0\0\0\0\0\0\0{\"a\": not json}").unwrap();
    let e = load_classifier("late-fusion", &junk, &device).unwrap_err().to_string();
    assert!(e.contains("junk.safetensors") && e.contains("not a valid safetensors file"), "{e}");
    // An existing export is not replaced without overwrite.
    let spec = ModelSpec::parse("embedder-rgb").unwrap();
    let m = spec.build_classifier(&device).unwrap();
    let path = dir.path().join("e.safetensors");
    build_export(&m, spec, &path);
    let e = cilp_interop::export_safetensors(&m, spec, &path, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("e.safetensors") && e.contains("exists"), "{e}");
}
