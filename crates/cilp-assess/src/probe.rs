//! How much class information an embedding holds: a k-nearest-neighbour probe.
//!
//! The seed assessment's chain reads the CILP image embedding, and the contrastive loss never
//! asks that embedding to separate the classes (a validation batch of the original holds one
//! class, and a cube's sphere twin rarely shares its training batch). The probe measures what is
//! there without training anything: each validation embedding takes the majority label of its
//! `k` nearest training embeddings (Euclidean distance, no normalisation, the way the projector
//! reads it). A chain cannot do much better than its embedding's probe, so the probe tells a
//! weak projector from a weak embedding.

use serde::{Deserialize, Serialize};

/// The number of neighbours the seed assessment's probe uses (odd: no ties between two classes).
pub const PROBE_K: usize = 15;

/// The k-NN probe of one embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnProbe {
    /// Neighbours per vote.
    pub k: usize,
    /// Validation samples whose majority label is their own.
    pub correct: usize,
    pub samples: usize,
    /// `correct / samples`.
    pub accuracy: f64,
}

/// Majority vote of the `k` nearest rows of `train` (squared Euclidean distance) for each row
/// of `val`; rows are `dim` values long. A tie between labels goes to the label of the nearest
/// neighbour among the tied ones.
///
/// # Panics
/// When `dim` is 0, a matrix is not a whole number of rows, the labels do not match the rows,
/// or `k` is 0 or more than the training rows.
pub fn knn_probe(train: &[f32], train_labels: &[i64], val: &[f32], val_labels: &[i64], dim: usize, k: usize) -> KnnProbe {
    assert!(dim > 0 && train.len().is_multiple_of(dim) && val.len().is_multiple_of(dim), "rows of {dim} values");
    assert_eq!(train.len() / dim, train_labels.len(), "one label per training row");
    assert_eq!(val.len() / dim, val_labels.len(), "one label per validation row");
    assert!(k > 0 && k <= train_labels.len(), "k = {k} of {} training rows", train_labels.len());
    let mut correct = 0;
    // (distance, label) of the k nearest so far, sorted by distance.
    let mut nearest: Vec<(f32, i64)> = Vec::with_capacity(k + 1);
    for (q, &truth) in val.chunks_exact(dim).zip(val_labels) {
        nearest.clear();
        for (row, &label) in train.chunks_exact(dim).zip(train_labels) {
            let d = squared_distance(q, row);
            if nearest.len() == k && d >= nearest[k - 1].0 {
                continue;
            }
            let at = nearest.partition_point(|&(e, _)| e <= d);
            nearest.insert(at, (d, label));
            nearest.truncate(k);
        }
        if vote(&nearest) == truth {
            correct += 1;
        }
    }
    let samples = val_labels.len();
    KnnProbe { k, correct, samples, accuracy: correct as f64 / samples.max(1) as f64 }
}

/// `|a - b|²` with eight partial sums (vectorised; one sequential sum is not).
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ac.zip(bc) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += (x - y) * (x - y);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The most frequent label of `nearest` (sorted nearest first); ties go to the nearest.
fn vote(nearest: &[(f32, i64)]) -> i64 {
    let mut counts: Vec<(i64, usize, usize)> = Vec::new(); // (label, votes, rank of its nearest)
    for (rank, &(_, label)) in nearest.iter().enumerate() {
        match counts.iter_mut().find(|c| c.0 == label) {
            Some(c) => c.1 += 1,
            None => counts.push((label, 1, rank)),
        }
    }
    counts.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2))).map_or(-1, |c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes around (0, 0) and (10, 0), `n` points each, a deterministic spread.
    fn clusters(n: usize, offset: f32) -> (Vec<f32>, Vec<i64>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let jitter = ((i * 7919) % 13) as f32 / 13.0 - 0.5 + offset;
            x.extend([jitter, -jitter]);
            y.push(0);
            x.extend([10.0 + jitter, jitter]);
            y.push(1);
        }
        (x, y)
    }

    #[test]
    fn separated_classes_are_all_found() {
        let (train, ty) = clusters(20, 0.0);
        let (val, vy) = clusters(5, 0.1);
        let p = knn_probe(&train, &ty, &val, &vy, 2, PROBE_K);
        assert_eq!((p.correct, p.samples, p.k), (10, 10, 15));
        assert_eq!(p.accuracy, 1.0);
        // The same points with the validation labels swapped: every vote is wrong.
        let swapped: Vec<i64> = vy.iter().map(|&l| 1 - l).collect();
        assert_eq!(knn_probe(&train, &ty, &val, &swapped, 2, PROBE_K).correct, 0);
    }

    #[test]
    fn the_majority_of_k_decides_not_the_nearest() {
        // One class-1 point right at the query, four class-0 points a little further.
        let train = [0.0f32, 0.1, 0.2, 0.3, 0.4];
        let labels = [1i64, 0, 0, 0, 0];
        let p = |k| knn_probe(&train, &labels, &[0.0], &[0], 1, k).correct;
        assert_eq!(p(1), 0, "1-NN follows the nearest");
        assert_eq!(p(3), 1, "3-NN: two of three are class 0");
        assert_eq!(p(5), 1);
    }

    #[test]
    fn a_tie_goes_to_the_nearest_label() {
        let train = [1.0f32, -2.0, 3.0, -4.0];
        let labels = [0i64, 1, 0, 1];
        assert_eq!(knn_probe(&train, &labels, &[0.0], &[0], 1, 4).correct, 1);
        assert_eq!(knn_probe(&train, &labels, &[0.0], &[1], 1, 2).correct, 0);
        assert_eq!(vote(&[(0.5, 3), (0.6, 2), (0.7, 2), (0.8, 3)]), 3);
    }
}
