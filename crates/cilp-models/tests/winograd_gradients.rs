//! The Winograd convolutions against the direct kernel, through a whole model: NVIDIA's LiDAR
//! classifier on `cilp device-check`'s batch (seed 7, batch 4). Alone in its test binary: it
//! flips the process-wide Winograd switch and seeds the backend's RNG.
//!
//! Training's forward passes take F(4x4, 3x3) where it applies (the 32x32 layer at this batch).
//! Its rounding (about 10x F(2x2)'s) can flip a ReLU / MaxPool decision that sits near a tie, and
//! a flipped decision moves a whole gradient value: on this batch the gradients of an F(4x4)
//! forward pass differed from the direct kernel's by up to 7.2e-3 of a tensor's largest value
//! (the second layer; 1e-3 allowed), while both are exact gradients of the forward pass each
//! computed. So the check is split where the decisions are made:
//! - the forward values (continuous in the decisions) against the direct kernel's;
//! - the backward passes at the same decisions: an F(4x4) forward pass, then the backward in
//!   Winograd against the backward by the direct kernel (the switch turned off in between, so
//!   the kept transformed input is not used either).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use cilp_models::*;

/// The logits and every parameter's name and gradient for one batch, the forward pass with
/// Winograd on or off, then the backward pass with it on or off.
fn run(forward_winograd: bool, backward_winograd: bool) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    cilp_kernels::winograd::set_winograd(forward_winograd);
    let device = cpu_autodiff_device();
    device.seed(7);
    let model = build_classifier("nvidia-lidar-classifier", &device).unwrap();
    let b = 4;
    let depth = Tensor::<4>::from_data(TensorData::new(splitmix_values(b * 64 * 64, 7 ^ 3, -1.0, 1.0), [b, 1, 64, 64]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new((0..b as i64).map(|i| i % 2).collect::<Vec<_>>(), [b]), &device);
    let out = model.forward(&ModelInputs { rgb: None, xyza: None, depth: Some(depth) });
    let logits = out.clone().inner().into_data().try_into_vec_as::<f32>().unwrap();
    let loss = model.loss(out, targets);
    cilp_kernels::winograd::set_winograd(backward_winograd);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    struct V<'a> {
        grads: &'a GradientsParams,
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for V<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let g = self.grads.get::<D>(p.id).expect("every parameter has a gradient");
            self.out.push((self.path.join("."), g.into_data().try_into_vec_as::<f32>().unwrap()));
        }
    }
    let mut v = V { grads: &grads, path: vec![], out: vec![] };
    model.visit(&mut v);
    cilp_kernels::winograd::set_winograd(true);
    (logits, v.out)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn winograd_agrees_with_the_direct_kernels_through_the_lidar_classifier() {
    // The training forward pass on this batch takes F(4x4) on the 32x32 layer (256 tiles).
    let layer =
        cilp_kernels::conv::Conv2dDims { batch: 4, c_in: 50, h: 32, w: 32, c_out: 100, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] };
    assert_eq!(cilp_kernels::winograd::Algo::choose_forward(&layer), cilp_kernels::winograd::Algo::Winograd4);

    let (wino_logits, wino) = run(true, true);
    let (direct_logits, _) = run(false, false);
    let scale = max_abs(&direct_logits).max(1.0);
    let diff = max_diff(&wino_logits, &direct_logits);
    assert!(diff <= 1e-4 * scale, "forward: Winograd and direct logits differ by {diff:e} (scale {scale})");

    let (same_logits, at_same_decisions) = run(true, false);
    assert!(same_logits == wino_logits, "the same forward pass");
    assert_eq!(wino.len(), 12, "4 conv layers and 2 linear layers, weight and bias each");
    for ((name, a), (_, b)) in wino.iter().zip(&at_same_decisions) {
        let scale = max_abs(b);
        let diff = max_diff(a, b);
        assert!(scale > 0.0, "{name}: zero gradient");
        assert!(diff <= 1e-3 * scale, "{name}: Winograd and direct backward passes differ by {:e} of the largest", diff / scale);
    }
}
