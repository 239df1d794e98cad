//! Summary statistics for dataset exploration: per-class counts, depth ranges, LiDAR hit
//! ratios and RGB lit-pixel counts and colours.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, NO_RETURN};

/// Min / mean / max of a per-sample quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

impl Summary {
    fn of(values: impl Iterator<Item = f64>) -> Summary {
        let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        if n == 0 { Summary::default() } else { Summary { min, mean: sum / n as f64, max } }
    }
}

/// Statistics of one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub name: String,
    pub label: usize,
    /// Samples (pairs).
    pub count: usize,
    /// Smallest and largest depth over all beams that returned (`d < 50`); `None` if none did.
    pub hit_depth_range: Option<(f32, f32)>,
    /// Fraction of all beams that returned (`d < 50`).
    pub hit_ratio: f64,
    /// LiDAR pixels on the object per sample.
    pub hits_per_sample: Summary,
    /// RGB pixels that are not pure black (any of R, G, B > 0) per sample.
    pub lit_pixels_per_sample: Summary,
    /// Mean R, G, B (0-255) over all lit pixels of the class; `None` if no pixel is lit.
    pub mean_lit_colour: Option<[f64; 3]>,
}

/// Statistics of a whole dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub samples: usize,
    pub classes: Vec<ClassStats>,
}

/// LiDAR beams that returned (`d < NO_RETURN`).
pub fn hit_count(depth: &[f32]) -> usize {
    depth.iter().filter(|&&d| d < NO_RETURN).count()
}

/// RGB pixels that are not pure black (alpha ignored).
pub fn lit_count(rgba: &[u8]) -> usize {
    rgba.chunks_exact(4).filter(|p| p[0] | p[1] | p[2] != 0).count()
}

/// Per-sample numbers gathered in parallel.
#[derive(Clone, Copy)]
struct Per {
    hits: usize,
    min: f32,
    max: f32,
    lit: usize,
    colour: [u64; 3],
}

fn per_sample(rgb: &[u8], depth: &[f32]) -> Per {
    let (mut hits, mut min, mut max) = (0, f32::INFINITY, f32::NEG_INFINITY);
    for &d in depth {
        if d < NO_RETURN {
            hits += 1;
            min = min.min(d);
            max = max.max(d);
        }
    }
    let (mut lit, mut colour) = (0, [0u64; 3]);
    for p in rgb.chunks_exact(4) {
        if p[0] | p[1] | p[2] != 0 {
            lit += 1;
            for (acc, &v) in colour.iter_mut().zip(&p[..3]) {
                *acc += v as u64;
            }
        }
    }
    Per { hits, min, max, lit, colour }
}

/// Computes [`DatasetStats`] (parallel over samples).
pub fn dataset_stats(ds: &Dataset) -> DatasetStats {
    let per: Vec<Per> = (0..ds.len())
        .into_par_iter()
        .map(|i| {
            let s = ds.sample(i);
            per_sample(s.rgb, s.depth)
        })
        .collect();
    let classes = ds
        .classes()
        .iter()
        .enumerate()
        .map(|(label, name)| {
            let r = ds.class_range(label);
            let p = &per[r.clone()];
            let beams = (r.len() * crate::dataset::DEPTH_LEN) as f64;
            let hits: usize = p.iter().map(|x| x.hits).sum();
            let (min, max) = p.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| (a.min(x.min), b.max(x.max)));
            let lit: usize = p.iter().map(|x| x.lit).sum();
            let mut colour = [0u64; 3];
            for x in p {
                for (acc, v) in colour.iter_mut().zip(x.colour) {
                    *acc += v;
                }
            }
            ClassStats {
                name: name.clone(),
                label,
                count: r.len(),
                hit_depth_range: (hits > 0).then_some((min, max)),
                hit_ratio: if beams > 0.0 { hits as f64 / beams } else { 0.0 },
                hits_per_sample: Summary::of(p.iter().map(|x| x.hits as f64)),
                lit_pixels_per_sample: Summary::of(p.iter().map(|x| x.lit as f64)),
                mean_lit_colour: (lit > 0).then(|| colour.map(|c| c as f64 / lit as f64)),
            }
        })
        .collect();
    DatasetStats { samples: ds.len(), classes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DEPTH_LEN, OwnedSample, RGBA_LEN};

    #[test]
    fn small_dataset() {
        let a = crate::dataset::tests::course_angles();
        let mut rgb = vec![0u8; RGBA_LEN];
        for p in 0..4 {
            rgb[p * 4..p * 4 + 4].copy_from_slice(&[200, 100, 0, 255]);
        }
        for p in 4..RGBA_LEN / 4 {
            rgb[p * 4 + 3] = 255; // black, opaque: not lit
        }
        let mut depth = vec![50.0f32; DEPTH_LEN];
        depth[..10].copy_from_slice(&[20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 49.9]);
        assert_eq!(hit_count(&depth), 10);
        assert_eq!(lit_count(&rgb), 4);
        let s = |class, stem: &str, depth: Vec<f32>| OwnedSample { class, stem: stem.into(), rgb: rgb.clone(), depth };
        let ds = Dataset::from_memory(
            vec!["cubes".into(), "spheres".into()],
            vec![(a.clone(), a.clone()), (a.clone(), a)],
            vec![s(0, "0", depth.clone()), s(0, "1", vec![50.0; DEPTH_LEN]), s(1, "0", vec![60.0; DEPTH_LEN])],
        )
        .unwrap();
        let st = dataset_stats(&ds);
        assert_eq!(st.samples, 3);
        let c = &st.classes[0];
        assert_eq!(c.count, 2);
        assert_eq!(c.hit_depth_range, Some((20.0, 49.9)));
        assert!((c.hit_ratio - 10.0 / (2.0 * DEPTH_LEN as f64)).abs() < 1e-12);
        assert_eq!(c.hits_per_sample, Summary { min: 0.0, mean: 5.0, max: 10.0 });
        assert_eq!(c.lit_pixels_per_sample.mean, 4.0);
        assert_eq!(c.mean_lit_colour, Some([200.0, 100.0, 0.0]));
        assert_eq!(st.classes[1].hit_depth_range, None);
        assert_eq!(st.classes[1].hit_ratio, 0.0);
        serde_json::to_string(&st).unwrap();
    }
}
