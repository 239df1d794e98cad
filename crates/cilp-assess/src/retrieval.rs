//! Cross-modal retrieval metrics of a CILP model: R@1, R@5 and mean rank, in both directions
//! (RGB -> LiDAR and LiDAR -> RGB), over a whole set of paired embeddings.
//!
//! Sample `i`'s RGB embedding and LiDAR embedding are a true pair. For a query `i` the rank of
//! its true match is `1 + #{j : sim(i, j) > sim(i, i)}` (cosine similarity; ties count in the
//! true match's favour). R@k is the fraction of queries with rank <= k; the mean rank is the
//! average rank (1 is perfect, `(n + 1) / 2` is chance).

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Retrieval metrics in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    /// Fraction of queries whose true match ranks first.
    #[serde(rename = "R@1")]
    pub r_at_1: f64,
    /// Fraction of queries whose true match is within the top 5.
    #[serde(rename = "R@5")]
    pub r_at_5: f64,
    /// Mean rank of the true match (1-based).
    pub mean_rank: f64,
}

impl Retrieval {
    /// Metrics from 1-based ranks.
    pub fn from_ranks(ranks: &[usize]) -> Retrieval {
        let n = ranks.len().max(1) as f64;
        Retrieval {
            r_at_1: ranks.iter().filter(|&&r| r <= 1).count() as f64 / n,
            r_at_5: ranks.iter().filter(|&&r| r <= 5).count() as f64 / n,
            mean_rank: ranks.iter().map(|&r| r as f64).sum::<f64>() / n,
        }
    }
}

/// `R@1 0.500, R@5 0.750, mean rank 2.0`.
impl std::fmt::Display for Retrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "R@1 {:.3}, R@5 {:.3}, mean rank {:.1}", self.r_at_1, self.r_at_5, self.mean_rank)
    }
}

/// Retrieval metrics in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CrossModalRetrieval {
    /// Number of pairs (queries per direction).
    pub samples: usize,
    /// RGB queries against all LiDAR embeddings.
    pub rgb_to_lidar: Retrieval,
    /// LiDAR queries against all RGB embeddings.
    pub lidar_to_rgb: Retrieval,
}

impl CrossModalRetrieval {
    /// `(metric key, value)` pairs for an epoch's `extra` metrics (TensorBoard tags
    /// `val/rgb_to_lidar/R@1` etc.).
    pub fn extra(&self) -> Vec<(String, f64)> {
        let mut v = Vec::new();
        for (dir, r) in [("rgb_to_lidar", &self.rgb_to_lidar), ("lidar_to_rgb", &self.lidar_to_rgb)] {
            v.push((format!("{dir}/R@1"), r.r_at_1));
            v.push((format!("{dir}/R@5"), r.r_at_5));
            v.push((format!("{dir}/mean_rank"), r.mean_rank));
        }
        v
    }
}

/// `RGB->LiDAR R@1 0.500, R@5 0.750, mean rank 2.0; LiDAR->RGB R@1 ...` (both directions;
/// the sample count is left to the caller's wording).
impl std::fmt::Display for CrossModalRetrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RGB->LiDAR {}; LiDAR->RGB {}", self.rgb_to_lidar, self.lidar_to_rgb)
    }
}

/// Row-wise L2 normalisation of `n` rows of `dim` values.
fn normalized(x: &[f32], dim: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

/// Cosine similarity matrix `[n, n]` (row-major; rows = RGB, columns = LiDAR) of paired
/// embeddings given as `n` rows of `dim` values each, computed with one matrix product on
/// `device`.
pub fn similarity_matrix(img: &[f32], lidar: &[f32], dim: usize, device: &Device) -> Vec<f32> {
    assert!(dim > 0 && img.len().is_multiple_of(dim), "embeddings must be rows of {dim} values");
    assert_eq!(img.len(), lidar.len(), "RGB and LiDAR embeddings must pair up");
    let n = img.len() / dim;
    if n == 0 {
        return Vec::new();
    }
    let a = Tensor::<2>::from_data(TensorData::new(normalized(img, dim), [n, dim]), device);
    let b = Tensor::<2>::from_data(TensorData::new(normalized(lidar, dim), [n, dim]), device);
    a.matmul(b.transpose()).into_data().try_into_vec_as::<f32>().expect("f32 similarities")
}

/// 1-based ranks of the true matches from a square similarity matrix: `(row ranks, column
/// ranks)`, i.e. RGB -> LiDAR and LiDAR -> RGB.
pub fn ranks(sim: &[f32], n: usize) -> (Vec<usize>, Vec<usize>) {
    assert_eq!(sim.len(), n * n, "similarity matrix must be n x n");
    let mut rows = vec![1usize; n];
    let mut cols = vec![1usize; n];
    for i in 0..n {
        let diag_i = sim[i * n + i];
        for j in 0..n {
            let v = sim[i * n + j];
            if v > diag_i {
                rows[i] += 1;
            }
            // Column j: query LiDAR j against every RGB i.
            if v > sim[j * n + j] {
                cols[j] += 1;
            }
        }
    }
    (rows, cols)
}

/// Retrieval metrics of paired embeddings (`n` rows of `dim` values each, row `i` of both is a
/// true pair), over all `n` samples.
pub fn retrieval_metrics(img: &[f32], lidar: &[f32], dim: usize, device: &Device) -> CrossModalRetrieval {
    let n = img.len() / dim.max(1);
    let sim = similarity_matrix(img, lidar, dim, device);
    let (r, c) = ranks(&sim, n);
    CrossModalRetrieval { samples: n, rgb_to_lidar: Retrieval::from_ranks(&r), lidar_to_rgb: Retrieval::from_ranks(&c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_reported_retrieval_line() {
        let r = CrossModalRetrieval {
            samples: 8,
            rgb_to_lidar: Retrieval { r_at_1: 0.5, r_at_5: 0.875, mean_rank: 2.375 },
            lidar_to_rgb: Retrieval { r_at_1: 1.0 / 3.0, r_at_5: 1.0, mean_rank: 1.04 },
        };
        assert_eq!(r.rgb_to_lidar.to_string(), "R@1 0.500, R@5 0.875, mean rank 2.4");
        assert_eq!(r.to_string(), "RGB->LiDAR R@1 0.500, R@5 0.875, mean rank 2.4; LiDAR->RGB R@1 0.333, R@5 1.000, mean rank 1.0");
        // The assessment's note, as it was formatted field by field before `Display`.
        let (a, b) = (r.rgb_to_lidar, r.lidar_to_rgb);
        assert_eq!(
            format!("Retrieval over all {} validation pairs: {}.", r.samples, r),
            format!(
                "Retrieval over all {} validation pairs: RGB->LiDAR R@1 {:.3}, R@5 {:.3}, mean rank {:.1}; LiDAR->RGB R@1 {:.3}, R@5 {:.3}, mean rank {:.1}.",
                r.samples, a.r_at_1, a.r_at_5, a.mean_rank, b.r_at_1, b.r_at_5, b.mean_rank
            )
        );
    }
}
