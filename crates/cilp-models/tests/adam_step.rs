//! The training-engine API (autodiff + Adam step, record save/load). Alone in its test binary:
//! model initialisation draws from the backend's process-wide RNG, which other tests running in
//! parallel threads would advance, making `device.seed(7)` non-reproducible.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use cilp_models::*;

fn cpu() -> Device {
    Device::flex()
}

/// The training-engine recipe from the crate report: autodiff device, forward, loss, backward,
/// Adam step; then checkpoint save/load.
#[test]
fn adam_step_reduces_loss_and_checkpoint_round_trips() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let mut model = build_classifier("nvidia-lidar-classifier", &device).unwrap();
    let mut optim = AdamConfig::new().init();
    // Deterministic inputs (no shared RNG: tests run in parallel threads): background at 50 m
    // with a near patch whose size depends on the class, so a few Adam steps must fit them.
    let mut values = vec![50.0f32; 4 * 64 * 64];
    for b in 0..4 {
        let half = if b % 2 == 0 { 6 } else { 12 };
        for r in 32 - half..32 + half {
            for c in 32 - half..32 + half {
                values[b * 4096 + r * 64 + c] = 20.0 + b as f32;
            }
        }
    }
    let depth = Tensor::<4>::from_data(TensorData::new(values, [4, 1, 64, 64]), &device);
    let batch = ModelInputs { depth: Some(depth), ..Default::default() };
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1], [4]), &device);

    let mut losses = Vec::new();
    for _ in 0..8 {
        let logits = model.forward(&batch);
        let loss = model.loss(logits, targets.clone());
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[7] < losses[0], "loss did not decrease: {losses:?}");

    // Checkpoint: save, reload into a fresh model of the same zoo name, compare outputs.
    let dir = std::env::temp_dir().join(format!("cilp-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.bpk");
    let eval = model.valid(); // plain (non-autodiff) copy for inference
    let cpu_batch = ModelInputs { depth: Some(batch.depth.clone().unwrap().inner()), ..Default::default() };
    let before = eval.forward(&cpu_batch).into_data().try_into_vec_as::<f32>().unwrap();
    model.clone().save_file(&path).unwrap();
    let loaded = build_classifier("nvidia-lidar-classifier", &cpu()).unwrap().try_load_file(&path).unwrap();
    let after = loaded.forward(&cpu_batch).into_data().try_into_vec_as::<f32>().unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert!((a - b).abs() < 1e-5, "{before:?} vs {after:?}");
    }
    // Optimiser state checkpoint.
    let opath = dir.join("optim.bpk");
    optim.save(&opath).unwrap();
    let _optim = AdamConfig::new().init().load(&opath).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
