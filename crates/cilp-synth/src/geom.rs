//! Small 3-D maths and exact ray/solid intersections (sphere, oriented box, capped cylinder,
//! capped cone). Everything is `f64`; all solids are convex, so a ray enters each at most once.

use std::ops::{Add, Mul, Neg, Sub};

/// A 3-vector in the sensor frame (x right, y forward, z up) or in a solid's local frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Vec3 {
    pub const ZERO: Vec3 = Vec3::new(0.0, 0.0, 0.0);

    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Vec3 { x, y, z }
    }
    pub fn dot(self, o: Vec3) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn cross(self, o: Vec3) -> Vec3 {
        Vec3::new(self.y * o.z - self.z * o.y, self.z * o.x - self.x * o.z, self.x * o.y - self.y * o.x)
    }
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    /// The unit vector along `self` (`self` must not be zero).
    pub fn normalized(self) -> Vec3 {
        self * (1.0 / self.norm())
    }
    pub fn get(self, axis: usize) -> f64 {
        match axis {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    fn add(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl Sub for Vec3 {
    type Output = Vec3;
    fn sub(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl Neg for Vec3 {
    type Output = Vec3;
    fn neg(self) -> Vec3 {
        Vec3::new(-self.x, -self.y, -self.z)
    }
}
impl Mul<f64> for Vec3 {
    type Output = Vec3;
    fn mul(self, s: f64) -> Vec3 {
        Vec3::new(self.x * s, self.y * s, self.z * s)
    }
}

/// A rotation as a 3x3 matrix whose columns are the solid's local x, y, z axes in the sensor frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rot {
    pub cols: [Vec3; 3],
}

impl Rot {
    pub const IDENTITY: Rot = Rot { cols: [Vec3::new(1.0, 0.0, 0.0), Vec3::new(0.0, 1.0, 0.0), Vec3::new(0.0, 0.0, 1.0)] };

    /// The rotation of the unit quaternion `(w, x, y, z)` (normalised here).
    pub fn from_quaternion(q: [f64; 4]) -> Rot {
        let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
        let (w, x, y, z) = (q[0] / n, q[1] / n, q[2] / n, q[3] / n);
        Rot {
            cols: [
                Vec3::new(1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + w * z), 2.0 * (x * z - w * y)),
                Vec3::new(2.0 * (x * y - w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + w * x)),
                Vec3::new(2.0 * (x * z + w * y), 2.0 * (y * z - w * x), 1.0 - 2.0 * (x * x + y * y)),
            ],
        }
    }
    /// Local -> sensor frame.
    pub fn apply(&self, v: Vec3) -> Vec3 {
        self.cols[0] * v.x + self.cols[1] * v.y + self.cols[2] * v.z
    }
    /// Sensor -> local frame (the transpose).
    pub fn apply_inv(&self, v: Vec3) -> Vec3 {
        Vec3::new(self.cols[0].dot(v), self.cols[1].dot(v), self.cols[2].dot(v))
    }
}

/// A ray `origin + t * dir` with `dir` a unit vector.
#[derive(Debug, Clone, Copy)]
pub struct Ray {
    pub origin: Vec3,
    pub dir: Vec3,
}

/// The first intersection of a ray with a solid: distance along the (unit) ray and outward unit normal.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub t: f64,
    pub normal: Vec3,
}

/// A convex solid, in its own local frame (centred at the origin, symmetry axis along local z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solid {
    Sphere {
        radius: f64,
    },
    /// An axis-aligned box with half-extents `half` (a cube when all three are equal).
    Box {
        half: Vec3,
    },
    /// A cylinder of `radius` along local z from `-half_height` to `+half_height`, with both caps.
    Cylinder {
        radius: f64,
        half_height: f64,
    },
    /// A cone with its base disc (`radius`) at `z = -half_height` and its apex at `z = +half_height`.
    Cone {
        radius: f64,
        half_height: f64,
    },
}

/// A solid placed in the scene.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub solid: Solid,
    pub centre: Vec3,
    pub rot: Rot,
}

const EPS: f64 = 1e-9;

impl Object {
    /// The nearest intersection with `t > 1e-9`, or `None`.
    pub fn intersect(&self, ray: &Ray) -> Option<Hit> {
        let o = self.rot.apply_inv(ray.origin - self.centre);
        let d = self.rot.apply_inv(ray.dir);
        let (t, n) = match self.solid {
            Solid::Sphere { radius } => intersect_sphere(o, d, radius)?,
            Solid::Box { half } => intersect_box(o, d, half)?,
            Solid::Cylinder { radius, half_height } => intersect_cylinder(o, d, radius, half_height)?,
            Solid::Cone { radius, half_height } => intersect_cone(o, d, radius, half_height)?,
        };
        Some(Hit { t, normal: self.rot.apply(n).normalized() })
    }

    /// Signed-ish distance test used by tests: is the sensor-frame point `p` on the surface (within `tol`)?
    pub fn surface_distance(&self, p: Vec3) -> f64 {
        let q = self.rot.apply_inv(p - self.centre);
        match self.solid {
            Solid::Sphere { radius } => (q.norm() - radius).abs(),
            Solid::Box { half } => {
                // Outside distance or, inside, distance to the nearest face.
                let dx = q.x.abs() - half.x;
                let dy = q.y.abs() - half.y;
                let dz = q.z.abs() - half.z;
                let outside = Vec3::new(dx.max(0.0), dy.max(0.0), dz.max(0.0)).norm();
                if outside > 0.0 { outside } else { -(dx.max(dy).max(dz)) }
            }
            Solid::Cylinder { radius, half_height } => {
                let dr = q.x.hypot(q.y) - radius;
                let dz = q.z.abs() - half_height;
                let outside = dr.max(0.0).hypot(dz.max(0.0));
                if outside > 0.0 { outside } else { -(dr.max(dz)) }
            }
            Solid::Cone { radius, half_height } => {
                // Distance to the base plane or to the slanted side (in the (r, z) half-plane).
                let r = q.x.hypot(q.y);
                let base = (q.z + half_height).abs();
                // side line from (radius, -hh) to (0, hh)
                let (ax, az, bx, bz) = (radius, -half_height, 0.0, half_height);
                let (vx, vz) = (bx - ax, bz - az);
                let s = (((r - ax) * vx + (q.z - az) * vz) / (vx * vx + vz * vz)).clamp(0.0, 1.0);
                let side = (r - (ax + s * vx)).hypot(q.z - (az + s * vz));
                let base_d = if r <= radius { base } else { (r - radius).hypot(base) };
                side.min(base_d)
            }
        }
    }

    /// Radius of the smallest sphere about `centre` that contains the solid.
    pub fn bounding_radius(&self) -> f64 {
        match self.solid {
            Solid::Sphere { radius } => radius,
            Solid::Box { half } => half.norm(),
            Solid::Cylinder { radius, half_height } | Solid::Cone { radius, half_height } => radius.hypot(half_height),
        }
    }
}

fn intersect_sphere(o: Vec3, d: Vec3, r: f64) -> Option<(f64, Vec3)> {
    // |o + t d|^2 = r^2 with |d| = 1.
    let b = o.dot(d);
    let c = o.dot(o) - r * r;
    let disc = b * b - c;
    if disc < 0.0 {
        return None;
    }
    let s = disc.sqrt();
    let t = if -b - s > EPS { -b - s } else { -b + s };
    if t <= EPS {
        return None;
    }
    Some((t, (o + d * t) * (1.0 / r)))
}

fn intersect_box(o: Vec3, d: Vec3, half: Vec3) -> Option<(f64, Vec3)> {
    // Slab method; remember which slab gave the entry distance for the normal.
    let mut t_near = f64::NEG_INFINITY;
    let mut t_far = f64::INFINITY;
    let mut near_axis = 0;
    let mut far_axis = 0;
    for axis in 0..3 {
        let (oa, da, h) = (o.get(axis), d.get(axis), half.get(axis));
        if da.abs() < 1e-300 {
            if oa.abs() > h {
                return None;
            }
            continue;
        }
        let inv = 1.0 / da;
        let (mut t0, mut t1) = ((-h - oa) * inv, (h - oa) * inv);
        if t0 > t1 {
            std::mem::swap(&mut t0, &mut t1);
        }
        if t0 > t_near {
            t_near = t0;
            near_axis = axis;
        }
        if t1 < t_far {
            t_far = t1;
            far_axis = axis;
        }
        if t_near > t_far {
            return None;
        }
    }
    let (t, axis) = if t_near > EPS { (t_near, near_axis) } else { (t_far, far_axis) };
    if t <= EPS {
        return None;
    }
    let p = o + d * t;
    let mut n = [0.0; 3];
    n[axis] = p.get(axis).signum();
    Some((t, Vec3::new(n[0], n[1], n[2])))
}

/// Keeps the smallest candidate `t > EPS`.
fn keep(best: &mut Option<(f64, Vec3)>, t: f64, n: Vec3) {
    if t > EPS && best.is_none_or(|(bt, _)| t < bt) {
        *best = Some((t, n));
    }
}

fn intersect_cylinder(o: Vec3, d: Vec3, r: f64, hh: f64) -> Option<(f64, Vec3)> {
    let mut best = None;
    // Side: (ox + t dx)^2 + (oy + t dy)^2 = r^2, |z| <= hh.
    let a = d.x * d.x + d.y * d.y;
    if a > 1e-18 {
        let b = o.x * d.x + o.y * d.y;
        let c = o.x * o.x + o.y * o.y - r * r;
        let disc = b * b - a * c;
        if disc >= 0.0 {
            let s = disc.sqrt();
            for t in [(-b - s) / a, (-b + s) / a] {
                let p = o + d * t;
                if p.z.abs() <= hh {
                    keep(&mut best, t, Vec3::new(p.x / r, p.y / r, 0.0));
                }
            }
        }
    }
    // Caps.
    if d.z.abs() > 1e-18 {
        for (zc, nz) in [(hh, 1.0), (-hh, -1.0)] {
            let t = (zc - o.z) / d.z;
            let p = o + d * t;
            if p.x * p.x + p.y * p.y <= r * r {
                keep(&mut best, t, Vec3::new(0.0, 0.0, nz));
            }
        }
    }
    best
}

fn intersect_cone(o: Vec3, d: Vec3, r: f64, hh: f64) -> Option<(f64, Vec3)> {
    let mut best = None;
    // Side: x^2 + y^2 = (k (hh - z))^2 with k = r / (2 hh), for -hh <= z <= hh.
    let k = r / (2.0 * hh);
    let k2 = k * k;
    let w = hh - o.z; // apex-relative height at t = 0
    let a = d.x * d.x + d.y * d.y - k2 * d.z * d.z;
    let b = o.x * d.x + o.y * d.y + k2 * w * d.z;
    let c = o.x * o.x + o.y * o.y - k2 * w * w;
    let mut side = |t: f64| {
        let p = o + d * t;
        if p.z >= -hh && p.z <= hh {
            // Outward normal of x^2 + y^2 - k^2 (hh - z)^2 = 0: (x, y, k^2 (hh - z)).
            let n = Vec3::new(p.x, p.y, k2 * (hh - p.z));
            if n.norm() > 0.0 {
                keep(&mut best, t, n.normalized());
            }
        }
    };
    if a.abs() > 1e-15 {
        let disc = b * b - a * c;
        if disc >= 0.0 {
            let s = disc.sqrt();
            side((-b - s) / a);
            side((-b + s) / a);
        }
    } else if b.abs() > 1e-15 {
        side(-c / (2.0 * b));
    }
    // Base cap.
    if d.z.abs() > 1e-18 {
        let t = (-hh - o.z) / d.z;
        let p = o + d * t;
        if p.x * p.x + p.y * p.y <= r * r {
            keep(&mut best, t, Vec3::new(0.0, 0.0, -1.0));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(solid: Solid, rot: Rot) -> Object {
        Object { solid, centre: Vec3::new(0.3, 20.0, -0.2), rot }
    }

    fn rays() -> Vec<Ray> {
        let mut v = Vec::new();
        for i in 0..41 {
            for j in 0..41 {
                let dir = Vec3::new(-0.1 + 0.2 * i as f64 / 40.0 + 0.015, 1.0, -0.1 + 0.2 * j as f64 / 40.0 - 0.01).normalized();
                v.push(Ray { origin: Vec3::ZERO, dir });
            }
        }
        v
    }

    /// Brute-force check: march along the ray and find the first point inside the solid.
    fn march(o: &Object, ray: &Ray) -> Option<f64> {
        let inside = |p: Vec3| {
            let q = o.rot.apply_inv(p - o.centre);
            match o.solid {
                Solid::Sphere { radius } => q.norm() <= radius,
                Solid::Box { half } => q.x.abs() <= half.x && q.y.abs() <= half.y && q.z.abs() <= half.z,
                Solid::Cylinder { radius, half_height } => q.x.hypot(q.y) <= radius && q.z.abs() <= half_height,
                Solid::Cone { radius, half_height } => {
                    q.z.abs() <= half_height && q.x.hypot(q.y) <= radius * (half_height - q.z) / (2.0 * half_height)
                }
            }
        };
        let mut t = 10.0;
        while t < 30.0 {
            if inside(ray.origin + ray.dir * t) {
                return Some(t);
            }
            t += 1e-3;
        }
        None
    }

    #[test]
    fn exact_intersections_match_ray_marching_and_lie_on_the_surface() {
        let rot = Rot::from_quaternion([0.8, 0.3, -0.4, 0.2]);
        let solids = [
            Solid::Sphere { radius: 1.465 },
            Solid::Box { half: Vec3::new(1.5, 1.5, 1.5) },
            Solid::Cylinder { radius: 1.2, half_height: 1.3 },
            Solid::Cone { radius: 1.4, half_height: 1.4 },
        ];
        for solid in solids {
            let o = obj(solid, rot);
            let mut hits = 0;
            for ray in rays() {
                let exact = o.intersect(&ray);
                let marched = march(&o, &ray);
                match (exact, marched) {
                    (Some(h), Some(m)) => {
                        hits += 1;
                        assert!((h.t - m).abs() < 2e-3, "{solid:?}: exact {} marched {m}", h.t);
                        let p = ray.origin + ray.dir * h.t;
                        assert!(o.surface_distance(p) < 1e-9, "{solid:?}: off surface {}", o.surface_distance(p));
                        assert!((h.normal.norm() - 1.0).abs() < 1e-9);
                        assert!(h.normal.dot(ray.dir) <= 1e-9, "{solid:?}: normal faces away");
                    }
                    (None, None) => {}
                    // Grazing rays may disagree by the march step.
                    (e, m) => {
                        let t = e.map(|h| h.t).or(m).unwrap();
                        let p = ray.origin + ray.dir * t;
                        assert!(o.surface_distance(p) < 5e-3, "{solid:?}: exact {e:?} marched {m:?}");
                    }
                }
            }
            assert!(hits > 100, "{solid:?}: only {hits} hits");
        }
    }

    #[test]
    fn quaternion_gives_orthonormal_matrix() {
        let r = Rot::from_quaternion([0.1, -0.7, 0.4, 0.5]);
        for i in 0..3 {
            for j in 0..3 {
                let d = r.cols[i].dot(r.cols[j]);
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!((r.cols[0].cross(r.cols[1]).dot(r.cols[2]) - 1.0).abs() < 1e-12);
    }
}
