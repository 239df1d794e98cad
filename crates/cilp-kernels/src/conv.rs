//! 2-D convolution (NCHW, groups 1, dilation 1, any kernel / stride / symmetric padding) on
//! plain `f32` slices: forward, and one backward pass giving the input, weight and bias
//! gradients.
//!
//! Every pass is "im2col + one GEMM per group of samples", with the GEMM done by the `gemm`
//! crate (the one burn's flex backend uses) and the groups spread over rayon's threads:
//!
//! - forward: `Y_b[Cout, P] = W[Cout, K] · col_b[K, P] + bias`, written straight into the NCHW
//!   output (no NHWC transpose, no scatter) when a sample is big enough on its own;
//! - weight gradient: `dW[Cout, K] += dY_g[Cout, nP] · col_gᵀ[nP, K]` accumulated per slab of
//!   samples (as `dWᵀ` where `Cout <= K`, so that the GEMM transposes the smaller operand into its
//!   panels), then summed in a fixed order (burn computes it as a convolution with batch and
//!   channels swapped, which costs two layout copies);
//! - input gradient: `dcol_g[K, nP] = Wᵀ[K, Cout] · dY_g[Cout, nP]`, then col2im.
//!
//! Column strides above 1 (the strided ablation) go through a phase split of each sample
//! ([`split_phases`]) so that im2col and col2im move contiguous runs.
//!
//! `K = Cin·kh·kw`, `P = Hout·Wout`. Samples whose `P` is small (deep layers) are grouped so
//! each GEMM has at least [`TARGET_COLUMNS`] columns. Scratch buffers are reused per thread.
//!
//! The 3x3, stride 1, padding 1 layers with at least [`winograd::MIN_CHANNELS`] channels in and
//! out take Winograd instead: F(4x4, 3x3) where the planes split into 4x4 tiles ([`crate::winograd4`]:
//! 36 thinner GEMMs on transformed tiles, 4x fewer multiplications), F(2x2, 3x3) otherwise
//! ([`winograd`]: 16 GEMMs, 2.25x fewer); [`Algo::choose`] picks the path from the shape alone
//! (for forward and backward passes: [`Algo::choose_forward_for`]), and the `*_with` functions
//! take it explicitly (tests, the `conv_layers` example). A training forward pass keeps its
//! transformed input ([`SavedInput`], the `*_train` entry points) for the backward pass's weight
//! gradient (the `*_saved` entry points), which would otherwise transform `x` again.

use std::cell::RefCell;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::gemm_isa::{Isa, Op, Parallelism, Pass, isa_for, sgemm};

use crate::winograd::{self, Algo, Planes};

/// Minimum GEMM width (columns of `col`) a group of samples is made to reach.
pub const TARGET_COLUMNS: usize = 512;

/// Weight-gradient partials per backward pass (fixed, so sums never depend on the thread count).
pub const MAX_SLABS: usize = 8;

/// Shapes and hyper-parameters of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dDims {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Conv2dDims {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1
    }
    /// Rows of the im2col matrix: `Cin·kh·kw`.
    pub fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }
    /// Output pixels per sample: `Hout·Wout`.
    pub fn p(&self) -> usize {
        self.out_h() * self.out_w()
    }
    /// Whether these kernels handle the shape (non-empty, kernel fits the padded input,
    /// non-zero strides). Callers fall back to burn's convolution otherwise.
    pub fn is_supported(&self) -> bool {
        self.batch > 0
            && self.c_in > 0
            && self.c_out > 0
            && self.kh > 0
            && self.kw > 0
            && self.stride[0] > 0
            && self.stride[1] > 0
            && self.h + 2 * self.padding[0] >= self.kh
            && self.w + 2 * self.padding[1] >= self.kw
    }
    fn x_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }
    fn y_len(&self) -> usize {
        self.batch * self.c_out * self.p()
    }
    /// Samples per GEMM group.
    fn group(&self, algo: Algo) -> usize {
        match algo {
            Algo::Direct => TARGET_COLUMNS.div_ceil(self.p()).clamp(1, self.batch),
            Algo::Winograd | Algo::Winograd4 => {
                let (th, tw) = winograd::tiles_of(self, algo);
                algo.target_tiles().div_ceil(th * tw).clamp(1, self.batch)
            }
        }
    }
}

thread_local! {
    static COL: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static AUX: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static WIN: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PHASES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer `slot`, grown to `len`. The buffer is taken out of
/// the slot while in use, so a re-entrant call (rayon work stealing inside a parallel GEMM)
/// allocates its own instead of panicking.
fn with_scratch<R>(slot: &'static std::thread::LocalKey<RefCell<Vec<f32>>>, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = slot.with(|c| c.take());
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    slot.with(|c| {
        let mut cur = c.borrow_mut();
        if cur.len() < buf.len() {
            *cur = buf;
        }
    });
    r
}

/// Buffers kept between passes: a reused one needs no fresh pages and no zeroing, since its
/// users write every value before they read it.
struct BufferPool {
    bufs: Mutex<Vec<Vec<f32>>>,
    most: usize,
}

impl BufferPool {
    /// A pool keeping at most `most` buffers.
    const fn new(most: usize) -> BufferPool {
        BufferPool { bufs: Mutex::new(Vec::new()), most }
    }

    /// A buffer of at least `len` values (old contents): the smallest that is long enough, else
    /// the longest, lengthened (a buffer is never shortened, so the values past `len` are kept
    /// for a larger layer's pass).
    fn take(&self, len: usize) -> Vec<f32> {
        let mut pool = self.bufs.lock().unwrap_or_else(|e| e.into_inner());
        let fits = (0..pool.len()).filter(|&i| pool[i].len() >= len).min_by_key(|&i| pool[i].len());
        let longest = (0..pool.len()).max_by_key(|&i| pool[i].len());
        let mut buf = fits.or(longest).map(|i| pool.swap_remove(i)).unwrap_or_default();
        drop(pool);
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        buf
    }

    /// Returns a buffer (dropped if the pool is full).
    fn give(&self, buf: Vec<f32>) {
        let mut pool = self.bufs.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.most {
            pool.push(buf);
        }
    }
}

/// Weight-gradient partials kept between backward passes (at most [`MAX_SLABS`] + 1): a slab's
/// first group writes its partial instead of adding to it, so a reused buffer needs no zeroing
/// (zeroing fresh ones, up to 5.8 MB each for NVIDIA's 200-channel layers in F(4x4), was about
/// 2% of the embedder's training step).
static PARTIALS: BufferPool = BufferPool::new(MAX_SLABS + 1);

/// The range of output columns `ow` whose input column `ow·s + j - pad` lies inside `[0, w)`.
fn valid_range(out: usize, s: usize, j: usize, pad: usize, w: usize) -> (usize, usize) {
    let lo = if j >= pad { 0 } else { (pad - j).div_ceil(s) };
    let hi_num = (w + pad) as isize - 1 - j as isize;
    let hi = if hi_num < 0 { 0 } else { (hi_num as usize / s + 1).min(out) };
    (lo.min(hi), hi)
}

/// Phase-split copy of one sample for a column stride `s > 1`: row `r` of `x[Cin·H, W]` becomes
/// `s` rows of `w.div_ceil(s)` values, phase `q` holding `x[r, q], x[r, q + s], ...` (zero past
/// the end). A strided im2col / col2im then copies or adds contiguous runs instead of gathering
/// or scattering every `s`-th value (the strided ablation's stride-2 layers spent about a third
/// of their time in those loops).
fn split_phases(x: &[f32], w: usize, s: usize, out: &mut [f32]) {
    let wq = w.div_ceil(s);
    for (row, phases) in x.chunks_exact(w).zip(out.chunks_exact_mut(s * wq)) {
        if s == 2 && w.is_multiple_of(2) {
            let (even, odd) = phases.split_at_mut(wq);
            for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
                *e = pair[0];
                *o = pair[1];
            }
            continue;
        }
        for (q, phase) in phases.chunks_exact_mut(wq).enumerate() {
            for (k, v) in phase.iter_mut().enumerate() {
                *v = row.get(q + k * s).copied().unwrap_or(0.0);
            }
        }
    }
}

/// The inverse of [`split_phases`]: `x[r, q + k·s] = phases[r][q][k]`.
fn merge_phases(phases: &[f32], w: usize, s: usize, x: &mut [f32]) {
    let wq = w.div_ceil(s);
    for (row, phases) in x.chunks_exact_mut(w).zip(phases.chunks_exact(s * wq)) {
        if s == 2 && w.is_multiple_of(2) {
            let (even, odd) = phases.split_at(wq);
            for ((pair, e), o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                pair[0] = *e;
                pair[1] = *o;
            }
            continue;
        }
        for (q, phase) in phases.chunks_exact(wq).enumerate() {
            for (k, v) in phase.iter().enumerate() {
                if let Some(o) = row.get_mut(q + k * s) {
                    *o = *v;
                }
            }
        }
    }
}

/// Where the input columns of kernel column `j` start for a column stride `s` and padding `pw`:
/// the phase `q` and the offset `o` such that input column `ow·s + j - pw` is element `ow + o` of
/// phase `q` (see [`split_phases`]).
fn phase_of(j: usize, s: usize, pw: usize) -> (usize, isize) {
    let t = j as isize - pw as isize;
    (t.rem_euclid(s as isize) as usize, t.div_euclid(s as isize))
}

/// im2col of one sample `x[Cin, H, W]` into columns `col0..col0+P` of `col[K, ld]`.
fn im2col(x: &[f32], d: &Conv2dDims, col: &mut [f32], ld: usize, col0: usize) {
    let sw = d.stride[1];
    if sw == 1 {
        im2col_rows(x, d.w, d, col, ld, col0);
    } else {
        let wq = d.w.div_ceil(sw);
        with_scratch(&PHASES, d.c_in * d.h * sw * wq, |ph| {
            split_phases(x, d.w, sw, ph);
            im2col_rows(ph, sw * wq, d, col, ld, col0);
        });
    }
}

/// im2col from `x[Cin, H, row_len]`: the plain sample (`row_len = W`, stride 1) or its phase
/// split ([`split_phases`], `row_len = s·ceil(W/s)`): either way each row of `col` is a run of
/// contiguous copies.
fn im2col_rows(x: &[f32], row_len: usize, d: &Conv2dDims, col: &mut [f32], ld: usize, col0: usize) {
    let (ho, wo) = (d.out_h(), d.out_w());
    let (sh, sw) = (d.stride[0], d.stride[1]);
    let (ph, pw) = (d.padding[0], d.padding[1]);
    let wq = d.w.div_ceil(sw);
    for c in 0..d.c_in {
        let plane = &x[c * d.h * row_len..(c + 1) * d.h * row_len];
        for i in 0..d.kh {
            for j in 0..d.kw {
                let r = (c * d.kh + i) * d.kw + j;
                let row = &mut col[r * ld + col0..r * ld + col0 + ho * wo];
                let (lo, hi) = valid_range(wo, sw, j, pw, d.w);
                let (q, o) = phase_of(j, sw, pw);
                for oh in 0..ho {
                    let dst = &mut row[oh * wo..(oh + 1) * wo];
                    let ih = (oh * sh + i) as isize - ph as isize;
                    if ih < 0 || ih >= d.h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if hi > lo {
                        // Input columns (lo..hi)·s + j - pw: elements lo + o onwards of phase q.
                        let first = ih as usize * row_len + q * wq + (lo as isize + o) as usize;
                        dst[lo..hi].copy_from_slice(&plane[first..first + (hi - lo)]);
                    }
                }
            }
        }
    }
}

/// col2im of columns `col0..col0+P` of `col[K, ld]`: the sums written into one sample
/// `dx[Cin, H, W]` (whatever it held before).
fn col2im(col: &[f32], ld: usize, col0: usize, d: &Conv2dDims, dx: &mut [f32]) {
    let sw = d.stride[1];
    if sw == 1 {
        dx.fill(0.0);
        col2im_rows(col, ld, col0, d, d.w, dx);
    } else {
        // Summed in the phase split from zero, then moved: every value of `dx` gets the same sums
        // in the same order as by a direct scatter (the same bits), and `dx` needs no zeroing.
        let wq = d.w.div_ceil(sw);
        with_scratch(&PHASES, d.c_in * d.h * sw * wq, |ph| {
            ph.fill(0.0);
            col2im_rows(col, ld, col0, d, sw * wq, ph);
            merge_phases(ph, d.w, sw, dx);
        });
    }
}

/// col2im into `dx[Cin, H, row_len]`, the plain sample or its phase split (see [`im2col_rows`]).
fn col2im_rows(col: &[f32], ld: usize, col0: usize, d: &Conv2dDims, row_len: usize, dx: &mut [f32]) {
    let (ho, wo) = (d.out_h(), d.out_w());
    let (sh, sw) = (d.stride[0], d.stride[1]);
    let (ph, pw) = (d.padding[0], d.padding[1]);
    let wq = d.w.div_ceil(sw);
    for c in 0..d.c_in {
        let plane = &mut dx[c * d.h * row_len..(c + 1) * d.h * row_len];
        for i in 0..d.kh {
            for j in 0..d.kw {
                let r = (c * d.kh + i) * d.kw + j;
                let row = &col[r * ld + col0..r * ld + col0 + ho * wo];
                let (lo, hi) = valid_range(wo, sw, j, pw, d.w);
                if hi <= lo {
                    continue;
                }
                let (q, o) = phase_of(j, sw, pw);
                for oh in 0..ho {
                    let ih = (oh * sh + i) as isize - ph as isize;
                    if ih < 0 || ih >= d.h as isize {
                        continue;
                    }
                    let src = &row[oh * wo + lo..oh * wo + hi];
                    let first = ih as usize * row_len + q * wq + (lo as isize + o) as usize;
                    for (o, v) in plane[first..first + (hi - lo)].iter_mut().zip(src) {
                        *o += v;
                    }
                }
            }
        }
    }
}

/// A row-major matrix view for [`gemm_f32`]: element `(r, c)` is at `ptr[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

// SAFETY: a `Mat` is a read-only view into a slice borrowed for the whole parallel section that
// uses it (the weight, the input gradient, or a thread's own scratch buffer); it never writes.
unsafe impl Send for Mat {}
unsafe impl Sync for Mat {}

/// `dst[m, n] (row stride ld_dst) = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`.
///
/// `dst` is checked (it must hold `m` rows of `ld_dst`, `n <= ld_dst`); `lhs` and `rhs` are raw
/// views that cannot be.
///
/// # Safety
///
/// Every element `lhs` addresses for `(r, c) < (m, k)` and `rhs` for `(r, c) < (k, n)`
/// (`ptr + r·rs + c·cs`) lies inside a live slice that nobody writes during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    ld_dst: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    par: Parallelism,
) {
    assert!(m == 0 || dst.len() >= (m - 1) * ld_dst + n, "gemm: dst too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ld_dst..r * ld_dst + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: `dst` is a live exclusive slice covering every (r, c) < (m, n) at r·ld_dst + c
    // (asserted above); `lhs` and `rhs` are inside live, unwritten slices (this function's
    // safety contract); no other reference to `dst` exists during the call.
    unsafe {
        sgemm(
            isa,
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld_dst as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            par,
        );
    }
}

/// GEMM parallelism: inside the per-group rayon tasks the GEMM runs on its own thread, unless
/// there are fewer groups than threads (a batch of 1 at inference), where the GEMM splits.
fn inner_parallelism(groups: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if groups >= threads || threads == 1 { Parallelism::None } else { Parallelism::Rayon(threads) }
}

fn check_lengths(d: &Conv2dDims, x: &[f32], w: &[f32]) {
    assert!(d.is_supported(), "conv2d: unsupported dims {d:?}");
    assert_eq!(x.len(), d.x_len(), "conv2d: input length does not match {d:?}");
    assert_eq!(w.len(), d.c_out * d.k(), "conv2d: weight length does not match {d:?}");
}

/// Forward convolution. `x`: `[B, Cin, H, W]`, `w`: `[Cout, Cin, kh, kw]`, `bias`: `[Cout]`;
/// returns `[B, Cout, Hout, Wout]`, all row-major.
pub fn conv2d_forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &Conv2dDims) -> Vec<f32> {
    conv2d_forward_for(Pass::Infer, x, w, bias, d)
}

/// [`conv2d_forward`] with the GEMM micro-kernels chosen for `pass` ([`isa_for`]).
pub fn conv2d_forward_for(pass: Pass, x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &Conv2dDims) -> Vec<f32> {
    conv2d_forward_by(x, w, bias, d, Algo::choose_forward_for(pass, d), isa_for(Op::Conv, pass))
}

/// [`conv2d_forward`] by the algorithm `algo` (Winograd only where [`winograd::applies`]).
pub fn conv2d_forward_with(x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &Conv2dDims, algo: Algo) -> Vec<f32> {
    conv2d_forward_by(x, w, bias, d, algo, isa_for(Op::Conv, Pass::Infer))
}

/// [`conv2d_forward`] by the algorithm `algo` and the micro-kernels `isa`.
pub fn conv2d_forward_by(x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &Conv2dDims, algo: Algo, isa: Isa) -> Vec<f32> {
    forward_plain(x, w, bias, d, algo, isa, false, None)
}

/// `ReLU(conv2d(x) + bias)` in one pass (the ReLU in the GEMM's epilogue, on values still in
/// cache), with the micro-kernels chosen for `pass`: the same values as [`conv2d_forward_for`]
/// followed by a ReLU.
pub fn conv2d_relu_forward_for(pass: Pass, x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims) -> Vec<f32> {
    forward_plain(x, w, Some(bias), d, Algo::choose_forward_for(pass, d), isa_for(Op::Conv, pass), true, None)
}

/// [`conv2d_relu_forward_for`] in training, keeping the transformed input of a Winograd pass for
/// [`conv2d_relu_backward_saved`] (`None` for the direct kernel).
pub fn conv2d_relu_forward_train(x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims) -> (Vec<f32>, Option<SavedInput>) {
    let algo = Algo::choose_forward_for(Pass::Train, d);
    let mut saved = SavedInput::new(d, algo);
    let y = forward_plain(x, w, Some(bias), d, algo, isa_for(Op::Conv, Pass::Train), true, saved.as_mut().map(SavedInput::values_mut));
    (y, saved)
}

/// The plain convolution's forward pass, with a ReLU after it when `relu`, keeping a Winograd
/// pass's transformed input in `keep` when given.
#[allow(clippy::too_many_arguments)]
fn forward_plain(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    d: &Conv2dDims,
    algo: Algo,
    isa: Isa,
    relu: bool,
    keep: Option<&mut [f32]>,
) -> Vec<f32> {
    check_lengths(d, x, w);
    check_algo(d, algo);
    if let Some(b) = bias {
        assert_eq!(b.len(), d.c_out, "conv2d: bias length does not match {d:?}");
    }
    let (p, co) = (d.p(), d.c_out);
    let act = |v: f32| if relu && v <= 0.0 { 0.0 } else { v };
    let mut y = vec![0.0f32; d.y_len()];
    forward_groups(
        x,
        w,
        d,
        &mut y,
        co * p,
        |_, ns, yg, product| match product {
            // One sample: the GEMM already wrote `yg` (bias pre-filled, see `forward_groups`).
            Product::InPlace => {
                if relu {
                    yg.iter_mut().for_each(|v| *v = act(*v));
                }
            }
            Product::Scratch(tmp, ld) => {
                for s in 0..ns {
                    for c in 0..co {
                        let dst = &mut yg[(s * co + c) * p..(s * co + c + 1) * p];
                        let src = &tmp[c * ld + s * p..c * ld + (s + 1) * p];
                        let b = bias.map_or(0.0, |b| b[c]);
                        match bias {
                            Some(_) => dst.iter_mut().zip(src).for_each(|(o, v)| *o = act(v + b)),
                            None => dst.iter_mut().zip(src).for_each(|(o, v)| *o = act(*v)),
                        }
                    }
                }
            }
        },
        bias,
        algo,
        isa,
        keep,
    );
    y
}

fn check_algo(d: &Conv2dDims, algo: Algo) {
    assert!(algo.applies_to(d), "conv2d: {algo:?} does not apply to {d:?}");
}

/// Where a group's GEMM product is, for a forward epilogue.
enum Product<'a> {
    /// Written straight into the group's output (one sample, plain convolution).
    InPlace,
    /// In scratch as `[Cout, ld]`, samples side by side (`ld = ns·P`).
    Scratch(&'a [f32], usize),
}

/// The forward GEMMs, group by group in parallel. `out` is split into chunks of
/// `out_per_sample · g` values, one per group; `epilogue(gi, ns, chunk, product)` turns the product
/// into the chunk (`gi` is the group index). With `in_place_bias` (plain convolution) a one-sample group's GEMM writes the
/// chunk directly on top of the bias.
#[allow(clippy::too_many_arguments)] // the shared core of three forward passes
fn forward_groups(
    x: &[f32],
    w: &[f32],
    d: &Conv2dDims,
    out: &mut [f32],
    out_per_sample: usize,
    epilogue: impl Fn(usize, usize, &mut [f32], Product<'_>) + Sync,
    in_place_bias: Option<&[f32]>,
    algo: Algo,
    isa: Isa,
    keep: Option<&mut [f32]>,
) {
    let (k, p, co, ci) = (d.k(), d.p(), d.c_out, d.c_in);
    let g = d.group(algo);
    let par = inner_parallelism(d.batch.div_ceil(g));
    let w_mat = Mat { ptr: w.as_ptr(), rs: k as isize, cs: 1 };
    let sample_x = d.c_in * d.h * d.w;
    let in_place = out_per_sample == co * p;
    let pts = algo.points();
    let u = (algo != Algo::Direct).then(|| winograd::weights_of(algo, w, co, ci, false));
    // Where `keep` is given (a Winograd training pass), each group's transformed input goes into
    // its own chunk of it (the layout [`SavedInput`] describes) instead of scratch.
    let mut kept: Vec<Option<&mut [f32]>> = match keep {
        Some(buf) => {
            assert!(u.is_some(), "conv2d: only a Winograd pass keeps its transformed input");
            let (th, tw) = winograd::tiles_of(d, algo);
            assert_eq!(buf.len(), pts * ci * d.batch * th * tw, "conv2d: kept input buffer does not match {d:?}");
            buf.chunks_mut(pts * ci * g * th * tw).map(Some).collect()
        }
        None => (0..d.batch.div_ceil(g)).map(|_| None).collect(),
    };
    out.par_chunks_mut(g * out_per_sample).zip(kept.par_iter_mut()).enumerate().for_each(|(gi, (og, kept))| {
        let b0 = gi * g;
        let ns = og.len() / out_per_sample;
        let ld = ns * p;
        if let Some(u) = &u {
            let (th, tw) = winograd::tiles_of(d, algo);
            let t = ns * th * tw;
            let mut transformed = |v: &mut [f32]| {
                let x_planes = Planes { sample: sample_x, channel: d.h * d.w };
                winograd::input_of(algo, &x[b0 * sample_x..], x_planes, ns, ci, d.h, d.w, v);
                with_scratch(&WIN, pts * co * t, |m| {
                    let v = &*v;
                    per_point(m, co * t, par, |xi, m_xi| {
                        // M_ξ[co, t] = U_ξ[co, ci] · V_ξ[ci, t]
                        let u_xi = Mat { ptr: u[xi * co * ci..].as_ptr(), rs: ci as isize, cs: 1 };
                        let v_xi = Mat { ptr: v[xi * ci * t..].as_ptr(), rs: t as isize, cs: 1 };
                        // SAFETY: u_xi views U_ξ [co, ci] of `u` and v_xi V_ξ [ci, t] of `v`
                        // (16·ci·t values); both live and unwritten during the call.
                        unsafe { gemm_f32(isa, co, t, ci, m_xi, t, false, u_xi, v_xi, Parallelism::None) };
                    });
                    with_scratch(&AUX, co * ld, |tmp| {
                        winograd::output_of(algo, m, co, ns, d.h, d.w, tmp, Planes { sample: p, channel: ld });
                        epilogue(gi, ns, og, Product::Scratch(tmp, ld));
                    });
                });
            };
            match kept.take() {
                Some(v) => transformed(v),
                None => with_scratch(&COL, pts * ci * t, transformed),
            }
            return;
        }
        with_scratch(&COL, k * ld, |col| {
            for s in 0..ns {
                im2col(&x[(b0 + s) * sample_x..(b0 + s + 1) * sample_x], d, col, ld, s * p);
            }
            let col_mat = Mat { ptr: col.as_ptr(), rs: ld as isize, cs: 1 };
            if ns == 1 && in_place {
                // Bias first, then accumulate the product onto it: one pass over the output.
                if let Some(b) = in_place_bias {
                    for (c, row) in og.chunks_mut(p).enumerate() {
                        row.fill(b[c]);
                    }
                }
                // SAFETY: w_mat views the [co, k] weight and col_mat the [k, p] column buffer
                // (`col` holds k·ld >= k·p values), both borrowed for this section, unwritten.
                unsafe { gemm_f32(isa, co, p, k, og, p, in_place_bias.is_some(), w_mat, col_mat, par) };
                epilogue(gi, ns, og, Product::InPlace);
            } else {
                with_scratch(&AUX, co * ld, |tmp| {
                    // SAFETY: as above, with the full [k, ld] column buffer.
                    unsafe { gemm_f32(isa, co, ld, k, tmp, ld, false, w_mat, col_mat, par) };
                    epilogue(gi, ns, og, Product::Scratch(tmp, ld));
                });
            }
        });
    });
}

/// Runs `product(ξ, chunk)` for each Winograd point's chunk (`len` values) of `out`, the GEMM
/// inside on one thread. With fewer groups of samples than threads (`par` is not `None`: a
/// small batch) the points run in parallel instead of each small GEMM splitting itself over the
/// threads, which left them mostly waiting (the 8x8 layers at batch 8 ran slower on two threads
/// than on one); every point's product is the same single-threaded GEMM either way, so the
/// results are the same bits.
fn per_point(out: &mut [f32], len: usize, par: Parallelism, product: impl Fn(usize, &mut [f32]) + Sync) {
    if matches!(par, Parallelism::None) {
        out.chunks_exact_mut(len).enumerate().for_each(|(xi, c)| product(xi, c));
    } else {
        out.par_chunks_exact_mut(len).enumerate().for_each(|(xi, c)| product(xi, c));
    }
}

/// Gradients of one convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGrads {
    /// `[B, Cin, H, W]`, when asked for.
    pub dx: Option<Vec<f32>>,
    /// `[Cout, Cin, kh, kw]`, when asked for.
    pub dw: Option<Vec<f32>>,
    /// `[Cout]`, when asked for.
    pub db: Option<Vec<f32>>,
}

/// Which gradients [`conv2d_backward`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub x: bool,
    pub w: bool,
    pub b: bool,
}

/// Backward convolution: from the output gradient `dy` (`[B, Cout, Hout, Wout]`), the input
/// `x` and the weight `w`, the gradients that `want` asks for.
pub fn conv2d_backward(x: &[f32], w: &[f32], dy: &[f32], d: &Conv2dDims, want: Wanted) -> Conv2dGrads {
    conv2d_backward_with(x, w, dy, d, want, Algo::choose(d))
}

/// [`conv2d_backward`] by the algorithm `algo` (the micro-kernels of [`Pass::Train`]).
pub fn conv2d_backward_with(x: &[f32], w: &[f32], dy: &[f32], d: &Conv2dDims, want: Wanted, algo: Algo) -> Conv2dGrads {
    conv2d_backward_by(x, w, dy, d, want, algo, isa_for(Op::Conv, Pass::Train))
}

/// [`conv2d_backward`] by the algorithm `algo` and the micro-kernels `isa`.
pub fn conv2d_backward_by(x: &[f32], w: &[f32], dy: &[f32], d: &Conv2dDims, want: Wanted, algo: Algo, isa: Isa) -> Conv2dGrads {
    check_lengths(d, x, w);
    check_algo(d, algo);
    assert_eq!(dy.len(), d.y_len(), "conv2d backward: output gradient length does not match {d:?}");
    let (p, co) = (d.p(), d.c_out);
    backward_groups(x, w, d, want, algo, isa, None, |b0, ns, buf| {
        let dy_g = &dy[b0 * co * p..(b0 + ns) * co * p];
        if ns == 1 {
            return Some(dy_g);
        }
        let ld = ns * p;
        for s in 0..ns {
            for c in 0..co {
                buf[c * ld + s * p..c * ld + (s + 1) * p].copy_from_slice(&dy_g[(s * co + c) * p..(s * co + c + 1) * p]);
            }
        }
        None
    })
}

/// Backward pass of [`conv2d_relu_forward_for`]: `y` is its output (the ReLU's mask, as burn's:
/// no gradient where `y <= 0`), `dy` the gradient of `y`. The mask is applied while the output gradient
/// is laid out for the GEMMs, so it costs no pass of its own.
pub fn conv2d_relu_backward(x: &[f32], w: &[f32], y: &[f32], dy: &[f32], d: &Conv2dDims, want: Wanted) -> Conv2dGrads {
    conv2d_relu_backward_saved(x, w, y, dy, d, want, None)
}

/// [`conv2d_relu_backward`] with the forward pass's transformed input, where
/// [`conv2d_relu_forward_train`] kept one made by the algorithm this pass takes (the weight
/// gradient then does not transform `x` again; the same values).
pub fn conv2d_relu_backward_saved(
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    d: &Conv2dDims,
    want: Wanted,
    saved: Option<&SavedInput>,
) -> Conv2dGrads {
    check_lengths(d, x, w);
    let algo = Algo::choose(d);
    check_algo(d, algo);
    assert_eq!(dy.len(), d.y_len(), "conv2d backward: output gradient length does not match {d:?}");
    assert_eq!(y.len(), d.y_len(), "conv2d backward: output length does not match {d:?}");
    let (p, co) = (d.p(), d.c_out);
    backward_groups(x, w, d, want, algo, isa_for(Op::Conv, Pass::Train), saved, |b0, ns, buf| {
        let ld = ns * p;
        for s in 0..ns {
            for c in 0..co {
                let at = ((b0 + s) * co + c) * p;
                let (dst, g, v) = (&mut buf[c * ld + s * p..c * ld + (s + 1) * p], &dy[at..at + p], &y[at..at + p]);
                // Branch-free (a bit mask), so that it vectorises: the gradient where y > 0
                // (or NaN, as burn's `y <= 0` test lets through), +0 elsewhere.
                for i in 0..p {
                    let keep = if v[i] <= 0.0 { 0 } else { u32::MAX };
                    dst[i] = f32::from_bits(g[i].to_bits() & keep);
                }
            }
        }
        None
    })
}

/// The sum of `v` in a fixed order that vectorises: [`LANES`] running sums (lane `i` takes
/// elements `i`, `i + LANES`, ...), folded pairwise, then the tail in order. A plain `iter().sum()`
/// is one chain of dependent additions (about 4 cycles an element): the bias gradients' sums over
/// full-resolution output gradients cost several percent of a training step that way.
fn lane_sum(v: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    tail.iter().fold(acc[0], |s, x| s + x)
}

/// The backward GEMMs, group by group. `dy_of(b0, ns, buf)` provides the group's output
/// gradient as a `[Cout, ns·P]` matrix: either a slice it returns (one sample, already in that
/// layout) or written into `buf` (returning `None`).
#[allow(clippy::too_many_arguments)] // the shared core of three backward passes
fn backward_groups<'a>(
    x: &[f32],
    w: &[f32],
    d: &Conv2dDims,
    want: Wanted,
    algo: Algo,
    isa: Isa,
    saved: Option<&SavedInput>,
    dy_of: impl Fn(usize, usize, &mut [f32]) -> Option<&'a [f32]> + Sync,
) -> Conv2dGrads {
    let (k, p, co, ci) = (d.k(), d.p(), d.c_out, d.c_in);
    let wino = algo != Algo::Direct;
    let pts = algo.points();
    // The forward pass's transformed input, where it was made by this pass's algorithm.
    let saved_v = saved.and_then(|s| s.for_pass(d, algo));
    // Winograd accumulates the weight gradient in the transform domain ([16][co][ci]) and turns
    // it into [co][ci][3][3] once, after the partials are summed.
    let dw_len = if wino { pts * co * ci } else { co * k };
    let dw_transposed = !wino && co <= k;
    let u_flip = (wino && want.x).then(|| winograd::weights_of(algo, w, co, ci, true));
    let g = d.group(algo);
    let groups = d.batch.div_ceil(g);
    // Fixed slabs of consecutive groups, each with its own dW/db partial, summed in slab order:
    // the result does not depend on scheduling or on the thread count (bit-identical runs).
    let slab_groups = groups.div_ceil(MAX_SLABS);
    let slabs = groups.div_ceil(slab_groups);
    let par = inner_parallelism(slabs);
    let sample_x = d.c_in * d.h * d.w;
    let w_t = Mat { ptr: w.as_ptr(), rs: 1, cs: k as isize }; // Wᵀ[K, Cout]
    let db_at = if want.w { dw_len } else { 0 };
    let acc_len = db_at + if want.b { co } else { 0 };

    // One group: adds dW / db to `acc` (writes them, if `first`: `acc` holds old values), writes
    // dX into `dxg` if given.
    let group = |gi: usize, first: bool, dxg: Option<&mut [f32]>, acc: &mut [f32]| {
        let b0 = gi * g;
        let ns = g.min(d.batch - b0);
        let ld = ns * p;
        with_scratch(&AUX, co * ld, |buf| {
            let dy_mat = match dy_of(b0, ns, buf) {
                Some(view) => view,
                None => &buf[..],
            };
            if want.b {
                let db = &mut acc[db_at..];
                for (c, v) in db.iter_mut().enumerate() {
                    let sum = lane_sum(&dy_mat[c * ld..(c + 1) * ld]);
                    *v = if first { sum } else { *v + sum };
                }
            }
            if !want.w && dxg.is_none() {
                return;
            }
            if wino {
                let (th, tw) = winograd::tiles_of(d, algo);
                let t = ns * th * tw;
                let dy_planes = Planes { sample: p, channel: ld };
                let x_planes = Planes { sample: sample_x, channel: d.h * d.w };
                if want.w {
                    let mut weight_grad = |v: &[f32]| {
                        with_scratch(&WIN, pts * co * t, |mdy| {
                            winograd::output_grad_of(algo, dy_mat, dy_planes, ns, co, d.h, d.w, mdy);
                            let (v, mdy) = (&*v, &*mdy);
                            per_point(&mut acc[..dw_len], co * ci, par, |xi, s_xi| {
                                // S_ξ[co, ci] += (A dy Aᵀ)_ξ[co, t] · V_ξᵀ[t, ci]
                                let m_xi = Mat { ptr: mdy[xi * co * t..].as_ptr(), rs: t as isize, cs: 1 };
                                let v_t = Mat { ptr: v[xi * ci * t..].as_ptr(), rs: 1, cs: t as isize };
                                // SAFETY: m_xi views [co, t] of `mdy`, v_t the transposed [t, ci]
                                // of `v` (16·ci·t values); both live and unwritten during the call.
                                unsafe { gemm_f32(isa, co, ci, t, s_xi, ci, !first, m_xi, v_t, Parallelism::None) };
                            });
                        });
                    };
                    match saved_v {
                        Some(sv) => weight_grad(&sv[b0 * th * tw * pts * ci..][..pts * ci * t]),
                        None => with_scratch(&COL, pts * ci * t, |v| {
                            winograd::input_of(algo, &x[b0 * sample_x..], x_planes, ns, ci, d.h, d.w, v);
                            weight_grad(v)
                        }),
                    }
                }
                if let (Some(dxg), Some(u)) = (dxg, &u_flip) {
                    with_scratch(&COL, pts * co * t, |vdy| {
                        winograd::input_of(algo, dy_mat, dy_planes, ns, co, d.h, d.w, vdy);
                        with_scratch(&WIN, pts * ci * t, |m| {
                            let vdy = &*vdy;
                            per_point(m, ci * t, par, |xi, m_xi| {
                                // M_ξ[ci, t] = U'_ξ[ci, co] · V(dy)_ξ[co, t]
                                let u_xi = Mat { ptr: u[xi * ci * co..].as_ptr(), rs: co as isize, cs: 1 };
                                let v_xi = Mat { ptr: vdy[xi * co * t..].as_ptr(), rs: t as isize, cs: 1 };
                                // SAFETY: u_xi views [ci, co] of `u`, v_xi [co, t] of `vdy`;
                                // both live and unwritten during the call.
                                unsafe { gemm_f32(isa, ci, t, co, m_xi, t, false, u_xi, v_xi, Parallelism::None) };
                            });
                            winograd::output_of(algo, m, ci, ns, d.h, d.w, dxg, x_planes);
                        });
                    });
                }
                return;
            }
            let dy_m = Mat { ptr: dy_mat.as_ptr(), rs: ld as isize, cs: 1 };
            with_scratch(&COL, k * ld, |col| {
                if want.w {
                    for s in 0..ns {
                        im2col(&x[(b0 + s) * sample_x..(b0 + s + 1) * sample_x], d, col, ld, s * p);
                    }
                    // dW[Cout, K] += dY[Cout, ld] · colᵀ[ld, K]. Both operands run along the
                    // sum's index, so the GEMM transposes one of them into its panels: the
                    // smaller one. With Cout <= K (every layer but a 3- or 4-channel input's)
                    // that is dY, and `acc` holds dWᵀ [K, Cout] (a column-major destination,
                    // `col` read in place); otherwise `col`, and `acc` holds dW. Transposing all
                    // of `col` cost as much as the arithmetic in the strided layers.
                    if dw_transposed {
                        // SAFETY: `acc` holds co·k values, addressed (c, kk) at kk·co + c; dY is
                        // [co, ld] at c·ld + l, col [k, ld] at kk·ld + l; both live and unwritten
                        // during the call, neither aliases `acc`.
                        unsafe {
                            sgemm(
                                isa,
                                co,
                                k,
                                ld,
                                acc.as_mut_ptr(),
                                co as isize,
                                1,
                                !first,
                                dy_mat.as_ptr(),
                                1,
                                ld as isize,
                                col.as_ptr(),
                                ld as isize,
                                1,
                                1.0,
                                1.0,
                                par,
                            )
                        };
                    } else {
                        let col_t = Mat { ptr: col.as_ptr(), rs: 1, cs: ld as isize };
                        // SAFETY: dy_m views dY [co, ld] and col_t the transposed [ld, k] column
                        // buffer (k·ld values); both live and unwritten during the call.
                        unsafe { gemm_f32(isa, co, k, ld, &mut acc[..co * k], k, !first, dy_m, col_t, par) };
                    }
                }
                if let Some(dxg) = dxg {
                    // dcol[K, ld] = Wᵀ[K, Cout] · dY[Cout, ld], then col2im.
                    // SAFETY: w_t views the weight transposed [k, co], dy_m dY [co, ld]; neither
                    // aliases `col`, the output.
                    unsafe { gemm_f32(isa, k, ld, co, col, ld, false, w_t, dy_m, par) };
                    for s in 0..ns {
                        col2im(col, ld, s * p, d, &mut dxg[s * sample_x..(s + 1) * sample_x]);
                    }
                }
            });
        });
    };

    let run_slab = |si: usize, dxs: Option<&mut [f32]>| {
        let mut buf = PARTIALS.take(acc_len);
        let acc = &mut buf[..acc_len];
        match dxs {
            Some(dxs) => {
                for (li, dxg) in dxs.chunks_mut(g * sample_x).enumerate() {
                    group(si * slab_groups + li, li == 0, Some(dxg), acc);
                }
            }
            None => {
                let first = si * slab_groups;
                for gi in first..((si + 1) * slab_groups).min(groups) {
                    group(gi, gi == first, None, acc);
                }
            }
        }
        buf
    };
    let (dx, partials): (Option<Vec<f32>>, Vec<Vec<f32>>) = if want.x {
        let mut dx = vec![0.0f32; d.x_len()];
        let partials = dx.par_chunks_mut(slab_groups * g * sample_x).enumerate().map(|(si, dxs)| run_slab(si, Some(dxs))).collect();
        (Some(dx), partials)
    } else {
        (None, (0..slabs).into_par_iter().map(|si| run_slab(si, None)).collect())
    };
    // Summed in slab order onto the first slab's partial (which holds the same bits as adding
    // it to zeros, up to the sign of a zero).
    let mut partials = partials.into_iter();
    let mut acc = partials.next().expect("a backward pass has at least one slab");
    for part in partials {
        for (a, v) in acc[..acc_len].iter_mut().zip(&part) {
            *a += v;
        }
        PARTIALS.give(part);
    }
    let db = want.b.then(|| acc[db_at..acc_len].to_vec());
    let dw = want.w.then(|| {
        if wino {
            winograd::weight_grad_of(algo, &acc[..dw_len], co, ci)
        } else if !dw_transposed {
            acc[..dw_len].to_vec()
        } else {
            crate::transposed(&acc[..co * k], k, co) // [K, Cout] -> [Cout, K]
        }
    });
    PARTIALS.give(acc);
    Conv2dGrads { dx, dw, db }
}

/// A Winograd training forward pass's transformed input `V` (each group's `[points][Cin][tiles]`,
/// the groups side by side in the order of [`Conv2dDims`]'s grouping for that algorithm), kept
/// for the backward pass: its weight gradient needs exactly this transform of `x`, which it would
/// otherwise compute again. F(4x4)'s `V` holds 2.25 values per input value (F(2x2)'s 4).
#[derive(Debug, Clone)]
pub struct SavedInput {
    algo: Algo,
    dims: Conv2dDims,
    /// At least [`SavedInput::len`] values (a pooled buffer may be longer).
    v: Vec<f32>,
}

/// Buffers of dropped [`SavedInput`]s, for the next step's forward passes: more than the
/// Winograd layers of any zoo model (CILP's two embedders have six).
static KEPT: BufferPool = BufferPool::new(16);

impl SavedInput {
    /// A buffer for a pass of `algo` on `d`, its contents to be written (`None` for the direct
    /// kernel).
    fn new(d: &Conv2dDims, algo: Algo) -> Option<SavedInput> {
        (algo != Algo::Direct).then(|| SavedInput { algo, dims: *d, v: KEPT.take(Self::len_for(d, algo)) })
    }

    fn len_for(d: &Conv2dDims, algo: Algo) -> usize {
        let (th, tw) = winograd::tiles_of(d, algo);
        algo.points() * d.c_in * d.batch * th * tw
    }

    fn values(&self) -> &[f32] {
        &self.v[..Self::len_for(&self.dims, self.algo)]
    }

    fn values_mut(&mut self) -> &mut [f32] {
        let len = Self::len_for(&self.dims, self.algo);
        &mut self.v[..len]
    }

    /// The values, if they were made for `d` by `algo` (a backward pass taking another
    /// algorithm, or the switch turned off since, transforms `x` itself).
    fn for_pass(&self, d: &Conv2dDims, algo: Algo) -> Option<&[f32]> {
        (self.algo == algo && self.dims == *d).then(|| self.values())
    }

    /// Bytes of the values.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.values())
    }
}

impl PartialEq for SavedInput {
    fn eq(&self, other: &SavedInput) -> bool {
        self.algo == other.algo && self.dims == other.dims && self.values() == other.values()
    }
}

impl Drop for SavedInput {
    fn drop(&mut self) {
        KEPT.give(std::mem::take(&mut self.v));
    }
}

/// Code in [`ReluPoolOutput::arg`] of a window whose maximum is not positive (ReLU made the
/// output 0 and lets no gradient through).
pub const ARG_NONE: u8 = u8::MAX;

/// Output of [`conv2d_relu_maxpool_forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReluPoolOutput {
    /// `[B, Cout, Hout/2, Wout/2]`.
    pub y: Vec<f32>,
    /// Per output value, the position `2·dy + dx` of its maximum in the 2x2 window, or
    /// [`ARG_NONE`]: what the backward pass needs (the pre-pool activation is never stored).
    pub arg: Vec<u8>,
}

impl Conv2dDims {
    /// Height and width after `MaxPool2d(2)` (floor, like PyTorch's default).
    pub fn pooled(&self) -> (usize, usize) {
        (self.out_h() / 2, self.out_w() / 2)
    }
}

/// `MaxPool2d(2)(ReLU(conv2d(x) + bias))` in one pass: the pooling reads each group's GEMM
/// product while it is still in cache, so the full-resolution activation is never written.
pub fn conv2d_relu_maxpool_forward(x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims) -> ReluPoolOutput {
    conv2d_relu_maxpool_forward_for(Pass::Infer, x, w, bias, d)
}

/// [`conv2d_relu_maxpool_forward`] with the GEMM micro-kernels chosen for `pass`.
pub fn conv2d_relu_maxpool_forward_for(pass: Pass, x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims) -> ReluPoolOutput {
    conv2d_relu_maxpool_forward_by(x, w, bias, d, Algo::choose_forward_for(pass, d), isa_for(Op::Conv, pass))
}

/// [`conv2d_relu_maxpool_forward`] by the algorithm `algo`.
pub fn conv2d_relu_maxpool_forward_with(x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims, algo: Algo) -> ReluPoolOutput {
    conv2d_relu_maxpool_forward_by(x, w, bias, d, algo, isa_for(Op::Conv, Pass::Infer))
}

/// [`conv2d_relu_maxpool_forward_for`] in training, keeping the transformed input of a Winograd
/// pass for [`conv2d_relu_maxpool_backward_saved`] (`None` for the direct kernel).
pub fn conv2d_relu_maxpool_forward_train(x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims) -> (ReluPoolOutput, Option<SavedInput>) {
    let algo = Algo::choose_forward_for(Pass::Train, d);
    let mut saved = SavedInput::new(d, algo);
    let out = relu_maxpool_forward(x, w, bias, d, algo, isa_for(Op::Conv, Pass::Train), saved.as_mut().map(SavedInput::values_mut));
    (out, saved)
}

/// [`conv2d_relu_maxpool_forward`] by the algorithm `algo` and the micro-kernels `isa`.
pub fn conv2d_relu_maxpool_forward_by(x: &[f32], w: &[f32], bias: &[f32], d: &Conv2dDims, algo: Algo, isa: Isa) -> ReluPoolOutput {
    relu_maxpool_forward(x, w, bias, d, algo, isa, None)
}

fn relu_maxpool_forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    d: &Conv2dDims,
    algo: Algo,
    isa: Isa,
    keep: Option<&mut [f32]>,
) -> ReluPoolOutput {
    check_lengths(d, x, w);
    check_algo(d, algo);
    assert_eq!(bias.len(), d.c_out, "conv2d: bias length does not match {d:?}");
    let (p, co, wo) = (d.p(), d.c_out, d.out_w());
    let (hp, wp) = d.pooled();
    assert!(hp > 0 && wp > 0, "conv2d + maxpool: output {}x{} is too small to pool", d.out_h(), wo);
    let per_sample = co * hp * wp;
    let mut y = vec![0.0f32; d.batch * per_sample];
    let mut arg = vec![ARG_NONE; d.batch * per_sample];
    // One uncontended lock per group: the argmax chunks travel beside the output chunks.
    let arg_chunks: Vec<Mutex<&mut [u8]>> = arg.chunks_mut(d.group(algo) * per_sample).map(Mutex::new).collect();
    forward_groups(
        x,
        w,
        d,
        &mut y,
        per_sample,
        |gi, ns, yg, product| {
            let Product::Scratch(tmp, ld) = product else { unreachable!("a pooled output is never written in place") };
            let mut ag = arg_chunks[gi].lock().expect("argmax chunk lock");
            for s in 0..ns {
                for c in 0..co {
                    let plane = &tmp[c * ld + s * p..c * ld + (s + 1) * p];
                    let b = bias[c];
                    let base = (s * co + c) * hp * wp;
                    let n = hp * wp;
                    relu_pool_plane(plane, wo, b, &mut yg[base..base + n], &mut ag[base..base + n], wp);
                }
            }
        },
        None,
        algo,
        isa,
        keep,
    );
    drop(arg_chunks);
    ReluPoolOutput { y, arg }
}

/// One channel plane of `MaxPool2d(2)(ReLU(z + b))` from the pre-activation plane `z` (rows of
/// `wo` values) into `y` and `arg` (rows of `wp` values): the maximum of each 2x2 window (the
/// first one wins ties, like PyTorch) plus `b`, or 0 and [`ARG_NONE`] where that is not positive.
/// Branch-free: AVX2 intrinsics where the CPU has AVX2, scalar selects otherwise and for a row's
/// last `wp mod 8` windows (the scalar loop with branches it replaces was 6.5-7.3% of the
/// embedder's training step); the same values either way (comparisons, one addition and
/// selects: nothing rounds differently).
fn relu_pool_plane(z: &[f32], wo: usize, b: f32, y: &mut [f32], arg: &mut [u8], wp: usize) {
    if wp == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { relu_pool_plane_avx2(z, wo, b, y, arg, wp) };
        return;
    }
    relu_pool_plane_generic(z, wo, b, y, arg, wp);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn relu_pool_plane_avx2(z: &[f32], wo: usize, b: f32, y: &mut [f32], arg: &mut [u8], wp: usize) {
    use std::arch::x86_64::*;
    let full = wp / 8 * 8;
    let (bias, zero) = (_mm256_set1_ps(b), _mm256_setzero_ps());
    let (one, two, three, none) = (_mm256_set1_epi32(1), _mm256_set1_epi32(2), _mm256_set1_epi32(3), _mm256_set1_epi32(ARG_NONE as i32));
    let select =
        |m: __m256, a: __m256i, b: __m256i| _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m));
    for (i, (y, arg)) in y.chunks_exact_mut(wp).zip(arg.chunks_exact_mut(wp)).enumerate() {
        let (r0, r1) = (&z[2 * i * wo..][..2 * wp], &z[(2 * i + 1) * wo..][..2 * wp]);
        for j in (0..full).step_by(8) {
            // Even and odd columns of 16 values; shuffle_ps leaves them in the lane order
            // 0 1 4 5 2 3 6 7, which the permutes at the end undo.
            // SAFETY: j + 8 <= wp, so r0, r1 hold the 16 values from 2j (checked slices).
            let (a0, a1) = unsafe { (_mm256_loadu_ps(r0[2 * j..][..16].as_ptr()), _mm256_loadu_ps(r0[2 * j + 8..][..8].as_ptr())) };
            let (b0, b1) = unsafe { (_mm256_loadu_ps(r1[2 * j..][..16].as_ptr()), _mm256_loadu_ps(r1[2 * j + 8..][..8].as_ptr())) };
            let (c0, c1) = (_mm256_shuffle_ps::<0x88>(a0, a1), _mm256_shuffle_ps::<0xDD>(a0, a1));
            let (c2, c3) = (_mm256_shuffle_ps::<0x88>(b0, b1), _mm256_shuffle_ps::<0xDD>(b0, b1));
            let m = _mm256_cmp_ps::<_CMP_GT_OQ>(c1, c0);
            let (best, at) = (_mm256_blendv_ps(c0, c1, m), select(m, _mm256_setzero_si256(), one));
            let m = _mm256_cmp_ps::<_CMP_GT_OQ>(c2, best);
            let (best, at) = (_mm256_blendv_ps(best, c2, m), select(m, at, two));
            let m = _mm256_cmp_ps::<_CMP_GT_OQ>(c3, best);
            let (best, at) = (_mm256_blendv_ps(best, c3, m), select(m, at, three));
            let v = _mm256_add_ps(best, bias);
            let on = _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero);
            let v = _mm256_castsi256_ps(_mm256_permute4x64_epi64::<0xD8>(_mm256_castps_si256(_mm256_and_ps(on, v))));
            let at = _mm256_permute4x64_epi64::<0xD8>(select(on, none, at));
            // SAFETY: j + 8 <= wp = y.len() (checked slice).
            unsafe { _mm256_storeu_ps(y[j..j + 8].as_mut_ptr(), v) };
            let mut codes = [0i32; 8];
            // SAFETY: `codes` holds 8 i32.
            unsafe { _mm256_storeu_si256(codes.as_mut_ptr().cast(), at) };
            for (a, c) in arg[j..j + 8].iter_mut().zip(codes) {
                *a = c as u8;
            }
        }
        relu_pool_row(&r0[2 * full..], &r1[2 * full..], b, &mut y[full..], &mut arg[full..]);
    }
}

fn relu_pool_plane_generic(z: &[f32], wo: usize, b: f32, y: &mut [f32], arg: &mut [u8], wp: usize) {
    for (i, (y, arg)) in y.chunks_exact_mut(wp).zip(arg.chunks_exact_mut(wp)).enumerate() {
        relu_pool_row(&z[2 * i * wo..][..2 * wp], &z[(2 * i + 1) * wo..][..2 * wp], b, y, arg);
    }
}

/// One row of [`relu_pool_plane`] from the two pre-activation rows `r0`, `r1` (`2 · y.len()`
/// values each).
fn relu_pool_row(r0: &[f32], r1: &[f32], b: f32, y: &mut [f32], arg: &mut [u8]) {
    for (j, (y, arg)) in y.iter_mut().zip(arg.iter_mut()).enumerate() {
        let (c0, c1, c2, c3) = (r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
        // The sequential "v > best" scan of c0..c3 as selects: the same winner, NaN included.
        let (best, at) = if c1 > c0 { (c1, 1u8) } else { (c0, 0u8) };
        let (best, at) = if c2 > best { (c2, 2u8) } else { (best, at) };
        let (best, at) = if c3 > best { (c3, 3u8) } else { (best, at) };
        let v = best + b;
        let on = v > 0.0;
        *y = if on { v } else { 0.0 };
        *arg = if on { at } else { ARG_NONE };
    }
}

/// Backward of [`conv2d_relu_maxpool_forward`] from the pooled output gradient `dy`
/// (`[B, Cout, Hout/2, Wout/2]`) and the argmax codes it returned.
pub fn conv2d_relu_maxpool_backward(x: &[f32], w: &[f32], dy: &[f32], arg: &[u8], d: &Conv2dDims, want: Wanted) -> Conv2dGrads {
    conv2d_relu_maxpool_backward_with(x, w, dy, arg, d, want, Algo::choose(d))
}

/// [`conv2d_relu_maxpool_backward`] by the algorithm `algo`.
pub fn conv2d_relu_maxpool_backward_with(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    arg: &[u8],
    d: &Conv2dDims,
    want: Wanted,
    algo: Algo,
) -> Conv2dGrads {
    relu_maxpool_backward(x, w, dy, arg, d, want, algo, isa_for(Op::Conv, Pass::Train), None)
}

/// [`conv2d_relu_maxpool_backward`] with the forward pass's transformed input, where
/// [`conv2d_relu_maxpool_forward_train`] kept one made by the algorithm this pass takes (the
/// weight gradient then does not transform `x` again; the same values).
pub fn conv2d_relu_maxpool_backward_saved(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    arg: &[u8],
    d: &Conv2dDims,
    want: Wanted,
    saved: Option<&SavedInput>,
) -> Conv2dGrads {
    relu_maxpool_backward(x, w, dy, arg, d, want, Algo::choose(d), isa_for(Op::Conv, Pass::Train), saved)
}

/// [`conv2d_relu_maxpool_backward`] by the algorithm `algo` and the micro-kernels `isa`, with the
/// forward pass's transformed input where one is given.
#[allow(clippy::too_many_arguments)]
fn relu_maxpool_backward(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    arg: &[u8],
    d: &Conv2dDims,
    want: Wanted,
    algo: Algo,
    isa: Isa,
    saved: Option<&SavedInput>,
) -> Conv2dGrads {
    check_lengths(d, x, w);
    check_algo(d, algo);
    let (p, co, wo) = (d.p(), d.c_out, d.out_w());
    let (hp, wp) = d.pooled();
    let per_sample = co * hp * wp;
    assert_eq!(dy.len(), d.batch * per_sample, "conv2d + maxpool backward: gradient length does not match {d:?}");
    assert_eq!(arg.len(), dy.len(), "conv2d + maxpool backward: argmax length does not match the gradient");
    backward_groups(x, w, d, want, algo, isa, saved, |b0, ns, buf| {
        let ld = ns * p;
        for s in 0..ns {
            for c in 0..co {
                let base = ((b0 + s) * co + c) * hp * wp;
                let plane = &mut buf[c * ld + s * p..c * ld + (s + 1) * p];
                let n = hp * wp;
                unpool_plane(&dy[base..base + n], &arg[base..base + n], wp, wo, plane);
            }
        }
        None
    })
}

/// The pre-activation gradient plane (rows of `wo` values, every value written) of one channel
/// of [`conv2d_relu_maxpool_forward`]: each pooled gradient `dy` (rows of `wp`) at the position
/// its `arg` code names, 0 elsewhere (the windows' other positions, [`ARG_NONE`] windows, and an
/// odd last row or column, which pooling floors away). Branch-free (AVX2 intrinsics where the CPU
/// has AVX2); one pass instead of zero-filling then scattering, the same values.
fn unpool_plane(dy: &[f32], arg: &[u8], wp: usize, wo: usize, plane: &mut [f32]) {
    if wp == 0 {
        plane.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { unpool_plane_avx2(dy, arg, wp, wo, plane) };
        return;
    }
    unpool_plane_generic(dy, arg, wp, wo, plane);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unpool_plane_avx2(dy: &[f32], arg: &[u8], wp: usize, wo: usize, plane: &mut [f32]) {
    use std::arch::x86_64::*;
    let full = wp / 8 * 8;
    let hp = dy.len() / wp;
    let code = [_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(2), _mm256_set1_epi32(3)];
    for (i, (g, a)) in dy.chunks_exact(wp).zip(arg.chunks_exact(wp)).enumerate() {
        let (r0, r1) = plane[2 * i * wo..(2 * i + 2) * wo].split_at_mut(wo);
        for j in (0..full).step_by(8) {
            // SAFETY: j + 8 <= wp: 8 gradients and 8 codes (checked slices).
            let (gj, aj) = unsafe { (_mm256_loadu_ps(g[j..j + 8].as_ptr()), _mm_loadl_epi64(a[j..j + 8].as_ptr().cast())) };
            let aj = _mm256_cvtepu8_epi32(aj);
            let at = |q: usize| _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(aj, code[q])), gj);
            for (row, (even, odd)) in [(&mut *r0, (at(0), at(1))), (&mut *r1, (at(2), at(3)))] {
                // Interleave: row[2j + 2k] = even[k], row[2j + 2k + 1] = odd[k].
                let (lo, hi) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
                let out = &mut row[2 * j..2 * j + 16];
                // SAFETY: 2j + 16 <= 2wp <= wo (checked slice).
                unsafe {
                    _mm256_storeu_ps(out.as_mut_ptr(), _mm256_permute2f128_ps::<0x20>(lo, hi));
                    _mm256_storeu_ps(out[8..].as_mut_ptr(), _mm256_permute2f128_ps::<0x31>(lo, hi));
                }
            }
        }
        unpool_row(&g[full..], &a[full..], &mut r0[2 * full..], &mut r1[2 * full..]);
    }
    plane[2 * hp * wo..].fill(0.0);
}

fn unpool_plane_generic(dy: &[f32], arg: &[u8], wp: usize, wo: usize, plane: &mut [f32]) {
    let hp = dy.len() / wp;
    for (i, (g, a)) in dy.chunks_exact(wp).zip(arg.chunks_exact(wp)).enumerate() {
        let (r0, r1) = plane[2 * i * wo..(2 * i + 2) * wo].split_at_mut(wo);
        unpool_row(g, a, r0, r1);
    }
    plane[2 * hp * wo..].fill(0.0);
}

/// One row of [`unpool_plane`]: `g`, `a` the pooled row's gradients and codes, `r0`, `r1` the
/// two pre-activation rows from the same column on (every value written).
fn unpool_row(g: &[f32], a: &[u8], r0: &mut [f32], r1: &mut [f32]) {
    for (j, (&g, &a)) in g.iter().zip(a).enumerate() {
        r0[2 * j] = if a == 0 { g } else { 0.0 };
        r0[2 * j + 1] = if a == 1 { g } else { 0.0 };
        r1[2 * j] = if a == 2 { g } else { 0.0 };
        r1[2 * j + 1] = if a == 3 { g } else { 0.0 };
    }
    let n = 2 * g.len();
    r0[n..].fill(0.0);
    r1[n..].fill(0.0);
}

/// Naive reference implementations (direct loops, f64 accumulation) the kernels are tested
/// against. Public so other crates' tests can use them.
pub mod reference {
    use super::Conv2dDims;

    fn at(x: &[f32], d: &Conv2dDims, b: usize, c: usize, ih: isize, iw: isize) -> Option<usize> {
        (ih >= 0 && iw >= 0 && (ih as usize) < d.h && (iw as usize) < d.w)
            .then(|| ((b * d.c_in + c) * d.h + ih as usize) * d.w + iw as usize)
            .filter(|&i| i < x.len())
    }

    /// Direct forward convolution.
    pub fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, d: &Conv2dDims) -> Vec<f32> {
        let (ho, wo) = (d.out_h(), d.out_w());
        let mut y = vec![0.0f32; d.batch * d.c_out * ho * wo];
        for b in 0..d.batch {
            for o in 0..d.c_out {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut s = bias.map_or(0.0, |bb| bb[o] as f64);
                        for c in 0..d.c_in {
                            for i in 0..d.kh {
                                for j in 0..d.kw {
                                    let ih = (oh * d.stride[0] + i) as isize - d.padding[0] as isize;
                                    let iw = (ow * d.stride[1] + j) as isize - d.padding[1] as isize;
                                    if let Some(xi) = at(x, d, b, c, ih, iw) {
                                        s += x[xi] as f64 * w[((o * d.c_in + c) * d.kh + i) * d.kw + j] as f64;
                                    }
                                }
                            }
                        }
                        y[((b * d.c_out + o) * ho + oh) * wo + ow] = s as f32;
                    }
                }
            }
        }
        y
    }

    /// Direct gradients `(dx, dw, db)` of `sum(y · dy)`.
    pub fn backward(x: &[f32], w: &[f32], dy: &[f32], d: &Conv2dDims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (ho, wo) = (d.out_h(), d.out_w());
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        let mut db = vec![0.0f64; d.c_out];
        for b in 0..d.batch {
            for o in 0..d.c_out {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let g = dy[((b * d.c_out + o) * ho + oh) * wo + ow] as f64;
                        db[o] += g;
                        for c in 0..d.c_in {
                            for i in 0..d.kh {
                                for j in 0..d.kw {
                                    let ih = (oh * d.stride[0] + i) as isize - d.padding[0] as isize;
                                    let iw = (ow * d.stride[1] + j) as isize - d.padding[1] as isize;
                                    if let Some(xi) = at(x, d, b, c, ih, iw) {
                                        let wi = ((o * d.c_in + c) * d.kh + i) * d.kw + j;
                                        dx[xi] += g * w[wi] as f64;
                                        dw[wi] += g * x[xi] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
        (f(dx), f(dw), f(db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Largest |a - b| relative to the largest |b| (so the tolerance scales with the sums).
    fn rel_err(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "length mismatch");
        let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Seeded input, weight and output gradient for `d`.
    fn problem(d: &Conv2dDims, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = random(d.x_len(), &mut rng);
        let w = random(d.c_out * d.k(), &mut rng);
        (x, w, random(d.y_len(), &mut rng))
    }

    #[allow(clippy::too_many_arguments)] // a test helper spelling out every dimension
    fn dims(batch: usize, c_in: usize, h: usize, w: usize, c_out: usize, k: [usize; 2], s: [usize; 2], p: [usize; 2]) -> Conv2dDims {
        Conv2dDims { batch, c_in, h, w, c_out, kh: k[0], kw: k[1], stride: s, padding: p }
    }

    /// Shapes covering the cases the code branches on: 3x3 pad 1 (the models' convs), stride 2
    /// (the strided ablation), grouped small planes (P < TARGET_COLUMNS, several samples per
    /// GEMM, with a ragged last group), large planes (one sample per GEMM), no padding,
    /// rectangular kernels and inputs, kernel as big as the padded input, 1x1.
    fn cases() -> Vec<Conv2dDims> {
        vec![
            dims(3, 4, 16, 16, 5, [3, 3], [1, 1], [1, 1]),
            dims(2, 3, 32, 32, 4, [3, 3], [1, 1], [1, 1]),
            dims(5, 6, 8, 8, 7, [3, 3], [2, 2], [1, 1]),
            dims(4, 5, 9, 7, 3, [3, 3], [2, 2], [1, 1]),
            dims(3, 2, 10, 12, 3, [2, 3], [1, 2], [0, 1]),
            dims(2, 3, 5, 6, 2, [5, 4], [1, 1], [0, 0]),
            dims(2, 2, 3, 3, 2, [5, 5], [1, 1], [1, 1]),
            dims(7, 4, 4, 4, 6, [1, 1], [1, 1], [0, 0]),
            dims(1, 3, 6, 6, 2, [3, 3], [3, 3], [2, 2]),
        ]
    }

    #[test]
    fn forward_matches_direct_convolution() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for d in cases() {
            let x = random(d.x_len(), &mut rng);
            let w = random(d.c_out * d.k(), &mut rng);
            let b = random(d.c_out, &mut rng);
            let e = rel_err(&conv2d_forward(&x, &w, Some(&b), &d), &reference::forward(&x, &w, Some(&b), &d));
            assert!(e < 1e-5, "{d:?}: forward error {e}");
            let e = rel_err(&conv2d_forward(&x, &w, None, &d), &reference::forward(&x, &w, None, &d));
            assert!(e < 1e-5, "{d:?}: forward (no bias) error {e}");
        }
    }

    #[test]
    fn backward_matches_direct_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let all = Wanted { x: true, w: true, b: true };
        for d in cases() {
            let x = random(d.x_len(), &mut rng);
            let w = random(d.c_out * d.k(), &mut rng);
            let dy = random(d.y_len(), &mut rng);
            let (rdx, rdw, rdb) = reference::backward(&x, &w, &dy, &d);
            let g = conv2d_backward(&x, &w, &dy, &d, all);
            for (name, got, want) in [("dx", g.dx.unwrap(), &rdx), ("dw", g.dw.unwrap(), &rdw), ("db", g.db.unwrap(), &rdb)] {
                let e = rel_err(&got, want);
                assert!(e < 1e-5, "{d:?}: {name} error {e}");
            }
            // Partial requests give the same numbers and leave the rest out.
            let only_w = conv2d_backward(&x, &w, &dy, &d, Wanted { x: false, w: true, b: false });
            assert!(only_w.dx.is_none() && only_w.db.is_none());
            assert!(rel_err(&only_w.dw.unwrap(), &rdw) < 1e-5);
            let only_x = conv2d_backward(&x, &w, &dy, &d, Wanted { x: true, w: false, b: true });
            assert!(only_x.dw.is_none());
            assert!(rel_err(&only_x.dx.unwrap(), &rdx) < 1e-5);
            assert!(rel_err(&only_x.db.unwrap(), &rdb) < 1e-5);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Independent of the reference: d/dθ sum(conv(x) · dy) by central differences in f64.
        let d = dims(2, 2, 5, 5, 3, [3, 3], [2, 2], [1, 1]);
        let (x, w, dy) = problem(&d, 3);
        let obj =
            |x: &[f32], w: &[f32]| -> f64 { reference::forward(x, w, None, &d).iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum() };
        let g = conv2d_backward(&x, &w, &dy, &d, Wanted { x: true, w: true, b: false });
        let h = 1e-2f32;
        for (i, gi) in g.dx.unwrap().iter().enumerate().step_by(3) {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (obj(&xp, &w) - obj(&xm, &w)) / (2.0 * h as f64);
            assert!((fd - *gi as f64).abs() < 1e-3, "dx[{i}]: {gi} vs finite difference {fd}");
        }
        for (i, gi) in g.dw.unwrap().iter().enumerate() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[i] += h;
            wm[i] -= h;
            let fd = (obj(&x, &wp) - obj(&x, &wm)) / (2.0 * h as f64);
            assert!((fd - *gi as f64).abs() < 1e-3, "dw[{i}]: {gi} vs finite difference {fd}");
        }
    }

    /// Shapes the Winograd path takes: several samples per GEMM group (small planes, ragged last
    /// group), one sample per group (large planes), rectangular planes, a single tile, channel
    /// counts that are not multiples of any SIMD width.
    fn winograd_cases(algo: Algo) -> Vec<Conv2dDims> {
        match algo {
            Algo::Winograd4 => vec![
                dims(3, 16, 8, 8, 16, [3, 3], [1, 1], [1, 1]),
                dims(2, 17, 32, 32, 18, [3, 3], [1, 1], [1, 1]),
                dims(25, 20, 4, 8, 24, [3, 3], [1, 1], [1, 1]),
                dims(2, 3, 4, 4, 5, [3, 3], [1, 1], [1, 1]),
                dims(3, 9, 16, 12, 7, [3, 3], [1, 1], [1, 1]),
            ],
            _ => vec![
                dims(3, 16, 8, 8, 16, [3, 3], [1, 1], [1, 1]),
                dims(2, 17, 32, 32, 18, [3, 3], [1, 1], [1, 1]),
                dims(25, 20, 4, 6, 24, [3, 3], [1, 1], [1, 1]),
                dims(2, 3, 2, 2, 5, [3, 3], [1, 1], [1, 1]),
            ],
        }
    }

    /// Error bound (relative to the largest value) of an algorithm against f64 loops: F(4x4)'s
    /// constants (up to 8 and 1/24) round more than F(2x2)'s (1 and 1/2).
    fn tolerance(algo: Algo) -> f32 {
        if algo == Algo::Winograd4 { 5e-5 } else { 1e-5 }
    }

    const WINOGRADS: [Algo; 2] = [Algo::Winograd, Algo::Winograd4];

    #[test]
    fn winograd_matches_direct_convolution_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let all = Wanted { x: true, w: true, b: true };
        for algo in WINOGRADS {
            let tol = tolerance(algo);
            let mut worst = 0.0f32;
            for d in winograd_cases(algo) {
                assert!(algo.applies_to(&d));
                let x = random(d.x_len(), &mut rng);
                let w = random(d.c_out * d.k(), &mut rng);
                let b = random(d.c_out, &mut rng);
                let dy = random(d.y_len(), &mut rng);
                let y = conv2d_forward_with(&x, &w, Some(&b), &d, algo);
                let e = rel_err(&y, &reference::forward(&x, &w, Some(&b), &d));
                worst = worst.max(e);
                assert!(e < tol, "{d:?}: {algo:?} forward error {e}");
                let direct = conv2d_forward_with(&x, &w, Some(&b), &d, Algo::Direct);
                assert!(rel_err(&y, &direct) < tol, "{d:?}: {algo:?} and direct forward differ");
                let (rdx, rdw, rdb) = reference::backward(&x, &w, &dy, &d);
                let g = conv2d_backward_with(&x, &w, &dy, &d, all, algo);
                for (name, got, want) in [("dx", g.dx.unwrap(), &rdx), ("dw", g.dw.unwrap(), &rdw), ("db", g.db.unwrap(), &rdb)] {
                    let e = rel_err(&got, want);
                    worst = worst.max(e);
                    assert!(e < tol, "{d:?}: {algo:?} {name} error {e}");
                }
                let only_w = conv2d_backward_with(&x, &w, &dy, &d, Wanted { x: false, w: true, b: false }, algo);
                assert!(only_w.dx.is_none() && only_w.db.is_none() && rel_err(&only_w.dw.unwrap(), &rdw) < tol);
                let only_x = conv2d_backward_with(&x, &w, &dy, &d, Wanted { x: true, w: false, b: false }, algo);
                assert!(only_x.dw.is_none() && rel_err(&only_x.dx.unwrap(), &rdx) < tol);
            }
            eprintln!("{algo:?}: worst relative error {worst:e}");
        }
    }

    #[test]
    fn winograd_fused_relu_maxpool_matches_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for algo in WINOGRADS {
            for d in winograd_cases(algo) {
                check_fused(&d, algo, &mut rng);
            }
        }
    }

    #[test]
    fn winograd_results_do_not_depend_on_thread_count() {
        // Batch 19: several groups of samples per pass (split over the threads by group); batch
        // 2: one group, whose Winograd points' products run in parallel instead (`per_point`).
        for batch in [19, 2] {
            let d = dims(batch, 16, 8, 8, 20, [3, 3], [1, 1], [1, 1]);
            let (x, w, dy) = problem(&d, 13);
            for algo in WINOGRADS {
                let groups = d.batch.div_ceil(d.group(algo));
                assert!(batch == 2 && groups == 1 || batch == 19 && groups >= 3, "{algo:?}, batch {batch}: {groups} groups");
                let run = |threads: usize| {
                    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                        let y = conv2d_forward_with(&x, &w, None, &d, algo);
                        let g = conv2d_backward_with(&x, &w, &dy, &d, Wanted { x: true, w: true, b: true }, algo);
                        (y, g)
                    })
                };
                assert_eq!(run(1), run(3), "{algo:?}, batch {batch}: results differ between 1 and 3 threads");
            }
        }
    }

    #[test]
    fn the_models_convolutions_choose_winograd_beyond_the_first_layer() {
        // NVIDIA's embedder: 4 -> 50 -> 100 -> 200 -> 200 channels on 64, 32, 16, 8 pixels.
        let layer = |c_in, h, c_out| dims(32, c_in, h, h, c_out, [3, 3], [1, 1], [1, 1]);
        assert_eq!(Algo::choose(&layer(4, 64, 50)), Algo::Direct);
        for (c_in, h, c_out) in [(50, 32, 100), (100, 16, 200), (200, 8, 200)] {
            assert_eq!(Algo::choose(&layer(c_in, h, c_out)), Algo::Winograd4, "{c_in} -> {c_out} at {h}x{h}");
            assert_eq!(Algo::choose_forward(&layer(c_in, h, c_out)), Algo::Winograd4, "{c_in} -> {c_out} at {h}x{h}");
        }
        // F(4x4) needs MIN_TILES_4X4 output tiles in the pass: the 8x8 layer (4 a sample) takes
        // it from batch 32, the 16x16 layer (16 a sample) from batch 8.
        let at = |batch, h| Algo::choose(&dims(batch, 100, h, h, 200, [3, 3], [1, 1], [1, 1]));
        assert_eq!((at(31, 8), at(32, 8), at(16, 8)), (Algo::Winograd, Algo::Winograd4, Algo::Winograd));
        assert_eq!((at(7, 16), at(8, 16), at(1, 32)), (Algo::Winograd, Algo::Winograd4, Algo::Winograd));
        assert_eq!(at(2, 32), Algo::Winograd4);
        // Strided convolutions (the ablation, the seed embedder's downsampling) stay direct.
        assert_eq!(Algo::choose(&dims(32, 50, 32, 32, 50, [3, 3], [2, 2], [1, 1])), Algo::Direct);
    }

    /// Forward passes take F(4x4) where it applies, in training too (F(2x2) in training while the
    /// reference switch is on): the entry points give exactly the explicit algorithm's results.
    #[test]
    fn forward_passes_take_f4x4_and_the_reference_switch_f2x2_in_training() {
        let d = dims(8, 16, 16, 16, 16, [3, 3], [1, 1], [1, 1]);
        assert_eq!(Algo::choose_forward_for(Pass::Infer, &d), Algo::Winograd4);
        assert_eq!(Algo::choose_forward_for(Pass::Train, &d), Algo::Winograd4);
        assert_eq!(winograd::forward_algo(Algo::Winograd4, true), Algo::Winograd);
        assert_eq!(winograd::forward_algo(Algo::Winograd4, false), Algo::Winograd4);
        for a in [Algo::Direct, Algo::Winograd] {
            assert_eq!(winograd::forward_algo(a, true), a);
        }
        let stem = dims(3, 4, 8, 8, 8, [3, 3], [1, 1], [1, 1]);
        assert_eq!(Algo::choose_forward_for(Pass::Infer, &stem), Algo::Direct, "4 input channels stay direct");
        let (x, w, _) = problem(&d, 7);
        let bias: Vec<f32> = (0..d.c_out).map(|i| 0.01 * i as f32 - 0.03).collect();
        let by = |pass, algo| {
            let isa = isa_for(Op::Conv, pass);
            (conv2d_forward_by(&x, &w, Some(&bias), &d, algo, isa), conv2d_relu_maxpool_forward_by(&x, &w, &bias, &d, algo, isa).y)
        };
        let infer = (conv2d_forward(&x, &w, Some(&bias), &d), conv2d_relu_maxpool_forward(&x, &w, &bias, &d).y);
        assert_eq!(infer, by(Pass::Infer, Algo::Winograd4), "inference is F(4x4)");
        let train =
            (conv2d_forward_for(Pass::Train, &x, &w, Some(&bias), &d), conv2d_relu_maxpool_forward_for(Pass::Train, &x, &w, &bias, &d).y);
        assert_eq!(train, by(Pass::Train, Algo::Winograd4), "training is F(4x4)");
        assert_eq!(conv2d_relu_maxpool_forward_train(&x, &w, &bias, &d).0.y, train.1, "the kept-input entry point computes the same");
        assert_ne!(
            by(Pass::Train, Algo::Winograd).0,
            train.0,
            "the two algorithms round differently, so the check above can tell them apart"
        );
    }

    /// A training forward pass keeps its transformed input, and the backward pass that reuses it
    /// gives the same bits as one that transforms `x` itself; a kept input made for another
    /// shape or algorithm is not used.
    #[test]
    fn a_kept_transformed_input_gives_the_same_gradients() {
        let all = Wanted { x: true, w: true, b: true };
        // F(4x4) (16x16 planes, 16 tiles a sample), F(2x2) (6x6 planes: not 4x4 tiles), groups of
        // several samples and a last, smaller group.
        for d in [dims(11, 16, 16, 16, 24, [3, 3], [1, 1], [1, 1]), dims(37, 16, 6, 6, 16, [3, 3], [1, 1], [1, 1])] {
            let algo = Algo::choose(&d);
            assert_ne!(algo, Algo::Direct);
            let (x, w, _) = problem(&d, 3);
            let bias: Vec<f32> = (0..d.c_out).map(|i| 0.02 * i as f32 - 0.1).collect();
            let (pooled, kept) = conv2d_relu_maxpool_forward_train(&x, &w, &bias, &d);
            let kept = kept.expect("a Winograd pass keeps its input");
            let (th, tw) = winograd::tiles_of(&d, algo);
            assert_eq!(kept.bytes(), 4 * algo.points() * d.c_in * d.batch * th * tw);
            let dy: Vec<f32> = (0..pooled.y.len()).map(|i| ((i * 7919 % 201) as f32 - 100.0) / 50.0).collect();
            let fresh = conv2d_relu_maxpool_backward(&x, &w, &dy, &pooled.arg, &d, all);
            let reused = conv2d_relu_maxpool_backward_saved(&x, &w, &dy, &pooled.arg, &d, all, Some(&kept));
            assert!(fresh == reused, "{algo:?} {d:?}: the reused input changed the gradients");
            // The plain ReLU pass keeps the same transform.
            let (y, kept_relu) = conv2d_relu_forward_train(&x, &w, &bias, &d);
            assert_eq!(kept_relu.as_ref(), Some(&kept));
            let dy_full: Vec<f32> = (0..y.len()).map(|i| ((i * 104729 % 301) as f32 - 150.0) / 75.0).collect();
            let fresh = conv2d_relu_backward(&x, &w, &y, &dy_full, &d, all);
            assert!(fresh == conv2d_relu_backward_saved(&x, &w, &y, &dy_full, &d, all, Some(&kept)), "{algo:?}: ReLU pass");
            // Kept for another batch: ignored, not misread.
            let other = Conv2dDims { batch: d.batch - 1, ..d };
            assert!(kept.for_pass(&other, algo).is_none() && kept.for_pass(&d, Algo::Direct).is_none());
        }
        // The direct kernel keeps nothing.
        let strided = dims(4, 8, 16, 16, 8, [3, 3], [2, 2], [1, 1]);
        let (x, w, _) = problem(&strided, 5);
        assert!(conv2d_relu_forward_train(&x, &w, &[0.0; 8], &strided).1.is_none());
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        // Groups on their own threads; and one sample, whose GEMMs split themselves over the
        // threads (stride 2: its weight gradient is the transposed product, Cout <= K).
        for d in [dims(9, 5, 12, 12, 6, [3, 3], [1, 1], [1, 1]), dims(1, 6, 40, 40, 5, [3, 3], [2, 2], [1, 1])] {
            let (x, w, dy) = problem(&d, 4);
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                    let y = conv2d_forward(&x, &w, None, &d);
                    let g = conv2d_backward(&x, &w, &dy, &d, Wanted { x: true, w: true, b: true });
                    (y, g)
                })
            };
            let (y1, g1) = run(1);
            let (y3, g3) = run(3);
            assert_eq!(y1, y3, "{d:?}: forward differs between 1 and 3 threads");
            assert_eq!(g1.dx, g3.dx, "{d:?}: dx differs between 1 and 3 threads");
            assert_eq!(g1.dw, g3.dw, "{d:?}: dw differs between 1 and 3 threads");
            assert_eq!(g1.db, g3.db, "{d:?}: db differs between 1 and 3 threads");
        }
    }

    #[test]
    fn every_gemm_kernel_set_gives_correct_convolutions() {
        // The per-CPU choice (`gemm_isa`) may run any of the sets: each one, with each algorithm,
        // against f64 loops (a set the CPU lacks falls back to one it has).
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let all = Wanted { x: true, w: true, b: true };
        for isa in [Isa::Gemm, Isa::Avx2, Isa::Avx512].map(Isa::supported) {
            for (algo, d) in [
                (Algo::Direct, dims(3, 5, 12, 10, 7, [3, 3], [2, 2], [1, 1])),
                (Algo::Direct, dims(2, 4, 16, 16, 9, [3, 3], [1, 1], [1, 1])),
                (Algo::Winograd, dims(3, 17, 8, 8, 18, [3, 3], [1, 1], [1, 1])),
                (Algo::Winograd4, dims(2, 16, 16, 16, 20, [3, 3], [1, 1], [1, 1])),
            ] {
                let (x, w, b, dy) = (
                    random(d.x_len(), &mut rng),
                    random(d.c_out * d.k(), &mut rng),
                    random(d.c_out, &mut rng),
                    random(d.y_len(), &mut rng),
                );
                let tol = tolerance(algo);
                let e = rel_err(&conv2d_forward_by(&x, &w, Some(&b), &d, algo, isa), &reference::forward(&x, &w, Some(&b), &d));
                assert!(e < tol, "{isa:?} {algo:?} {d:?}: forward error {e}");
                let (rdx, rdw, rdb) = reference::backward(&x, &w, &dy, &d);
                let g = conv2d_backward_by(&x, &w, &dy, &d, all, algo, isa);
                for (name, got, want) in [("dx", g.dx.unwrap(), &rdx), ("dw", g.dw.unwrap(), &rdw), ("db", g.db.unwrap(), &rdb)] {
                    let e = rel_err(&got, want);
                    assert!(e < tol, "{isa:?} {algo:?} {d:?}: {name} error {e}");
                }
            }
        }
    }

    /// Reference `MaxPool2d(2)(ReLU(z))` of a pre-activation `z [B, C, H, W]`, and the
    /// pre-activation gradient that a pooled gradient `dy` sends back through it.
    fn reference_relu_pool(z: &[f32], dy: Option<&[f32]>, b: usize, c: usize, h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
        let (hp, wp) = (h / 2, w / 2);
        let mut y = vec![0.0f32; b * c * hp * wp];
        let mut dz = vec![0.0f32; z.len()];
        for plane in 0..b * c {
            for i in 0..hp {
                for j in 0..wp {
                    let idx = |di: usize, dj: usize| plane * h * w + (2 * i + di) * w + 2 * j + dj;
                    let mut best = idx(0, 0);
                    for (di, dj) in [(0, 1), (1, 0), (1, 1)] {
                        if z[idx(di, dj)].max(0.0) > z[best].max(0.0) {
                            best = idx(di, dj);
                        }
                    }
                    let o = (plane * hp + i) * wp + j;
                    y[o] = z[best].max(0.0);
                    if let Some(dy) = dy
                        && z[best] > 0.0
                    {
                        dz[best] = dy[o];
                    }
                }
            }
        }
        (y, dz)
    }

    /// The fused conv + ReLU + MaxPool forward and backward by `algo` against the reference
    /// convolution followed by [`reference_relu_pool`].
    fn check_fused(d: &Conv2dDims, algo: Algo, rng: &mut ChaCha8Rng) {
        let x = random(d.x_len(), rng);
        let w = random(d.c_out * d.k(), rng);
        let b = random(d.c_out, rng);
        let (hp, wp) = d.pooled();
        let dy = random(d.batch * d.c_out * hp * wp, rng);
        let z = reference::forward(&x, &w, Some(&b), d);
        let (ry, dz) = reference_relu_pool(&z, Some(&dy), d.batch, d.c_out, d.out_h(), d.out_w());
        let out = conv2d_relu_maxpool_forward_with(&x, &w, &b, d, algo);
        let tol = tolerance(algo);
        let e = rel_err(&out.y, &ry);
        assert!(e < tol, "{d:?} {algo:?}: fused forward error {e}");
        assert!(
            out.arg.contains(&ARG_NONE) && out.arg.iter().any(|&a| a != ARG_NONE),
            "{d:?}: expected both pooled and ReLU-zeroed outputs"
        );
        let (rdx, rdw, rdb) = reference::backward(&x, &w, &dz, d);
        let g = conv2d_relu_maxpool_backward_with(&x, &w, &dy, &out.arg, d, Wanted { x: true, w: true, b: true }, algo);
        for (name, got, want) in [("dx", g.dx.unwrap(), &rdx), ("dw", g.dw.unwrap(), &rdw), ("db", g.db.unwrap(), &rdb)] {
            let e = rel_err(&got, want);
            assert!(e < tol, "{d:?} {algo:?}: fused {name} error {e}");
        }
    }

    #[test]
    fn fused_relu_maxpool_matches_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let shapes = [
            dims(3, 4, 16, 16, 5, [3, 3], [1, 1], [1, 1]),
            dims(2, 3, 32, 32, 4, [3, 3], [1, 1], [1, 1]),
            dims(5, 6, 8, 8, 7, [3, 3], [1, 1], [1, 1]),
            dims(2, 3, 7, 9, 4, [3, 3], [1, 1], [1, 1]), // odd output: pooling floors
        ];
        for d in shapes {
            check_fused(&d, Algo::Direct, &mut rng);
        }
    }

    #[test]
    fn valid_range_covers_exactly_the_in_bounds_columns() {
        for w in 1..8 {
            for s in 1..4 {
                for pad in 0..3 {
                    for j in 0..5 {
                        if w + 2 * pad < j + 1 {
                            continue;
                        }
                        let out = (w + 2 * pad - j - 1) / s + 1;
                        let (lo, hi) = valid_range(out, s, j, pad, w);
                        for ow in 0..out {
                            let iw = (ow * s + j) as isize - pad as isize;
                            let inside = iw >= 0 && iw < w as isize;
                            assert_eq!(inside, (lo..hi).contains(&ow), "w {w} s {s} pad {pad} j {j} ow {ow}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn relu_pool_plane_and_unpool_plane_match_the_branchy_scan_and_scatter() {
        // Ties, NaN, zeros and negatives in every window position, an odd row and column.
        let nan = f32::NAN;
        let cases = [
            [1.0f32, 1.0, 0.0, 0.0],
            [0.0, 2.0, 2.0, 0.0],
            [nan, 1.0, 2.0, 2.0],
            [-1.0, -1.0, -1.0, -1.0],
            [3.0, nan, 3.0, 1.0],
            [0.0, 0.5, 0.5, 0.5],
            [-0.25, -0.5, -0.75, -0.25],
            [1.0, 2.0, 3.0, 4.0],
        ];
        // 11 windows a row: one 8-wide vector block and a scalar tail.
        let (ho, wo, b) = (7, 23, 0.25f32);
        let (hp, wp) = (ho / 2, wo / 2);
        // The odd last row and column (floored away) hold the largest value.
        let mut z = vec![5.0f32; ho * wo];
        for (n, case) in cases.iter().cycle().take(hp * wp).enumerate() {
            let (i, j) = (n / wp, n % wp);
            for (q, &v) in case.iter().enumerate() {
                z[(2 * i + q / 2) * wo + 2 * j + q % 2] = v;
            }
        }
        let dy: Vec<f32> = (0..hp * wp).map(|i| if i % 5 == 4 { -0.0 } else { i as f32 + 0.5 }).collect();
        // The branchy scan and scatter the kernels replace.
        let (mut want_y, mut want_arg, mut want_dz) = (vec![0.0f32; hp * wp], vec![0u8; hp * wp], vec![0.0f32; ho * wo]);
        for i in 0..hp {
            for j in 0..wp {
                let at_ = |q: usize| (2 * i + q / 2) * wo + 2 * j + q % 2;
                let (mut best, mut at) = (z[at_(0)], 0u8);
                for q in 1..4 {
                    if z[at_(q)] > best {
                        best = z[at_(q)];
                        at = q as u8;
                    }
                }
                let v = best + b;
                (want_y[i * wp + j], want_arg[i * wp + j]) = if v > 0.0 { (v, at) } else { (0.0, ARG_NONE) };
                if v > 0.0 {
                    want_dz[at_(at as usize)] = dy[i * wp + j];
                }
            }
        }
        assert!(want_arg.contains(&ARG_NONE) && want_arg.iter().any(|&a| a > 0 && a != ARG_NONE), "weak case");
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        type Pool = fn(&[f32], usize, f32, &mut [f32], &mut [u8], usize);
        type Unpool = fn(&[f32], &[u8], usize, usize, &mut [f32]);
        let kernels: [(&str, Pool, Unpool); 2] =
            [("dispatched", relu_pool_plane, unpool_plane), ("generic", relu_pool_plane_generic, unpool_plane_generic)];
        for (name, pool, unpool) in kernels {
            let (mut y, mut arg) = (vec![9.0; hp * wp], vec![7u8; hp * wp]);
            pool(&z, wo, b, &mut y, &mut arg, wp);
            assert_eq!(bits(&y), bits(&want_y), "{name}: pooled values");
            assert_eq!(arg, want_arg, "{name}: argmax codes");
            let mut dz = vec![9.0f32; ho * wo];
            unpool(&dy, &want_arg, wp, wo, &mut dz);
            assert_eq!(bits(&dz), bits(&want_dz), "{name}: pre-activation gradient");
        }
    }

    /// The lane sum adds in its documented order (16 lanes, folded pairwise, then the tail) and
    /// agrees with an f64 sum.
    #[test]
    fn lane_sum_adds_in_its_fixed_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for n in [0, 1, 15, 16, 17, 100, 4096, 4099] {
            let v = random(n, &mut rng);
            let mut lanes = [0.0f32; 16];
            for (i, x) in v.iter().enumerate().take(n / 16 * 16) {
                lanes[i % 16] += x;
            }
            for width in [8, 4, 2, 1] {
                for i in 0..width {
                    lanes[i] += lanes[i + width];
                }
            }
            let want = v[n / 16 * 16..].iter().fold(lanes[0], |s, x| s + x);
            assert_eq!(lane_sum(&v).to_bits(), want.to_bits(), "n {n}");
            let exact: f64 = v.iter().map(|x| *x as f64).sum();
            assert!((lane_sum(&v) as f64 - exact).abs() <= 1e-4 * (1.0 + exact.abs()), "n {n}");
        }
    }

    /// im2col and col2im through the phase split (strides > 1) give exactly the values of a
    /// plain gather / scatter: the same copies, and the same sums in the same order.
    #[test]
    fn strided_im2col_and_col2im_equal_a_plain_gather_and_scatter_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut shapes = cases();
        shapes.push(dims(2, 3, 12, 16, 2, [3, 3], [2, 2], [1, 1]));
        shapes.push(dims(1, 2, 7, 11, 2, [3, 3], [1, 3], [1, 1]));
        for d in shapes {
            let (k, p, sample) = (d.k(), d.p(), d.c_in * d.h * d.w);
            let x = random(sample, &mut rng);
            let ld = p + 3;
            let mut col = vec![f32::NAN; k * ld];
            im2col(&x, &d, &mut col, ld, 2);
            let dcol = random(k * ld, &mut rng);
            // col2im writes each value's sum, over whatever `dx` held: the phase split sums from
            // zero and moves the sums, the plain scatter adds term by term, the same bits.
            let mut dx = vec![f32::NAN; sample];
            col2im(&dcol, ld, 2, &d, &mut dx);
            let mut plain = vec![0.0f32; sample];
            for c in 0..d.c_in {
                for i in 0..d.kh {
                    for j in 0..d.kw {
                        let r = (c * d.kh + i) * d.kw + j;
                        for oh in 0..d.out_h() {
                            for ow in 0..d.out_w() {
                                let at = r * ld + 2 + oh * d.out_w() + ow;
                                let ih = (oh * d.stride[0] + i) as isize - d.padding[0] as isize;
                                let iw = (ow * d.stride[1] + j) as isize - d.padding[1] as isize;
                                let inside = (0..d.h as isize).contains(&ih) && (0..d.w as isize).contains(&iw);
                                let src = inside.then(|| (c * d.h + ih as usize) * d.w + iw as usize);
                                assert_eq!(col[at].to_bits(), src.map_or(0.0, |s| x[s]).to_bits(), "{d:?}: im2col row {r}");
                                if let Some(s) = src {
                                    plain[s] += dcol[at];
                                }
                            }
                        }
                    }
                }
            }
            assert!(col[..2].iter().all(|v| v.is_nan()), "{d:?}: im2col wrote outside its columns");
            for (a, b) in dx.iter().zip(&plain) {
                assert_eq!(a.to_bits(), b.to_bits(), "{d:?}: col2im");
            }
        }
    }
}
