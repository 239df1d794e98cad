//! The linear layer `y = x·W + b` (burn's layout: `W [d_in, d_out]`) and its two gradient
//! products on plain `f32` slices, with the same GEMM calls burn's flex backend makes, so on the
//! same micro-kernels ([`crate::gemm_isa::Isa::Gemm`], what burn's matmul runs) the results are
//! bit-identical to `burn::nn::Linear` on flex; what differs is the memory around them. The
//! per-CPU default ([`crate::gemm_isa::auto_isa`]) can pick other kernels on AVX-512 CPUs, which
//! round differently.
//!
//! burn-flex allocates every matmul output with `FlexTensor::empty`, which zero-fills a byte
//! vector and then copies it into a 64-byte aligned buffer before the GEMM overwrites it: three
//! passes over the output, on the calling thread, while rayon's threads wait. For the fusion
//! models' `6400 -> 1000` layers that is 3 x 25.6 MB per weight gradient per step (about 15% of a
//! late-fusion step at batch 16 on a 2-core Xeon, all of it serial). Here each output is one
//! fresh allocation the GEMM writes once (`read_dst = false`), and the bias is added in place.
//!
//! - forward: `y[rows, d_out] = x[rows, d_in] · W[d_in, d_out]`, then `+ b` per row;
//! - input gradient: `dx[rows, d_in] = dy[rows, d_out] · Wᵀ` (W read transposed by strides);
//! - weight gradient: `dW[d_in, d_out] = xᵀ · dy` (x read transposed by strides).
//!
//! The bias gradient (a column sum of `dy`) stays burn's own reduction (see
//! [`crate::burn_ext`]), so it is bit-identical too.
//!
//! cilp's kernel sets split each product big enough for threads into four ranges of output
//! columns run in parallel ([`column_split`]): the same bits at any thread count, up to twice as
//! fast on two threads at batch 8-32, and 1.1-1.4x at inference batch 256.

use rayon::prelude::*;

use crate::gemm_isa::{Isa, Op, Parallelism, Pass, isa_for, sgemm};

/// burn-flex's threshold for a parallel GEMM (`m·n·k` multiply-adds), kept the same so a
/// layer runs the way burn runs it (gemm's results do not depend on the thread count).
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;

fn parallelism(m: usize, n: usize, k: usize) -> Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD { Parallelism::Rayon(0) } else { Parallelism::None }
}

/// A strided read-only matrix: element `(r, c)` at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl View<'_> {
    /// Whether every `(r, c)` of the view lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `lhs[m, k] · rhs[k, n]` into a fresh row-major `[m, n]` vector, written once by the GEMM
/// (no zero-filling first).
fn product(isa: Isa, lhs: View, rhs: View) -> Vec<f32> {
    product_in(isa, lhs, rhs, Layout::RowMajor)
}

/// How a product's GEMM writes its output.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    /// Row-major `[m, n]`, the result itself. The gemm crate then computes the transposed
    /// product (its kernels prefer a column-major destination): `rhsᵀ` becomes its left-hand
    /// matrix, which it packs unless `rhs` is row-major.
    RowMajor,
    /// Column-major `[m, n]` (its transpose, row-major `[n, m]`), transposed afterwards: the
    /// gemm crate keeps `lhs · rhs` and, with few rows `m`, reads `rhs` in place.
    ColMajor,
}

/// [`product`] with the GEMM writing in `layout`; the same values either way on one CPU (each
/// output is the same sum in the same order; tested on the model shapes).
fn product_in(isa: Isa, lhs: View, rhs: View, layout: Layout) -> Vec<f32> {
    let (m, n) = (lhs.rows, rhs.cols);
    let out = product_raw(isa, lhs, rhs, layout);
    if layout == Layout::RowMajor || m <= 1 || n <= 1 {
        return out;
    }
    crate::transposed(&out, n, m)
}

/// [`product_in`] before the transposition: the GEMM's output in `layout`.
fn product_raw(isa: Isa, lhs: View, rhs: View, layout: Layout) -> Vec<f32> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "linear: inner dimensions differ");
    assert!(lhs.fits() && rhs.fits(), "linear: operand shorter than its shape");
    let len = m.checked_mul(n).expect("linear: output size overflows");
    if k == 0 || len == 0 {
        return vec![0.0; len];
    }
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let par = parallelism(m, n, k);
    let split = column_split(isa, n, par);
    let dst = SendPtr(out.as_mut_ptr());
    // Output columns c0..c1 (and the same columns of `rhs`) as one GEMM with parallelism `par`.
    let columns = |c0: usize, c1: usize, par: Parallelism| {
        let dst = &dst;
        // SAFETY: `out` has capacity for `m·n` f32s; this call writes `r·n + c` for every r < m
        // and c in c0..c1 (`read_dst = false`: it neither reads `dst` nor leaves an element of
        // the range unwritten), and concurrent calls get disjoint column ranges; `lhs` and `rhs`
        // (from column c0, `c0·cs` past its start) address only elements inside their live,
        // borrowed slices (`fits`, checked above), which nothing writes during the call.
        let (at, dst_cs, dst_rs) = match layout {
            Layout::RowMajor => (c0, 1, n as isize),
            Layout::ColMajor => (c0 * m, m as isize, 1),
        };
        unsafe {
            sgemm(
                isa,
                m,
                c1 - c0,
                k,
                dst.0.add(at),
                dst_cs,
                dst_rs,
                false,
                lhs.data.as_ptr(),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr().add(c0 * rhs.cs),
                rhs.cs as isize,
                rhs.rs as isize,
                0.0,
                1.0,
                par,
            )
        };
    };
    if split > 1 {
        // Few samples: fixed column ranges, each one single-threaded GEMM (see `column_split`).
        let width = n.div_ceil(split).next_multiple_of(SPLIT_ALIGN);
        (0..n.div_ceil(width)).into_par_iter().for_each(|p| columns(p * width, ((p + 1) * width).min(n), Parallelism::None));
    } else {
        columns(0, n, par);
    }
    // SAFETY: the calls above wrote every (r, c) < (m, n) (their column ranges cover 0..n).
    unsafe { out.set_len(len) };
    out
}

/// Column ranges start at multiples of this (whole AVX-512 vectors).
const SPLIT_ALIGN: usize = 16;

/// How many column ranges a product `[m, k] · [k, n]` is split into, run in parallel (1: not
/// split, the GEMM's own parallelism `par` applies).
///
/// With few samples (a batch of 8-64 through a `6400 -> 1000` layer: `m` of the forward pass
/// and the input gradient, `k` of the weight gradient) the gemm crate's own split over two
/// threads ran its AVX-512 kernels slower than one thread (a forward pass: 3.3 ms on one
/// thread, 6.7 ms on two, batch 8, 2-core Intel Xeon); with the weight gradients split too the
/// projector trained 2-8% faster at batch 8-32 on two threads. With many samples the gemm
/// crate's own split scaled badly too: the projector's inference (batch 256, `200 -> 1000 ->
/// 500 -> 3200`) ran 1.2-1.3x as fast on two threads as on one, split here 1.75x (session 22,
/// same 2-core Xeon: 36-40k -> 41-43k samples/s, three alternating pairs; trained at batch 128
/// 4.8-6.3k -> 7.4-9.3k).
/// Here each range of output columns (and of the right-hand matrix) is one single-threaded GEMM;
/// the ranges depend on the shape only, so the results are bit-identical at any thread count
/// (tested; an earlier version with one range per thread was not: the gemm crate's blocking
/// depends on the width it is given). [`Isa::Gemm`] keeps the gemm
/// crate's own parallelism: it makes the calls burn makes.
fn column_split(isa: Isa, n: usize, par: Parallelism) -> usize {
    // Bf16 packs both operands and splits its tiles over the threads itself.
    if matches!(isa, Isa::Gemm | Isa::Bf16) || matches!(par, Parallelism::None) || n < 2 * SPLIT_ALIGN {
        return 1;
    }
    // A count fixed by the shape, never by the thread count: the gemm crate's blocking depends on
    // the width it is given, so one thread must compute the same ranges as two.
    SPLIT_RANGES.min(n / SPLIT_ALIGN)
}

/// Column ranges of a split product (run in parallel over rayon's threads, in turn on one).
const SPLIT_RANGES: usize = 4;

/// A raw output pointer shared by the GEMM calls of one product (each writes its own columns).
struct SendPtr(*mut f32);
// SAFETY: the calls that share it write disjoint elements (see `product`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Shapes of one linear layer call: `rows` samples, `d_in -> d_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearDims {
    pub rows: usize,
    pub d_in: usize,
    pub d_out: usize,
}

/// `y = x·W (+ b)`: `x [rows, d_in]`, `w [d_in, d_out]`, `b [d_out]` -> `[rows, d_out]`.
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, d: LinearDims) -> Vec<f32> {
    linear_forward_for(Pass::Infer, x, w, b, d)
}

/// [`linear_forward`] with the GEMM micro-kernels chosen for `pass` ([`isa_for`]).
pub fn linear_forward_for(pass: Pass, x: &[f32], w: &[f32], b: Option<&[f32]>, d: LinearDims) -> Vec<f32> {
    assert_eq!(x.len(), d.rows * d.d_in, "linear: input length");
    assert_eq!(w.len(), d.d_in * d.d_out, "linear: weight length");
    let xv = View { data: x, rows: d.rows, cols: d.d_in, rs: d.d_in, cs: 1 };
    let wv = View { data: w, rows: d.d_in, cols: d.d_out, rs: d.d_out, cs: 1 };
    let mut y = product(isa_for(Op::Linear, pass), xv, wv);
    if let Some(b) = b {
        assert_eq!(b.len(), d.d_out, "linear: bias length");
        if d.d_out > 0 {
            for row in y.chunks_exact_mut(d.d_out) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v += bias;
                }
            }
        }
    }
    y
}

/// `dx = dy·Wᵀ`: `dy [rows, d_out]`, `w [d_in, d_out]` -> `[rows, d_in]`.
pub fn linear_input_grad(dy: &[f32], w: &[f32], d: LinearDims) -> Vec<f32> {
    assert_eq!(dy.len(), d.rows * d.d_out, "linear: output-gradient length");
    assert_eq!(w.len(), d.d_in * d.d_out, "linear: weight length");
    let dyv = View { data: dy, rows: d.rows, cols: d.d_out, rs: d.d_out, cs: 1 };
    let wt = View { data: w, rows: d.d_out, cols: d.d_in, rs: 1, cs: d.d_out };
    let isa = isa_for(Op::Linear, Pass::Train);
    product_in(isa, dyv, wt, input_grad_layout(isa, d.rows))
}

/// The most samples (rows of `x` and `dy`) the input gradient is written column-major for (see
/// [`input_grad_layout`]).
const COLUMN_MAJOR_MAX_ROWS: usize = 64;

/// The input gradient's layout: column-major for at most [`COLUMN_MAJOR_MAX_ROWS`] samples on cilp's
/// kernel sets. Row-major, the gemm crate packs all of `W` (its left-hand matrix then) on every
/// call: a read and a write of 25.6 MB per step for a `6400 -> 1000` layer. Column-major it
/// reads `W` once, in place. One 2-core Intel Xeon (AVX-512), `6400 -> 1000`, one thread: batch
/// 16 6.1 -> 3.4 ms (AVX-512 kernels) and 5.1 -> 2.8 ms (AVX2), batch 64 1.09-1.47x, batch 128
/// level, batch 256 0.86-0.90x (so not there); `1000 -> 2304` at batch 16 1.9-2.1x; two
/// threads 1.01-2.9x up to batch 64. [`Isa::Gemm`] keeps burn's calls.
fn input_grad_layout(isa: Isa, rows: usize) -> Layout {
    // Bf16 packs `W` whatever the layout.
    if !matches!(isa, Isa::Gemm | Isa::Bf16) && rows <= COLUMN_MAJOR_MAX_ROWS { Layout::ColMajor } else { Layout::RowMajor }
}

/// `dW = xᵀ·dy`: `x [rows, d_in]`, `dy [rows, d_out]` -> `[d_in, d_out]`.
pub fn linear_weight_grad(x: &[f32], dy: &[f32], d: LinearDims) -> Vec<f32> {
    assert_eq!(x.len(), d.rows * d.d_in, "linear: input length");
    assert_eq!(dy.len(), d.rows * d.d_out, "linear: output-gradient length");
    let xt = View { data: x, rows: d.d_in, cols: d.rows, rs: 1, cs: d.d_in };
    let dyv = View { data: dy, rows: d.rows, cols: d.d_out, rs: d.d_out, cs: 1 };
    product(isa_for(Op::Linear, Pass::Train), xt, dyv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// f64 loops: y, dx, dW of one layer.
    fn reference(x: &[f32], w: &[f32], b: &[f32], dy: &[f32], d: LinearDims) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (r, i, o) = (d.rows, d.d_in, d.d_out);
        let mut y = vec![0.0f64; r * o];
        let mut dx = vec![0.0f64; r * i];
        let mut dw = vec![0.0f64; i * o];
        for s in 0..r {
            for a in 0..i {
                for c in 0..o {
                    y[s * o + c] += x[s * i + a] as f64 * w[a * o + c] as f64;
                    dx[s * i + a] += dy[s * o + c] as f64 * w[a * o + c] as f64;
                    dw[a * o + c] += x[s * i + a] as f64 * dy[s * o + c] as f64;
                }
            }
            for c in 0..o {
                y[s * o + c] += b[c] as f64;
            }
        }
        (y, dx, dw)
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (j, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(((*g as f64) - w).abs() <= 1e-5 * scale, "{what}[{j}]: {g} vs {w}");
        }
    }

    #[test]
    fn the_three_products_match_f64_loops_on_small_and_parallel_shapes() {
        // (rows, d_in, d_out): tiny, odd, and one above the parallel threshold.
        for (n, &(rows, d_in, d_out)) in [(1, 1, 1), (3, 5, 7), (16, 640, 100), (32, 200, 1000)].iter().enumerate() {
            let d = LinearDims { rows, d_in, d_out };
            let seed = 10 * n as u64;
            let (x, w, b, dy) =
                (random(rows * d_in, seed), random(d_in * d_out, seed + 1), random(d_out, seed + 2), random(rows * d_out, seed + 3));
            let (y, dx, dw) = reference(&x, &w, &b, &dy, d);
            close(&linear_forward(&x, &w, Some(&b), d), &y, "y");
            close(&linear_forward_for(Pass::Train, &x, &w, Some(&b), d), &y, "y (training kernels)");
            close(&linear_input_grad(&dy, &w, d), &dx, "dx");
            close(&linear_weight_grad(&x, &dy, d), &dw, "dW");
        }
    }

    #[test]
    fn bf16_products_stay_within_bf16_rounding_on_the_layers_strided_views() {
        if Isa::Bf16.supported() != Isa::Bf16 {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        // (rows, d_in, d_out): odd, and the projector's 200 -> 1000 above the parallel threshold.
        for &(rows, d_in, d_out) in &[(3, 5, 7), (33, 70, 45), (256, 200, 1000)] {
            let (x, w, dy) = (random(rows * d_in, 1), random(d_in * d_out, 2), random(rows * d_out, 3));
            // the forward pass, the input gradient (Wᵀ read by strides), the weight gradient (xᵀ)
            let views = [
                (View { data: &x, rows, cols: d_in, rs: d_in, cs: 1 }, View { data: &w, rows: d_in, cols: d_out, rs: d_out, cs: 1 }),
                (View { data: &dy, rows, cols: d_out, rs: d_out, cs: 1 }, View { data: &w, rows: d_out, cols: d_in, rs: 1, cs: d_out }),
                (View { data: &x, rows: d_in, cols: rows, rs: 1, cs: d_in }, View { data: &dy, rows, cols: d_out, rs: d_out, cs: 1 }),
            ];
            for (pi, (lhs, rhs)) in views.into_iter().enumerate() {
                let got = product(Isa::Bf16, lhs, rhs);
                let at = |v: View, r: usize, c: usize| v.data[r * v.rs + c * v.cs] as f64;
                for r in 0..lhs.rows {
                    for c in 0..rhs.cols {
                        let (e, a) = (0..lhs.cols).fold((0.0, 0.0), |(e, a), j| {
                            let p = at(lhs, r, j) * at(rhs, j, c);
                            (e + p, a + p.abs())
                        });
                        let g = got[r * rhs.cols + c] as f64;
                        assert!(
                            (g - e).abs() <= (2f64.powi(-7) + 1e-5) * a,
                            "product {pi} {rows}x{d_in}x{d_out} ({r}, {c}): {g} against {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let d = LinearDims { rows: 32, d_in: 500, d_out: 3200 };
        let (x, w, b, dy) = (random(32 * 500, 1), random(500 * 3200, 2), random(3200, 3), random(32 * 3200, 4));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| (linear_forward(&x, &w, Some(&b), d), linear_input_grad(&dy, &w, d), linear_weight_grad(&x, &dy, d)))
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(one == run(threads), "results changed with {threads} threads");
        }
    }

    #[test]
    fn products_split_by_columns_equal_the_unsplit_product_bit_for_bit() {
        // The same fixed column ranges on any number of threads; every kernel set the CPU runs
        // must give the one-thread product's bits, for widths that split evenly and that do not
        // (1000 = the fusion models' layer, 1001 odd), few rows (training batches) and many (an
        // inference batch of 256 through the projector's last layer).
        let sets: Vec<Isa> = [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported() == *i).collect();
        for &(rows, k, n) in &[(8, 6400, 1000), (16, 700, 1001), (64, 300, 3200), (256, 500, 3200)] {
            assert!(!matches!(parallelism(rows, n, k), Parallelism::None), "({rows}, {k}, {n}) must be big enough to split");
            let (x, w) = (random(rows * k, 5), random(k * n, 6));
            let lhs = View { data: &x, rows, cols: k, rs: k, cs: 1 };
            let rhs = View { data: &w, rows: k, cols: n, rs: n, cs: 1 };
            let wt = View { data: &w, rows: n, cols: k, rs: 1, cs: n }; // the input gradient's Wᵀ
            let dy = random(rows * n, 7);
            let dyv = View { data: &dy, rows, cols: n, rs: n, cs: 1 };
            let xt = View { data: &x, rows: k, cols: rows, rs: 1, cs: k }; // the weight gradient's xᵀ
            for &isa in &sets {
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| {
                        // The forward product and the weight gradient both have `n` output columns and
                        // `rows·n·k` multiply-adds, so they split alike: one split to check.
                        (
                            column_split(isa, n, parallelism(rows, n, k)),
                            product(isa, lhs, rhs),
                            product(isa, dyv, wt),
                            product(isa, xt, dyv),
                        )
                    })
                };
                let (one_split, y1, dx1, dw1) = run(1);
                assert_eq!(one_split, SPLIT_RANGES, "({rows}, {k}, {n}) should split into the same ranges on one thread");
                for threads in [2, 3] {
                    let (split, y, dx, dw) = run(threads);
                    assert_eq!(split, one_split, "{threads} threads should split ({rows}, {k}, {n}) as one does");
                    assert!(dw == dw1, "{isa:?}, ({rows}, {k}, {n}): the weight gradient changed with {threads} column ranges");
                    assert!(y == y1, "{isa:?}, ({rows}, {k}, {n}): the forward product changed with {threads} column ranges");
                    assert!(dx == dx1, "{isa:?}, ({rows}, {k}, {n}): the input gradient changed with {threads} column ranges");
                }
            }
        }
    }

    #[test]
    fn both_layouts_give_the_product_and_small_batches_take_the_column_major_one() {
        // The fusion models' input-gradient shapes (dx = dy · Wᵀ) and odd ones, every kernel set
        // the CPU runs: the column-major output, transposed back, is the same product.
        let sets: Vec<Isa> = [Isa::Gemm, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.supported() == *i).collect();
        for &(rows, d_in, d_out) in &[(16, 6400, 1000), (8, 1000, 2304), (3, 17, 33), (1, 40, 7), (64, 100, 1)] {
            let (dy, w) = (random(rows * d_out, 8), random(d_in * d_out, 9));
            let dyv = View { data: &dy, rows, cols: d_out, rs: d_out, cs: 1 };
            let wt = View { data: &w, rows: d_out, cols: d_in, rs: 1, cs: d_out };
            let (_, want, _) = reference(&vec![0.0; rows * d_in], &w, &vec![0.0; d_out], &dy, LinearDims { rows, d_in, d_out });
            for &isa in &sets {
                for layout in [Layout::RowMajor, Layout::ColMajor] {
                    close(&product_in(isa, dyv, wt, layout), &want, &format!("{isa:?} {layout:?} ({rows}, {d_in}, {d_out})"));
                }
                let chosen = input_grad_layout(isa, rows);
                assert_eq!(chosen == Layout::ColMajor, isa != Isa::Gemm, "{isa:?}: {rows} rows");
            }
        }
        assert_eq!(input_grad_layout(Isa::Avx2, COLUMN_MAJOR_MAX_ROWS + 1), Layout::RowMajor);
    }

    #[test]
    fn empty_shapes_give_empty_or_zero_outputs() {
        let d = LinearDims { rows: 2, d_in: 0, d_out: 3 };
        assert_eq!(linear_forward(&[], &[], Some(&[1.0, 2.0, 3.0]), d), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        assert_eq!(linear_weight_grad(&[], &[0.5; 6], d), Vec::<f32>::new());
        assert_eq!(linear_input_grad(&[0.5; 6], &[], d), Vec::<f32>::new());
        let d = LinearDims { rows: 0, d_in: 4, d_out: 3 };
        assert_eq!(linear_weight_grad(&[], &[], d), vec![0.0; 12]);
    }
}
