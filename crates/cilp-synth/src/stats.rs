//! Summary statistics of generated samples, to compare with the figures of REFERENCE §1.

use crate::generate::Sample;
use crate::scene::NO_RETURN;

/// A pixel counts as lit when its brightest RGB channel is above this (out of 255). 40 is the
/// threshold that reproduces REFERENCE §1's sphere figures (18-47 lit pixels, mean 29) when applied
/// to the published screenshots of the real data, so generated counts are comparable with them.
pub const LIT_THRESHOLD: u8 = 40;

/// Per-sample figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStats {
    /// RGB pixels with max channel > [`LIT_THRESHOLD`].
    pub lit_pixels: usize,
    /// LiDAR beams with a return (depth < 50).
    pub hit_pixels: usize,
    /// Mean of the R, G and B channels scaled to [0, 1].
    pub rgb_mean: [f64; 3],
    /// Centroid (row, column) of the lit RGB pixels, weighted by brightness; None if none lit.
    pub rgb_centroid: Option<(f64, f64)>,
    /// Centroid (row, column) of the LiDAR hits; None if none.
    pub lidar_centroid: Option<(f64, f64)>,
}

pub fn sample_stats(s: &Sample) -> SampleStats {
    let mut lit = 0;
    let mut sum = [0.0f64; 3];
    let (mut wr, mut wc, mut w) = (0.0, 0.0, 0.0);
    for (i, p) in s.rgba.chunks_exact(4).enumerate() {
        for k in 0..3 {
            sum[k] += f64::from(p[k]) / 255.0;
        }
        let m = p[0].max(p[1]).max(p[2]);
        if m > LIT_THRESHOLD {
            lit += 1;
        }
        let b = f64::from(m);
        wr += b * (i / 64) as f64;
        wc += b * (i % 64) as f64;
        w += b;
    }
    let (mut hr, mut hc, mut hits) = (0.0, 0.0, 0usize);
    for (i, &d) in s.depth.iter().enumerate() {
        if d < NO_RETURN {
            hits += 1;
            hr += (i / 64) as f64;
            hc += (i % 64) as f64;
        }
    }
    let n = (s.rgba.len() / 4) as f64;
    SampleStats {
        lit_pixels: lit,
        hit_pixels: hits,
        rgb_mean: sum.map(|v| v / n),
        rgb_centroid: (w > 0.0).then(|| (wr / w, wc / w)),
        lidar_centroid: (hits > 0).then(|| (hr / hits as f64, hc / hits as f64)),
    }
}
