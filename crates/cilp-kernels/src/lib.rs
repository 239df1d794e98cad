//! Fast CPU kernels for cilp's models.
//!
//! burn's flex backend computes a convolution's weight gradient as a second convolution with
//! batch and channels swapped (two layout copies) and its forward pass through an NHWC copy and
//! 512-pixel GEMM tiles. [`conv2d`] replaces both, on flex, with im2col + one wide GEMM per
//! group of samples ([`conv`]); everywhere else (wgpu, f16, groups, dilation, asymmetric
//! padding, no bias) it calls burn's own convolution, so callers never need to check.
//!
//! `CILP_BURN_CONV=1` in the environment turns the fast path off (for comparisons).
//!
//! [`adam`] is a fused Adam optimizer (one pass per parameter instead of burn's chain of
//! elementwise ops; `CILP_BURN_ADAM=1` makes [`adam::adam_optimizer`] return burn's Adam).

pub mod adam;
pub mod burn_ext;
pub mod conv;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::backend::DispatchDevice;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

use burn_ext::{ConvParams, FastConvBackend};

/// Whether the fast kernels are enabled (`CILP_BURN_CONV` unset or `0`).
pub fn fast_conv_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("CILP_BURN_CONV").map_or(true, |v| v.is_empty() || v == "0"))
}

static FAST_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many calls took the fast kernels so far in this process (for tests and diagnostics).
pub fn fast_calls() -> usize {
    FAST_CALLS.load(Ordering::Relaxed)
}

/// Symmetric padding `[h, w]` of `options`, if it is symmetric.
fn symmetric_padding(options: &ConvOptions<2>) -> Option<[usize; 2]> {
    let [(t, b), (l, r)] = options.padding;
    (t == b && l == r).then_some([t, l])
}

/// Whether the fast path handles this call.
fn fast_path(x: &Tensor<4>, bias: Option<&Tensor<1>>, options: &ConvOptions<2>) -> bool {
    fast_conv_enabled()
        && bias.is_some()
        && options.groups == 1
        && options.dilation == [1, 1]
        && symmetric_padding(options).is_some()
        && x.dtype() == DType::F32
        && matches!(x.device().as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// 2-D convolution, same contract as `burn::tensor::module::conv2d`: the fast kernels on the
/// flex backend (with autodiff), burn's convolution otherwise.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if !fast_path(&x, bias.as_ref(), &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let params = ConvParams {
        stride: options.stride,
        padding: symmetric_padding(&options).expect("checked by fast_path"),
    };
    let bias = bias.expect("checked by fast_path");
    FAST_CALLS.fetch_add(1, Ordering::Relaxed);
    let out = <burn::backend::Dispatch as FastConvBackend>::cilp_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        params,
    );
    Tensor::from_dispatch(out)
}

/// `conv.forward(x)` of a `burn::nn::conv::Conv2d`, through [`conv2d`] (explicit and valid
/// padding; `Same` padding goes to burn's own forward).
pub fn conv2d_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return conv.forward(x),
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options)
}

/// `pool(relu(conv(x)))` for a `MaxPool2d(2)` (2x2, stride 2, no padding, floor): one fused op
/// on flex (the full-resolution activation is never stored), the three burn modules otherwise.
pub fn conv2d_relu_maxpool_module(conv: &Conv2d, pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let fusable_pool = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Same => None,
    };
    if let (true, Some(padding)) = (fusable_pool, padding) {
        let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
        let bias = conv.bias.as_ref().map(|b| b.val());
        if fast_path(&x, bias.as_ref(), &options) {
            let [_, _, h, w] = x.dims();
            let [kh, kw] = conv.kernel_size;
            let pad = symmetric_padding(&options).expect("checked by fast_path");
            let out_h = (h + 2 * pad[0]).saturating_sub(kh) / conv.stride[0] + 1;
            let out_w = (w + 2 * pad[1]).saturating_sub(kw) / conv.stride[1] + 1;
            if out_h >= 2 && out_w >= 2 && h + 2 * pad[0] >= kh && w + 2 * pad[1] >= kw {
                let params = ConvParams { stride: conv.stride, padding: pad };
                FAST_CALLS.fetch_add(1, Ordering::Relaxed);
                let out = <burn::backend::Dispatch as FastConvBackend>::cilp_conv2d_relu_maxpool(
                    x.into_dispatch(),
                    conv.weight.val().into_dispatch(),
                    bias.expect("checked by fast_path").into_dispatch(),
                    params,
                );
                return Tensor::from_dispatch(out);
            }
        }
    }
    pool.forward(burn::tensor::activation::relu(conv2d_module(conv, x)))
}
