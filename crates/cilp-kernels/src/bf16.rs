//! Products in bfloat16 with f32 sums, on CPUs with AVX512_BF16 (Intel Cooper Lake and Sapphire
//! Rapids on, AMD Zen 4 on): the opt-in kernel set [`crate::gemm_isa::Isa::Bf16`], never chosen
//! automatically (`CILP_GEMM=linear-infer=bf16`, the measured use; any slot, or `bf16` for every
//! product).
//!
//! Each operand is rounded to bfloat16 (8 significant bits, round to nearest even) while it is
//! packed; `vdpbf16ps` then multiplies two pairs of bfloat16 values and adds both products to
//! an f32 lane, so a 512-bit instruction does 32 multiply-adds where an f32 FMA does 16. Sums
//! stay f32 and so do the weights Adam updates: what changes is the rounding of each product's
//! inputs (a relative error up to 2⁻⁸ per operand; the tests bound a dot product's error by
//! `2⁻⁷·Σ|aᵢ·bᵢ|` plus f32 summation). As with every set, a run stays bit-identical for one
//! build, CPU and setting, at any thread count: each output element is one fixed sum.
//!
//! Layout: the right-hand matrix is packed into panels of [`NR`] columns, `[k/2][NR]` pairs
//! (one 32-bit lane holds rows `2p` and `2p + 1` of a column), the left-hand one into blocks of
//! [`MR`] rows, `[MR][k/2]` pairs (a row's pairs contiguous); the micro-kernel keeps an `MR x NR` tile in 16 registers and
//! streams both packs once per tile.

use rayon::prelude::*;

use crate::gemm_isa::{Cpu, Parallelism};

/// Rows of the micro-kernel's tile.
const MR: usize = 8;
/// Columns of the micro-kernel's tile (two 16-lane registers).
const NR: usize = 32;

/// `x` rounded to bfloat16 (to nearest, ties to even; subnormals to zero; NaN stays a quiet
/// NaN), as its bits: what `vcvtneps2bf16` does, so the packing's vector and scalar paths agree.
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x0040;
    }
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// The f32 value of bfloat16 bits.
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Whether this CPU runs the set (AVX-512F and AVX512_BF16; detected by [`Cpu::this`]).
pub fn available() -> bool {
    let cpu = Cpu::this();
    cpu.avx512f && cpu.avx512bf16
}

/// Two bfloat16 values in one lane: `lo` (the even row) in the low half.
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16
}

/// The pair `p` of a run of `k` values `get(0..k)` (zero past `k`).
#[inline(always)]
fn pair_at(k: usize, p: usize, get: impl Fn(usize) -> f32) -> u32 {
    pair(get(2 * p), if 2 * p + 1 < k { get(2 * p + 1) } else { 0.0 })
}

/// A strided read-only matrix behind a raw pointer: `(r, c)` at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
struct Strided {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Strided {
    /// # Safety
    /// `(r, c)` must lie in the matrix the caller of [`sgemm_bf16`] described.
    #[inline(always)]
    unsafe fn at(self, r: usize, c: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.offset(r as isize * self.rs + c as isize * self.cs) }
    }
}

// SAFETY: only read, while the caller of `sgemm_bf16` keeps the memory live and unwritten.
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}

/// The output pointer shared by the tiles (each writes its own elements).
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

impl Dst {
    /// `dst(r, c) = alpha·dst(r, c) + beta·v` (`beta·v` unless `read_dst`).
    ///
    /// # Safety
    /// `(r, c)` addresses an element the caller may write, and no other thread writes it.
    #[inline(always)]
    unsafe fn store(&self, r: usize, c: usize, v: f32, read_dst: bool, alpha: f32, beta: f32) {
        // SAFETY: the caller's contract.
        unsafe {
            let d = self.ptr.offset(r as isize * self.rs + c as isize * self.cs);
            *d = if read_dst { alpha * *d + beta * v } else { beta * v };
        }
    }

    /// Columns `c0..c0 + len` of row `r`, contiguous (`cs == 1`).
    ///
    /// # Safety
    /// As [`Dst::store`], for each of those elements.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, r: usize, c0: usize, len: usize) -> &mut [f32] {
        debug_assert_eq!(self.cs, 1);
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.offset(r as isize * self.rs + c0 as isize), len) }
    }
}

// SAFETY: tiles write disjoint elements (see `sgemm_bf16`).
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `f(i, chunk)` for each `len`-long chunk of `v`, over rayon's threads or on this one.
fn each_chunk(v: &mut [u32], len: usize, threads: bool, f: impl Fn(usize, &mut [u32]) + Sync) {
    if threads {
        v.par_chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        v.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// `rhs [k, n]` as `ceil(n/NR)` panels of `[kp][NR]` pairs (zero past `k` and `n`).
///
/// # Safety
/// Every `(row < k, col < n)` of `rhs` is readable.
unsafe fn pack_rhs(k: usize, n: usize, rhs: Strided, threads: bool) -> Vec<u32> {
    let kp = k.div_ceil(2);
    let panels = n.div_ceil(NR);
    let mut out = vec![0u32; panels * kp * NR];
    each_chunk(&mut out, kp * NR, threads, |jb, panel| {
        let c0 = jb * NR;
        let cols = NR.min(n - c0);
        #[cfg(target_arch = "x86_64")]
        if rhs.cs == 1 && cols == NR {
            for p in 0..kp {
                // SAFETY: rows 2p (and 2p + 1 when < k), columns c0..c0 + 32 <= n, unit stride.
                unsafe {
                    let lo = rhs.ptr.offset(2 * p as isize * rhs.rs + c0 as isize);
                    let hi = (2 * p + 1 < k).then(|| rhs.ptr.offset((2 * p + 1) as isize * rhs.rs + c0 as isize));
                    pairs_across(lo, hi, &mut panel[p * NR..(p + 1) * NR]);
                }
            }
            return;
        }
        for p in 0..kp {
            let dst = &mut panel[p * NR..p * NR + cols];
            for (j, d) in dst.iter_mut().enumerate() {
                // SAFETY: pair_at reads rows < k; c0 + j < n.
                *d = pair_at(k, p, |r| unsafe { rhs.at(r, c0 + j) });
            }
        }
    });
    out
}

/// `lhs [m, k]` as `ceil(m/MR)` blocks of `[MR][kp]` pairs (zero past `m` and `k`).
///
/// # Safety
/// Every `(row < m, col < k)` of `lhs` is readable.
unsafe fn pack_lhs(m: usize, k: usize, lhs: Strided, threads: bool) -> Vec<u32> {
    let kp = k.div_ceil(2);
    let blocks = m.div_ceil(MR);
    let mut out = vec![0u32; blocks * kp * MR];
    each_chunk(&mut out, kp * MR, threads, |ib, block| {
        let r0 = ib * MR;
        for i in 0..MR.min(m - r0) {
            let row = &mut block[i * kp..(i + 1) * kp];
            let mut p0 = 0;
            #[cfg(target_arch = "x86_64")]
            if lhs.cs == 1 {
                // SAFETY: row r0 + i < m; its first 2·(kp - kp % 16) <= k values, unit stride.
                p0 = unsafe { pairs_along(lhs.ptr.offset((r0 + i) as isize * lhs.rs), row) };
            }
            for (p, d) in row.iter_mut().enumerate().skip(p0) {
                // SAFETY: r0 + i < m; pair_at reads columns < k.
                *d = pair_at(k, p, |c| unsafe { lhs.at(r0 + i, c) });
            }
        }
    });
    out
}

/// `out[j] = (bf16(lo[j]), bf16(hi[j]))` for 32 columns (`hi` absent: zeros).
///
/// # Safety
/// 32 f32s readable at `lo` (and `hi`); the CPU runs AVX-512F and AVX512_BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs_across(lo: *const f32, hi: Option<*const f32>, out: &mut [u32]) {
    use std::arch::x86_64::*;
    assert!(out.len() >= NR);
    for h in 0..2 {
        // SAFETY: the caller's contract; `out` holds 32 lanes.
        unsafe {
            let l: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(lo.add(16 * h))));
            let mut v = _mm512_cvtepu16_epi32(l);
            if let Some(hi) = hi {
                let u: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(hi.add(16 * h))));
                v = _mm512_or_si512(v, _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(u)));
            }
            _mm512_storeu_si512(out.as_mut_ptr().add(16 * h) as *mut _, v);
        }
    }
}

/// The pairs of a contiguous row, 16 pairs (32 values) at a time, into `out`; returns how many
/// pairs it wrote (a multiple of 16; the rest is the caller's).
///
/// # Safety
/// `2·(out.len() / 16)·16` f32s readable at `row`; the CPU runs AVX-512F and AVX512_BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs_along(row: *const f32, out: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let full = out.len() / 16 * 16;
    for q in (0..full).step_by(16) {
        // SAFETY: values 2q..2q + 32 of the row; `out[q..q + 16]`. `vcvtne2ps2bf16(b, a)` puts
        // a's 16 values in the low half, in order: lane j holds values 2j and 2j + 1.
        unsafe {
            let a = _mm512_loadu_ps(row.add(2 * q));
            let b = _mm512_loadu_ps(row.add(2 * q + 16));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(b, a));
            _mm512_storeu_si512(out.as_mut_ptr().add(q) as *mut _, v);
        }
    }
    full
}

/// One `MR x NR` tile: `Σ_p a[i][p] · b[p][j]` over the packed pairs, into `tile[i][j]`.
///
/// # Safety
/// The CPU runs AVX-512F and AVX512_BF16; `a` holds `kp·MR` pairs and `b` `kp·NR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_kernel(kp: usize, a: &[u32], b: &[u32], tile: &mut [[f32; NR]; MR]) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= kp * MR && b.len() >= kp * NR);
    let mut acc = [_mm512_setzero_ps(); 2 * MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kp {
        // SAFETY: p < kp: `b[p·NR..(p + 1)·NR]` and `a[i·kp + p]` (i < MR) are in bounds.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR) as *const _));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR + 16) as *const _));
            for i in 0..MR {
                let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i * kp + p) as i32));
                acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], ai, b0);
                acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], ai, b1);
            }
        }
    }
    for (i, row) in tile.iter_mut().enumerate() {
        // SAFETY: `row` holds NR = 32 f32s: two 16-lane stores.
        unsafe {
            _mm512_storeu_ps(row.as_mut_ptr(), acc[2 * i]);
            _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[2 * i + 1]);
        }
    }
}

/// `dst[m, n] = alpha·dst + beta·lhs[m, k]·rhs[k, n]` (`alpha` ignored unless `read_dst`), the
/// arguments of [`crate::gemm_isa::sgemm`], with bfloat16 products.
///
/// # Safety
/// As [`crate::gemm_isa::sgemm`], and the CPU runs AVX-512F and AVX512_BF16 ([`available`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_bf16(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: f32,
    beta: f32,
    par: Parallelism,
) {
    assert!(available(), "bf16 products chosen on a CPU without AVX512_BF16");
    if m == 0 || n == 0 {
        return;
    }
    let dst = Dst { ptr: dst, rs: dst_rs, cs: dst_cs };
    let write = |r: usize, c: usize, v: f32| {
        // SAFETY: (r, c) < (m, n): an element of `dst` the caller gave exclusively; each (r, c)
        // is written by one tile only.
        unsafe { dst.store(r, c, v, read_dst, alpha, beta) }
    };
    if k == 0 {
        (0..m).for_each(|r| (0..n).for_each(|c| write(r, c, 0.0)));
        return;
    }
    let lhs = Strided { ptr: lhs, rs: lhs_rs, cs: lhs_cs };
    let rhs = Strided { ptr: rhs, rs: rhs_rs, cs: rhs_cs };
    let kp = k.div_ceil(2);
    let threads = !matches!(par, Parallelism::None);
    // SAFETY: the caller's contract covers (m, k) of lhs and (k, n) of rhs.
    let (a, b) = unsafe { (pack_lhs(m, k, lhs, threads), pack_rhs(k, n, rhs, threads)) };
    let (blocks, panels) = (m.div_ceil(MR), n.div_ceil(NR));
    // Rows of the tile copied whole: a plain product into a row-major destination.
    let whole_rows = dst.cs == 1 && !read_dst && beta == 1.0;
    let one = |t: usize| {
        let (jb, ib) = (t / blocks, t % blocks);
        let mut tile = [[0.0f32; NR]; MR];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available` (asserted above); the packs hold kp·MR and kp·NR pairs here.
        unsafe {
            tile_kernel(kp, &a[ib * kp * MR..], &b[jb * kp * NR..], &mut tile)
        };
        let (r0, c0) = (ib * MR, jb * NR);
        let cols = n.min(c0 + NR) - c0;
        for (i, row) in tile.iter().enumerate().take(m - r0) {
            if whole_rows {
                // SAFETY: row r0 + i < m, columns c0..c0 + cols <= n, contiguous; this tile's only.
                unsafe { dst.row(r0 + i, c0, cols) }.copy_from_slice(&row[..cols]);
                continue;
            }
            for (j, &v) in row.iter().enumerate().take(cols) {
                write(r0 + i, c0 + j, v);
            }
        }
    };
    if threads {
        (0..panels * blocks).into_par_iter().with_min_len(4).for_each(one);
    } else {
        (0..panels * blocks).for_each(one);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm_isa::{Isa, matmul, matmul_with};

    fn operands(m: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
        let lhs = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.3) / 25.7).collect();
        let rhs = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.1) / 24.9).collect();
        (lhs, rhs)
    }

    /// `Σ_j f(a[r][j])·f(b[j][c])` in f64 and `Σ |a·b|`, per output element.
    fn reference(m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32], f: impl Fn(f32) -> f32) -> Vec<(f64, f64)> {
        (0..m * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                (0..k).fold((0.0, 0.0), |(s, a), j| {
                    let p = f(lhs[r * k + j]) as f64 * f(rhs[j * n + c]) as f64;
                    (s + p, a + p.abs())
                })
            })
            .collect()
    }

    #[test]
    fn bf16_products_round_the_operands_and_sum_in_f32() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512_BF16 (the bf16 set falls back to f32 here)");
            assert_ne!(Isa::Bf16.supported(), Isa::Bf16);
            return;
        }
        // Shapes around the 8 x 32 tile and odd k (a zero-padded last pair).
        for &(m, n, k) in &[(1, 1, 1), (7, 5, 3), (8, 32, 2), (9, 33, 17), (64, 70, 200), (100, 3, 31), (3, 100, 1001)] {
            let (lhs, rhs) = operands(m, n, k);
            let got = matmul(Isa::Bf16, m, n, k, &lhs, &rhs);
            let rounded = reference(m, n, k, &lhs, &rhs, |x| from_bf16(to_bf16(x)));
            let exact = reference(m, n, k, &lhs, &rhs, |x| x);
            let mut differs = false;
            for ((g, (r, ra)), (e, ea)) in got.iter().zip(&rounded).zip(&exact) {
                let g = *g as f64;
                // the products of the rounded operands, summed in f32
                assert!((g - r).abs() <= 1e-6 * (k as f64).sqrt() * ra + 1e-30, "{m}x{n}x{k}: {g} against {r}");
                // the product itself within bf16's rounding of both operands (2^-8 each)
                assert!((g - e).abs() <= (2f64.powi(-7) + 1e-5) * ea, "{m}x{n}x{k}: {g} against exact {e}");
                differs |= (g - e).abs() > 1e-6 * ea;
            }
            assert!(differs || k < 2, "{m}x{n}x{k}: no output shows bf16 rounding: not the bf16 kernel?");
        }
    }

    #[test]
    fn bf16_gives_the_same_bits_at_any_thread_count_and_stride() {
        let (m, n, k) = (96, 200, 75);
        let (lhs, rhs) = operands(m, n, k);
        let one = matmul(Isa::Bf16, m, n, k, &lhs, &rhs);
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let many = pool.install(|| matmul_with(Isa::Bf16, m, n, k, &lhs, &rhs, Parallelism::Rayon(threads)));
            assert!(one == many, "bf16 at {threads} threads differs from one thread");
        }
        // the transposed problem (rhsᵀ·lhsᵀ) gives the transposed result, bit for bit
        let tr = |v: &[f32], r: usize, c: usize| (0..r * c).map(|i| v[(i % r) * c + i / r]).collect::<Vec<f32>>();
        let t = matmul(Isa::Bf16, n, m, k, &tr(&rhs, k, n), &tr(&lhs, m, k));
        assert!(tr(&t, n, m) == one, "bf16: the transposed product differs");
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // just above halfway rounds up
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0)), 1.0 + 1.0 / 128.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up to the even one
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY, "f32::MAX rounds up past bf16's largest");
        assert_eq!(to_bf16(1e-40), 0, "subnormals flush to zero, as the instructions do");
        assert_eq!(to_bf16(-1e-40), 0x8000);
    }

    #[test]
    fn the_vector_packing_rounds_as_the_scalar_one() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        // ties, subnormals, NaN, infinities, the largest values, ordinary ones
        let tricky = [
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            -1.0 - 1.0 / 256.0,
            1e-40,
            -1e-40,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE,
            0.0,
            -0.0,
        ];
        let row: Vec<f32> = (0..64).map(|i| if i < tricky.len() { tricky[i] } else { (i as f32 * 0.7123).sin() * 3.3 }).collect();
        let scalar: Vec<u32> = row.chunks(2).map(|p| pair(p[0], p[1])).collect();
        let mut along = vec![0u32; 32];
        // SAFETY: 64 values readable; the CPU has the set (checked above).
        assert_eq!(unsafe { pairs_along(row.as_ptr(), &mut along) }, 32);
        assert_eq!(along, scalar, "pairs along a row");
        let mut across = vec![0u32; NR];
        // SAFETY: 32 values readable at each; the CPU has the set.
        unsafe { pairs_across(row.as_ptr(), Some(row.as_ptr().add(32)), &mut across) };
        let want: Vec<u32> = (0..NR).map(|j| pair(row[j], row[32 + j])).collect();
        assert_eq!(across, want, "pairs across two rows");
    }
}
