//! Times matrix products of cilp's shapes with each GEMM micro-kernel set (`gemm_isa`), one
//! thread: `cargo run --release -p cilp-kernels --example gemm_sets [gemm|avx2|avx512|bf16]`.
use std::time::Instant;

use cilp_kernels::gemm_isa::{Isa, matmul};

fn main() {
    let sets: Vec<Isa> = match std::env::args().nth(1) {
        Some(a) => vec![Isa::parse(&a).unwrap_or_else(|| panic!("`{a}`: expected gemm, avx2, avx512 or bf16"))],
        None => vec![Isa::Gemm, Isa::Avx2, Isa::Avx512, Isa::Bf16],
    };
    // (m, n, k), row-major: an im2col forward product, a Winograd tile product, the projector's
    // first layer at batch 32, a fusion model's 6400 -> 1000 weight gradient, the projector's
    // three layers at inference batch 256 (200 -> 1000 -> 500 -> 3200).
    let shapes = [
        (100usize, 1024usize, 450usize),
        (200, 256, 900),
        (32, 1000, 200),
        (1000, 32, 6400),
        (256, 1000, 200),
        (256, 500, 1000),
        (256, 3200, 500),
    ];
    for &(m, n, k) in &shapes {
        let lhs: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
        for &isa in &sets {
            let runs = isa.supported();
            let reps = 200;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(matmul(runs, m, n, k, &lhs, &rhs));
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{m}x{n}x{k} {} (runs {}): {:.1} us, {:.1} GFLOP/s",
                isa.name(),
                runs.name(),
                s * 1e6,
                2.0 * (m * n * k) as f64 / s / 1e9
            );
        }
    }
}
