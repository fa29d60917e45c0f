//! The cleaner's key → latest offset map, bounded like Kafka's `SkimpyOffsetMap`: a key is kept
//! as a 128-bit hash (two SipHash-1-3 hashes under different keys) with its offset, 24 bytes an
//! entry, and the map holds at most `log.cleaner.dedupe.buffer.size / 24` entries at 90% load
//! (`log.cleaner.io.buffer.load.factor`). A collision of 128-bit hashes (about 2^-64 for four
//! billion keys) would make the cleaner drop an older value of the other key early; Kafka takes
//! the same risk with MD5.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};

/// Bytes each entry counts against the dedupe buffer (hash and offset, as Kafka's).
const ENTRY_BYTES: usize = 24;
/// Kafka's `log.cleaner.io.buffer.load.factor`.
const LOAD_FACTOR: f64 = 0.9;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    latest: HashMap<u128, i64, BuildHasherDefault<DefaultHasher>>,
    capacity: usize,
}

impl OffsetMap {
    /// A map for a dedupe buffer of `buffer_bytes` (at least one entry).
    pub(crate) fn with_buffer(buffer_bytes: usize) -> OffsetMap {
        let capacity = (((buffer_bytes / ENTRY_BYTES) as f64 * LOAD_FACTOR) as usize).max(1);
        OffsetMap { latest: HashMap::default(), capacity }
    }

    fn hash(key: &[u8]) -> u128 {
        let half = |salt: u64| {
            let mut h = BuildHasherDefault::<DefaultHasher>::default().build_hasher();
            salt.hash(&mut h);
            key.hash(&mut h);
            h.finish()
        };
        (u128::from(half(0x5354_524f_4d00_0001)) << 64) | u128::from(half(0x5354_524f_4d00_0002))
    }

    /// Whether `keys` more new keys would still fit.
    pub(crate) fn has_room_for(&self, keys: usize) -> bool {
        self.latest.len() + keys <= self.capacity
    }

    /// Records that `key` was written at `offset` (offsets arrive in increasing order).
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        let slot = self.latest.entry(Self::hash(key)).or_insert(offset);
        *slot = (*slot).max(offset);
    }

    /// The latest offset of `key` seen, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(&Self::hash(key)).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_within_its_capacity() {
        let mut m = OffsetMap::with_buffer(24 * 10);
        assert!(m.has_room_for(9) && !m.has_room_for(10), "90% of 10 entries");
        m.put(b"k", 3);
        m.put(b"k", 8);
        m.put(b"other", 5);
        assert_eq!((m.get(b"k"), m.get(b"other"), m.get(b"none")), (Some(8), Some(5), None));
        assert_eq!(m.len(), 2);
    }
}
