//! Measures `Dataset::open` on a full-size dataset.
//!
//! ```text
//! cargo run --release -p cilp-data --example load_bench -- DIR [PER_CLASS]
//! ```
//! If `DIR` does not exist, it is first filled with `PER_CLASS` (default 9,999) random but
//! valid pairs per class (cubes, spheres): mostly black RGBA images with one small coloured
//! blob and depth maps at 50 m with one blob of returns, so file sizes resemble the real data.

use std::path::Path;
use std::time::Instant;

use cilp_data::dataset::{Dataset, LoadOptions};
use cilp_data::image::write_rgba_png;
use cilp_data::npy::write_npy;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

fn generate(root: &Path, per_class: usize) {
    let angles: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.5 - 16.0).to_radians()).collect();
    for (c, name) in ["cubes", "spheres"].iter().enumerate() {
        let d = root.join(name);
        std::fs::create_dir_all(d.join("rgb")).unwrap();
        std::fs::create_dir_all(d.join("lidar")).unwrap();
        write_npy(&d.join("azimuth.npy"), &[64], &angles).unwrap();
        write_npy(&d.join("zenith.npy"), &[64], &angles).unwrap();
        (0..per_class).into_par_iter().for_each(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64((c * 1_000_000 + i) as u64);
            let mut rgb = vec![0u8; 64 * 64 * 4];
            for p in rgb.chunks_exact_mut(4) {
                p[3] = 255;
            }
            let (cr, cc) = (rng.random_range(8..56usize), rng.random_range(8..56usize));
            let colour = [rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()];
            for r in cr - 3..cr + 3 {
                for k in cc - 3..cc + 3 {
                    let shade = rng.random_range(0.5..1.0f32);
                    for ch in 0..3 {
                        rgb[(r * 64 + k) * 4 + ch] = (colour[ch] as f32 * shade) as u8;
                    }
                }
            }
            let mut depth = vec![50.0f32; 64 * 64];
            let (dr, dc) = (rng.random_range(10..54usize), rng.random_range(10..54usize));
            let base = rng.random_range(18.0..32.0f32);
            for r in dr - 6..dr + 6 {
                for k in dc - 6..dc + 6 {
                    depth[r * 64 + k] = base + rng.random_range(-1.5..1.5f32);
                }
            }
            write_rgba_png(&d.join("rgb").join(format!("{i:04}.png")), 64, 64, &rgb).unwrap();
            write_npy(&d.join("lidar").join(format!("{i:04}.npy")), &[64, 64], &depth).unwrap();
        });
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: load_bench DIR [PER_CLASS]");
    let per_class: usize = args.next().map(|s| s.parse().expect("PER_CLASS must be a number")).unwrap_or(9999);
    let root = Path::new(&dir);
    if !root.exists() {
        let t = Instant::now();
        generate(root, per_class);
        eprintln!("generated 2 x {per_class} pairs in {:.1}s", t.elapsed().as_secs_f64());
    }
    for run in 0..2 {
        let t = Instant::now();
        let (ds, report) = Dataset::open(root, &LoadOptions::default()).expect("load");
        let s = t.elapsed().as_secs_f64();
        println!(
            "run {run}: {} pairs in {s:.2}s = {:.0} pairs/s on {} threads, {:.1} MiB in memory{}",
            ds.len(),
            ds.len() as f64 / s,
            rayon::current_num_threads(),
            ds.memory_bytes() as f64 / (1 << 20) as f64,
            if report.is_clean() { String::new() } else { format!("\n{report}") }
        );
    }
}
