//! Metric names (TensorBoard tags, `final_metrics` keys) used across cilp.
//!
//! Tags follow the `<split>/<metric>` convention of the original W&B /
//! TensorBoard logging, so the TensorBoard UI groups them into `train` and
//! `val` sections. Everything that logs or reads a metric by name should use
//! these constants (or [`split_tag`]) instead of string literals.
//!
//! | constant | tag | unit / meaning |
//! |---|---|---|
//! | [`TRAIN_LOSS`] | `train/loss` | mean training loss of the epoch |
//! | [`TRAIN_ACCURACY`] | `train/accuracy` | training accuracy in `[0, 1]` |
//! | [`VAL_LOSS`] | `val/loss` | mean validation loss |
//! | [`VAL_ACCURACY`] | `val/accuracy` | validation accuracy in `[0, 1]` |
//! | [`LR`] | `lr` | learning rate at the end of the epoch |
//! | [`TRAIN_EPOCH_SECONDS`] | `train/epoch_seconds` | wall-clock seconds of the epoch |
//! | [`TRAIN_SAMPLES_PER_S`] | `train/samples_per_s` | training throughput |
//! | [`TRAIN_PEAK_MEMORY_MB`] | `train/peak_memory_mb` | peak memory in MiB (2^20 bytes) |
//! | [`VAL_RGB_TO_LIDAR_R1`] … | `val/rgb_to_lidar/R@1` … | retrieval recall@k, contrastive runs |
//! | [`TRAIN_LOGIT_SCALE`] | `train/logit_scale` | learned CLIP temperature (exp of the parameter) |

/// Split name of training rows.
pub const TRAIN: &str = "train";
/// Split name of validation rows.
pub const VAL: &str = "val";

/// Mean training loss of an epoch.
pub const TRAIN_LOSS: &str = "train/loss";
/// Training accuracy in `[0, 1]`.
pub const TRAIN_ACCURACY: &str = "train/accuracy";
/// Mean validation loss of an epoch.
pub const VAL_LOSS: &str = "val/loss";
/// Validation accuracy in `[0, 1]`.
pub const VAL_ACCURACY: &str = "val/accuracy";
/// Learning rate (logged once per epoch, not per split).
pub const LR: &str = "lr";
/// Wall-clock seconds of a training epoch.
pub const TRAIN_EPOCH_SECONDS: &str = "train/epoch_seconds";
/// Training throughput in samples per second.
pub const TRAIN_SAMPLES_PER_S: &str = "train/samples_per_s";
/// Peak memory during training, in MiB.
pub const TRAIN_PEAK_MEMORY_MB: &str = "train/peak_memory_mb";
/// Wall-clock seconds of a validation pass.
pub const VAL_EPOCH_SECONDS: &str = "val/epoch_seconds";
/// Validation throughput in samples per second.
pub const VAL_SAMPLES_PER_S: &str = "val/samples_per_s";
/// Peak memory during validation, in MiB.
pub const VAL_PEAK_MEMORY_MB: &str = "val/peak_memory_mb";

/// Contrastive retrieval RGB -> LiDAR recall@1 (validation).
pub const VAL_RGB_TO_LIDAR_R1: &str = "val/rgb_to_lidar/R@1";
/// Contrastive retrieval RGB -> LiDAR recall@5 (validation).
pub const VAL_RGB_TO_LIDAR_R5: &str = "val/rgb_to_lidar/R@5";
/// Contrastive retrieval LiDAR -> RGB recall@1 (validation).
pub const VAL_LIDAR_TO_RGB_R1: &str = "val/lidar_to_rgb/R@1";
/// Contrastive retrieval LiDAR -> RGB recall@5 (validation).
pub const VAL_LIDAR_TO_RGB_R5: &str = "val/lidar_to_rgb/R@5";
/// Learned CLIP logit scale (temperature), training.
pub const TRAIN_LOGIT_SCALE: &str = "train/logit_scale";

/// Image tag of the contrastive similarity-matrix heatmap.
pub const IMAGE_SIMILARITY_MATRIX: &str = "val/similarity_matrix";
/// Text tag holding the resolved config (TOML in a Markdown code block).
pub const TEXT_CONFIG: &str = "config";
/// Text tag holding the sample-prediction table (Markdown).
pub const TEXT_PREDICTIONS: &str = "val/predictions";

/// Metric names of an [`EpochMetrics`](crate::EpochMetrics) row, relative to its split.
pub mod field {
    /// `loss` column.
    pub const LOSS: &str = "loss";
    /// `accuracy` column.
    pub const ACCURACY: &str = "accuracy";
    /// `epoch_seconds` column.
    pub const EPOCH_SECONDS: &str = "epoch_seconds";
    /// `samples_per_s` column.
    pub const SAMPLES_PER_S: &str = "samples_per_s";
    /// Peak memory, logged to TensorBoard in MiB.
    pub const PEAK_MEMORY_MB: &str = "peak_memory_mb";
}

/// Join a split and a metric name: `split_tag("val", "rgb_to_lidar/R@1") == "val/rgb_to_lidar/R@1"`.
pub fn split_tag(split: &str, metric: &str) -> String {
    format!("{split}/{metric}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_matches_constants() {
        assert_eq!(split_tag(TRAIN, field::LOSS), TRAIN_LOSS);
        assert_eq!(split_tag(VAL, field::ACCURACY), VAL_ACCURACY);
        assert_eq!(split_tag(TRAIN, field::PEAK_MEMORY_MB), TRAIN_PEAK_MEMORY_MB);
        assert_eq!(split_tag(VAL, "rgb_to_lidar/R@1"), VAL_RGB_TO_LIDAR_R1);
    }
}
