//! Seeded mini-batching over a list of sample indices.
//!
//! The order of epoch `e` depends only on `(indices, shuffle_seed, e)`: a run resumed at epoch
//! `k` sees exactly the batches an uninterrupted run sees at epoch `k`, without replaying the
//! earlier epochs' random draws.
//!
//! ```
//! use cilp_data::batch::Batches;
//! let train: Vec<usize> = (0..10).collect();
//! let batches = Batches::new(&train, 4, Some(51), 1, true);
//! assert_eq!(batches.len(), 2); // the last, partial batch of 2 is dropped
//! for batch in &batches {
//!     assert_eq!(batch.len(), 4);
//! }
//! let all: Vec<&[usize]> = batches.iter().collect();
//! assert_eq!(all.len(), 2);
//! ```

use crate::rng::{chacha, shuffle};

/// The batches of one epoch. Iterate with [`Batches::iter`] or `for batch in &batches`; each
/// item is a `&[usize]` of sample indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
}

impl Batches {
    /// Batches of `batch_size` over `indices`. With `shuffle_seed = Some(seed)` the indices are
    /// shuffled by a ChaCha8 generator keyed by `(seed, epoch)`; with `None` they keep their
    /// order (and `epoch` is ignored). `drop_last` drops a final batch shorter than
    /// `batch_size` (PyTorch's `DataLoader(drop_last=True)`).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn new(indices: &[usize], batch_size: usize, shuffle_seed: Option<u64>, epoch: usize, drop_last: bool) -> Batches {
        assert!(batch_size > 0, "batch_size must be at least 1");
        let mut order = indices.to_vec();
        if let Some(seed) = shuffle_seed {
            let mut rng = chacha(seed, epoch as u64, b"cilp-batches");
            shuffle(&mut order, &mut rng);
        }
        if drop_last {
            order.truncate(order.len() / batch_size * batch_size);
        }
        Batches { order, batch_size, drop_last }
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// True when there is no batch at all.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Batch `i` (panics if `i >= len()`).
    pub fn get(&self, i: usize) -> &[usize] {
        let start = i * self.batch_size;
        assert!(start < self.order.len(), "batch {i} out of range ({} batches)", self.len());
        &self.order[start..(start + self.batch_size).min(self.order.len())]
    }

    /// The indices in epoch order (after dropping the last partial batch, if asked).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Samples covered by all batches.
    pub fn samples(&self) -> usize {
        self.order.len()
    }

    /// Whether a final partial batch was dropped (as asked in [`Batches::new`]).
    pub fn drops_last(&self) -> bool {
        self.drop_last
    }

    /// Iterates over the batches.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }
}

impl<'a> IntoIterator for &'a Batches {
    type Item = &'a [usize];
    type IntoIter = std::slice::Chunks<'a, usize>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_and_sizes() {
        let idx: Vec<usize> = (100..110).collect();
        let b = Batches::new(&idx, 4, None, 0, false);
        let got: Vec<&[usize]> = b.iter().collect();
        assert_eq!(got, vec![&[100, 101, 102, 103][..], &[104, 105, 106, 107], &[108, 109]]);
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(2), &[108, 109]);
        let b = Batches::new(&idx, 4, Some(1), 3, true);
        assert_eq!(b.len(), 2);
        assert_eq!(b.samples(), 8);
        assert!((&b).into_iter().all(|x| x.len() == 4));
        // Shuffled without drop_last: a permutation of the input.
        let b = Batches::new(&idx, 3, Some(7), 0, false);
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        assert_ne!(all, idx);
        all.sort_unstable();
        assert_eq!(all, idx);
        // Empty and tiny inputs.
        assert!(Batches::new(&[], 4, Some(1), 0, false).is_empty());
        assert_eq!(Batches::new(&[1, 2], 4, Some(1), 0, true).len(), 0);
        assert_eq!(Batches::new(&[1, 2], 4, Some(1), 0, false).len(), 1);
    }

    #[test]
    fn determinism_per_seed_and_epoch() {
        let idx: Vec<usize> = (0..1000).collect();
        // A "resumed" run building epoch 5 directly equals an uninterrupted run's epoch 5.
        let uninterrupted: Vec<Batches> = (1..=5).map(|e| Batches::new(&idx, 32, Some(51), e, true)).collect();
        let resumed = Batches::new(&idx, 32, Some(51), 5, true);
        assert_eq!(uninterrupted[4], resumed);
        // Epochs and seeds differ.
        assert_ne!(uninterrupted[3].order(), uninterrupted[4].order());
        assert_ne!(Batches::new(&idx, 32, Some(52), 5, true).order(), resumed.order());
        // drop_last drops the same tail that the shuffled order would otherwise end with.
        let full = Batches::new(&idx, 32, Some(51), 5, false);
        assert_eq!(&full.order()[..resumed.samples()], resumed.order());
        assert_eq!(resumed.samples(), 992);
    }

    #[test]
    #[should_panic(expected = "batch_size")]
    fn zero_batch_size_panics() {
        Batches::new(&[1], 0, None, 0, false);
    }
}
