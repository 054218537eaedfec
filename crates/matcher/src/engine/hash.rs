//! A small, fast, non-cryptographic hasher (FxHash-style mixing with a Murmur3
//! finalizer) for the engine's maps.
//!
//! Keys inserted into these maps come from subscriptions (written by operators
//! of the router, not by signal producers); signal values are only looked up,
//! never inserted, so collision flooding from producers cannot grow any map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash: multiply-rotate over machine words.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Murmur3's fmix64: spreads every input bit over the low bits, which
        // hashbrown uses for the bucket index (plain Fx leaves them weak).
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The builder of [`FxHasher`]s.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// Approximate heap bytes of a hash map's table: its buckets (a power of two
/// of which at most 7/8 are used) times an entry and a control byte. The keys'
/// and values' own heap is not included.
pub(crate) fn table_bytes<K, V, S>(m: &HashMap<K, V, S>) -> usize {
    buckets(m.capacity()) * (std::mem::size_of::<(K, V)>() + 1)
}

/// The buckets of a hash table that can hold `cap` entries.
pub(crate) fn buckets(cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let mut buckets = 1usize;
    while buckets * 7 / 8 < cap {
        buckets *= 2;
    }
    buckets
}
