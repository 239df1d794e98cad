//! Winograd F(2x2, 3x3) for the 3x3, stride 1, padding 1 convolutions of cilp's embedders.
//!
//! The direct kernel ([`crate::conv`], im2col + GEMM) spends `9·Cin·Cout` multiply-adds per
//! output pixel; F(2x2, 3x3) computes each 2x2 output tile from a 4x4 input tile with 16
//! element-wise products per channel pair, `4·Cin·Cout` per pixel (2.25x fewer), plus cheap
//! additions for the transforms (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016; oneDNN and cuDNN do the same). Every pass is 16 GEMMs, one per tile
//! position `ξ` of the 4x4 transform domain:
//!
//! - forward: `U = G g Gᵀ` (weights), `V = Bᵀ d B` (input tiles), `M_ξ[Cout, T] = U_ξ[Cout, Cin] · V_ξ[Cin, T]`,
//!   `y = Aᵀ M A` per tile;
//! - input gradient: the forward pass of the output gradient with the weights rotated by 180°
//!   and their channels swapped (a "same" 3x3 convolution is its own adjoint in shape);
//! - weight gradient: `S_ξ[Cout, Cin] += (A dy Aᵀ)_ξ[Cout, T] · V_ξᵀ[T, Cin]` summed over the tiles,
//!   then `dW = Gᵀ S G` once per pass (the adjoint of the forward formula).
//!
//! `T` counts the tiles of a group of samples. The transforms only use the constants 1 and 1/2,
//! so the results differ from the direct kernel by rounding only (the tests bound it at 1e-5 of
//! the largest value, like the direct kernel's own bound against an f64 reference). A run is
//! still bit-identical for one build and CPU: the same shapes always take the same path.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::conv::Conv2dDims;

/// The smallest `Cin` and `Cout` that take the Winograd path: below it the 16 GEMMs are too
/// thin to beat the direct kernel's one (the first layers, with 1 or 4 input channels, stay direct).
pub const MIN_CHANNELS: usize = 16;

/// Minimum tiles per GEMM group (samples are grouped until their tiles reach it). Measured on
/// the embedders' layers (`examples/conv_layers.rs`, 2-core Xeon): 1,024 and 2,048 were slower
/// in every pass (more scratch than the caches hold, session 12); 16-64 were faster than 256 on
/// the 16x16 and 8x8 layers (NVIDIA's 100 -> 200 at 16x16: 30-31 ms fused forward + backward at
/// batch 32 against 36, session 16), so an 8x8 sample (16 tiles) is grouped by 4.
pub const TARGET_TILES: usize = 64;

/// [`TARGET_TILES`] for F(4x4, 3x3), whose transformed tiles are 36 values instead of 16:
/// 32 measured best or tied on every layer of the embedders (16, 64, 128 and 512 tried; at 512
/// the 16x16 layers ran at half speed).
pub const TARGET_TILES_4X4: usize = 32;

/// The fewest 4x4 output tiles (batch x tiles per sample) a pass takes F(4x4, 3x3) for; with
/// fewer, F(2x2, 3x3)'s four times as many tiles make wider GEMMs. NVIDIA's 8x8 layer (4 tiles a
/// sample) at batch 8-16 trained 10-18% faster end to end with F(2x2) (`cilp bench`, embedder
/// and LiDAR classifier, 1 and 2 threads) and inferred 2-26% faster, while at batch 64-256 F(4x4)
/// inferred 5-10% faster and at 32 the two tied in training (2-core Intel Xeon, session 19).
/// The 16x16 and 32x32 layers (16 and 64 tiles a sample) keep F(4x4) from batch 8 up.
pub const MIN_TILES_4X4: usize = 128;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the Winograd path on (the default) or off (every convolution then takes the direct
/// kernel; the binary sets it from `CILP_CONV_DIRECT=1`, for comparisons).
pub fn set_winograd(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

static REFERENCE_FORWARD: AtomicBool = AtomicBool::new(false);

/// With `on`, training forward passes take F(2x2, 3x3) where F(4x4, 3x3) would apply (the
/// choice before session 28): their ReLU / MaxPool decisions then sit about 10x closer to the
/// exact ones. `cilp device-check` turns it on for its CPU side, so that its comparison with
/// another device's gradients (which follow that device's decisions) keeps its tolerance.
/// Returns the previous setting.
pub fn set_reference_forward(on: bool) -> bool {
    REFERENCE_FORWARD.swap(on, Ordering::Relaxed)
}

/// A training forward pass's algorithm from the backward passes' `chosen` one.
pub(crate) fn forward_algo(chosen: Algo, reference: bool) -> Algo {
    match chosen {
        Algo::Winograd4 if reference => Algo::Winograd,
        a => a,
    }
}

/// Whether the Winograd path is enabled.
pub fn winograd_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether F(2x2, 3x3) can compute this convolution: 3x3 kernel, stride 1, padding 1, and an
/// even output (whole 2x2 tiles).
pub fn applies(d: &Conv2dDims) -> bool {
    d.kh == 3
        && d.kw == 3
        && d.stride == [1, 1]
        && d.padding == [1, 1]
        && d.h >= 2
        && d.w >= 2
        && d.h.is_multiple_of(2)
        && d.w.is_multiple_of(2)
}

/// The convolution algorithm a pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// im2col + one GEMM ([`crate::conv`]): any shape; the reference.
    Direct,
    /// F(2x2, 3x3) ([`applies`] must hold).
    Winograd,
    /// F(4x4, 3x3) ([`crate::winograd4`]; [`applies_4x4`] must hold).
    Winograd4,
}

impl Algo {
    /// The algorithm cilp's backward passes use for `d` ([`Algo::choose_forward`] for forward
    /// passes): Winograd where it applies, is enabled, and both channel
    /// counts reach [`MIN_CHANNELS`] (F(4x4, 3x3) where the planes split into 4x4 tiles, as all
    /// of cilp's embedder layers do, and the pass has at least [`MIN_TILES_4X4`] of them;
    /// F(2x2, 3x3) otherwise); direct elsewhere. A pure function of the shape, batch included
    /// (and the switch), so every step of a run with the same batch size takes the same path.
    pub fn choose(d: &Conv2dDims) -> Algo {
        if !winograd_enabled() || !applies(d) || d.c_in.min(d.c_out) < MIN_CHANNELS {
            Algo::Direct
        } else if applies_4x4(d) && {
            let (th, tw) = tiles_of(d, Algo::Winograd4);
            d.batch * th * tw >= MIN_TILES_4X4
        } {
            Algo::Winograd4
        } else {
            Algo::Winograd
        }
    }

    /// The algorithm of a training forward pass: [`Algo::choose`] (F(4x4, 3x3) where it
    /// applies, so that the backward pass's weight gradient reuses the forward pass's
    /// transformed input, [`crate::conv::SavedInput`]), or F(2x2, 3x3) in its place while
    /// [`set_reference_forward`] is on.
    ///
    /// F(4x4)'s forward rounding (about 10x F(2x2)'s) flips ReLU and MaxPool decisions that sit
    /// within it of a tie more often, and a flipped decision moves a whole gradient value (on
    /// NVIDIA's LiDAR classifier at batch 4 the second layer's bias gradient then differed from
    /// the direct kernel's by 5.4e-3 of its largest value). Both are exact gradients of the
    /// forward pass each computed; `tests/winograd_gradients.rs` (cilp-models) checks the
    /// forward values against the direct kernel, and the backward pass at the same decisions.
    pub fn choose_forward(d: &Conv2dDims) -> Algo {
        forward_algo(Algo::choose(d), REFERENCE_FORWARD.load(Ordering::Relaxed))
    }

    /// The algorithm of a forward pass of `pass`: [`Algo::choose_forward`] in training,
    /// [`Algo::choose`] in inference.
    pub fn choose_forward_for(pass: crate::gemm_isa::Pass, d: &Conv2dDims) -> Algo {
        match pass {
            crate::gemm_isa::Pass::Train => Algo::choose_forward(d),
            crate::gemm_isa::Pass::Infer => Algo::choose(d),
        }
    }

    /// Points of the transform domain (GEMMs per pass): 16 for F(2x2), 36 for F(4x4); 0 direct.
    pub(crate) fn points(self) -> usize {
        match self {
            Algo::Direct => 0,
            Algo::Winograd => 16,
            Algo::Winograd4 => 36,
        }
    }

    /// Minimum tiles per GEMM group of a Winograd algorithm ([`TARGET_TILES`], [`TARGET_TILES_4X4`]).
    pub(crate) fn target_tiles(self) -> usize {
        if self == Algo::Winograd4 { TARGET_TILES_4X4 } else { TARGET_TILES }
    }

    /// Whether the algorithm can compute `d`.
    pub fn applies_to(self, d: &Conv2dDims) -> bool {
        match self {
            Algo::Direct => true,
            Algo::Winograd => applies(d),
            Algo::Winograd4 => applies_4x4(d),
        }
    }
}

/// Whether F(4x4, 3x3) can compute this convolution: [`applies`] with whole 4x4 output tiles.
pub fn applies_4x4(d: &Conv2dDims) -> bool {
    applies(d) && d.h >= 4 && d.w >= 4 && d.h.is_multiple_of(4) && d.w.is_multiple_of(4)
}

/// Tiles per sample of a Winograd algorithm: `(h/m, w/m)` for F(m x m, 3x3).
pub(crate) fn tiles_of(d: &Conv2dDims, algo: Algo) -> (usize, usize) {
    match algo {
        Algo::Winograd4 => crate::winograd4::tiles(d.h, d.w),
        _ => tiles(d),
    }
}

/// The weight transform of `algo` (see [`transform_weights`]).
pub(crate) fn weights_of(algo: Algo, w: &[f32], co: usize, ci: usize, flip: bool) -> Vec<f32> {
    match algo {
        Algo::Winograd4 => crate::winograd4::transform_weights(w, co, ci, flip),
        _ => transform_weights(w, co, ci, flip),
    }
}

/// The input transform of `algo` (see [`transform_input`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_of(algo: Algo, x: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, v: &mut [f32]) {
    match algo {
        Algo::Winograd4 => crate::winograd4::transform_input(x, pl, ns, c, h, w, v),
        _ => transform_input(x, pl, ns, c, h, w, v),
    }
}

/// The output transform of `algo` (see [`transform_output`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn output_of(algo: Algo, m: &[f32], c: usize, ns: usize, h: usize, w: usize, out: &mut [f32], pl: Planes) {
    match algo {
        Algo::Winograd4 => crate::winograd4::transform_output(m, c, ns, h, w, out, pl),
        _ => transform_output(m, c, ns, h, w, out, pl),
    }
}

/// The output-gradient transform of `algo` (see [`transform_output_grad`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn output_grad_of(algo: Algo, dy: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, m: &mut [f32]) {
    match algo {
        Algo::Winograd4 => crate::winograd4::transform_output_grad(dy, pl, ns, c, h, w, m),
        _ => transform_output_grad(dy, pl, ns, c, h, w, m),
    }
}

/// The weight gradient from the transform-domain sums of `algo` (see [`weight_grad_from_sums`]).
pub(crate) fn weight_grad_of(algo: Algo, s: &[f32], co: usize, ci: usize) -> Vec<f32> {
    match algo {
        Algo::Winograd4 => crate::winograd4::weight_grad_from_sums(s, co, ci),
        _ => weight_grad_from_sums(s, co, ci),
    }
}

/// Where the `(sample, channel)` planes of a batch lie in a slice: plane `(s, c)` starts at
/// `s·sample + c·channel` and holds `h·w` values row-major.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planes {
    pub sample: usize,
    pub channel: usize,
}

/// Tiles per sample: `(h/2, w/2)`.
pub(crate) fn tiles(d: &Conv2dDims) -> (usize, usize) {
    (d.h / 2, d.w / 2)
}

/// `U[ξ][o][i] = (G g Gᵀ)_ξ` of the weights `w [co][ci][3][3]`, as `[16][co][ci]`. With `flip`,
/// the weights of the input gradient instead: `[16][ci][co]` of `G rot180(g) Gᵀ`.
#[allow(clippy::needless_range_loop)] // the 3x3 / 4x4 transforms read best by index
pub(crate) fn transform_weights(w: &[f32], co: usize, ci: usize, flip: bool) -> Vec<f32> {
    let (rows, cols) = if flip { (ci, co) } else { (co, ci) };
    let mut u = vec![0.0f32; 16 * co * ci];
    for o in 0..co {
        for i in 0..ci {
            let g = &w[(o * ci + i) * 9..(o * ci + i + 1) * 9];
            let at = |r: usize, c: usize| if flip { g[(2 - r) * 3 + 2 - c] } else { g[r * 3 + c] };
            // G g: 4x3.
            let mut gg = [[0.0f32; 3]; 4];
            for c in 0..3 {
                let (a, b, e) = (at(0, c), at(1, c), at(2, c));
                gg[0][c] = a;
                gg[1][c] = 0.5 * (a + b + e);
                gg[2][c] = 0.5 * (a - b + e);
                gg[3][c] = e;
            }
            let (r, c) = if flip { (i, o) } else { (o, i) };
            for (k, row) in gg.iter().enumerate() {
                let t = [row[0], 0.5 * (row[0] + row[1] + row[2]), 0.5 * (row[0] - row[1] + row[2]), row[2]];
                for (l, v) in t.into_iter().enumerate() {
                    u[((k * 4 + l) * rows + r) * cols + c] = v;
                }
            }
        }
    }
    u
}

/// The four equal rows of a 4-row scratch buffer.
fn quarters(v: &[f32]) -> [&[f32]; 4] {
    let n = v.len() / 4;
    std::array::from_fn(|i| &v[i * n..(i + 1) * n])
}

/// [`quarters`], writable.
fn quarters_mut(v: &mut [f32]) -> [&mut [f32]; 4] {
    let n = v.len() / 4;
    let (a, rest) = v.split_at_mut(n);
    let (b, rest) = rest.split_at_mut(n);
    let (c, d) = rest.split_at_mut(n);
    [a, b, c, d]
}

/// `V[ξ][c][t] = (Bᵀ d B)_ξ` of every 4x4 input tile (zero-padded by 1), for `ns` samples of
/// `c` channels whose planes `pl` locates in `x`; `v` is `[16][c][T]` with `T = ns·th·tw`.
#[allow(clippy::too_many_arguments)] // shapes spelled out; called from two places
pub(crate) fn transform_input(x: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, v: &mut [f32]) {
    let (th, tw) = (h / 2, w / 2);
    let t_all = ns * th * tw;
    // The padded row (0, x0, .., x(w-1), 0) is kept de-interleaved: even[j] = padded[2j] and
    // odd[j] = padded[2j + 1], j = 0..=tw, so tile tx reads even[tx], odd[tx], even[tx+1],
    // odd[tx+1] and every loop below runs at unit stride.
    let n = tw + 1;
    let mut even = vec![0.0f32; 4 * n];
    let mut odd = vec![0.0f32; 4 * n];
    let mut te = vec![0.0f32; 4 * n];
    let mut to = vec![0.0f32; 4 * n];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &x[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                for k in 0..4 {
                    let (e, o) = (&mut even[k * n..(k + 1) * n], &mut odd[k * n..(k + 1) * n]);
                    let r = (2 * ty + k) as isize - 1;
                    if r < 0 || r >= h as isize {
                        e.fill(0.0);
                        o.fill(0.0);
                    } else {
                        let src = &plane[r as usize * w..(r as usize + 1) * w];
                        e[0] = 0.0;
                        o[tw] = 0.0;
                        for (j, pair) in src.chunks_exact(2).enumerate() {
                            o[j] = pair[0];
                            e[j + 1] = pair[1];
                        }
                    }
                }
                // Bᵀ d: row combinations (d0 - d2, d1 + d2, d2 - d1, d1 - d3), on both halves.
                for (rows, t) in [(&even, &mut te), (&odd, &mut to)] {
                    let [r0, r1, r2, r3] = quarters(rows);
                    let [t0, t1, t2, t3] = quarters_mut(t);
                    for q in 0..n {
                        t0[q] = r0[q] - r2[q];
                        t1[q] = r1[q] + r2[q];
                        t2[q] = r2[q] - r1[q];
                        t3[q] = r1[q] - r3[q];
                    }
                }
                // (Bᵀ d) B: column combinations, one output stream at a time.
                let base = s * th * tw + ty * tw;
                for k in 0..4 {
                    let (e, o) = (&te[k * n..(k + 1) * n], &to[k * n..(k + 1) * n]);
                    let out = |l: usize| ((k * 4 + l) * c + ch) * t_all + base;
                    for (dst, q) in v[out(0)..out(0) + tw].iter_mut().zip(0..tw) {
                        *dst = e[q] - e[q + 1];
                    }
                    for (dst, q) in v[out(1)..out(1) + tw].iter_mut().zip(0..tw) {
                        *dst = o[q] + e[q + 1];
                    }
                    for (dst, q) in v[out(2)..out(2) + tw].iter_mut().zip(0..tw) {
                        *dst = e[q + 1] - o[q];
                    }
                    for (dst, q) in v[out(3)..out(3) + tw].iter_mut().zip(0..tw) {
                        *dst = o[q] - o[q + 1];
                    }
                }
            }
        }
    }
}

/// `y = Aᵀ M A` per tile: from `m [16][c][T]` to the 2x2 output tiles of `ns` samples of `c`
/// channels, written (not accumulated) into the planes `pl` of `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transform_output(m: &[f32], c: usize, ns: usize, h: usize, w: usize, out: &mut [f32], pl: Planes) {
    let (th, tw) = (h / 2, w / 2);
    let t_all = ns * th * tw;
    // Per tile row: M A (column combinations) for each of the 4 rows k, as two output columns
    // interleaved over the width; then Aᵀ (row combinations) across the whole width at once.
    let mut ma = vec![0.0f32; 4 * w];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &mut out[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                let base = s * th * tw + ty * tw;
                for k in 0..4 {
                    let src = |l: usize| &m[((k * 4 + l) * c + ch) * t_all + base..][..tw];
                    let (m0, m1, m2, m3) = (src(0), src(1), src(2), src(3));
                    let row = &mut ma[k * w..(k + 1) * w];
                    for tx in 0..tw {
                        row[2 * tx] = m0[tx] + m1[tx] + m2[tx];
                        row[2 * tx + 1] = m1[tx] - m2[tx] - m3[tx];
                    }
                }
                let [r0, r1, r2, r3] = quarters(&ma);
                let (top, bottom) = plane[2 * ty * w..(2 * ty + 2) * w].split_at_mut(w);
                for q in 0..w {
                    top[q] = r0[q] + r1[q] + r2[q];
                    bottom[q] = r1[q] - r2[q] - r3[q];
                }
            }
        }
    }
}

/// `(A dy Aᵀ)_ξ` of every 2x2 output-gradient tile: `[16][c][T]`, for the weight gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transform_output_grad(dy: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, m: &mut [f32]) {
    let (th, tw) = (h / 2, w / 2);
    let t_all = ns * th * tw;
    // Rows de-interleaved into the tiles' left (even) and right (odd) columns: unit stride below.
    let mut even = vec![0.0f32; 4 * tw];
    let mut odd = vec![0.0f32; 4 * tw];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &dy[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                // A dy: row combinations (top, bottom) -> (top, top + bottom, top - bottom, -bottom).
                let (top, bottom) = (&plane[2 * ty * w..(2 * ty + 1) * w], &plane[(2 * ty + 1) * w..(2 * ty + 2) * w]);
                for (half, rows) in [(0, &mut even), (1, &mut odd)] {
                    let [r0, r1, r2, r3] = quarters_mut(rows);
                    for q in 0..tw {
                        let (a, b) = (top[2 * q + half], bottom[2 * q + half]);
                        r0[q] = a;
                        r1[q] = a + b;
                        r2[q] = a - b;
                        r3[q] = -b;
                    }
                }
                // (A dy) Aᵀ: column combinations (p, q) -> (p, p + q, p - q, -q), a stream at a time.
                let base = s * th * tw + ty * tw;
                for k in 0..4 {
                    let (e, o) = (&even[k * tw..(k + 1) * tw], &odd[k * tw..(k + 1) * tw]);
                    let at = |l: usize| ((k * 4 + l) * c + ch) * t_all + base;
                    m[at(0)..at(0) + tw].copy_from_slice(e);
                    for ((dst, p), q) in m[at(1)..at(1) + tw].iter_mut().zip(e).zip(o) {
                        *dst = p + q;
                    }
                    for ((dst, p), q) in m[at(2)..at(2) + tw].iter_mut().zip(e).zip(o) {
                        *dst = p - q;
                    }
                    for (dst, q) in m[at(3)..at(3) + tw].iter_mut().zip(o) {
                        *dst = -q;
                    }
                }
            }
        }
    }
}

/// `dW[o][i] = Gᵀ S G` from the summed products `s [16][co][ci]`, as `[co][ci][3][3]`.
#[allow(clippy::needless_range_loop)]
pub(crate) fn weight_grad_from_sums(s: &[f32], co: usize, ci: usize) -> Vec<f32> {
    let n = co * ci;
    let mut dw = vec![0.0f32; 9 * n];
    for j in 0..n {
        let at = |k: usize, l: usize| s[(k * 4 + l) * n + j];
        // Gᵀ S: 3x4.
        let mut q = [[0.0f32; 4]; 3];
        for l in 0..4 {
            let (a, b, e, f) = (at(0, l), at(1, l), at(2, l), at(3, l));
            q[0][l] = a + 0.5 * (b + e);
            q[1][l] = 0.5 * (b - e);
            q[2][l] = 0.5 * (b + e) + f;
        }
        let out = &mut dw[j * 9..(j + 1) * 9];
        for (r, row) in q.iter().enumerate() {
            out[r * 3] = row[0] + 0.5 * (row[1] + row[2]);
            out[r * 3 + 1] = 0.5 * (row[1] - row[2]);
            out[r * 3 + 2] = 0.5 * (row[1] + row[2]) + row[3];
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(batch: usize, c_in: usize, h: usize, w: usize, c_out: usize) -> Conv2dDims {
        Conv2dDims { batch, c_in, h, w, c_out, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] }
    }

    #[test]
    fn applies_only_to_same_3x3_stride_1_on_even_planes() {
        assert!(applies(&d(2, 8, 8, 6, 4)));
        assert!(!applies(&d(2, 8, 7, 8, 4)), "odd height");
        assert!(!applies(&Conv2dDims { stride: [2, 2], ..d(2, 8, 8, 8, 4) }));
        assert!(!applies(&Conv2dDims { padding: [0, 0], ..d(2, 8, 8, 8, 4) }));
        assert!(!applies(&Conv2dDims { kh: 5, kw: 5, padding: [2, 2], ..d(2, 8, 8, 8, 4) }));
        assert_eq!(Algo::choose(&d(2, 4, 64, 64, 50)), Algo::Direct, "4 input channels stay direct");
        assert_eq!(Algo::choose(&d(2, 50, 32, 32, 100)), Algo::Winograd4);
        assert_eq!(Algo::choose_forward(&d(2, 50, 32, 32, 100)), Algo::Winograd4, "forward passes in training take F(4x4) too");
        assert_eq!(Algo::choose_forward(&d(2, 4, 64, 64, 50)), Algo::Direct);
        assert_eq!(Algo::choose(&d(2, 50, 6, 6, 100)), Algo::Winograd, "6x6 planes split into 2x2 tiles only");
        assert_eq!(Algo::choose(&d(2, 50, 2, 2, 100)), Algo::Winograd);
        assert!(applies_4x4(&d(2, 8, 4, 8, 4)) && !applies_4x4(&d(2, 8, 6, 8, 4)) && !applies_4x4(&d(2, 8, 2, 2, 4)));
    }

    #[test]
    fn one_tile_equals_the_3x3_correlation() {
        // A single 2x2 output from a 4x4 input, by the transforms alone.
        let x: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let g: Vec<f32> = (0..9).map(|i| (i as f32 * 0.91).cos()).collect();
        let u = transform_weights(&g, 1, 1, false);
        // Interior tile of a 4x4 plane padded by 1 would mix in zeros; build the transform from
        // a 2x2 plane instead (its padded 4x4 tile is the whole input).
        let plane = [x[5], x[6], x[9], x[10]];
        let mut v = vec![0.0f32; 16];
        transform_input(&plane, Planes { sample: 4, channel: 4 }, 1, 1, 2, 2, &mut v);
        let m: Vec<f32> = (0..16).map(|xi| u[xi] * v[xi]).collect();
        let mut y = [0.0f32; 4];
        transform_output(&m, 1, 1, 2, 2, &mut y, Planes { sample: 4, channel: 4 });
        let padded = |r: isize, c: isize| if (0..2).contains(&r) && (0..2).contains(&c) { plane[(r * 2 + c) as usize] } else { 0.0 };
        for (oy, ox) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let want: f32 = (0..3)
                .flat_map(|i| (0..3).map(move |j| (i, j)))
                .map(|(i, j)| g[i * 3 + j] * padded(oy + i as isize - 1, ox + j as isize - 1))
                .sum();
            let got = y[(oy * 2 + ox) as usize];
            assert!((got - want).abs() < 1e-5, "({oy},{ox}): {got} vs {want}");
        }
    }
}
