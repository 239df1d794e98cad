//! Helpers shared by the interop tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use cilp_interop::{ExportOptions, ExportReport, Result, export_safetensors, state_dict_shapes};
use cilp_models::{Classifier, ModelSpec, ModelTask, ProjectorConfig};

/// `../shared` beside the repository (the facts the tests compare against).
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");

/// A file under `../shared`, or a panic saying where it was expected.
pub fn shared_file(rel: &str) -> PathBuf {
    let p = Path::new(SHARED).join(rel);
    assert!(
        p.is_file(),
        "missing test fixture {}: this test needs ../shared/{rel} beside the repository (the original study's reference facts)",
        p.display()
    );
    p
}

/// Any zoo model.
pub enum Zoo {
    Classifier(Classifier),
    Cilp(cilp_models::Cilp),
    SeedCilp(cilp_models::SeedCilp),
    Projector(cilp_models::Projector),
}

/// Builds any zoo model, every parameter drawn now from `device`'s seeded RNG.
pub fn build(spec: ModelSpec, device: &Device) -> Zoo {
    match (spec.task(), spec) {
        (ModelTask::Classification, _) => Zoo::Classifier(spec.build_classifier(device).unwrap()),
        (_, ModelSpec::SeedCilp) => Zoo::SeedCilp(cilp_models::build_seed_cilp(device)),
        (_, ModelSpec::Cilp(_)) => Zoo::Cilp(cilp_models::build_cilp(&spec.name(), device).unwrap()),
        (_, ModelSpec::SeedProjector) => {
            Zoo::Projector(cilp_models::materialize(cilp_models::seed_assess::seed_projector_config().init(device)))
        }
        (_, _) => Zoo::Projector(cilp_models::materialize(ProjectorConfig::new().init(device))),
    }
}

impl Zoo {
    pub fn shapes(&self, spec: ModelSpec) -> Result<Vec<(String, Vec<usize>)>> {
        match self {
            Zoo::Classifier(m) => state_dict_shapes(m, spec),
            Zoo::Cilp(m) => state_dict_shapes(m, spec),
            Zoo::SeedCilp(m) => state_dict_shapes(m, spec),
            Zoo::Projector(m) => state_dict_shapes(m, spec),
        }
    }

    pub fn export(&self, spec: ModelSpec, path: &Path) -> Result<ExportReport> {
        let opts = ExportOptions { overwrite: true, ..Default::default() };
        match self {
            Zoo::Classifier(m) => export_safetensors(m, spec, path, &opts),
            Zoo::Cilp(m) => export_safetensors(m, spec, path, &opts),
            Zoo::SeedCilp(m) => export_safetensors(m, spec, path, &opts),
            Zoo::Projector(m) => export_safetensors(m, spec, path, &opts),
        }
    }

    pub fn num_params(&self) -> usize {
        use burn::module::Module;
        match self {
            Zoo::Classifier(m) => m.num_params(),
            Zoo::Cilp(m) => m.num_params(),
            Zoo::SeedCilp(m) => m.num_params(),
            Zoo::Projector(m) => m.num_params(),
        }
    }
}

/// A deterministic input batch `[n, c, 64, 64]` in `[0, 1)`.
pub fn input(n: usize, c: usize, salt: u32, device: &Device) -> Tensor<4> {
    let len = n * c * 64 * 64;
    let v: Vec<f32> =
        (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(salt)) >> 8) as f32 / (1u32 << 24) as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, c, 64, 64]), device)
}

/// Writes a safetensors file from `(name, shape, values)` float32 tensors, by hand (the format:
/// an 8-byte little-endian header length, a JSON header, the raw data), independent of burn.
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(name.clone(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}

/// The float32 values of every tensor in a weights file.
pub fn read_all(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let (_, tensors) = cilp_interop::read_weights(path).unwrap();
    tensors
        .into_iter()
        .map(|(k, t)| {
            let shape = t.shape.as_slice().to_vec();
            let data = burn::store::bridge::into_data(t).unwrap();
            (k, shape, data.try_to_vec::<f32>().unwrap())
        })
        .collect()
}

/// Multiplies every weight (every parameter of rank >= 2) by `gain`, biases untouched.
///
/// burn's default init (uniform, variance `1 / (3 fan_in)`) shrinks the signal's second moment
/// about 6x per conv/linear + ReLU layer, so a freshly built zoo model's logits hardly depend on
/// its input (their spread over a batch is 1e-5 for some models, mostly bias): a layout bug
/// (flatten order, a transpose) would move them by less than a 1e-4 tolerance. A gain of
/// `sqrt(6)` keeps the scale through the layers, so the logits depend on the input at O(1).
pub fn with_gain(model: Classifier, gain: f32) -> Classifier {
    struct Gain(f32);
    impl burn::module::ModuleMapper for Gain {
        fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
            let g = self.0;
            if D >= 2 { param.map(|t| t.mul_scalar(g)) } else { param }
        }
    }
    burn::module::Module::map(model, &mut Gain(gain))
}

/// Every zoo classifier, in catalogue order.
pub fn classifier_specs() -> Vec<ModelSpec> {
    ModelSpec::all().into_iter().filter(|s| s.task() == ModelTask::Classification).collect()
}

/// The zoo classifier `spec` drawn from `seed`, its weights scaled so that its logits depend on
/// the input at O(1) ([`with_gain`]): `sqrt(6)`, less for the raw-depth model (inputs up to 50),
/// more for rgb-to-lidar (whose image embedding is L2-normalised before three more layers).
/// `tests/python/pytorch_reference.py` uses the same gains.
pub fn scaled_classifier(spec: ModelSpec, seed: u64, device: &Device) -> Classifier {
    device.seed(seed);
    let gain = match spec {
        ModelSpec::LidarClassifier => 1.8,
        ModelSpec::RgbToLidar => 5.0,
        _ => 6f32.sqrt(),
    };
    with_gain(spec.build_classifier(device).unwrap(), gain)
}

/// A float32 tensor as `.npy`.
pub fn write_npy<const D: usize>(path: &Path, t: Tensor<D>) {
    let data = t.into_data();
    let shape = data.shape().to_vec();
    cilp_data::npy::write_npy(path, &shape, &data.try_to_vec::<f32>().unwrap()).unwrap();
}

/// A fixed batch of 3 of every input kind (RGB in [0, 1), XYZA in [-1, 1), raw depth in metres
/// with some beams at the 50 m no-return value), also written as `rgb.npy`, `xyza.npy`,
/// `depth.npy` into `dir`.
pub fn batch_of_3(salt: u32, device: &Device, dir: &Path) -> cilp_models::ModelInputs {
    let inputs = cilp_models::ModelInputs {
        rgb: Some(input(3, 4, salt, device)),
        xyza: Some(input(3, 4, salt + 1, device).mul_scalar(2.0).sub_scalar(1.0)),
        depth: Some(input(3, 1, salt + 2, device).mul_scalar(60.0).clamp_max(50.0)),
    };
    for (name, t) in [("rgb", &inputs.rgb), ("xyza", &inputs.xyza), ("depth", &inputs.depth)] {
        write_npy(&dir.join(format!("{name}.npy")), t.clone().unwrap());
    }
    inputs
}
