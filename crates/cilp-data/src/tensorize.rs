//! Turning one sample into plain channels-first `f32` buffers for the training engine.
//!
//! All outputs are planar (CHW): channel `c`, row `r`, column `k` lives at
//! `out[c * 64 * 64 + r * 64 + k]`. For LiDAR inputs rows follow azimuth (row `r` uses
//! `az[r]`) and columns follow zenith (column `k` uses `ze[k]`).
//!
//! The functions panic if a buffer has the wrong length: that is a programming error, not bad
//! input (the dataset reader has already checked every file).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dataset::{DEPTH_LEN, NO_RETURN, RGBA_LEN};
use crate::image::IMAGE_SIZE;

/// Values in one 64x64 plane.
pub const PLANE: usize = IMAGE_SIZE * IMAGE_SIZE;
/// Length of the [`rgb_chw`] output: `[4, 64, 64]`.
pub const RGB_CHW_LEN: usize = 4 * PLANE;
/// Length of the [`depth_to_xyza`] output: `[4, 64, 64]`.
pub const XYZA_CHW_LEN: usize = 4 * PLANE;
/// Length of the [`depth_chw`] output: `[1, 64, 64]`.
pub const DEPTH_CHW_LEN: usize = PLANE;

/// How LiDAR depth becomes the four XYZA channels. With `d = depth[r][k]`, `az = az[r]`,
/// `ze = ze[k]` and `a = 1 if d < 50.0 else 0` (see [`NO_RETURN`]):
///
/// | convention | x | y | z | a |
/// |---|---|---|---|---|
/// | `nvidia` | `d*sin(-az)` | `d*cos(-az)` | `d*sin(-ze)` | `a` |
/// | `spherical` | `d*sin(-az)*cos(-ze)` | `d*cos(-az)*cos(-ze)` | `d*sin(-ze)` | `a` |
/// | `seed` | `a*d*sin(-az)*cos(-ze)/50` | `a*d*cos(-az)*cos(-ze)/50` | `a*d*sin(-ze)/50` | `a` |
///
/// Serialised in kebab-case: `"nvidia"`, `"spherical"`, `"seed"`. The default is `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XyzaConvention {
    /// NVIDIA's assessment notebook: `x = d*sin(-az)`, `y = d*cos(-az)`, `z = d*sin(-ze)`,
    /// `a = [d < 50]`. It omits the `cos(-ze)` factor on x and y (so the points are not exactly
    /// on the beam), keeps no-return beams at range 50 and does not rescale.
    Nvidia,
    /// Proper spherical-to-Cartesian conversion (left-handed, z up, y forward), what most
    /// re-implementations do: `x = d*sin(-az)*cos(-ze)`, `y = d*cos(-az)*cos(-ze)`,
    /// `z = d*sin(-ze)`, `a = [d < 50]`. No-return beams keep their range-50 coordinates.
    Spherical,
    /// The seed implementation: the `spherical` formulas, then x, y and z are set to 0 where
    /// `a = 0` (no return) and divided by 50 (so hits lie in about `[-1, 1]`):
    /// `x = a*d*sin(-az)*cos(-ze)/50`, `y = a*d*cos(-az)*cos(-ze)/50`, `z = a*d*sin(-ze)/50`.
    #[default]
    Seed,
}

impl XyzaConvention {
    /// Every convention, in documentation order.
    pub const ALL: [XyzaConvention; 3] = [XyzaConvention::Nvidia, XyzaConvention::Spherical, XyzaConvention::Seed];

    /// The kebab-case name (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            XyzaConvention::Nvidia => "nvidia",
            XyzaConvention::Spherical => "spherical",
            XyzaConvention::Seed => "seed",
        }
    }
}

impl fmt::Display for XyzaConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for XyzaConvention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XyzaConvention::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown XYZA convention {s:?} (expected nvidia, spherical or seed)"))
    }
}

/// RGBA bytes (HWC, `64*64*4`) to `[4, 64, 64]` floats in `[0, 1]` (`v / 255`), channel order
/// R, G, B, A.
///
/// # Panics
/// If `rgba.len() != 64*64*4` or `out.len() != 4*64*64`.
pub fn rgb_chw(rgba: &[u8], out: &mut [f32]) {
    assert_eq!(rgba.len(), RGBA_LEN, "rgb_chw: input must be 64x64 RGBA");
    assert_eq!(out.len(), RGB_CHW_LEN, "rgb_chw: output must be [4, 64, 64]");
    let (r, rest) = out.split_at_mut(PLANE);
    let (g, rest) = rest.split_at_mut(PLANE);
    let (b, a) = rest.split_at_mut(PLANE);
    // Division (not multiplication by 1/255) gives exactly torchvision's `ToTensor` values.
    for (i, px) in rgba.chunks_exact(4).enumerate() {
        r[i] = px[0] as f32 / 255.0;
        g[i] = px[1] as f32 / 255.0;
        b[i] = px[2] as f32 / 255.0;
        a[i] = px[3] as f32 / 255.0;
    }
}

/// Raw depth (metres, `64*64`) to `[1, 64, 64]`: a plain copy, as NVIDIA's LiDAR encoders take it.
///
/// # Panics
/// If either buffer is not `64*64` long.
pub fn depth_chw(depth: &[f32], out: &mut [f32]) {
    assert_eq!(depth.len(), DEPTH_LEN, "depth_chw: input must be 64x64");
    assert_eq!(out.len(), DEPTH_CHW_LEN, "depth_chw: output must be [1, 64, 64]");
    out.copy_from_slice(depth);
}

/// Depth (`64*64`, rows = azimuth, columns = zenith) to `[4, 64, 64]` XYZA with the given
/// [`XyzaConvention`]; `az` and `ze` are the class's `azimuth.npy` and `zenith.npy` (radians).
///
/// # Panics
/// If `depth` is not `64*64`, `az`/`ze` are not 64 long, or `out` is not `4*64*64`.
pub fn depth_to_xyza(depth: &[f32], az: &[f32], ze: &[f32], convention: XyzaConvention, out: &mut [f32]) {
    assert_eq!(depth.len(), DEPTH_LEN, "depth_to_xyza: depth must be 64x64");
    assert_eq!(az.len(), IMAGE_SIZE, "depth_to_xyza: azimuth must have 64 entries");
    assert_eq!(ze.len(), IMAGE_SIZE, "depth_to_xyza: zenith must have 64 entries");
    assert_eq!(out.len(), XYZA_CHW_LEN, "depth_to_xyza: output must be [4, 64, 64]");
    // Trigonometry once per row / column, not per pixel.
    let mut sin_az = [0f32; IMAGE_SIZE];
    let mut cos_az = [0f32; IMAGE_SIZE];
    let mut sin_ze = [0f32; IMAGE_SIZE];
    let mut cos_ze = [0f32; IMAGE_SIZE];
    for i in 0..IMAGE_SIZE {
        (sin_az[i], cos_az[i]) = (-az[i]).sin_cos();
        (sin_ze[i], cos_ze[i]) = (-ze[i]).sin_cos();
    }
    if convention == XyzaConvention::Nvidia {
        cos_ze = [1.0; IMAGE_SIZE];
    }
    let seed = convention == XyzaConvention::Seed;
    let (xs, rest) = out.split_at_mut(PLANE);
    let (ys, rest) = rest.split_at_mut(PLANE);
    let (zs, as_) = rest.split_at_mut(PLANE);
    for r in 0..IMAGE_SIZE {
        let row = r * IMAGE_SIZE..(r + 1) * IMAGE_SIZE;
        let d_row = &depth[row.clone()];
        let (x, y, z, a) = (&mut xs[row.clone()], &mut ys[row.clone()], &mut zs[row.clone()], &mut as_[row]);
        for k in 0..IMAGE_SIZE {
            let d = d_row[k];
            let hit = d < NO_RETURN;
            let scale = if seed { if hit { d / NO_RETURN } else { 0.0 } } else { d };
            x[k] = scale * sin_az[r] * cos_ze[k];
            y[k] = scale * cos_az[r] * cos_ze[k];
            z[k] = scale * sin_ze[k];
            a[k] = if hit { 1.0 } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tests::course_angles;

    /// Naive reference straight from the formulas (f64, per pixel trig).
    fn naive(depth: &[f32], az: &[f32], ze: &[f32], c: XyzaConvention) -> Vec<f32> {
        let mut out = vec![0f32; 4 * PLANE];
        for r in 0..64 {
            for k in 0..64 {
                let d = depth[r * 64 + k] as f64;
                let (a_r, z_k) = (az[r] as f64, ze[k] as f64);
                let a = if d < 50.0 { 1.0 } else { 0.0 };
                let (mut x, mut y, z) = (d * (-a_r).sin() * (-z_k).cos(), d * (-a_r).cos() * (-z_k).cos(), d * (-z_k).sin());
                let (x, y, z) = match c {
                    XyzaConvention::Nvidia => {
                        x = d * (-a_r).sin();
                        y = d * (-a_r).cos();
                        (x, y, z)
                    }
                    XyzaConvention::Spherical => (x, y, z),
                    XyzaConvention::Seed => (a * x / 50.0, a * y / 50.0, a * z / 50.0),
                };
                for (ch, v) in [x, y, z, a].into_iter().enumerate() {
                    out[ch * PLANE + r * 64 + k] = v as f32;
                }
            }
        }
        out
    }

    fn pixel(out: &[f32], r: usize, k: usize) -> [f32; 4] {
        std::array::from_fn(|c| out[c * PLANE + r * 64 + k])
    }

    fn close(a: [f32; 4], b: [f32; 4]) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn hand_computed_values() {
        let mut depth = vec![50.0f32; DEPTH_LEN];
        let mut az = vec![0f32; 64];
        let mut ze = vec![0f32; 64];
        depth[0] = 10.0; // az = 0, ze = 0
        az[1] = std::f32::consts::FRAC_PI_2; // row 1 points along -x
        depth[64] = 10.0;
        ze[2] = std::f32::consts::FRAC_PI_6; // column 2 is 30 deg up (negated: z < 0)
        az[3] = std::f32::consts::FRAC_PI_6;
        depth[3 * 64 + 2] = 20.0;
        let mut out = vec![0f32; 4 * PLANE];
        for c in XyzaConvention::ALL {
            depth_to_xyza(&depth, &az, &ze, c, &mut out);
            let s = if c == XyzaConvention::Seed { 1.0 / 50.0 } else { 1.0 };
            assert!(close(pixel(&out, 0, 0), [0.0, 10.0 * s, 0.0, 1.0]), "{c}: {:?}", pixel(&out, 0, 0));
            assert!(close(pixel(&out, 1, 0), [-10.0 * s, 0.0, 0.0, 1.0]), "{c}: {:?}", pixel(&out, 1, 0));
            // az = 30 deg, ze = 30 deg, d = 20: sin(-30) = -0.5, cos(-30) = 0.8660254.
            let (cz, sz, sa, ca) = (0.8660254f32, -0.5f32, -0.5f32, 0.8660254f32);
            let want = match c {
                XyzaConvention::Nvidia => [20.0 * sa, 20.0 * ca, 20.0 * sz, 1.0],
                _ => [20.0 * sa * cz * s, 20.0 * ca * cz * s, 20.0 * sz * s, 1.0],
            };
            assert!(close(pixel(&out, 3, 2), want), "{c}: {:?} vs {want:?}", pixel(&out, 3, 2));
            // No return at (0, 1), az = 0, ze = 0: a = 0; seed zeroes x, y, z.
            let want = if c == XyzaConvention::Seed { [0.0; 4] } else { [0.0, 50.0, 0.0, 0.0] };
            assert!(close(pixel(&out, 0, 1), want), "{c}: {:?}", pixel(&out, 0, 1));
        }
    }

    #[test]
    fn matches_naive_reference() {
        let az = course_angles();
        let ze: Vec<f32> = course_angles().iter().map(|a| a * 0.7 + 0.01).collect();
        let depth: Vec<f32> = (0..DEPTH_LEN).map(|i| if i % 3 == 0 { 50.0 } else { 5.0 + (i % 97) as f32 * 0.4 }).collect();
        let mut out = vec![0f32; 4 * PLANE];
        for c in XyzaConvention::ALL {
            depth_to_xyza(&depth, &az, &ze, c, &mut out);
            let want = naive(&depth, &az, &ze, c);
            for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{c} at {i}: {g} vs {w}");
            }
        }
        // Rows follow azimuth: with the nvidia convention, x of row r depends on az[r] only.
        depth_to_xyza(&vec![10.0; DEPTH_LEN], &az, &ze, XyzaConvention::Nvidia, &mut out);
        assert!((out[5 * 64 + 7] - 10.0 * (-az[5]).sin()).abs() < 1e-5);
        assert!((out[2 * PLANE + 5 * 64 + 7] - 10.0 * (-ze[7]).sin()).abs() < 1e-5);
    }

    #[test]
    fn values_above_no_return_are_no_return() {
        let az = course_angles();
        let depth = vec![51.0f32; DEPTH_LEN];
        let mut out = vec![1f32; 4 * PLANE];
        depth_to_xyza(&depth, &az, &az, XyzaConvention::Seed, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        let depth = vec![49.999f32; DEPTH_LEN];
        depth_to_xyza(&depth, &az, &az, XyzaConvention::Spherical, &mut out);
        assert!(out[3 * PLANE..].iter().all(|&v| v == 1.0));
    }

    #[test]
    fn rgb_and_depth_layout() {
        let rgba: Vec<u8> = (0..RGBA_LEN).map(|i| (i % 256) as u8).collect();
        let mut out = vec![0f32; RGB_CHW_LEN];
        rgb_chw(&rgba, &mut out);
        for p in [0usize, 1, 63, 64, 4095] {
            for c in 0..4 {
                assert_eq!(out[c * PLANE + p], rgba[p * 4 + c] as f32 / 255.0);
            }
        }
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        let mut full = vec![255u8; RGBA_LEN];
        full[0] = 0;
        rgb_chw(&full, &mut out);
        assert_eq!((out[0], out[1], out[PLANE]), (0.0, 1.0, 1.0));
        let depth: Vec<f32> = (0..DEPTH_LEN).map(|i| i as f32).collect();
        let mut d = vec![0f32; DEPTH_CHW_LEN];
        depth_chw(&depth, &mut d);
        assert_eq!(d, depth);
    }

    #[test]
    #[should_panic(expected = "output must be [4, 64, 64]")]
    fn wrong_buffer_panics_with_message() {
        depth_to_xyza(&vec![1.0; DEPTH_LEN], &[0.0; 64], &[0.0; 64], XyzaConvention::Seed, &mut [0.0; 10]);
    }

    #[test]
    fn serde_names() {
        for (c, n) in [(XyzaConvention::Nvidia, "nvidia"), (XyzaConvention::Spherical, "spherical"), (XyzaConvention::Seed, "seed")] {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{n}\""));
            assert_eq!(serde_json::from_str::<XyzaConvention>(&format!("\"{n}\"")).unwrap(), c);
            assert_eq!(n.parse::<XyzaConvention>().unwrap(), c);
            assert_eq!(c.to_string(), n);
        }
        assert!("cartesian".parse::<XyzaConvention>().is_err());
        assert_eq!(XyzaConvention::default(), XyzaConvention::Seed);
    }
}
