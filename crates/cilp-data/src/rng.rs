//! Seeded randomness shared by splits and batching: ChaCha8 keyed by (seed, stream, purpose)
//! and a Fisher-Yates shuffle written here (on `next_u64` only), so orders stay identical
//! across `rand` releases.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 generator whose 32-byte key holds `seed`, `stream` and a purpose tag, so that
/// different uses of the same user seed get independent streams.
pub(crate) fn chacha(seed: u64, stream: u64, purpose: &[u8]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&stream.to_le_bytes());
    let n = purpose.len().min(16);
    key[16..16 + n].copy_from_slice(&purpose[..n]);
    ChaCha8Rng::from_seed(key)
}

/// Uniform integer in `[0, n)` (n > 0) by rejection sampling, unbiased.
fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX - n + 1) % n; // largest multiple of n, minus 1
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % n;
        }
    }
}

/// Fisher-Yates shuffle.
pub(crate) fn shuffle<T>(v: &mut [T], rng: &mut impl RngCore) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_and_unbiased_enough() {
        let mut counts = [[0usize; 4]; 4];
        let mut rng = chacha(1, 2, b"t");
        for _ in 0..8000 {
            let mut v = [0, 1, 2, 3];
            shuffle(&mut v, &mut rng);
            for (pos, &x) in v.iter().enumerate() {
                counts[x][pos] += 1;
            }
        }
        for row in counts {
            for c in row {
                assert!((1700..2300).contains(&c), "{counts:?}");
            }
        }
        assert_eq!(below(&mut rng, 1), 0);
    }

    #[test]
    fn streams_differ() {
        let a = chacha(5, 0, b"x").next_u64();
        assert_ne!(a, chacha(5, 1, b"x").next_u64());
        assert_ne!(a, chacha(5, 0, b"y").next_u64());
        assert_eq!(a, chacha(5, 0, b"x").next_u64());
    }
}
