//! Cross-modal retrieval metrics of `cilp assess` against a naive O(n^2) reference.

use burn::tensor::Device;
use cilp_assess::retrieval::{Retrieval, ranks, retrieval_metrics, similarity_matrix};

/// Deterministic pseudo-random values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

fn cos(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The naive reference: for each query, sort all candidates by cosine similarity (f64) and find
/// the position of the true match; then R@1, R@5 and the mean rank.
fn naive(queries: &[f32], candidates: &[f32], dim: usize) -> Retrieval {
    let n = queries.len() / dim;
    let (mut r1, mut r5, mut rank_sum) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let q = &queries[i * dim..(i + 1) * dim];
        let mut scored: Vec<(f64, usize)> = (0..n).map(|j| (cos(q, &candidates[j * dim..(j + 1) * dim]), j)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let rank = scored.iter().position(|&(_, j)| j == i).unwrap() + 1;
        r1 += (rank <= 1) as usize;
        r5 += (rank <= 5) as usize;
        rank_sum += rank;
    }
    Retrieval { r_at_1: r1 as f64 / n as f64, r_at_5: r5 as f64 / n as f64, mean_rank: rank_sum as f64 / n as f64 }
}

fn close(a: &Retrieval, b: &Retrieval) {
    assert!((a.r_at_1 - b.r_at_1).abs() < 1e-12, "{a:?} vs {b:?}");
    assert!((a.r_at_5 - b.r_at_5).abs() < 1e-12, "{a:?} vs {b:?}");
    assert!((a.mean_rank - b.mean_rank).abs() < 1e-9, "{a:?} vs {b:?}");
}

#[test]
fn retrieval_matches_naive_reference_in_both_directions() {
    let device = Device::flex();
    let mut imperfect = 0;
    for (n, dim, noise_level, seed) in [(50, 16, 0.8f32, 1u64), (97, 200, 8.0, 2), (10, 3, 0.3, 3)] {
        // LiDAR embeddings = RGB embeddings + noise: partially aligned, so ranks spread out.
        let img = noise(n * dim, seed);
        let lid: Vec<f32> = img.iter().zip(noise(n * dim, seed + 100)).map(|(a, e)| a + noise_level * e).collect();
        let got = retrieval_metrics(&img, &lid, dim, &device);
        assert_eq!(got.samples, n);
        close(&got.rgb_to_lidar, &naive(&img, &lid, dim));
        close(&got.lidar_to_rgb, &naive(&lid, &img, dim));
        imperfect += (got.rgb_to_lidar.mean_rank > 1.0 && got.lidar_to_rgb.mean_rank > 1.0) as usize;
    }
    assert_eq!(imperfect, 3, "the test data should not be perfectly aligned");
}

#[test]
fn perfect_and_reversed_alignment() {
    let device = Device::flex();
    let (n, dim) = (20, 8);
    let img = noise(n * dim, 7);
    let got = retrieval_metrics(&img, &img, dim, &device);
    for r in [got.rgb_to_lidar, got.lidar_to_rgb] {
        assert_eq!((r.r_at_1, r.r_at_5, r.mean_rank), (1.0, 1.0, 1.0));
    }
    // Ranks are 1-based and at most n; the similarity matrix is the cosine matrix.
    let lid = noise(n * dim, 8);
    let sim = similarity_matrix(&img, &lid, dim, &device);
    assert!((sim[3 * n + 5] as f64 - cos(&img[3 * dim..4 * dim], &lid[5 * dim..6 * dim])).abs() < 1e-5);
    let (rows, cols) = ranks(&sim, n);
    assert!(rows.iter().chain(&cols).all(|&r| (1..=n).contains(&r)));
}
