//! Import of NVIDIA's `lidar_cnn.pt` checked against PyTorch's own outputs
//! (`tests/data/lidar_cnn_reference.json`, made by `tests/data/make_lidar_reference.py`).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use cilp_models::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/lidar_cnn.pt");
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lidar_cnn_reference.json");

fn fixture() -> PathBuf {
    let path = Path::new(FIXTURE);
    assert!(
        path.is_file(),
        "missing test fixture: NVIDIA's pretrained LiDAR classifier `lidar_cnn.pt` is expected at \
         {} (i.e. ../shared/fixtures/lidar_cnn.pt relative to the workspace root)",
        path.display()
    );
    path.to_path_buf()
}

/// The depth maps of make_lidar_reference.py (all values exact in f32). Index = row * 64 + col.
fn depth_map(name: &str) -> Vec<f32> {
    let mut v = vec![50.0f32; 64 * 64];
    for i in 0..64usize {
        for j in 0..64usize {
            let (fi, fj) = (i as f32, j as f32);
            let d = match name {
                "empty" => 50.0,
                "disc" => {
                    let d2 = (i as i64 - 20).pow(2) + (j as i64 - 40).pow(2);
                    if d2 < 36 { 24.0 + 0.25 * d2 as f32 } else { 50.0 }
                }
                "square" => {
                    if (28..40).contains(&i) && (10..22).contains(&j) {
                        22.0 + 0.5 * (fi - 28.0)
                    } else {
                        50.0
                    }
                }
                "ramp" => (20.0 + 0.5 * fi + 0.25 * fj).min(50.0),
                other => panic!("unknown reference case {other}"),
            };
            v[i * 64 + j] = d;
        }
    }
    v
}

#[test]
fn lidar_cnn_matches_pytorch() {
    let device = Device::flex();
    let model = load_lidar_classifier_pt(&fixture(), &device).expect("load lidar_cnn.pt");
    assert_eq!(model.num_params(), 906_201);

    let text = std::fs::read_to_string(REFERENCE).unwrap_or_else(|e| panic!("cannot read reference {REFERENCE}: {e}"));
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(reference["parameters"].as_u64(), Some(906_201));

    let mut flat = Vec::new();
    for case in cases {
        let map = depth_map(case["name"].as_str().unwrap());
        let sum: f64 = map.iter().map(|&v| v as f64).sum();
        assert_eq!(sum, case["input_sum"].as_f64().unwrap(), "input of {}", case["name"]);
        flat.extend(map);
    }
    let n = cases.len();
    let x = Tensor::<4>::from_data(TensorData::new(flat, [n, 1, 64, 64]), &device);
    let emb = model.embed(x.clone());
    let logits = model.head(emb.clone()).into_data().try_into_vec_as::<f32>().unwrap();
    let full = model.forward(x).into_data().try_into_vec_as::<f32>().unwrap();
    let emb = emb.into_data().try_into_vec_as::<f32>().unwrap();

    for (k, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let want = case["logit"].as_f64().unwrap() as f32;
        assert!((logits[k] - want).abs() < 1e-4, "{name}: logit {} vs PyTorch {want}", logits[k]);
        assert!((full[k] - want).abs() < 1e-4, "{name}: forward {} vs {want}", full[k]);
        let row = &emb[k * 3200..(k + 1) * 3200];
        for (i, w) in case["embedding_first16"].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap() as f32;
            assert!((row[i] - w).abs() < 1e-4 * w.abs().max(1.0), "{name}: emb[{i}] {} vs {w}", row[i]);
        }
        for pair in case["embedding_top16"].as_array().unwrap() {
            let i = pair[0].as_u64().unwrap() as usize;
            let w = pair[1].as_f64().unwrap() as f32;
            assert!((row[i] - w).abs() < 1e-4 * w.abs().max(1.0), "{name}: emb[{i}] {} vs {w}", row[i]);
        }
        let sum: f64 = row.iter().map(|&v| v as f64).sum();
        let want_sum = case["embedding_sum"].as_f64().unwrap();
        assert!((sum - want_sum).abs() < 1e-4 * want_sum.abs().max(1.0), "{name}: emb sum {sum} vs {want_sum}");
    }
}

#[test]
fn zoo_loader_and_rgb_to_lidar_head() {
    let device = Device::flex();
    let path = fixture();
    let direct = load_lidar_classifier_pt(&path, &device).unwrap();
    let zoo = load_pytorch_weights(build_classifier("nvidia-lidar-classifier", &device).unwrap(), &path).unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(depth_map("disc"), [1, 1, 64, 64]), &device);
    let a = direct.forward(x.clone()).into_scalar::<f32>();
    let b = zoo.forward(&ModelInputs { depth: Some(x), ..Default::default() }).into_scalar::<f32>();
    assert_eq!(a, b);

    // rgb-to-lidar takes only the head.
    let Classifier::RgbToLidar(m) = load_pytorch_weights(build_classifier("rgb-to-lidar", &device).unwrap(), &path).unwrap() else {
        panic!("variant changed")
    };
    let emb = Tensor::<2>::random([2, 3200], burn::tensor::Distribution::Default, &device);
    let h1 = m.head.forward(emb.clone()).into_data().try_into_vec_as::<f32>().unwrap();
    let h2 = direct.head(emb).into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(h1, h2);

    // Unsupported model.
    let err = load_pytorch_weights(build_classifier("late-fusion", &device).unwrap(), &path).unwrap_err().to_string();
    assert!(err.contains("no PyTorch weight mapping"), "{err}");
}

#[test]
fn load_errors_name_file_and_key() {
    let device = Device::flex();
    let missing = Path::new("/nonexistent/dir/lidar_cnn.pt");
    let err = load_lidar_classifier_pt(missing, &device).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/dir/lidar_cnn.pt"), "{err}");

    // A state dict whose shapes do not fit: load lidar_cnn.pt's head into a wrong-size linear.
    let sd = cilp_models::pytorch::StateDict::open(&fixture()).unwrap();
    let wrong = burn::nn::LinearConfig::new(3200, 7).init(&device);
    let err = sd.load_linear(wrong, "classifier.0").unwrap_err().to_string();
    assert!(err.contains("classifier.0.weight") && err.contains("[100, 3200]") && err.contains("lidar_cnn.pt"), "{err}");
    let err = sd.read_f32("classifier.5.weight", &[1]).unwrap_err().to_string();
    assert!(err.contains("missing key 'classifier.5.weight'") && err.contains("embedder.0.weight"), "{err}");

    // A file that is not a PyTorch checkpoint.
    let bogus = std::env::temp_dir().join(format!("cilp-bogus-{}.pt", std::process::id()));
    std::fs::write(&bogus, b"not a pickle at all").unwrap();
    let err = load_lidar_classifier_pt(&bogus, &device).unwrap_err().to_string();
    std::fs::remove_file(&bogus).ok();
    assert!(err.contains("cilp-bogus"), "{err}");
}

#[test]
fn pretrained_weights_are_trainable_on_an_autodiff_device() {
    use burn::optim::{AdamConfig, GradientsParams};
    let device = Device::flex().autodiff();
    let model = load_lidar_classifier_pt(&fixture(), &device).unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(depth_map("square"), [1, 1, 64, 64]), &device);
    let before = model.forward(x.clone()).into_scalar::<f32>();
    let loss = loss::bce_with_logits(model.forward(x.clone()), Tensor::ones([1, 1], &device));
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    assert!(!grads.is_empty());
    let model = AdamConfig::new().init().step(1e-3, model, grads);
    let after = model.forward(x).into_scalar::<f32>();
    // The square reads as a cube (logit < 0); one step towards "sphere" raises the logit.
    assert!(after > before, "{before} -> {after}");
}
