//! The two sensors: the LiDAR ray caster (64x64 float32 depth, rows = azimuth, columns = zenith)
//! and the RGB pinhole camera (64x64 RGBA8, Lambert-shaded, supersampled), plus the optional
//! sensor noise of the "hard" knobs.

use rand::Rng;

use crate::geom::{Hit, Ray, Vec3};
use crate::scene::{ANGLE_START_DEG, ANGLE_STEP_DEG, FOCAL_PX, LIGHT_INTENSITY, NO_RETURN, PRINCIPAL_POINT, SIZE, Scene};

/// The LiDAR angle array written as both `azimuth.npy` and `zenith.npy`: 64 values in radians,
/// `deg2rad(-16 + 0.5 i)` (-0.27925268 ... 0.27052602, exactly 0 at index 32), as `f32`.
pub fn angles() -> Vec<f32> {
    (0..SIZE).map(|i| (ANGLE_START_DEG + ANGLE_STEP_DEG * i as f64).to_radians() as f32).collect()
}

/// Unit direction of the LiDAR beam with azimuth `az` and zenith `ze` (radians), in NVIDIA's XYZA
/// convention (REFERENCE §1): `(sin(-az) cos(-ze), cos(-az) cos(-ze), sin(-ze))`. Converting a
/// depth `d` back with that formula therefore gives the hit point `d * beam_dir(az, ze)`.
pub fn beam_dir(az: f64, ze: f64) -> Vec3 {
    Vec3::new((-az).sin() * (-ze).cos(), (-az).cos() * (-ze).cos(), (-ze).sin())
}

/// The nearest hit of `ray` over all objects: `(object index, hit)`.
pub fn trace(scene: &Scene, ray: &Ray) -> Option<(usize, Hit)> {
    let mut best: Option<(usize, Hit)> = None;
    for (i, o) in scene.objects.iter().enumerate() {
        if let Some(h) = o.object.intersect(ray)
            && best.is_none_or(|(_, b)| h.t < b.t)
        {
            best = Some((i, h));
        }
    }
    best
}

/// Renders the noiseless LiDAR depth map, row-major `[azimuth row][zenith column]`. Beams use the
/// `f32` angles of [`angles`] (the values a reader sees), widened to `f64`.
pub fn render_depth(scene: &Scene) -> Vec<f32> {
    let a = angles();
    let mut out = vec![NO_RETURN; SIZE * SIZE];
    for (r, &az) in a.iter().enumerate() {
        for (c, &ze) in a.iter().enumerate() {
            let ray = Ray { origin: Vec3::ZERO, dir: beam_dir(f64::from(az), f64::from(ze)) };
            if let Some((_, h)) = trace(scene, &ray)
                && h.t < f64::from(NO_RETURN)
            {
                out[r * SIZE + c] = h.t as f32;
            }
        }
    }
    out
}

/// Camera ray through the continuous pixel position `(u, v)` (u = column, v = row, pixel `(r, c)`
/// covers `[c, c+1) x [r, r+1)`). Image right = +x, image up = +z, so RGB column grows with x and
/// RGB row grows downwards with -z: with the LiDAR rows following azimuth (x = sin(-az) ...) this
/// gives REFERENCE §1's relation RGB column ~ 31.5 - 0.64 (LiDAR row - 31.5), RGB row ~ 31.5 + 0.64
/// (LiDAR column - 31.5).
pub fn camera_ray(u: f64, v: f64) -> Ray {
    let dir = Vec3::new((u - PRINCIPAL_POINT) / FOCAL_PX, 1.0, -(v - PRINCIPAL_POINT) / FOCAL_PX).normalized();
    Ray { origin: Vec3::ZERO, dir }
}

/// Linear radiance (before clamping the average) of one camera ray: `min(1, I * colour * max(0, n.l))`
/// with a hard shadow test against the other objects; black background.
fn shade(scene: &Scene, ray: &Ray) -> [f64; 3] {
    let Some((idx, hit)) = trace(scene, ray) else { return [0.0; 3] };
    let ndotl = hit.normal.dot(scene.light);
    if ndotl <= 0.0 {
        return [0.0; 3];
    }
    if scene.objects.len() > 1 {
        let p = ray.origin + ray.dir * hit.t + hit.normal * 1e-7;
        let shadow_ray = Ray { origin: p, dir: scene.light };
        if scene.objects.iter().enumerate().any(|(i, o)| i != idx && o.object.intersect(&shadow_ray).is_some()) {
            return [0.0; 3];
        }
    }
    let col = scene.objects[idx].colour;
    col.map(|c| (LIGHT_INTENSITY * c * ndotl).min(1.0))
}

/// Renders the camera image as linear RGB floats in [0, 1], row-major, 3 per pixel, averaging
/// `supersample x supersample` rays per pixel (soft, anti-aliased edges like the real images).
pub fn render_rgb_linear(scene: &Scene, supersample: usize) -> Vec<f32> {
    render_rgb_impl(scene, supersample, true)
}

fn render_rgb_impl(scene: &Scene, supersample: usize, cull: bool) -> Vec<f32> {
    let s = supersample.max(1);
    let inv = 1.0 / (s * s) as f64;
    let mut out = vec![0.0f32; SIZE * SIZE * 3];
    // Skip the supersampling outside the objects' bounding circles: cheap early-out.
    let bounds: Vec<(f64, f64, f64)> = scene
        .objects
        .iter()
        .filter(|o| o.object.centre.y > 0.0)
        .map(|o| {
            let c = o.object.centre;
            let u = PRINCIPAL_POINT + FOCAL_PX * c.x / c.y;
            let v = PRINCIPAL_POINT - FOCAL_PX * c.z / c.y;
            // Generous: the projected bounding sphere radius grows off-axis; add margin.
            let dist = c.norm();
            let r = o.object.bounding_radius();
            let rad = if dist > r * 1.01 { FOCAL_PX * (r / (dist - r)) * (dist / c.y).powi(2) + 2.0 } else { f64::INFINITY };
            (u, v, rad)
        })
        .collect();
    let objects_all_ahead = cull && bounds.len() == scene.objects.len();
    for r in 0..SIZE {
        for c in 0..SIZE {
            let (pu, pv) = (c as f64 + 0.5, r as f64 + 0.5);
            if objects_all_ahead && !bounds.iter().any(|&(u, v, rad)| (pu - u).hypot(pv - v) <= rad + 1.0) {
                continue;
            }
            let mut acc = [0.0f64; 3];
            for i in 0..s {
                for j in 0..s {
                    let u = c as f64 + (j as f64 + 0.5) / s as f64;
                    let v = r as f64 + (i as f64 + 0.5) / s as f64;
                    let rad = shade(scene, &camera_ray(u, v));
                    for k in 0..3 {
                        acc[k] += rad[k];
                    }
                }
            }
            for k in 0..3 {
                out[(r * SIZE + c) * 3 + k] = (acc[k] * inv) as f32;
            }
        }
    }
    out
}

/// Quantises linear RGB in [0, 1] to RGBA8 with alpha 255.
pub fn to_rgba8(rgb: &[f32]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| {
            let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            [q(p[0]), q(p[1]), q(p[2]), 255]
        })
        .collect()
}

/// A standard normal variate (Box-Muller; `rand_distr` is not a workspace dependency).
pub fn std_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// LiDAR noise: each return is dropped (set to [`NO_RETURN`]) with probability `dropout`, and the
/// others get Gaussian range noise of `sigma` metres (clamped below 50). No-return beams stay 50.0.
pub fn lidar_noise(depth: &mut [f32], sigma: f64, dropout: f64, rng: &mut impl Rng) {
    if sigma <= 0.0 && dropout <= 0.0 {
        return;
    }
    for d in depth.iter_mut() {
        if *d >= NO_RETURN {
            continue;
        }
        // Always draw both numbers so the stream does not depend on the outcome.
        let drop = rng.random::<f64>() < dropout;
        let n = std_normal(rng);
        *d = if drop { NO_RETURN } else { ((f64::from(*d) + sigma * n).clamp(0.0, 49.999)) as f32 };
    }
}

/// In-place box blur of an RGB float image with a `(2 radius + 1)^2` kernel (edges clamped).
pub fn box_blur(rgb: &mut [f32], radius: usize) {
    if radius == 0 {
        return;
    }
    let r = radius as isize;
    let n = SIZE as isize;
    let src = rgb.to_vec();
    for y in 0..n {
        for x in 0..n {
            let mut acc = [0.0f32; 3];
            let mut cnt = 0.0f32;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (yy, xx) = ((y + dy).clamp(0, n - 1), (x + dx).clamp(0, n - 1));
                    let i = ((yy * n + xx) * 3) as usize;
                    for k in 0..3 {
                        acc[k] += src[i + k];
                    }
                    cnt += 1.0;
                }
            }
            let i = ((y * n + x) * 3) as usize;
            for k in 0..3 {
                rgb[i + k] = acc[k] / cnt;
            }
        }
    }
}

/// Adds Gaussian noise of `sigma` (in [0, 1] units) to every RGB value (clamped when quantised).
pub fn image_noise(rgb: &mut [f32], sigma: f64, rng: &mut impl Rng) {
    if sigma <= 0.0 {
        return;
    }
    for v in rgb.iter_mut() {
        *v += (sigma * std_normal(rng)) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_match_numpy() {
        let a = angles();
        assert_eq!(a.len(), 64);
        assert!((a[0] - -0.279_252_68).abs() < 1e-7);
        assert!((a[63] - 0.270_526_02).abs() < 1e-7);
        assert_eq!(a[32], 0.0);
    }

    #[test]
    fn beam_dir_is_unit_and_forward_at_zero() {
        let d = beam_dir(0.0, 0.0);
        assert!((d.y - 1.0).abs() < 1e-15);
        let d = beam_dir(-0.2, 0.1);
        assert!((d.norm() - 1.0).abs() < 1e-12);
        assert!(d.x > 0.0 && d.z < 0.0, "negative azimuth looks right, positive zenith looks down");
    }

    #[test]
    fn culling_does_not_change_the_image() {
        use crate::scene::{ObjectClass, SceneKnobs, build_scene};
        let knobs = SceneKnobs { occluder_probability: 0.5, max_distractors: 2 };
        for class in ObjectClass::ALL {
            for i in 0..12 {
                let scene = build_scene(class, 3, i, &knobs);
                assert_eq!(render_rgb_impl(&scene, 2, true), render_rgb_impl(&scene, 2, false), "{class} {i}");
            }
        }
    }
}
