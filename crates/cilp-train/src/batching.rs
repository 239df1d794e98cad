//! Turning dataset samples into batched model inputs.

use burn::tensor::{Device, Int, Tensor, TensorData};
use cilp_data::dataset::Dataset;
use cilp_data::tensorize::{XyzaConvention, depth_chw, depth_to_xyza, rgb_chw};
use cilp_models::{InputKind, ModelInputs};

const PLANE: usize = 64 * 64;

/// Builds the inputs a model needs for the samples `indices`, plus their class targets (as a
/// tensor and as plain values).
pub fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    kinds: &[InputKind],
    xyza: XyzaConvention,
    device: &Device,
) -> (ModelInputs, Tensor<1, Int>, Vec<i64>) {
    let b = indices.len();
    let mut inputs = ModelInputs::default();
    for &kind in kinds {
        match kind {
            InputKind::Rgb => {
                let mut buf = vec![0f32; b * 4 * PLANE];
                for (chunk, &i) in buf.chunks_exact_mut(4 * PLANE).zip(indices) {
                    rgb_chw(ds.sample(i).rgb, chunk);
                }
                inputs.rgb = Some(Tensor::from_data(TensorData::new(buf, [b, 4, 64, 64]), device));
            }
            InputKind::Xyza => {
                let mut buf = vec![0f32; b * 4 * PLANE];
                for (chunk, &i) in buf.chunks_exact_mut(4 * PLANE).zip(indices) {
                    let s = ds.sample(i);
                    let (az, ze) = ds.angles(s.class);
                    depth_to_xyza(s.depth, az, ze, xyza, chunk);
                }
                inputs.xyza = Some(Tensor::from_data(TensorData::new(buf, [b, 4, 64, 64]), device));
            }
            InputKind::Depth => {
                let mut buf = vec![0f32; b * PLANE];
                for (chunk, &i) in buf.chunks_exact_mut(PLANE).zip(indices) {
                    depth_chw(ds.sample(i).depth, chunk);
                }
                inputs.depth = Some(Tensor::from_data(TensorData::new(buf, [b, 1, 64, 64]), device));
            }
            InputKind::ImageEmbedding => {
                unreachable!("image embeddings are not a dataset input")
            }
        }
    }
    let targets: Vec<i64> = indices.iter().map(|&i| ds.sample(i).class as i64).collect();
    let tensor = Tensor::from_data(TensorData::new(targets.clone(), [b]), device);
    (inputs, tensor, targets)
}
