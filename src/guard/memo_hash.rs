//! The hash of the audit's memo tables: their keys (VM configurations,
//! requirements, verdicts, rows) are hashed hundreds of thousands of times
//! a run, and std's SipHash, built to resist keys chosen to collide, was a
//! tenth of a 10 000-VM audit. This one takes a word at a time: rotate,
//! xor, multiply, and a final mix so that the low bits the table indexes
//! by depend on every bit.
//!
//! The keys come from the cluster's own VM configurations, which only its
//! administrators write; the seed is still random per process (from std's
//! own random keys), so no fixed set of configurations collides on every
//! run. Only the audit uses it: the hookscript's decisions never do.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

/// An odd constant with bits spread over the word (2^64 / φ).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// A map keyed through [`MemoHasher`].
pub(crate) type MemoMap<K, V> = HashMap<K, V, MemoState>;

/// A fresh, empty [`MemoMap`].
pub(crate) fn map<K, V>() -> MemoMap<K, V> {
    HashMap::with_hasher(MemoState::default())
}

/// Values kept once each, by index in order of first arrival. A value is
/// found by its hash and compared with the kept one, so nothing is held
/// twice (a map from value to index would keep a copy of each as its key,
/// and free both at the end).
pub(crate) struct Interned<T> {
    /// The values, by index.
    pub(crate) items: Vec<T>,
    /// Hash → the first index with it; `next` chains the others.
    first: MemoMap<u64, usize>,
    next: Vec<Option<usize>>,
    state: MemoState,
}

impl<T: Hash + Eq> Interned<T> {
    pub(crate) fn new() -> Self {
        Interned {
            items: Vec::new(),
            first: map(),
            next: Vec::new(),
            state: MemoState::default(),
        }
    }

    /// The index of a value equal to `value`, if one is kept.
    pub(crate) fn find(&self, value: &T) -> Option<usize> {
        self.find_hashed(self.state.hash_one(value), value)
    }

    fn find_hashed(&self, hash: u64, value: &T) -> Option<usize> {
        let mut at = self.first.get(&hash).copied();
        while let Some(i) = at {
            if self.items[i] == *value {
                return Some(i);
            }
            at = self.next[i];
        }
        None
    }

    /// The index of `value`, kept if no equal value is.
    pub(crate) fn intern(&mut self, value: T) -> usize {
        let hash = self.state.hash_one(&value);
        if let Some(i) = self.find_hashed(hash, &value) {
            return i;
        }
        let i = self.items.len();
        self.items.push(value);
        self.next.push(self.first.insert(hash, i));
        i
    }
}

impl<T> std::ops::Index<usize> for Interned<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.items[i]
    }
}

/// Builds [`MemoHasher`]s from the process's seed.
#[derive(Clone, Copy)]
pub(crate) struct MemoState {
    seed: u64,
}

impl Default for MemoState {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        MemoState {
            seed: *SEED.get_or_init(|| RandomState::new().hash_one(K)),
        }
    }
}

impl BuildHasher for MemoState {
    type Hasher = MemoHasher;

    fn build_hasher(&self) -> MemoHasher {
        MemoHasher(self.seed)
    }
}

/// The hasher (see the module's text).
pub(crate) struct MemoHasher(u64);

impl MemoHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for MemoHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length too: "ab\0" and "ab" differ.
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // Every bit into the low ones, which pick the bucket.
        let x = (self.0 ^ (self.0 >> 31)).wrapping_mul(K);
        x ^ (x >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash(v: impl std::hash::Hash) -> u64 {
        MemoState::default().hash_one(v)
    }

    #[test]
    fn interned_values_are_kept_once_in_order_of_arrival() {
        let mut t = Interned::new();
        assert_eq!(t.intern("b".to_string()), 0);
        assert_eq!(t.intern("a".to_string()), 1);
        assert_eq!(t.intern("b".to_string()), 0);
        assert_eq!(t.find(&"a".to_string()), Some(1));
        assert_eq!(t.find(&"c".to_string()), None);
        assert_eq!(t.items, ["b", "a"]);
        // Many values: each found again at its index.
        for i in 0..5000u32 {
            assert_eq!(
                t.intern(i.to_string()),
                usize::try_from(i).unwrap() + 2,
                "{i}"
            );
        }
        assert_eq!(t.find(&"4999".to_string()), Some(5001));
    }

    #[test]
    fn equal_keys_hash_alike_and_near_keys_apart() {
        assert_eq!(hash("x86-64-v3"), hash(String::from("x86-64-v3")));
        assert_ne!(hash("ab"), hash("ab\0"));
        assert_ne!(hash((1usize, 2usize)), hash((2usize, 1usize)));
        // Small integers, the rows' verdict indices, spread over the low
        // bits a table of 1024 buckets uses.
        let buckets: HashSet<u64> = (0..1024usize).map(|i| hash(vec![i, 7]) & 1023).collect();
        assert!(buckets.len() > 600, "{} of 1024 buckets", buckets.len());
    }
}
