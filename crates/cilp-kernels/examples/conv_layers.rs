//! Times every 3x3 convolution layer shape of cilp's embedders, direct kernel against
//! Winograd F(2x2, 3x3), pass by pass (forward, input gradient, weight gradient, fused
//! conv + ReLU + MaxPool): the measurements behind `winograd::MIN_CHANNELS` and the per-layer
//! choice; then the stride-2 convolutions of the strided ablation variants (direct kernel only),
//! pass by pass, with GFLOP/s. `cargo run --release -p cilp-kernels --example conv_layers [batch] [repeats]`.

use std::time::Instant;

use cilp_kernels::conv::{self, Conv2dDims, Wanted};
use cilp_kernels::winograd::{self, Algo};

fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: scratch buffers, page faults
    (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let batch = args.first().copied().unwrap_or(32);
    let repeats = args.get(1).copied().unwrap_or(5);
    // (model, c_in, h, c_out): the NVIDIA trunk 4-50-100-200-200 and the seed trunk 4-25-50-100.
    let layers = [
        ("nvidia", 4, 64, 50),
        ("nvidia", 50, 32, 100),
        ("nvidia", 100, 16, 200),
        ("nvidia", 200, 8, 200),
        ("seed", 4, 64, 25),
        ("seed", 25, 32, 50),
        ("seed", 50, 16, 100),
    ];
    println!(
        "batch {batch}, {} threads, best of {repeats}; milliseconds, direct / F(2x2, 3x3) / F(4x4, 3x3)",
        rayon::current_num_threads()
    );
    println!(
        "{:<7} {:>4} {:>3} {:>4} | {:>24} | {:>24} | {:>24} | {:>24}",
        "trunk", "cin", "hw", "cout", "forward", "input grad", "weight grad", "fused fwd+bwd"
    );
    for (trunk, c_in, h, c_out) in layers {
        let d = Conv2dDims { batch, c_in, h, w: h, c_out, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1] };
        let x: Vec<f32> = (0..batch * c_in * h * h).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let w: Vec<f32> = (0..c_out * c_in * 9).map(|i| ((i * 104729) % 1000) as f32 / 5000.0 - 0.1).collect();
        let b = vec![0.01f32; c_out];
        let dy: Vec<f32> = (0..batch * c_out * h * h).map(|i| ((i * 31) % 100) as f32 / 50.0 - 1.0).collect();
        let (hp, wp) = d.pooled();
        let dyp: Vec<f32> = dy[..batch * c_out * hp * wp].to_vec();
        let mut cells = Vec::new();
        for pass in 0..4 {
            let time = |algo: Algo| match pass {
                0 => best_of(repeats, || drop(conv::conv2d_forward_with(&x, &w, Some(&b), &d, algo))),
                1 => best_of(repeats, || drop(conv::conv2d_backward_with(&x, &w, &dy, &d, Wanted { x: true, w: false, b: false }, algo))),
                2 => best_of(repeats, || drop(conv::conv2d_backward_with(&x, &w, &dy, &d, Wanted { x: false, w: true, b: true }, algo))),
                _ => best_of(repeats, || {
                    let out = conv::conv2d_relu_maxpool_forward_with(&x, &w, &b, &d, algo);
                    drop(conv::conv2d_relu_maxpool_backward_with(
                        &x,
                        &w,
                        &dyp,
                        &out.arg,
                        &d,
                        Wanted { x: c_in > 4, w: true, b: true },
                        algo,
                    ));
                }),
            };
            let direct = time(Algo::Direct);
            let wino = if winograd::applies(&d) { time(Algo::Winograd) } else { f64::NAN };
            let wino4 = if winograd::applies_4x4(&d) { time(Algo::Winograd4) } else { f64::NAN };
            cells.push(format!("{:>6.2} / {:>6.2} / {:>6.2}", direct * 1e3, wino * 1e3, wino4 * 1e3));
        }
        println!("{trunk:<7} {c_in:>4} {h:>3} {c_out:>4} | {}", cells.join(" | "));
    }
    strided(batch, repeats);
}

/// The strided ablation's `Conv2d(C, C, 3, stride 2, pad 1)` in place of each MaxPool (seed trunk
/// 4-25-50-100 first, then the NVIDIA-sized channels), pass by pass: milliseconds (GFLOP/s).
fn strided(batch: usize, repeats: usize) {
    println!("\nstride-2 3x3 convolutions (direct), ms (GFLOP/s)");
    println!("{:>4} {:>3} | {:>16} | {:>16} | {:>16}", "c", "hw", "forward", "input grad", "weight grad");
    let mut seed_trunk = 0.0;
    for (c, h) in [(25, 64), (50, 32), (100, 16), (50, 64), (100, 32), (200, 16), (200, 8)] {
        let d = Conv2dDims { batch, c_in: c, h, w: h, c_out: c, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] };
        let x: Vec<f32> = (0..batch * c * h * h).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let w: Vec<f32> = (0..c * c * 9).map(|i| ((i * 104729) % 1000) as f32 / 5000.0 - 0.1).collect();
        let b = vec![0.01f32; c];
        let dy: Vec<f32> = (0..batch * c * d.p()).map(|i| ((i * 31) % 100) as f32 / 50.0 - 1.0).collect();
        let flops = 2.0 * (batch * c * d.k() * d.p()) as f64;
        let grads = |want: Wanted| best_of(repeats, || drop(conv::conv2d_backward_with(&x, &w, &dy, &d, want, Algo::Direct)));
        let times = [
            best_of(repeats, || drop(conv::conv2d_forward_with(&x, &w, Some(&b), &d, Algo::Direct))),
            grads(Wanted { x: true, w: false, b: false }),
            grads(Wanted { x: false, w: true, b: true }),
        ];
        if [(25, 64), (50, 32), (100, 16)].contains(&(c, h)) {
            seed_trunk += times.iter().sum::<f64>();
        }
        let cells: Vec<String> = times.iter().map(|t| format!("{:>7.2} ({:>5.1})", t * 1e3, flops / t / 1e9)).collect();
        println!("{c:>4} {h:>3} | {}", cells.join(" | "));
    }
    println!("the seed trunk's three (25, 50, 100 channels), all passes: {:.2} ms", seed_trunk * 1e3);
}
