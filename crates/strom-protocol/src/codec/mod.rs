//! The runtime of the generated message codec: the traits every message implements and the
//! primitive readers and writers the generated code calls.
//!
//! Decoding is bounded by the frame: every length and count read from the wire is checked
//! against the bytes that remain before anything is allocated, strings and byte fields are
//! slices of the frame (no copy), and an error says which field was wrong. Encoding goes through
//! one generic writer, so that the size of a message is computed by the same code that writes it
//! ([`SizeCounter`]) and a frame can be allocated once at its final size.

mod decode;
mod encode;
mod str_bytes;

pub use decode::*;
pub use encode::*;
pub use str_bytes::StrBytes;

use bytes::{Bytes, BytesMut};

/// A message (or struct inside one) that can be written at a given version.
pub trait Encodable {
    /// Writes the message to `out` at `version`.
    fn encode_to<S: Sink>(&self, out: &mut S, version: i16) -> Result<(), EncodeError>;

    /// Appends the encoded message to `buf`.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
        self.encode_to(buf, version)
    }

    /// The number of bytes [`Encodable::encode`] writes.
    fn compute_size(&self, version: i16) -> Result<usize, EncodeError> {
        let mut counter = SizeCounter::default();
        self.encode_to(&mut counter, version)?;
        Ok(counter.size())
    }
}

/// A message (or struct inside one) that can be read at a given version. `buf` is advanced past
/// what was read; string, bytes and records fields share its memory.
pub trait Decodable: Sized {
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// What every top-level message knows about itself.
pub trait Message {
    /// The versions (inclusive) the schema defines.
    const VERSIONS: (i16, i16);
    /// The header version that goes with a version of this message.
    fn header_version(version: i16) -> i16;
}

/// Where encoded bytes go: a buffer, or a counter that only adds up their size.
pub trait Sink {
    fn put_slice(&mut self, bytes: &[u8]);
}

impl Sink for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A [`Sink`] that counts bytes without writing them.
#[derive(Debug, Default)]
pub struct SizeCounter(usize);

impl SizeCounter {
    pub fn size(&self) -> usize {
        self.0
    }
}

impl Sink for SizeCounter {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}
