//! Kafka's key hash: `Utils.murmur2` and `Utils.toPositive`, bit-exact.
//!
//! A keyed record must land on the partition the Java producer would pick, or per-key ordering
//! breaks the moment a Java and a Strom producer write the same topic. Java computes with signed
//! 32-bit `int`s that wrap; the same bits come out of `u32` wrapping arithmetic with logical
//! shifts (Java's `>>>`), which is what is used here.

/// Kafka's `Utils.murmur2`: MurmurHash2, 32-bit, seed `0x9747b28c`, returned as Java's signed `int`.
///
/// ```
/// use strom_client::producer::partitioner::murmur2;
/// assert_eq!(murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    // Mixing constants of MurmurHash2.
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's `int length = data.length`; a Java array never exceeds i32::MAX, so the cast is exact
    // for every input Java could hash too.
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's fall-through `switch (length % 4)`.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit. Not `abs`: `-1` becomes `i32::MAX`, and
/// changing this would move every keyed record to another partition.
pub const fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// Kafka's `BuiltInPartitioner.partitionForKey`: `toPositive(murmur2(key)) % numPartitions`,
/// over all partitions of the topic whether or not their leader is available (a key must not
/// move because a broker is down).
///
/// A `partition_count` below 1 (a topic without partitions, which only broken metadata produces)
/// is treated as 1 rather than dividing by zero.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    to_positive(murmur2(key)) % partition_count.max(1)
}
