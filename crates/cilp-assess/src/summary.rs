//! What an assessment reports: NVIDIA's pass flags and thresholds, and [`AssessSummary`].

use cilp_models::CilpLoss;
use serde::{Deserialize, Serialize};

use super::retrieval::CrossModalRetrieval;
use super::{ACCURACY_THRESHOLD, AssessConfig, CILP_LOSS_THRESHOLD, GRADED_BATCHES, PROJECTOR_MSE_THRESHOLD};

/// NVIDIA's three pass flags from the measured values.
pub fn grade(cilp_val_loss_nvidia: f64, projector_val_mse: f64, lidar_val_accuracy: f64, batch_accuracies: &[f64]) -> Passed {
    Passed {
        cilp_val_loss: cilp_val_loss_nvidia < CILP_LOSS_THRESHOLD,
        // An MSE against a LiDAR classifier that does not work (e.g. stuck at chance with all-zero
        // features: a constant target) is meaningless, so it cannot pass.
        projector_val_mse: lidar_val_accuracy >= LIDAR_TARGET_MIN_ACCURACY && projector_val_mse < PROJECTOR_MSE_THRESHOLD,
        classifier_accuracy: batch_accuracies.len() == GRADED_BATCHES && batch_accuracies.iter().all(|&a| a > ACCURACY_THRESHOLD),
    }
}

/// The projector threshold only counts against a LiDAR classifier with at least this validation
/// accuracy on depth: below it the target embedding carries no usable signal (a classifier stuck
/// at chance can output all-zero features, which any projector matches with MSE 0).
pub const LIDAR_TARGET_MIN_ACCURACY: f64 = 0.9;

/// One NVIDIA threshold with its measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub metric: String,
    pub value: f64,
    /// `< 3.2`, `> 95%` ...
    pub threshold: String,
    pub passed: bool,
    /// Distance to the threshold on the passing side (negative when it fails): threshold minus
    /// value for the losses, value minus threshold for the accuracy.
    #[serde(default)]
    pub margin: f64,
}

/// Pass flags, one per NVIDIA threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passed {
    /// CILP validation loss (NVIDIA loss) < 3.2.
    pub cilp_val_loss: bool,
    /// Projector validation MSE < 2.5.
    pub projector_val_mse: bool,
    /// Accuracy > 95% on each of the 5 graded validation batches of 32.
    pub classifier_accuracy: bool,
}

/// Where the LiDAR classifier came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LidarClassifierInfo {
    /// `pretrained` (a `.pt` file) or `trained` (the `lidar-classifier` run).
    pub source: String,
    pub path: String,
    /// Its accuracy on raw validation depth maps.
    pub val_accuracy: f64,
}

/// `OUT/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessSummary {
    /// `"assess"`: marks this `summary.json` as a study summary, so `OUT` is a group of runs.
    pub study: String,
    pub title: String,
    /// `nvidia` or `clip`.
    pub cilp_loss_variant: CilpLoss,
    /// Final CILP validation loss of the trained variant (mean over full validation batches).
    pub cilp_val_loss: f64,
    /// The NVIDIA loss of the same validation embeddings (equals `cilp_val_loss` for the NVIDIA
    /// variant); NVIDIA's `< 3.2` threshold is graded on this.
    pub cilp_val_loss_nvidia: f64,
    pub projector_val_mse: f64,
    /// Accuracy of the final RGB -> LiDAR classifier over the whole validation set.
    pub classifier_accuracy: f64,
    /// Accuracy on each graded validation batch (5 batches of 32, seeded shuffle).
    pub classifier_batch_accuracies: Vec<f64>,
    /// Accuracy over the whole validation set before fine-tuning.
    pub classifier_accuracy_before_finetune: f64,
    /// How the graded fine-tuned epoch was chosen (absent in summaries of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune_selection: Option<FinetuneSelection>,
    pub passed: Passed,
    pub all_passed: bool,
    pub thresholds: Vec<ThresholdRow>,
    /// Retrieval over the whole validation set with the final CILP encoders.
    pub retrieval: CrossModalRetrieval,
    /// `exp(s)` after each CILP epoch (CLIP variant; empty for NVIDIA's).
    pub logit_scale_per_epoch: Vec<f64>,
    pub lidar_classifier: LidarClassifierInfo,
    pub train_samples: usize,
    pub val_samples: usize,
    /// Stage run directories, relative to `OUT`.
    pub runs: Vec<String>,
    pub wall_seconds: f64,
    /// Images in `OUT` (also embedded by `study_table.json`).
    pub images: Vec<String>,
    pub config: AssessConfig,
}

impl AssessSummary {
    /// The table `cilp assess` prints (Markdown, like the original README).
    pub fn table(&self) -> String {
        let mut s = String::from("| metric | value | threshold | margin | pass |\n|---|---|---|---|---|\n");
        for r in &self.thresholds {
            let (v, m) = if r.metric.contains("accuracy") {
                (format!("{:.2}%", 100.0 * r.value), format!("{:+.2} points", 100.0 * r.margin))
            } else {
                (format!("{:.4}", r.value), format!("{:+.4}", r.margin))
            };
            s.push_str(&format!("| {} | {} | {} | {} | {} |\n", r.metric, v, r.threshold, m, if r.passed { "yes" } else { "NO" }));
        }
        s
    }

    /// One line with each threshold's margin, e.g. for the end of `cilp run`.
    pub fn margins_line(&self) -> String {
        self.thresholds
            .iter()
            .map(|r| {
                if r.metric.contains("accuracy") {
                    format!("min batch accuracy {:.2}% ({:+.2} points)", 100.0 * r.value, 100.0 * r.margin)
                } else if r.metric.contains("MSE") {
                    format!("projector MSE {:.4} ({:+.4})", r.value, r.margin)
                } else {
                    format!("CILP loss {:.4} ({:+.4})", r.value, r.margin)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How the graded fine-tuned model was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSelection {
    /// Training pairs held out of fine-tuning to choose the epoch (0: the last epoch is graded).
    pub samples: usize,
    /// The graded epoch (0 = the assembled chain before fine-tuning).
    pub epoch: usize,
    /// Accuracy on the selection set after each epoch, from epoch 0 (empty without a selection set).
    pub accuracies: Vec<f64>,
    /// Validation accuracy (all validation pairs) after each epoch, from epoch 0, for the record:
    /// it plays no part in the choice.
    pub val_accuracies: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_follows_the_thresholds_and_voids_a_useless_lidar_target() {
        let good = [1.0, 0.97, 0.99, 1.0, 0.96];
        assert_eq!(grade(3.1, 2.0, 0.99, &good), Passed { cilp_val_loss: true, projector_val_mse: true, classifier_accuracy: true });
        assert!(!grade(3.2, 2.0, 0.99, &good).cilp_val_loss);
        assert!(!grade(3.1, 2.5, 0.99, &good).projector_val_mse);
        // A LiDAR classifier at chance makes MSE 0 meaningless: no pass.
        assert!(!grade(3.1, 0.0, 0.5, &good).projector_val_mse);
        assert!(!grade(3.1, 2.0, 0.99, &[1.0, 0.95, 1.0, 1.0, 1.0]).classifier_accuracy, "95% is not > 95%");
        assert!(!grade(3.1, 2.0, 0.99, &good[..4]).classifier_accuracy, "needs all 5 graded batches");
    }
}
