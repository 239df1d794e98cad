//! The fast ops through burn (flex + autodiff) against burn's own modules: same outputs and same
//! gradients for the input, the weight and the bias.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

fn device() -> Device {
    Device::flex().autodiff()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data")
}

fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A conv with deterministic random weights (seeded data, not the shared backend RNG).
fn conv(c_in: usize, c_out: usize, stride: usize, seed: u64, device: &Device) -> Conv2d {
    let mut conv = Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device);
    conv.weight = Param::from_tensor(seeded([c_out, c_in, 3, 3], seed, device));
    conv.bias = Some(Param::from_tensor(seeded([c_out], seed + 1, device)));
    conv
}

fn seeded<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    // A small LCG: deterministic, independent of any RNG shared between tests.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Output and (dx, dw, db) of `f(conv, x)` under the loss `sum(out * r)`.
fn run(conv: &Conv2d, x: &Tensor<4>, f: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>) -> [Vec<f32>; 4] {
    let x = x.clone().detach().require_grad();
    let out = f(conv, x.clone());
    let r = seeded(out.dims(), 99, &out.device());
    let grads = (out.clone() * r).sum().backward();
    let dx = x.grad(&grads).expect("input gradient");
    let dw = conv.weight.val().grad(&grads).expect("weight gradient");
    let db = conv.bias.as_ref().unwrap().val().grad(&grads).expect("bias gradient");
    [to_vec(out), to_vec(dx), to_vec(dw), to_vec(db)]
}

fn assert_close(fast: &[Vec<f32>; 4], slow: &[Vec<f32>; 4], what: &str) {
    for (name, (a, b)) in ["output", "dx", "dw", "db"].iter().zip(fast.iter().zip(slow)) {
        let e = max_rel_err(a, b);
        assert!(e < 1e-4, "{what}: {name} differs from burn's by {e}");
    }
}

#[test]
fn conv2d_matches_burn_forward_and_gradients() {
    let device = device();
    for (c_in, c_out, stride, hw) in [(4, 6, 1, 16), (3, 5, 2, 15), (6, 4, 2, 8), (1, 8, 1, 12)] {
        let conv = conv(c_in, c_out, stride, 7 + c_in as u64, &device);
        let x = seeded([3, c_in, hw, hw], 3, &device);
        let before = cilp_kernels::fast_calls();
        let fast = run(&conv, &x, cilp_kernels::conv2d_module);
        assert!(cilp_kernels::fast_calls() > before, "the fast path was not taken");
        let slow = run(&conv, &x, |c, x| c.forward(x));
        assert_close(&fast, &slow, &format!("conv {c_in}->{c_out} stride {stride} on {hw}x{hw}"));
    }
}

#[test]
fn fused_conv_relu_maxpool_matches_burn_modules() {
    let device = device();
    let pool: MaxPool2d = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    for (c_in, c_out, hw) in [(4, 6, 16), (2, 3, 9), (1, 5, 64)] {
        let conv = conv(c_in, c_out, 1, 11 + c_in as u64, &device);
        let x = seeded([2, c_in, hw, hw], 5, &device);
        let before = cilp_kernels::fast_calls();
        let fast = run(&conv, &x, |c, x| cilp_kernels::conv2d_relu_maxpool_module(c, &pool, x));
        assert!(cilp_kernels::fast_calls() > before, "the fused path was not taken");
        let slow = run(&conv, &x, |c, x| pool.forward(burn::tensor::activation::relu(c.forward(x))));
        assert_close(&fast, &slow, &format!("conv+relu+pool {c_in}->{c_out} on {hw}x{hw}"));
    }
}

/// The fused conv + ReLU (the strided blocks' first half) gives exactly the bits of the fast
/// convolution followed by burn's ReLU, in the output and in every gradient, and burn's values.
#[test]
fn fused_conv_relu_is_bit_identical_to_the_conv_then_burns_relu() {
    let device = device();
    // Direct (few channels), Winograd (stride 1, 16+ channels), stride 2 on odd and even planes.
    for (c_in, c_out, stride, hw, batch) in [(4, 6, 1, 16, 2), (16, 16, 1, 12, 3), (5, 7, 2, 15, 2), (6, 4, 2, 8, 3)] {
        let conv = conv(c_in, c_out, stride, 13 + c_in as u64, &device);
        let x = seeded([batch, c_in, hw, hw], 6, &device);
        let before = cilp_kernels::fast_calls();
        let fused = run(&conv, &x, cilp_kernels::conv2d_relu_module);
        assert!(cilp_kernels::fast_calls() > before, "the fused path was not taken");
        let two_ops = run(&conv, &x, |c, x| burn::tensor::activation::relu(cilp_kernels::conv2d_module(c, x)));
        let what = format!("conv+relu {c_in}->{c_out} stride {stride} on {hw}x{hw}");
        for (name, (a, b)) in ["output", "dx", "dw", "db"].iter().zip(fused.iter().zip(&two_ops)) {
            let same = a.len() == b.len() && a.iter().zip(b).all(|(u, v)| u.to_bits() == v.to_bits() || (*u == 0.0 && *v == 0.0));
            assert!(same, "{what}: {name} is not the two ops' bits");
        }
        assert!(fused[0].contains(&0.0) && fused[0].iter().any(|v| *v > 0.0), "{what}: the ReLU cut nothing");
        let slow = run(&conv, &x, |c, x| burn::tensor::activation::relu(c.forward(x)));
        assert_close(&fused, &slow, &what);
    }
    // Without autodiff too.
    let device = Device::flex();
    let conv = conv(5, 7, 2, 23, &device);
    let x = seeded([2, 5, 15, 15], 8, &device);
    let fused = to_vec(cilp_kernels::conv2d_relu_module(&conv, x.clone()));
    let two_ops = to_vec(burn::tensor::activation::relu(cilp_kernels::conv2d_module(&conv, x)));
    assert_eq!(fused, two_ops, "inference: fused conv+relu differs from the two ops");
}

#[test]
fn inference_without_autodiff_matches_too() {
    let device = Device::flex();
    let conv = conv(3, 4, 1, 21, &device);
    let pool: MaxPool2d = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let x = seeded([2, 3, 10, 10], 8, &device);
    let e = max_rel_err(&to_vec(cilp_kernels::conv2d_module(&conv, x.clone())), &to_vec(conv.forward(x.clone())));
    assert!(e < 1e-5, "plain conv differs by {e}");
    let fused = cilp_kernels::conv2d_relu_maxpool_module(&conv, &pool, x.clone());
    let e = max_rel_err(&to_vec(fused), &to_vec(pool.forward(burn::tensor::activation::relu(conv.forward(x)))));
    assert!(e < 1e-5, "fused conv differs by {e}");
}

#[test]
fn unsupported_options_fall_back_to_burn() {
    // No bias and `Same` padding are outside the fast path: results must still be burn's.
    let device = device();
    let conv = Conv2dConfig::new([2, 3], [3, 3]).with_bias(false).with_padding(PaddingConfig2d::Same).init(&device);
    let x = Tensor::<4>::random([1, 2, 6, 6], Distribution::Default, &device);
    let e = max_rel_err(&to_vec(cilp_kernels::conv2d_module(&conv, x.clone())), &to_vec(conv.forward(x)));
    assert_eq!(e, 0.0, "fallback should be burn's own convolution");
}

/// The panic message of `f`, or `None` if it returned.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    Some(match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "<non-string panic>".to_string(), |s| s.to_string()),
    })
}

#[test]
fn kernel_larger_than_padded_input_behaves_like_burn() {
    // A 5x5 kernel on a 3x3 input padded by 1 (5x5 fits, 6x6 does not): outside the fast
    // kernels, so the call must be burn's own (whatever burn does with it: today, in a debug
    // build, an overflow panic while sizing the output), never the kernels' assert.
    let device = device();
    let x = seeded([1, 2, 3, 3], 1, &device);
    let b = seeded([4], 3, &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    for k in [5, 6] {
        let w = seeded([4, 2, k, k], 2, &device);
        let ours = panic_message(|| {
            cilp_kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()).into_data();
        });
        let burns = panic_message(|| {
            burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()).into_data();
        });
        assert_eq!(ours, burns, "{k}x{k} kernel: cilp_kernels::conv2d differs from burn's conv2d");
        if k == 5 {
            assert_eq!(ours, None, "a kernel that fits the padded input must work");
        } else {
            // Debug builds panic on the overflow, release builds wrap it: either way, burn's.
            assert!(!ours.is_some_and(|m| m.contains("unsupported dims")), "the kernels' assert was reached");
        }
    }
    // The module entry points too (valid padding: the kernel does not fit the 3x3 input).
    let conv = Conv2dConfig::new([2, 4], [4, 4]).with_padding(PaddingConfig2d::Valid).init(&device);
    let pool: MaxPool2d = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let ours = panic_message(|| {
        cilp_kernels::conv2d_module(&conv, x.clone()).into_data();
    });
    let burns = panic_message(|| {
        conv.forward(x.clone()).into_data();
    });
    assert_eq!(ours, burns, "conv2d_module differs from Conv2d::forward");
    let ours = panic_message(|| {
        cilp_kernels::conv2d_relu_maxpool_module(&conv, &pool, x.clone()).into_data();
    });
    let burns = panic_message(|| {
        pool.forward(burn::tensor::activation::relu(conv.forward(x.clone()))).into_data();
    });
    assert_eq!(ours, burns, "conv2d_relu_maxpool_module differs from burn's modules");
}

/// A linear layer with seeded weights.
fn linear(d_in: usize, d_out: usize, seed: u64, device: &Device) -> burn::nn::Linear {
    let mut layer = burn::nn::LinearConfig::new(d_in, d_out).init(device);
    layer.weight = Param::from_tensor(seeded([d_in, d_out], seed, device));
    layer.bias = Some(Param::from_tensor(seeded([d_out], seed + 1, device)));
    layer
}

/// Output and the gradients of `relu(l2(relu(l1(x))))` under `sum(out * r)`: the input's (when
/// `x_grad`), then each layer's weight and bias.
fn run_mlp(
    layers: &[burn::nn::Linear; 2],
    x: &Tensor<2>,
    x_grad: bool,
    f: impl Fn(&burn::nn::Linear, Tensor<2>) -> Tensor<2>,
) -> Vec<Vec<f32>> {
    let x = if x_grad { x.clone().detach().require_grad() } else { x.clone().detach() };
    let h = burn::tensor::activation::relu(f(&layers[0], x.clone()));
    let out = burn::tensor::activation::relu(f(&layers[1], h));
    let r = seeded(out.dims(), 98, &out.device());
    let grads = (out.clone() * r).sum().backward();
    let mut all = vec![to_vec(out)];
    match x.grad(&grads) {
        Some(dx) => all.push(to_vec(dx)),
        None => assert!(!x_grad, "the input gradient is missing"),
    }
    for l in layers {
        all.push(to_vec(l.weight.val().grad(&grads).expect("weight gradient")));
        all.push(to_vec(l.bias.as_ref().unwrap().val().grad(&grads).expect("bias gradient")));
    }
    all
}

/// burn's matmul runs the gemm crate's own kernel choice; cilp's linear layer is bit-identical
/// to it when it runs the same kernels (`Isa::Gemm`). Its default per-CPU choice (AVX2 for
/// training products on an AVX-512 CPU, see `gemm_isa`) rounds differently and is checked
/// against f64 loops in `linear.rs` instead. Both tests of this binary that use the linear layer
/// set the same thing, so running them in parallel is safe.
fn linear_on_gemms_own_kernels() {
    use cilp_kernels::gemm_isa::{Isa, Op, Pass, set_isa};
    set_isa(Op::Linear, Pass::Train, Some(Isa::Gemm));
    set_isa(Op::Linear, Pass::Infer, Some(Isa::Gemm));
}

#[test]
fn linear_is_bit_identical_to_burns_forward_and_gradients() {
    linear_on_gemms_own_kernels();
    let device = device();
    // Shapes of cilp's layers (small ones, a fusion fc1 at batch 16, the projector's last) and
    // odd ones; with and without the input's gradient (the projector's input is a cached tensor).
    for (rows, d_in, d_hidden, d_out) in [(3, 5, 7, 2), (16, 6400, 1000, 100), (32, 500, 3200, 9), (1, 1, 1, 1)] {
        let layers = [linear(d_in, d_hidden, 11, &device), linear(d_hidden, d_out, 13, &device)];
        let x = seeded([rows, d_in], 5, &device);
        for x_grad in [true, false] {
            let before = cilp_kernels::fast_calls();
            let fast = run_mlp(&layers, &x, x_grad, cilp_kernels::linear_module);
            // (Other tests of this binary count too, in parallel: at least these two calls.)
            assert!(cilp_kernels::fast_calls() >= before + 2, "the fast path was not taken");
            let slow = run_mlp(&layers, &x, x_grad, |l, x| l.forward(x));
            assert_eq!(fast.len(), slow.len());
            for (k, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!(
                    a == b,
                    "{rows}x{d_in}->{d_hidden}->{d_out} (input gradient {x_grad}): tensor {k} differs from burn's by {}",
                    max_rel_err(a, b)
                );
            }
        }
    }
}

#[test]
fn linear_without_autodiff_or_bias_matches_burn() {
    linear_on_gemms_own_kernels();
    let device = Device::flex();
    let layer = linear(40, 30, 3, &device);
    let x = seeded([8, 40], 4, &device);
    assert_eq!(to_vec(cilp_kernels::linear_module(&layer, x.clone())), to_vec(layer.forward(x.clone())));
    // No bias: burn's own op, same values.
    let no_bias = burn::nn::Linear { bias: None, ..layer };
    assert_eq!(to_vec(cilp_kernels::linear_module(&no_bias, x.clone())), to_vec(no_bias.forward(x)));
}
