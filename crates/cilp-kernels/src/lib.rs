//! Fast CPU kernels for cilp's models.
//!
//! burn's flex backend computes a convolution's weight gradient as a second convolution with
//! batch and channels swapped (two layout copies) and its forward pass through an NHWC copy and
//! 512-pixel GEMM tiles. [`conv2d`] replaces both, on flex, with im2col + one wide GEMM per
//! group of samples ([`conv`]), or Winograd F(4x4, 3x3) / F(2x2, 3x3) for the 3x3 stride-1
//! layers past the first ([`winograd4`], [`winograd`]); everywhere else (wgpu, f16, groups, dilation, asymmetric
//! padding, no bias) it calls burn's own convolution, so callers never need to check.
//!
//! [`set_fast_conv`]`(false)` turns the fast path off (for comparisons; the binary maps
//! `CILP_BURN_CONV=1` to it).
//!
//! [`linear()`] is burn's linear layer without burn-flex's zero-filled, copied matmul outputs
//! (bit-identical results on the same GEMM kernels; [`set_fast_linear`]`(false)` turns it off).
//!
//! Every matrix product of these kernels runs the GEMM micro-kernels [`gemm_isa`] chooses per
//! CPU and per kind of product (AVX2 or AVX-512; [`gemm_isa::apply_setting`] overrides it).
//!
//! [`adam`] is a fused Adam optimizer (one pass per parameter instead of burn's chain of
//! elementwise ops; [`adam::set_fused_adam`]`(false)` makes [`adam::adam_optimizer`] return burn's Adam).

pub mod adam;
pub mod bf16;
pub mod burn_ext;
pub mod conv;
pub mod gemm_isa;
pub mod linear;
pub mod winograd;
pub mod winograd4;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::backend::DispatchDevice;
use burn::backend::tensor::FloatTensor;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

use burn_ext::{ConvParams, FastConvBackend, FastLinearBackend};
use conv::Conv2dDims;

/// Whether the fast kernels are enabled (the default).
pub fn fast_conv_enabled() -> bool {
    FAST_CONV.load(Ordering::Relaxed)
}

static FAST_CONV: AtomicBool = AtomicBool::new(true);

/// Turns the fast convolution on (the default) or off (burn's own, for comparisons; the binary
/// sets it from `CILP_BURN_CONV`). Set it before the first model is built.
pub fn set_fast_conv(enabled: bool) {
    FAST_CONV.store(enabled, Ordering::Relaxed);
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

/// Whether `x` is f32 on the flex (CPU) backend, where the kernels run.
fn f32_on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && matches!(x.device().as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// Whether the fast path handles this call.
fn fast_path(x: &Tensor<4>, bias: Option<&Tensor<1>>, options: &ConvOptions<2>) -> bool {
    fast_conv_enabled()
        && bias.is_some()
        && options.groups == 1
        && options.dilation == [1, 1]
        && symmetric_padding(options).is_some()
        && f32_on_flex(x)
}

/// The kernels' dims of a call: `None` where [`fast_path`] or [`Conv2dDims::is_supported`]
/// rules it out (e.g. a kernel larger than the padded input), so the caller uses burn's op.
fn fast_dims(x: &Tensor<4>, weight: &Tensor<4>, bias: Option<&Tensor<1>>, options: &ConvOptions<2>) -> Option<Conv2dDims> {
    if !fast_path(x, bias, options) {
        return None;
    }
    let [batch, c_in, h, w] = x.dims();
    let [c_out, _, kh, kw] = weight.dims();
    let padding = symmetric_padding(options)?;
    let dims = Conv2dDims { batch, c_in, h, w, c_out, kh, kw, stride: options.stride, padding };
    dims.is_supported().then_some(dims)
}

/// A module's padding as `ConvOptions` pairs `[(top, bottom), (left, right)]`; `None` for
/// `Same`, which only the module's own forward handles.
fn padding_pairs(padding: &PaddingConfig2d) -> Option<[(usize, usize); 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Same => None,
    }
}

/// A `Conv2d` module's `ConvOptions`; `None` for `Same` padding ([`padding_pairs`]).
fn module_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    padding_pairs(&conv.padding).map(|padding| ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups))
}

/// One of the fast convolution ops of [`FastConvBackend`] on the dispatch backend.
type DispatchConvOp = fn(
    FloatTensor<burn::backend::Dispatch>,
    FloatTensor<burn::backend::Dispatch>,
    FloatTensor<burn::backend::Dispatch>,
    ConvParams,
) -> FloatTensor<burn::backend::Dispatch>;

/// What a fast convolution call did: ran, or declined and handed its inputs back.
// Returned and matched at once: boxing the inputs would allocate on every call.
#[allow(clippy::large_enum_variant)]
enum FastConv<T> {
    Ran(Tensor<4>),
    Declined(T),
}

impl<T> FastConv<T> {
    /// The output, or `fallback` of the inputs where the fast kernels declined.
    fn or_else(self, fallback: impl FnOnce(T) -> Tensor<4>) -> Tensor<4> {
        match self {
            FastConv::Ran(y) => y,
            FastConv::Declined(inputs) => fallback(inputs),
        }
    }
}

/// Runs `op` on `x`, `weight`, `bias` when the fast kernels handle the call ([`fast_dims`]) and
/// `accepts` its dims; otherwise hands them back so the caller takes burn's ops.
fn fast_conv_call(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: &ConvOptions<2>,
    accepts: impl Fn(&Conv2dDims) -> bool,
    op: DispatchConvOp,
) -> FastConv<(Tensor<4>, Tensor<4>, Option<Tensor<1>>)> {
    let Some(dims) = fast_dims(&x, &weight, bias.as_ref(), options).filter(|dims| accepts(dims)) else {
        return FastConv::Declined((x, weight, bias));
    };
    let params = ConvParams { stride: dims.stride, padding: dims.padding };
    let bias = bias.expect("checked by fast_path");
    FAST_CALLS.fetch_add(1, Ordering::Relaxed);
    FastConv::Ran(Tensor::from_dispatch(op(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), params)))
}

/// [`fast_conv_call`] for a `burn::nn::conv::Conv2d` module: `x` back where its padding is
/// `Same` (which only the module's own forward handles) or the fast kernels do not apply.
fn fast_conv_module_call(conv: &Conv2d, x: Tensor<4>, accepts: impl Fn(&Conv2dDims) -> bool, op: DispatchConvOp) -> FastConv<Tensor<4>> {
    let Some(options) = module_options(conv) else {
        return FastConv::Declined(x);
    };
    let bias = conv.bias.as_ref().map(|b| b.val());
    match fast_conv_call(x, conv.weight.val(), bias, &options, accepts, op) {
        FastConv::Ran(y) => FastConv::Ran(y),
        FastConv::Declined((x, _, _)) => FastConv::Declined(x),
    }
}

/// The row-major `[cols, rows]` transpose of the row-major `[rows, cols]` matrix `src`.
pub(crate) fn transposed(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(src.len(), rows * cols, "transposed: length does not match {rows}x{cols}");
    let mut out = vec![0.0f32; rows * cols];
    if cols > 0 {
        for (r, row) in src.chunks_exact(cols).enumerate() {
            for (c, v) in row.iter().enumerate() {
                out[c * rows + r] = *v;
            }
        }
    }
    out
}

/// 2-D convolution, same contract as `burn::tensor::module::conv2d`: the fast kernels on the
/// flex backend (with autodiff), burn's convolution otherwise.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    let op: DispatchConvOp = <burn::backend::Dispatch as FastConvBackend>::cilp_conv2d;
    fast_conv_call(x, weight, bias, &options, |_| true, op)
        .or_else(|(x, weight, bias)| burn::tensor::module::conv2d(x, weight, bias, options))
}

/// `conv.forward(x)` of a `burn::nn::conv::Conv2d`, through [`conv2d`] (explicit and valid
/// padding; `Same` padding goes to burn's own forward).
pub fn conv2d_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(options) = module_options(conv) else {
        return conv.forward(x);
    };
    conv2d(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), options)
}

/// `relu(conv(x))` of a `burn::nn::conv::Conv2d`: one fused op on flex (the ReLU in the
/// convolution's epilogue, its mask applied in the backward pass's gradient layout), burn's
/// modules otherwise. The same values as `relu(conv2d_module(conv, x))`.
pub fn conv2d_relu_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let op: DispatchConvOp = <burn::backend::Dispatch as FastConvBackend>::cilp_conv2d_relu;
    fast_conv_module_call(conv, x, |_| true, op).or_else(|x| burn::tensor::activation::relu(conv2d_module(conv, x)))
}

/// `pool(relu(conv(x)))` for a `MaxPool2d(2)` (2x2, stride 2, no padding, floor): one fused op
/// on flex (the full-resolution activation is never stored), the three burn modules otherwise.
pub fn conv2d_relu_maxpool_module(conv: &Conv2d, pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let fusable_pool = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    let unfused = |x| pool.forward(burn::tensor::activation::relu(conv2d_module(conv, x)));
    if !fusable_pool {
        return unfused(x);
    }
    let op: DispatchConvOp = <burn::backend::Dispatch as FastConvBackend>::cilp_conv2d_relu_maxpool;
    let pooled_nonempty = |dims: &Conv2dDims| {
        let (hp, wp) = dims.pooled();
        hp > 0 && wp > 0
    };
    fast_conv_module_call(conv, x, pooled_nonempty, op).or_else(unfused)
}

static FAST_LINEAR: AtomicBool = AtomicBool::new(true);

/// Turns the fast linear layer on (the default) or off (burn's own, for comparisons; the binary
/// sets it from `CILP_BURN_LINEAR`). Results are the same either way on the same GEMM kernels
/// ([`linear`]; on AVX-512 CPUs the default kernel choice can differ from burn's in rounding).
pub fn set_fast_linear(enabled: bool) {
    FAST_LINEAR.store(enabled, Ordering::Relaxed);
}

/// `x [rows, d_in] · weight [d_in, d_out] + bias`, same contract and bit-identical results as
/// `burn::tensor::module::linear`: [`linear`](mod@linear)'s kernels on the flex backend (with
/// autodiff), burn's op elsewhere (other devices, dtypes, no bias, or switched off).
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let fast = FAST_LINEAR.load(Ordering::Relaxed) && f32_on_flex(&x) && weight.dtype() == DType::F32;
    match bias {
        Some(bias) if fast && bias.dtype() == DType::F32 => {
            FAST_CALLS.fetch_add(1, Ordering::Relaxed);
            let out = <burn::backend::Dispatch as FastLinearBackend>::cilp_linear(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
            );
            Tensor::from_dispatch(out)
        }
        bias => burn::tensor::module::linear(x, weight, bias),
    }
}

/// `layer.forward(x)` of a `burn::nn::Linear` on a batch of rows, through [`linear`].
pub fn linear_module(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    linear(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

static FLUSH_DENORMALS: AtomicBool = AtomicBool::new(true);

/// Turns [`flush_denormals`] on (the default) or off (the binary's `CILP_KEEP_DENORMALS=1`, for
/// comparisons). Set it before the first training step.
pub fn set_flush_denormals(enabled: bool) {
    FLUSH_DENORMALS.store(enabled, Ordering::Relaxed);
}

/// Sets flush-to-zero and denormals-are-zero (x86-64 MXCSR bits 15 and 6) on the calling thread
/// and on every thread of rayon's global pool, where all of cilp's CPU compute runs; a no-op
/// elsewhere, or when [`set_flush_denormals`]`(false)`.
///
/// Why: values below f32's normal range (about 1.2e-38) take a slow microcode path in every SSE
/// and AVX operation on x86. Training pushes some of them there (Adam moments of rarely active
/// units, tiny gradients): the assessment's projector trained at about 4,800 samples/s for four
/// epochs and at 1,400-1,900 from the fifth on (2-core Intel Xeon, session 12). Flushing them to
/// zero changes results only below 1.2e-38 and keeps runs deterministic; oneDNN and MKL do the same
/// inside their kernels.
pub fn flush_denormals() {
    if !FLUSH_DENORMALS.load(Ordering::Relaxed) {
        return;
    }
    flush_denormals_on_this_thread();
    rayon::broadcast(|_| flush_denormals_on_this_thread());
}

/// [`flush_denormals`] for the calling thread only.
pub fn flush_denormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write the calling thread's SSE control register through
        // a valid, aligned u32 on this stack frame; setting FTZ (bit 15) and DAZ (bit 6) changes
        // only how this thread rounds subnormal floats, which no Rust invariant depends on.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
            csr |= 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags));
        }
    }
}

/// Whether the calling thread flushes subnormal floats to zero (always false off x86-64).
pub fn denormals_flushed_on_this_thread() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: as in `flush_denormals_on_this_thread`: reads the thread's MXCSR into a local.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr & 0x8040 == 0x8040
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod denormal_tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn flushing_makes_subnormal_results_zero_on_every_pool_thread() {
        let tiny = std::hint::black_box(1e-30f32);
        let scale = std::hint::black_box(1e-10f32);
        assert!(tiny * scale > 0.0, "without flushing the product is a subnormal, not zero");
        flush_denormals();
        assert!(denormals_flushed_on_this_thread());
        assert_eq!(std::hint::black_box(tiny) * std::hint::black_box(scale), 0.0);
        let pool_flags = rayon::broadcast(|_| denormals_flushed_on_this_thread());
        assert!(pool_flags.iter().all(|&f| f), "{pool_flags:?}");
    }
}
