//! A fast hash for the runtime's in-memory maps keyed by short byte strings (record and row keys).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash, eight bytes at a time, for the writers' maps: keys are short, and SipHash showed
/// up in profiles. (A client choosing colliding keys only slows its own partition.)
#[derive(Default)]
pub(crate) struct FastHasher(u64);

pub(crate) const FAST_HASH_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let hash = self.0.wrapping_mul(FAST_HASH_K);
        hash ^ (hash >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(FAST_HASH_K).rotate_left(29);
        }
        let remainder = chunks.remainder();
        if !remainder.is_empty() {
            let mut word = [0u8; 8];
            word[..remainder.len()].copy_from_slice(remainder);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(FAST_HASH_K).rotate_left(29);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(FAST_HASH_K).rotate_left(29);
    }
    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A record or row key in the writers' maps: short keys (most are) live inside the map's own slots, so that
/// comparing a probed key reads no other memory.
pub(crate) type KeyBytes = smallvec::SmallVec<[u8; 24]>;
