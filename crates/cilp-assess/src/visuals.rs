//! Images and tables of the assessment: the similarity-matrix heatmap and the sample-prediction
//! grid (RGB | LiDAR depth colour-mapped | correctness bar) with its Markdown table.

use cilp_track::tb::{encode_png_rgb8, heatmap_rgb8, viridis};

use cilp_train::error::{Result, TrainError};

/// Depth value of a LiDAR ray without a return.
const NO_RETURN: f32 = 50.0;

/// A PNG with its size.
#[derive(Debug, Clone)]
pub struct Png {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Heatmap PNG of a row-major `n x n` similarity matrix (viridis over its range), `cell_px`
/// pixels per cell.
pub fn similarity_heatmap(sim: &[f32], n: usize, cell_px: usize) -> Result<Png> {
    let (px, width, height) = heatmap_rgb8(sim, n, n, cell_px)?;
    let bytes = encode_png_rgb8(&px, width, height)?;
    Ok(Png { bytes, width, height })
}

/// One row of the sample-prediction table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SamplePrediction {
    /// Dataset index.
    pub index: usize,
    /// `class/stem`, e.g. `spheres/9702`.
    pub sample: String,
    pub truth: String,
    pub prediction: String,
    /// Probability of the predicted class.
    pub probability: f32,
}

/// Colour-maps a depth map (64x64, metres): near = bright, far = dark, no return = black.
fn depth_rgb(depth: &[f32]) -> Vec<[u8; 3]> {
    let hits = depth.iter().copied().filter(|d| d.is_finite() && *d < NO_RETURN);
    let (lo, hi) = hits.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), d| (l.min(d), h.max(d)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    depth.iter().map(|&d| if d.is_finite() && d < NO_RETURN { viridis(1.0 - (d - lo) / span) } else { [0, 0, 0] }).collect()
}

/// The sample-prediction grid: one row per sample, `RGB | depth | bar` with each 64x64 tile
/// scaled by `scale`; the bar is green for a correct prediction and red for a wrong one.
/// `rgba`: 64x64 RGBA bytes per sample; `depth`: 64x64 metres per sample.
pub fn prediction_grid(rgba: &[&[u8]], depth: &[&[f32]], correct: &[bool], scale: usize) -> Result<Png> {
    let n = rgba.len();
    if n == 0 || depth.len() != n || correct.len() != n || scale == 0 {
        return Err(TrainError::Config(
            "the prediction grid needs at least one sample (prediction_samples >= 1), with one RGB image, depth map and outcome each"
                .into(),
        ));
    }
    let tile = 64 * scale;
    let gap = 4;
    let bar = 12;
    let width = 2 * tile + 2 * gap + bar;
    let height = n * tile + (n - 1) * gap;
    let mut px = vec![255u8; width * height * 3];
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        let o = (y * width + x) * 3;
        px[o..o + 3].copy_from_slice(&c);
    };
    for s in 0..n {
        let y0 = s * (tile + gap);
        let d = depth_rgb(depth[s]);
        for y in 0..tile {
            for x in 0..tile {
                let i = (y / scale) * 64 + x / scale;
                let p = &rgba[s][i * 4..i * 4 + 4];
                // Composite onto white by alpha.
                let a = p[3] as f32 / 255.0;
                let rgb = std::array::from_fn(|c| (p[c] as f32 * a + 255.0 * (1.0 - a)).round() as u8);
                put(x, y0 + y, rgb);
                put(tile + gap + x, y0 + y, d[i]);
            }
            let colour = if correct[s] { [40, 167, 69] } else { [220, 53, 69] };
            for x in 0..bar {
                put(2 * tile + 2 * gap + x, y0 + y, colour);
            }
        }
    }
    let bytes = encode_png_rgb8(&px, width as u32, height as u32)?;
    Ok(Png { bytes, width: width as u32, height: height as u32 })
}

/// The Markdown table of sample predictions (rows in the grid's order).
pub fn predictions_markdown(rows: &[SamplePrediction]) -> String {
    let mut s = String::from(
        "Rows match the image `val/prediction_samples` top to bottom (RGB | LiDAR depth | green = correct, red = wrong).\n\n\
         | # | sample | truth | prediction | probability | correct |\n|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.4} | {} |\n",
            i + 1,
            r.sample,
            r.truth,
            r.prediction,
            r.probability,
            if r.truth == r.prediction { "yes" } else { "**no**" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_heatmap_encode() {
        let rgba = vec![128u8; 64 * 64 * 4];
        let mut depth = vec![50.0f32; 64 * 64];
        depth[10] = 3.0;
        depth[11] = 4.0;
        let g = prediction_grid(&[&rgba, &rgba], &[&depth, &depth], &[true, false], 1).unwrap();
        assert_eq!((g.width, g.height), (64 * 2 + 8 + 12, 64 * 2 + 4));
        let h = similarity_heatmap(&[1.0, 0.0, 0.0, 1.0], 2, 4).unwrap();
        assert_eq!((h.width, h.height), (8, 8));
        let md = predictions_markdown(&[SamplePrediction {
            index: 0,
            sample: "cubes/1".into(),
            truth: "cubes".into(),
            prediction: "spheres".into(),
            probability: 0.7,
        }]);
        assert!(md.contains("| 1 | cubes/1 | cubes | spheres | 0.7000 | **no** |"), "{md}");
    }
}
