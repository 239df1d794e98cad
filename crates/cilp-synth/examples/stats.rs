//! Prints the generated statistics next to REFERENCE §1's figures.
//! `cargo run -p cilp-synth --example stats --release -- [N]`
use cilp_synth::{GenerateOptions, ObjectClass, render_sample, stats::sample_stats};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let opts = GenerateOptions::default();
    let mut all_means = [0.0f64; 3];
    for class in [ObjectClass::Cubes, ObjectClass::Spheres] {
        let st: Vec<_> = (0..n).map(|i| sample_stats(&render_sample(class, i, &opts))).collect();
        let lit: Vec<usize> = st.iter().map(|s| s.lit_pixels).collect();
        let hit: Vec<usize> = st.iter().map(|s| s.hit_pixels).collect();
        let pct = |v: &[usize], p: f64| {
            let mut v = v.to_vec();
            v.sort();
            v[((v.len() - 1) as f64 * p) as usize]
        };
        let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len() as f64;
        let m = st.iter().fold([0.0; 3], |a, s| [a[0] + s.rgb_mean[0], a[1] + s.rgb_mean[1], a[2] + s.rgb_mean[2]]).map(|v| v / n as f64);
        for k in 0..3 {
            all_means[k] += m[k] / 2.0;
        }
        println!(
            "{class:8} lit: min {} p5 {} p50 {} p95 {} max {} mean {:.1} | lidar hits: min {} p5 {} p50 {} p95 {} max {} mean {:.1} | rgb mean {:.4} {:.4} {:.4}",
            pct(&lit, 0.0),
            pct(&lit, 0.05),
            pct(&lit, 0.5),
            pct(&lit, 0.95),
            pct(&lit, 1.0),
            mean(&lit),
            pct(&hit, 0.0),
            pct(&hit, 0.05),
            pct(&hit, 0.5),
            pct(&hit, 0.95),
            pct(&hit, 1.0),
            mean(&hit),
            m[0],
            m[1],
            m[2]
        );
    }
    println!("both     rgb mean {:.4} {:.4} {:.4} (REFERENCE ~0.0052)", all_means[0], all_means[1], all_means[2]);
}
