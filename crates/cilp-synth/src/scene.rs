//! The scene model: every constant of the synthetic world in one place, and the sampling of one
//! scene from `(seed, index)`.
//!
//! Sources: "REFERENCE §1" is the project's reference page (dataset on disk and the scene model
//! recovered from the real samples); "screenshots" are the published views of the real data
//! (RGB grids, RGB next to LiDAR depth, point clouds, LiDAR hit masks); "tuned" means the value was
//! adjusted until the generated statistics matched the figures quoted in REFERENCE §1.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::geom::{Object, Rot, Solid, Vec3};

// ---------------------------------------------------------------------------------------------
// Sensors
// ---------------------------------------------------------------------------------------------

/// Side of the square LiDAR depth map and of the RGB image (REFERENCE §1: 64x64 both).
pub const SIZE: usize = 64;
/// First LiDAR angle, degrees (REFERENCE §1: `np.deg2rad(np.arange(-16, 16, 0.5))`).
pub const ANGLE_START_DEG: f64 = -16.0;
/// LiDAR angular step, degrees (REFERENCE §1). Angle `i` is `-16 + 0.5 i` degrees, 0 at index 32.
pub const ANGLE_STEP_DEG: f64 = 0.5;
/// Depth written for a beam with no return (REFERENCE §1: "reads the maximum range, 50.0").
pub const NO_RETURN: f32 = 50.0;
/// Camera focal length in pixels (REFERENCE §1: HFOV about 47.4 deg, f about 72.9 px;
/// 72.9 / (1 / 0.5 deg) = 0.636, the RGB-to-LiDAR scale of about 0.64).
pub const FOCAL_PX: f64 = 72.9;
/// Principal point in continuous pixel coordinates (pixel `c` covers `[c, c + 1)`): the image centre.
pub const PRINCIPAL_POINT: f64 = 32.0;

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

/// Object centre x range, metres: uniform in [-5, 5]. REFERENCE §1 infers [-6, 6] from the course's
/// plot box, but the screenshots disagree: the 42 real RGB samples and 10 real LiDAR masks have a
/// position spread that fits a half-range of 4.5-5 (RGB centroid std 8.7 px; ±6 gives 10.7 px)
/// and only 7% of them lie near the frame edge (±6 gives 31%). NVIDIA's pretrained LiDAR
/// classifier agrees: 93-94% on generated cubes with ±6 (its errors are almost all cubes cut by
/// the frame edge, which it evidently rarely saw), 99.8% with ±5, 100% with ±4.5.
pub const CENTRE_X: (f64, f64) = (-5.0, 5.0);
/// Object centre y (forward) range, metres (REFERENCE §1: uniform in [19, 31]).
pub const CENTRE_Y: (f64, f64) = (19.0, 31.0);
/// Object centre z (up) range, metres: uniform in [-5, 5], for the reasons given at [`CENTRE_X`].
pub const CENTRE_Z: (f64, f64) = (-5.0, 5.0);
/// Cube side, metres (REFERENCE §1: about 3.0, fixed).
pub const CUBE_SIDE: f64 = 3.0;
/// Sphere diameter, metres (REFERENCE §1: about 2.93, fixed).
pub const SPHERE_DIAMETER: f64 = 2.93;
/// Extra class (not in the real data): cylinder diameter and height, metres. Chosen so that its
/// silhouette area is between the sphere's and the cube's.
pub const CYLINDER_DIAMETER: f64 = 2.6;
pub const CYLINDER_HEIGHT: f64 = 2.6;
/// Extra class (not in the real data): cone base diameter and height, metres.
pub const CONE_DIAMETER: f64 = 3.0;
pub const CONE_HEIGHT: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// Light and colour
// ---------------------------------------------------------------------------------------------

/// Mean direction towards the light in the sensor frame, before normalising: from the upper left,
/// slightly from the sensor's side. REFERENCE §1 gives about (-0.7, -0.4, 0.6) with +-0.2 jitter;
/// a least-squares fit of this Lambert model to the two real sphere pairs (position from the
/// LiDAR mask, pixels from the screenshot) gives y = -0.15 .. -0.2 with intensity 1.4, and
/// y = -0.2 also brings the lit-pixel counts to the real ones (spheres 34 vs 29 lit pixels on
/// average, cubes 70 vs 71; with -0.4 they are 41 and 83), so the mean y is -0.2.
pub const LIGHT_DIR: [f64; 3] = [-0.7, -0.2, 0.6];
/// Per-sample jitter of each component of [`LIGHT_DIR`] before normalising, uniform in
/// `[-LIGHT_JITTER, LIGHT_JITTER]` (REFERENCE §1: "varying about +-0.2 per sample").
pub const LIGHT_JITTER: f64 = 0.2;
/// Light intensity multiplying `colour * max(0, n.l)` before clamping to 1 (linear Lambert, no
/// ambient, no gamma: REFERENCE §1). Above 1 so that lit faces saturate towards pastel/near-white
/// as in the screenshots; 1.4 is the fitted value (see [`LIGHT_DIR`]) and puts the per-channel
/// image mean at 0.0049 (REFERENCE: about 0.0052).
pub const LIGHT_INTENSITY: f64 = 1.4;
/// Each colour channel is uniform in `[COLOUR_MIN, 1]`, independently (screenshots: every hue,
/// often pastel or near-white once the light saturates it, a few dark objects; the floor of 0.1
/// keeps almost-black objects rare, as in the screenshots where no object is invisible).
pub const COLOUR_MIN: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// Harder-data knobs (not in the real data)
// ---------------------------------------------------------------------------------------------

/// Occluder: a dark box whose edges are uniform in this range, metres.
pub const OCCLUDER_SIZE: (f64, f64) = (0.8, 2.0);
/// Occluder position: this fraction of the way from the sensor to the object centre.
pub const OCCLUDER_DEPTH_FRACTION: (f64, f64) = (0.5, 0.85);
/// Occluder colour: grey level uniform in this range (dark).
pub const OCCLUDER_GREY: (f64, f64) = (0.02, 0.12);
/// Distractors: elongated boxes (never cube-like: one edge at least twice another) with edges
/// uniform in this range, metres, placed at the same depths as the main object.
pub const DISTRACTOR_EDGE: (f64, f64) = (0.3, 1.8);

/// The object classes the generator knows. The real dataset has only `cubes` and `spheres`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectClass {
    Cubes,
    Spheres,
    Cylinders,
    Cones,
}

impl ObjectClass {
    pub const ALL: [ObjectClass; 4] = [ObjectClass::Cubes, ObjectClass::Spheres, ObjectClass::Cylinders, ObjectClass::Cones];

    /// The folder name (`cubes`, `spheres`, `cylinders`, `cones`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectClass::Cubes => "cubes",
            ObjectClass::Spheres => "spheres",
            ObjectClass::Cylinders => "cylinders",
            ObjectClass::Cones => "cones",
        }
    }

    /// Parses a folder name (also accepts the singular).
    pub fn from_name(name: &str) -> Option<ObjectClass> {
        match name.to_ascii_lowercase().as_str() {
            "cubes" | "cube" => Some(ObjectClass::Cubes),
            "spheres" | "sphere" => Some(ObjectClass::Spheres),
            "cylinders" | "cylinder" => Some(ObjectClass::Cylinders),
            "cones" | "cone" => Some(ObjectClass::Cones),
            _ => None,
        }
    }

    /// The solid, in its local frame.
    pub fn solid(self) -> Solid {
        match self {
            ObjectClass::Cubes => Solid::Box { half: Vec3::new(CUBE_SIDE / 2.0, CUBE_SIDE / 2.0, CUBE_SIDE / 2.0) },
            ObjectClass::Spheres => Solid::Sphere { radius: SPHERE_DIAMETER / 2.0 },
            ObjectClass::Cylinders => Solid::Cylinder { radius: CYLINDER_DIAMETER / 2.0, half_height: CYLINDER_HEIGHT / 2.0 },
            ObjectClass::Cones => Solid::Cone { radius: CONE_DIAMETER / 2.0, half_height: CONE_HEIGHT / 2.0 },
        }
    }
}

impl std::fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// One object of a scene with its colour (linear RGB in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneObject {
    pub object: Object,
    pub colour: [f64; 3],
}

/// Everything needed to render one sample. `objects[0]` is the labelled object.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub objects: Vec<SceneObject>,
    /// Unit vector towards the light.
    pub light: Vec3,
}

/// Which optional scene elements to add (the "hard" knobs that change geometry).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SceneKnobs {
    /// Probability that a dark occluder box partly hides the object.
    pub occluder_probability: f64,
    /// Each sample gets a uniform number of distractors in `0..=max_distractors`.
    pub max_distractors: usize,
}

/// A deterministic RNG for one `(seed, purpose, index)`: ChaCha8 keyed by a hash of `seed` and
/// `purpose`, on stream `index`. Independent of thread scheduling and of every other purpose.
pub fn rng_for(seed: u64, purpose: &str, index: usize) -> ChaCha8Rng {
    // FNV-1a of the purpose, then splitmix64 to spread (seed, purpose) over the 256-bit key.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut state = seed ^ h.rotate_left(17);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index as u64);
    rng
}

fn uniform(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// A uniformly distributed random rotation (Shoemake's uniform unit quaternion).
pub fn random_rotation(rng: &mut impl Rng) -> Rot {
    let (u1, u2, u3): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
    let tau = std::f64::consts::TAU;
    let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
    Rot::from_quaternion([a * (tau * u2).sin(), a * (tau * u2).cos(), b * (tau * u3).sin(), b * (tau * u3).cos()])
}

/// The class-independent part of scene `index`: object centre, colour and light direction.
/// Index `i` of every class shares it (REFERENCE §1: the classes differ only by shape).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedScene {
    pub centre: Vec3,
    pub colour: [f64; 3],
    pub light: Vec3,
}

/// Samples the class-independent part of scene `index`.
pub fn shared_scene(seed: u64, index: usize) -> SharedScene {
    let mut rng = rng_for(seed, "scene", index);
    let centre = Vec3::new(uniform(&mut rng, CENTRE_X), uniform(&mut rng, CENTRE_Y), uniform(&mut rng, CENTRE_Z));
    let colour = [(); 3].map(|_| uniform(&mut rng, (COLOUR_MIN, 1.0)));
    let j = LIGHT_JITTER;
    let light = Vec3::new(
        LIGHT_DIR[0] + uniform(&mut rng, (-j, j)),
        LIGHT_DIR[1] + uniform(&mut rng, (-j, j)),
        LIGHT_DIR[2] + uniform(&mut rng, (-j, j)),
    )
    .normalized();
    SharedScene { centre, colour, light }
}

/// Builds scene `index` of `class`. Only the object's rotation comes from a class-specific
/// stream; centre, colour, light, occluder and distractors are shared by all classes.
pub fn build_scene(class: ObjectClass, seed: u64, index: usize, knobs: &SceneKnobs) -> Scene {
    let shared = shared_scene(seed, index);
    let rot = match class {
        ObjectClass::Spheres => Rot::IDENTITY,
        _ => random_rotation(&mut rng_for(seed, &format!("rotation/{}", class.name()), index)),
    };
    let main = Object { solid: class.solid(), centre: shared.centre, rot };
    let mut objects = vec![SceneObject { object: main, colour: shared.colour }];

    if knobs.occluder_probability > 0.0 {
        let mut rng = rng_for(seed, "occluder", index);
        if rng.random::<f64>() < knobs.occluder_probability {
            let frac = uniform(&mut rng, OCCLUDER_DEPTH_FRACTION);
            let half = Vec3::new(
                uniform(&mut rng, OCCLUDER_SIZE) / 2.0,
                uniform(&mut rng, OCCLUDER_SIZE) / 2.0,
                uniform(&mut rng, OCCLUDER_SIZE) / 2.0,
            );
            // Shift sideways (perpendicular to the line of sight) by 0.5-1.2 object radii scaled
            // to the occluder's depth, in a random direction, so it covers only part of the object.
            let c = shared.centre;
            let los = c.normalized();
            let side = los.cross(Vec3::new(0.0, 0.0, 1.0)).normalized();
            let up = side.cross(los);
            let ang = uniform(&mut rng, (0.0, std::f64::consts::TAU));
            let off = uniform(&mut rng, (0.5, 1.2)) * 1.5 * frac;
            let centre = c * frac + (side * ang.cos() + up * ang.sin()) * off;
            let grey = uniform(&mut rng, OCCLUDER_GREY);
            objects.push(SceneObject {
                object: Object { solid: Solid::Box { half }, centre, rot: random_rotation(&mut rng) },
                colour: [grey; 3],
            });
        }
    }

    if knobs.max_distractors > 0 {
        let mut rng = rng_for(seed, "distractors", index);
        let n = rng.random_range(0..=knobs.max_distractors);
        for _ in 0..n {
            // Rejection-sample a centre that does not overlap any object already placed.
            let mut placed = None;
            for _ in 0..20 {
                let mut e = [uniform(&mut rng, DISTRACTOR_EDGE), uniform(&mut rng, DISTRACTOR_EDGE), uniform(&mut rng, DISTRACTOR_EDGE)];
                e.sort_by(|a, b| a.total_cmp(b));
                if e[2] < 2.0 * e[0] {
                    e[2] = (2.0 * e[0]).min(2.0 * DISTRACTOR_EDGE.1);
                }
                let half = Vec3::new(e[0] / 2.0, e[1] / 2.0, e[2] / 2.0);
                let centre = Vec3::new(uniform(&mut rng, CENTRE_X), uniform(&mut rng, CENTRE_Y), uniform(&mut rng, CENTRE_Z));
                let obj = Object { solid: Solid::Box { half }, centre, rot: random_rotation(&mut rng) };
                let colour = [(); 3].map(|_| uniform(&mut rng, (COLOUR_MIN, 1.0)));
                let clear =
                    objects.iter().all(|o| (o.object.centre - centre).norm() > o.object.bounding_radius() + obj.bounding_radius() + 0.2);
                if clear {
                    placed = Some(SceneObject { object: obj, colour });
                    break;
                }
            }
            objects.extend(placed);
        }
    }

    Scene { objects, light: shared.light }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_share_centre_colour_and_light() {
        for i in 0..20 {
            let a = build_scene(ObjectClass::Cubes, 51, i, &SceneKnobs::default());
            let b = build_scene(ObjectClass::Spheres, 51, i, &SceneKnobs::default());
            assert_eq!(a.objects[0].object.centre, b.objects[0].object.centre);
            assert_eq!(a.objects[0].colour, b.objects[0].colour);
            assert_eq!(a.light, b.light);
            let c = a.objects[0].object.centre;
            assert!((-6.0..=6.0).contains(&c.x) && (19.0..=31.0).contains(&c.y) && (-6.0..=6.0).contains(&c.z));
        }
        let a = build_scene(ObjectClass::Cubes, 51, 0, &SceneKnobs::default());
        let b = build_scene(ObjectClass::Cubes, 51, 1, &SceneKnobs::default());
        let c = build_scene(ObjectClass::Cubes, 52, 0, &SceneKnobs::default());
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn knobs_do_not_change_the_main_object() {
        let knobs = SceneKnobs { occluder_probability: 1.0, max_distractors: 3 };
        for i in 0..10 {
            let a = build_scene(ObjectClass::Cubes, 7, i, &SceneKnobs::default());
            let b = build_scene(ObjectClass::Cubes, 7, i, &knobs);
            assert_eq!(a.objects[0], b.objects[0]);
            assert_eq!(a.light, b.light);
            assert!(b.objects.len() >= 2);
        }
    }

    #[test]
    fn random_rotations_are_spread_out() {
        // The mean of a uniformly random rotation matrix is zero.
        let mut rng = rng_for(1, "test", 0);
        let n = 4000;
        let mut sum = [0.0; 9];
        for _ in 0..n {
            let r = random_rotation(&mut rng);
            for (k, v) in r.cols.iter().flat_map(|c| [c.x, c.y, c.z]).enumerate() {
                sum[k] += v;
            }
        }
        for s in sum {
            assert!((s / n as f64).abs() < 0.05, "{sum:?}");
        }
    }
}
