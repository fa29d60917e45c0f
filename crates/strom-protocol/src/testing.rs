//! Random valid messages, for the differential tests against another codec and for fuzzing
//! (feature `testing`). Values are small so that many messages are cheap.

use bytes::Bytes;
use std::collections::BTreeMap;

/// Decodes a `M` from `buf` at `version`; if that succeeds, the message must encode (to exactly
/// its computed size) and decode again to the same encoding. The fuzz targets' oracle: a decoder
/// that accepts bytes its own encoder cannot reproduce has a bug.
pub fn round_trip<M>(buf: &mut Bytes, version: i16) -> Result<(), crate::DecodeError>
where
    M: crate::Decodable + crate::Encodable,
{
    let message = M::decode(buf, version)?;
    let mut first = bytes::BytesMut::new();
    message.encode(&mut first, version).unwrap_or_else(|e| panic!("a decoded message must encode: {e}"));
    assert_eq!(message.compute_size(version).expect("size"), first.len(), "compute_size agrees with encode");
    let mut again = first.clone().freeze();
    let decoded = M::decode(&mut again, version).expect("an encoded message decodes");
    assert!(again.is_empty(), "decoding stops at the end of the encoding");
    let mut second = bytes::BytesMut::new();
    decoded.encode(&mut second, version).expect("re-encodes");
    assert_eq!(first, second, "decode and encode are stable");
    Ok(())
}

/// A message or struct that can be filled with random values valid for a version.
pub trait Random {
    fn random(rng: &mut Rng, version: i16) -> Self;
}

/// xorshift64*: deterministic per seed, so a failing case can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True one time in `n`.
    pub fn chance(&mut self, n: u64) -> bool {
        self.u64().is_multiple_of(n)
    }

    pub fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    /// A finite float.
    pub fn float(&mut self) -> f64 {
        (self.u64() % 1_000_000) as f64 / 8.0
    }

    pub fn uuid(&mut self) -> uuid::Uuid {
        uuid::Uuid::from_u64_pair(self.u64(), self.u64())
    }

    /// An element count for an array.
    pub fn count(&mut self) -> usize {
        (self.u64() % 4) as usize
    }

    pub fn string(&mut self) -> crate::codec::StrBytes {
        const CHARS: &[u8] = b"abcxyz-_.0123456789\xc3\xa9";
        let n = (self.u64() % 12) as usize;
        let mut s = String::new();
        for _ in 0..n {
            let c = CHARS[(self.u64() % (CHARS.len() as u64 - 2)) as usize] as char;
            s.push(c);
        }
        if self.chance(5) {
            s.push('é');
        }
        crate::codec::StrBytes::from_string(s)
    }

    pub fn bytes(&mut self) -> Bytes {
        let n = (self.u64() % 40) as usize;
        (0..n).map(|_| self.u64() as u8).collect::<Vec<u8>>().into()
    }

    /// Unknown tagged fields, with tags far above any Kafka assigns, so they sort after known ones.
    pub fn unknown_tagged_fields(&mut self) -> BTreeMap<i32, Bytes> {
        (0..1 + self.u64() % 2).map(|_| (90 + (self.u64() % 10) as i32, self.bytes())).collect()
    }
}
