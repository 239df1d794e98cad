//! Winograd F(4x4, 3x3): each 4x4 output tile from a 6x6 input tile with 36 products per
//! channel pair, `2.25·Cin·Cout` multiply-adds per output pixel against the direct kernel's 9
//! (4x fewer; F(2x2, 3x3) in [`crate::winograd`] saves 2.25x). Same structure as F(2x2): 36
//! GEMMs, one per point `ξ` of the 6x6 transform domain, and the same three passes (see
//! [`crate::winograd`]). The matrices are the usual ones (interpolation points 0, ±1, ±2, ∞;
//! Lavin & Gray 2016, as in oneDNN and NNPACK):
//!
//! ```text
//! Bᵀ = [4  0 -5  0 1 0]    G = [ 1/4     0    0 ]    Aᵀ = [1 1  1 1  1 0]
//!      [0 -4 -4  1 1 0]        [-1/6 -1/6 -1/6 ]         [0 1 -1 2 -2 0]
//!      [0  4 -4 -1 1 0]        [-1/6  1/6 -1/6 ]         [0 1  1 4  4 0]
//!      [0 -2 -1  2 1 0]        [1/24 1/12  1/6 ]         [0 1 -1 8 -8 1]
//!      [0  2 -1 -2 1 0]        [1/24 -1/12 1/6 ]
//!      [0  4  0 -5 0 1]        [   0    0    1 ]
//! ```
//!
//! The larger constants (up to 8 in Aᵀ, 1/24 in G) round more than F(2x2)'s 1 and 1/2: the
//! tests bound the error at 1e-4 of the largest value instead of 1e-5 (cuDNN and oneDNN train
//! with this transform in f32). A run stays bit-identical for one build and CPU.

use crate::winograd::Planes;

/// `Bᵀ d` of one column `d0..d5` of an input tile.
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// `Aᵀ m` of one column `m0..m5` of a product tile.
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (s12, d12, s34, d34) = (m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]);
    [m[0] + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m[5]]
}

/// `A y` of one column `y0..y3` of an output-gradient tile (the adjoint of [`at`]).
#[inline(always)]
fn a(y: [f32; 4]) -> [f32; 6] {
    let (e, o) = (y[0] + y[2], y[1] + y[3]);
    let (e4, o8) = (y[0] + 4.0 * y[2], 2.0 * y[1] + 8.0 * y[3]);
    [y[0], e + o, e - o, e4 + o8, e4 - o8, y[3]]
}

/// `G g` of one column `g0..g2` of a 3x3 kernel.
#[inline(always)]
fn g(k: [f32; 3]) -> [f32; 6] {
    let (s, m) = (k[0] + k[2], k[0] / 24.0 + k[2] / 6.0);
    [k[0] / 4.0, -(s + k[1]) / 6.0, -(s - k[1]) / 6.0, m + k[1] / 12.0, m - k[1] / 12.0, k[2]]
}

/// `Gᵀ s` of one column `s0..s5` (the adjoint of [`g`]).
#[inline(always)]
fn gt(s: [f32; 6]) -> [f32; 3] {
    let (p, q) = (s[1] + s[2], s[3] + s[4]);
    [s[0] / 4.0 - p / 6.0 + q / 24.0, (s[2] - s[1]) / 6.0 + (s[3] - s[4]) / 12.0, -p / 6.0 + q / 6.0 + s[5]]
}

/// Tiles per sample: `(h/4, w/4)`.
pub(crate) fn tiles(h: usize, w: usize) -> (usize, usize) {
    (h / 4, w / 4)
}

/// `U[ξ][o][i] = (G g Gᵀ)_ξ` as `[36][co][ci]`; with `flip`, `[36][ci][co]` of `G rot180(g) Gᵀ`.
pub(crate) fn transform_weights(w: &[f32], co: usize, ci: usize, flip: bool) -> Vec<f32> {
    let (rows, cols) = if flip { (ci, co) } else { (co, ci) };
    let mut u = vec![0.0f32; 36 * co * ci];
    for o in 0..co {
        for i in 0..ci {
            let k = &w[(o * ci + i) * 9..(o * ci + i + 1) * 9];
            let at_rc = |r: usize, c: usize| if flip { k[(2 - r) * 3 + 2 - c] } else { k[r * 3 + c] };
            // G g: 6x3, a column at a time.
            let cols3: [[f32; 6]; 3] = std::array::from_fn(|c| g([at_rc(0, c), at_rc(1, c), at_rc(2, c)]));
            let (r, c) = if flip { (i, o) } else { (o, i) };
            for kk in 0..6 {
                // (G g) Gᵀ: row kk of G g times Gᵀ = G applied to that row.
                let row = g([cols3[0][kk], cols3[1][kk], cols3[2][kk]]);
                for (l, v) in row.into_iter().enumerate() {
                    u[((kk * 6 + l) * rows + r) * cols + c] = v;
                }
            }
        }
    }
    u
}

/// `dW[o][i] = Gᵀ S G` from the summed products `s [36][co][ci]`, as `[co][ci][3][3]`.
pub(crate) fn weight_grad_from_sums(s: &[f32], co: usize, ci: usize) -> Vec<f32> {
    let n = co * ci;
    let mut dw = vec![0.0f32; 9 * n];
    for j in 0..n {
        let at_kl = |k: usize, l: usize| s[(k * 6 + l) * n + j];
        // Gᵀ S: 3x6, a column at a time.
        let q: [[f32; 3]; 6] = std::array::from_fn(|l| gt(std::array::from_fn(|k| at_kl(k, l))));
        let out = &mut dw[j * 9..(j + 1) * 9];
        for r in 0..3 {
            let row = gt(std::array::from_fn(|l| q[l][r]));
            out[r * 3..r * 3 + 3].copy_from_slice(&row);
        }
    }
    dw
}

/// Rows of at most this many tiles take [`transform_input`]'s channel-wide loops: per input pixel
/// (one thread, Zen 4, interleaved timings of both on the embedders' layers) 8x8 planes took
/// 2.9-3.4 ns against the row loops' 3.5-3.6 ns, while 16x16 took 2.3-2.4 ns against 1.8 and 32x32
/// 1.6-1.7 against 1.2 (gathering a tile's six overlapping columns costs more than the row loops'
/// de-interleaving, and only rows of 2 tiles leave those loops too short to vectorise).
const SHORT_ROW_TILES: usize = 2;

/// `V[ξ][c][t] = (Bᵀ d B)_ξ` of every 6x6 input tile (zero-padded by 1), for `ns` samples of `c`
/// channels whose planes `pl` locates in `x`; `v` is `[36][c][T]` with `T = ns·th·tw`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transform_input(x: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, v: &mut [f32]) {
    if tiles(h, w).1 <= SHORT_ROW_TILES {
        transform_input_by_channel(x, pl, ns, c, h, w, v)
    } else {
        transform_input_by_row(x, pl, ns, c, h, w, v)
    }
}

/// [`transform_input`] a channel at a time: every tile of the `ns` samples' planes gathered as
/// 36 streams `[column j][row r][tile]`, then `Bᵀ` down the columns and `B` along the rows, each a
/// loop over all `T` tiles (V is contiguous in them). The same operations on each tile as
/// [`transform_input_by_row`], so the same bits.
#[allow(clippy::too_many_arguments)]
fn transform_input_by_channel(x: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, v: &mut [f32]) {
    let (th, tw) = tiles(h, w);
    let t_all = ns * th * tw;
    let mut d = vec![0.0f32; 36 * t_all];
    let mut e = vec![0.0f32; 36 * t_all];
    // The padded row (0, x0, .., x(w-1), 0); its two zeros stay.
    let mut padded = vec![0.0f32; w + 2];
    for ch in 0..c {
        for s in 0..ns {
            let plane = &x[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                let t0 = (s * th + ty) * tw;
                for r in 0..6 {
                    let y = (4 * ty + r) as isize - 1;
                    let dst: [&mut [f32]; 6] = split6(&mut d, std::array::from_fn(|j| (j * 6 + r) * t_all + t0), tw);
                    if y < 0 || y >= h as isize {
                        dst.into_iter().for_each(|o| o.fill(0.0));
                        continue;
                    }
                    padded[1..=w].copy_from_slice(&plane[y as usize * w..(y as usize + 1) * w]);
                    for q in 0..tw {
                        let p = &padded[4 * q..4 * q + 6];
                        for (j, o) in p.iter().enumerate() {
                            dst[j][q] = *o;
                        }
                    }
                }
            }
        }
        // Bᵀ d down each column j: e[k][j][t].
        for j in 0..6 {
            let src: [&[f32]; 6] = std::array::from_fn(|r| &d[(j * 6 + r) * t_all..][..t_all]);
            map_streams(src, split6(&mut e, std::array::from_fn(|k| (k * 6 + j) * t_all), t_all), bt);
        }
        // (Bᵀ d) B along each row k: V[k·6 + l][ch][t].
        for k in 0..6 {
            let src: [&[f32]; 6] = std::array::from_fn(|j| &e[(k * 6 + j) * t_all..][..t_all]);
            map_streams(src, split6(v, std::array::from_fn(|l| ((k * 6 + l) * c + ch) * t_all), t_all), bt);
        }
    }
}

/// [`transform_input`] a tile row at a time, the row's columns de-interleaved (for rows of more
/// than [`SHORT_ROW_TILES`] tiles).
#[allow(clippy::too_many_arguments)]
fn transform_input_by_row(x: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, v: &mut [f32]) {
    let (th, tw) = tiles(h, w);
    let t_all = ns * th * tw;
    // The padded row (0, x0, .., x(w-1), 0) de-interleaved by column mod 4: ph[j][q] = padded[4q + j],
    // q = 0..=tw, so tile tx reads ph0..ph3[tx], ph0[tx+1], ph1[tx+1] at unit stride.
    let n = tw + 1;
    // rows[r][j][q]: the 6 input rows of a tile row, de-interleaved; rt[k][j][q]: Bᵀ over them.
    let mut rows = vec![0.0f32; 6 * 4 * n];
    let mut rt = vec![0.0f32; 6 * 4 * n];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &x[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                for r in 0..6 {
                    let ph = &mut rows[r * 4 * n..(r + 1) * 4 * n];
                    let y = (4 * ty + r) as isize - 1;
                    if y < 0 || y >= h as isize {
                        ph.fill(0.0);
                        continue;
                    }
                    let src = &plane[y as usize * w..(y as usize + 1) * w];
                    // padded[4q + j] = src[4q + j - 1]: j = 0 takes src[4q - 1], j = 1..3 src[4q + j - 1].
                    let (p0, rest) = ph.split_at_mut(n);
                    let (p1, rest) = rest.split_at_mut(n);
                    let (p2, p3) = rest.split_at_mut(n);
                    p0[0] = 0.0;
                    for (q, quad) in src.chunks_exact(4).enumerate() {
                        p1[q] = quad[0];
                        p2[q] = quad[1];
                        p3[q] = quad[2];
                        p0[q + 1] = quad[3];
                    }
                    p1[tw] = 0.0;
                    p2[tw] = 0.0;
                    p3[tw] = 0.0;
                }
                // Bᵀ d: row combinations over the whole de-interleaved width (4n values).
                let len = 4 * n;
                for q in 0..len {
                    let col: [f32; 6] = std::array::from_fn(|r| rows[r * len + q]);
                    let o = bt(col);
                    for (k, val) in o.into_iter().enumerate() {
                        rt[k * len + q] = val;
                    }
                }
                // (Bᵀ d) B: column combinations, six output streams per row k.
                let base = s * th * tw + ty * tw;
                for k in 0..6 {
                    let ph = &rt[k * len..(k + 1) * len];
                    let (p0, p1, p2, p3) = (&ph[..n], &ph[n..2 * n], &ph[2 * n..3 * n], &ph[3 * n..]);
                    let out = |l: usize| ((k * 6 + l) * c + ch) * t_all + base;
                    let dst: [&mut [f32]; 6] = split6(v, std::array::from_fn(out), tw);
                    for q in 0..tw {
                        let o = bt([p0[q], p1[q], p2[q], p3[q], p0[q + 1], p1[q + 1]]);
                        for (l, val) in o.into_iter().enumerate() {
                            dst[l][q] = val;
                        }
                    }
                }
            }
        }
    }
}

/// `dst[k][t] = f(src[0][t], .., src[N-1][t])[k]` for every tile `t`: one column transform applied
/// across `N` input streams into six output streams, all of one length (the channel-wide loops of
/// the input and output-gradient transforms). Inlined, so each use compiles to its own loop.
#[inline(always)]
fn map_streams<const N: usize>(src: [&[f32]; N], dst: [&mut [f32]; 6], f: impl Fn([f32; N]) -> [f32; 6]) {
    let len = dst[0].len();
    assert!(src.iter().all(|s| s.len() == len) && dst.iter().all(|d| d.len() == len));
    for t in 0..len {
        let o = f(std::array::from_fn(|r| src[r][t]));
        for (k, val) in o.into_iter().enumerate() {
            dst[k][t] = val;
        }
    }
}

/// Six disjoint writable runs of `len` values of `v`, starting at increasing offsets `at`.
fn split6(v: &mut [f32], at: [usize; 6], len: usize) -> [&mut [f32]; 6] {
    let mut rest = v;
    let mut consumed = 0;
    let mut parts: [&mut [f32]; 6] = Default::default();
    for (l, &start) in at.iter().enumerate() {
        assert!(start >= consumed, "split6: offsets must increase");
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - consumed);
        let (part, tail) = tail.split_at_mut(len);
        parts[l] = part;
        rest = tail;
        consumed = start + len;
    }
    parts
}

/// `y = Aᵀ M A` per tile: from `m [36][c][T]` to the 4x4 output tiles of `ns` samples of `c`
/// channels, written (not accumulated) into the planes `pl` of `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transform_output(m: &[f32], c: usize, ns: usize, h: usize, w: usize, out: &mut [f32], pl: Planes) {
    let (th, tw) = tiles(h, w);
    let t_all = ns * th * tw;
    // Per tile row: M A for each of the 6 rows k, four output columns interleaved over the
    // width; then Aᵀ across the whole width at once.
    let mut ma = vec![0.0f32; 6 * w];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &mut out[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                let base = s * th * tw + ty * tw;
                for k in 0..6 {
                    let src: [&[f32]; 6] = std::array::from_fn(|l| &m[((k * 6 + l) * c + ch) * t_all + base..][..tw]);
                    let row = &mut ma[k * w..(k + 1) * w];
                    for (tx, quad) in row.chunks_exact_mut(4).enumerate() {
                        quad.copy_from_slice(&at(std::array::from_fn(|l| src[l][tx])));
                    }
                }
                let dst = &mut plane[4 * ty * w..(4 * ty + 4) * w];
                for q in 0..w {
                    let o = at(std::array::from_fn(|k| ma[k * w + q]));
                    for (i, val) in o.into_iter().enumerate() {
                        dst[i * w + q] = val;
                    }
                }
            }
        }
    }
}

/// `(A dy Aᵀ)_ξ` of every 4x4 output-gradient tile: `[36][c][T]`, for the weight gradient.
///
/// A channel at a time (as [`transform_input_by_channel`]): the 16 streams `[column j][row i][tile]`
/// (a tile's columns do not overlap, so gathering them is a plain de-interleave), `A` down the
/// columns, `A` along the rows, each a loop over all `T` tiles. Per pixel (one thread, Zen 4,
/// interleaved with the earlier row loops, which the tests keep as the reference: the same bits)
/// 0.7-0.75 ns against 1.15 on 32x32 planes, 1.05-1.2 against 1.55 on 16x16, 1.4-2.1 against
/// 2.9-3.0 on 8x8.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transform_output_grad(dy: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, m: &mut [f32]) {
    let (th, tw) = tiles(h, w);
    let t_all = ns * th * tw;
    let mut d = vec![0.0f32; 16 * t_all];
    let mut e = vec![0.0f32; 24 * t_all];
    for ch in 0..c {
        for s in 0..ns {
            let plane = &dy[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                let t0 = (s * th + ty) * tw;
                for i in 0..4 {
                    let row = &plane[(4 * ty + i) * w..(4 * ty + i + 1) * w];
                    let (d0, rest) = d[i * t_all + t0..].split_at_mut(4 * t_all);
                    let (d1, rest) = rest.split_at_mut(4 * t_all);
                    let (d2, d3) = rest.split_at_mut(4 * t_all);
                    let dst = [&mut d0[..tw], &mut d1[..tw], &mut d2[..tw], &mut d3[..tw]];
                    for (q, quad) in row.chunks_exact(4).enumerate() {
                        for (j, o) in quad.iter().enumerate() {
                            dst[j][q] = *o;
                        }
                    }
                }
            }
        }
        // A down each column j: e[k][j][t].
        for j in 0..4 {
            let src: [&[f32]; 4] = std::array::from_fn(|i| &d[(j * 4 + i) * t_all..][..t_all]);
            map_streams(src, split6(&mut e, std::array::from_fn(|k| (k * 4 + j) * t_all), t_all), a);
        }
        // Along each row k: M[k·6 + l][ch][t].
        for k in 0..6 {
            let src: [&[f32]; 4] = std::array::from_fn(|j| &e[(k * 4 + j) * t_all..][..t_all]);
            map_streams(src, split6(m, std::array::from_fn(|l| ((k * 6 + l) * c + ch) * t_all), t_all), a);
        }
    }
}

/// [`transform_output_grad`] a tile row at a time (before session 29; the tests' reference).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn transform_output_grad_by_row(dy: &[f32], pl: Planes, ns: usize, c: usize, h: usize, w: usize, m: &mut [f32]) {
    let (th, tw) = tiles(h, w);
    let t_all = ns * th * tw;
    // ad[k][j][q]: row k of A dy, de-interleaved by column mod 4 (column 4q + j).
    let mut ad = vec![0.0f32; 6 * 4 * tw];
    for s in 0..ns {
        for ch in 0..c {
            let plane = &dy[s * pl.sample + ch * pl.channel..][..h * w];
            for ty in 0..th {
                let rows: [&[f32]; 4] = std::array::from_fn(|i| &plane[(4 * ty + i) * w..(4 * ty + i + 1) * w]);
                for q in 0..tw {
                    for j in 0..4 {
                        let col = 4 * q + j;
                        let o = a([rows[0][col], rows[1][col], rows[2][col], rows[3][col]]);
                        for (k, val) in o.into_iter().enumerate() {
                            ad[(k * 4 + j) * tw + q] = val;
                        }
                    }
                }
                let base = s * th * tw + ty * tw;
                for k in 0..6 {
                    let ph: [&[f32]; 4] = std::array::from_fn(|j| &ad[(k * 4 + j) * tw..(k * 4 + j + 1) * tw]);
                    let out = |l: usize| ((k * 6 + l) * c + ch) * t_all + base;
                    let dst: [&mut [f32]; 6] = split6(m, std::array::from_fn(out), tw);
                    for q in 0..tw {
                        let o = a([ph[0][q], ph[1][q], ph[2][q], ph[3][q]]);
                        for (l, val) in o.into_iter().enumerate() {
                            dst[l][q] = val;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_transforms_match_their_matrices() {
        const BT: [[f32; 6]; 6] = [
            [4., 0., -5., 0., 1., 0.],
            [0., -4., -4., 1., 1., 0.],
            [0., 4., -4., -1., 1., 0.],
            [0., -2., -1., 2., 1., 0.],
            [0., 2., -1., -2., 1., 0.],
            [0., 4., 0., -5., 0., 1.],
        ];
        const AT: [[f32; 6]; 4] =
            [[1., 1., 1., 1., 1., 0.], [0., 1., -1., 2., -2., 0.], [0., 1., 1., 4., 4., 0.], [0., 1., -1., 8., -8., 1.]];
        const G: [[f32; 3]; 6] = [
            [0.25, 0., 0.],
            [-1. / 6., -1. / 6., -1. / 6.],
            [-1. / 6., 1. / 6., -1. / 6.],
            [1. / 24., 1. / 12., 1. / 6.],
            [1. / 24., -1. / 12., 1. / 6.],
            [0., 0., 1.],
        ];
        let v6: [f32; 6] = std::array::from_fn(|i| (i as f32 * 0.7).sin());
        let v4: [f32; 4] = std::array::from_fn(|i| (i as f32 * 1.3).cos());
        let v3: [f32; 3] = std::array::from_fn(|i| (i as f32 * 2.1 + 0.3).sin());
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        let bt_ref: Vec<f32> = (0..6).map(|r| (0..6).map(|c| BT[r][c] * v6[c]).sum()).collect();
        let at_ref: Vec<f32> = (0..4).map(|r| (0..6).map(|c| AT[r][c] * v6[c]).sum()).collect();
        let a_ref: Vec<f32> = (0..6).map(|r| (0..4).map(|c| AT[c][r] * v4[c]).sum()).collect();
        let g_ref: Vec<f32> = (0..6).map(|r| (0..3).map(|c| G[r][c] * v3[c]).sum()).collect();
        let gt_ref: Vec<f32> = (0..3).map(|r| (0..6).map(|c| G[c][r] * v6[c]).sum()).collect();
        assert!(close(&bt(v6), &bt_ref), "Bᵀ");
        assert!(close(&at(v6), &at_ref), "Aᵀ");
        assert!(close(&a(v4), &a_ref), "A");
        assert!(close(&g(v3), &g_ref), "G");
        assert!(close(&gt(v6), &gt_ref), "Gᵀ");
    }

    /// The channel-wide loops give the row loops' bits, for every plane shape and batch (planes
    /// addressed with gaps between samples, as a group of a larger batch is).
    #[test]
    fn channel_wide_transforms_equal_the_row_transforms_bit_for_bit() {
        for (h, w) in [(4, 4), (8, 8), (8, 16), (16, 8), (16, 16), (12, 20), (32, 32)] {
            for (ns, c) in [(1, 1), (2, 3), (3, 2)] {
                let pl = Planes { sample: (c + 1) * h * w, channel: h * w };
                let x: Vec<f32> = (0..ns * pl.sample).map(|i| ((i * 7919 % 1013) as f32 / 97.0).sin()).collect();
                let (th, tw) = tiles(h, w);
                let len = 36 * c * ns * th * tw;
                let bits = |f: &dyn Fn(&mut [f32])| {
                    let mut v = vec![f32::NAN; len];
                    f(&mut v);
                    v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
                };
                let by_row = bits(&|v| transform_input_by_row(&x, pl, ns, c, h, w, v));
                assert!(by_row.iter().all(|b| !f32::from_bits(*b).is_nan()), "every value written");
                assert_eq!(bits(&|v| transform_input_by_channel(&x, pl, ns, c, h, w, v)), by_row, "input {h}x{w}, {ns} x {c}");
                let by_row = bits(&|m| transform_output_grad_by_row(&x, pl, ns, c, h, w, m));
                assert!(by_row.iter().all(|b| !f32::from_bits(*b).is_nan()), "every value written");
                assert_eq!(bits(&|m| transform_output_grad(&x, pl, ns, c, h, w, m)), by_row, "output grad {h}x{w}, {ns} x {c}");
            }
        }
    }

    #[test]
    fn one_tile_equals_the_3x3_correlation() {
        // A single 4x4 plane: its padded 6x6 tile is the whole input.
        let plane: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
        let k: Vec<f32> = (0..9).map(|i| (i as f32 * 0.91).cos()).collect();
        let u = transform_weights(&k, 1, 1, false);
        let mut v = vec![0.0f32; 36];
        transform_input(&plane, Planes { sample: 16, channel: 16 }, 1, 1, 4, 4, &mut v);
        let m: Vec<f32> = (0..36).map(|xi| u[xi] * v[xi]).collect();
        let mut y = [0.0f32; 16];
        transform_output(&m, 1, 1, 4, 4, &mut y, Planes { sample: 16, channel: 16 });
        let padded = |r: isize, c: isize| if (0..4).contains(&r) && (0..4).contains(&c) { plane[(r * 4 + c) as usize] } else { 0.0 };
        for oy in 0..4isize {
            for ox in 0..4isize {
                let want: f32 = (0..3)
                    .flat_map(|i| (0..3).map(move |j| (i, j)))
                    .map(|(i, j)| k[i * 3 + j] * padded(oy + i as isize - 1, ox + j as isize - 1))
                    .sum();
                let got = y[(oy * 4 + ox) as usize];
                assert!((got - want).abs() < 1e-5, "({oy},{ox}): {got} vs {want}");
            }
        }
    }
}
