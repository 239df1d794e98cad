//! Sample images for the gallery: nearest-neighbour upscaling, a viridis colour map for LiDAR
//! depth (no-return beams in a distinct light grey) and a rendered LiDAR point cloud.

use cilp_data::dataset::NO_RETURN;
use cilp_data::image::IMAGE_SIZE;
use cilp_data::tensorize::{PLANE, XyzaConvention, depth_to_xyza};

/// Colour of no-return beams in depth images and the background of point-cloud images.
pub const NO_RETURN_RGB: [u8; 3] = [208, 208, 208];
const CLOUD_BG: [u8; 3] = [24, 26, 32];

/// The one viridis colour map of cilp (`cilp_track::tb::viridis`; TensorBoard images use it too).
pub use cilp_track::tb::image::viridis;

/// Nearest-neighbour upscale of an RGB8 image (`w x h x 3`) by an integer factor.
pub fn upscale_rgb(rgb: &[u8], w: usize, h: usize, factor: usize) -> Vec<u8> {
    let f = factor.max(1);
    let mut out = vec![0u8; w * f * h * f * 3];
    for y in 0..h * f {
        for x in 0..w * f {
            let s = ((y / f) * w + x / f) * 3;
            let d = (y * w * f + x) * 3;
            out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
    out
}

/// RGBA8 -> RGB8 (alpha dropped; the dataset's alpha is constant 255).
pub fn rgba_to_rgb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
}

/// A 64x64 depth map as an RGB8 image in its stored orientation (rows = azimuth, columns =
/// zenith): returns coloured by viridis with near = yellow and far = purple, scaled to this
/// sample's own hit range; no-return beams in [`NO_RETURN_RGB`].
pub fn depth_rgb(depth: &[f32]) -> Vec<u8> {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &d in depth.iter().filter(|d| **d < NO_RETURN) {
        lo = lo.min(d);
        hi = hi.max(d);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    depth.iter().flat_map(|&d| if d < NO_RETURN { viridis((hi - d) / span) } else { NO_RETURN_RGB }).collect()
}

/// The hit points (`d < 50`) of a depth map as `[x, y, z, depth]` in metres (sensor frame:
/// x right, y forward, z up), using `convention` ([`XyzaConvention::Spherical`] gives true
/// positions; [`XyzaConvention::Seed`] positions are divided by 50 and are scaled back here).
pub fn hit_points(depth: &[f32], az: &[f32], ze: &[f32], convention: XyzaConvention) -> Vec<[f32; 4]> {
    let mut xyza = vec![0f32; 4 * PLANE];
    depth_to_xyza(depth, az, ze, convention, &mut xyza);
    let scale = if convention == XyzaConvention::Seed { NO_RETURN } else { 1.0 };
    (0..PLANE)
        .filter(|&i| xyza[3 * PLANE + i] > 0.5)
        .map(|i| [xyza[i] * scale, xyza[PLANE + i] * scale, xyza[2 * PLANE + i] * scale, depth[i]])
        .collect()
}

/// Renders hit points as a `size x size` RGB8 image: an orthographic view from above and to
/// the front-left of the object (yaw 35 deg, pitch 25 deg) around the points' centroid, each
/// point a small square coloured by height z (viridis, low = purple, high = yellow), far
/// points drawn first. The view scale is fixed (a 6 m wide window), so cubes and spheres are
/// drawn at the same scale.
pub fn point_cloud_rgb(points: &[[f32; 4]], size: usize) -> Vec<u8> {
    let mut img: Vec<u8> = std::iter::repeat_n(CLOUD_BG, size * size).flatten().collect();
    if points.is_empty() {
        return img;
    }
    let n = points.len() as f32;
    let c = [0, 1, 2].map(|k| points.iter().map(|p| p[k]).sum::<f32>() / n);
    let (zlo, zhi) = points.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), p| (a.min(p[2]), b.max(p[2])));
    let (yaw, pitch) = (35f32.to_radians(), 25f32.to_radians());
    let (sy, cy, sp, cp) = (yaw.sin(), yaw.cos(), pitch.sin(), pitch.cos());
    let px_per_m = size as f32 / 6.0;
    let mut proj: Vec<(f32, f32, f32, f32)> = points
        .iter()
        .map(|p| {
            let (x, y, z) = (p[0] - c[0], p[1] - c[1], p[2] - c[2]);
            // Yaw about z, then pitch about the new x axis; the camera looks along +y'.
            let (x1, y1) = (x * cy - y * sy, x * sy + y * cy);
            let (y2, z2) = (y1 * cp - z * sp, y1 * sp + z * cp);
            (x1, z2, y2, p[2])
        })
        .collect();
    proj.sort_by(|a, b| b.2.total_cmp(&a.2)); // far (large depth) first
    let r = (size / 128).max(1) as isize;
    for (u, v, _, z) in proj {
        let col = viridis(if zhi > zlo { (z - zlo) / (zhi - zlo) } else { 0.5 });
        let cx = (size as f32 / 2.0 + u * px_per_m).round() as isize;
        let cy = (size as f32 / 2.0 - v * px_per_m).round() as isize;
        for dy in -r..=r {
            for dx in -r..=r {
                let (x, y) = (cx + dx, cy + dy);
                if x >= 0 && y >= 0 && (x as usize) < size && (y as usize) < size {
                    let i = (y as usize * size + x as usize) * 3;
                    img[i..i + 3].copy_from_slice(&col);
                }
            }
        }
    }
    img
}

/// PNG bytes of an RGB8 image.
pub fn png_rgb(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    cilp_data::image::encode_rgb_png(w, h, rgb)
}

/// The three gallery images of one sample as PNG bytes, each `64 * scale` pixels square:
/// RGB, LiDAR depth (viridis) and the rendered point cloud.
pub fn sample_pngs(rgba: &[u8], depth: &[f32], az: &[f32], ze: &[f32], scale: usize) -> [Vec<u8>; 3] {
    let s = IMAGE_SIZE * scale.max(1);
    let rgb = png_rgb(&upscale_rgb(&rgba_to_rgb(rgba), IMAGE_SIZE, IMAGE_SIZE, scale), s, s);
    let dep = png_rgb(&upscale_rgb(&depth_rgb(depth), IMAGE_SIZE, IMAGE_SIZE, scale), s, s);
    let cloud = png_rgb(&point_cloud_rgb(&hit_points(depth, az, ze, XyzaConvention::Spherical), s), s, s);
    [rgb, dep, cloud]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_map_and_upscale() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f32::NAN), [68, 1, 84]);
        let up = upscale_rgb(&[1, 2, 3, 4, 5, 6], 2, 1, 2);
        assert_eq!(up, vec![1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
        let mut d = vec![NO_RETURN; PLANE];
        d[0] = 20.0;
        d[1] = 30.0;
        let img = depth_rgb(&d);
        assert_eq!(&img[0..3], &viridis(1.0));
        assert_eq!(&img[3..6], &viridis(0.0));
        assert_eq!(&img[6..9], &NO_RETURN_RGB);
    }
}
