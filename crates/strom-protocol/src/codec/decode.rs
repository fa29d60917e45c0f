//! Primitive readers. Each checks the bytes that remain before it reads or allocates, so a
//! length or count read from the wire can never make the reader allocate more than the frame
//! that carried it.

use super::str_bytes::StrBytes;
use bytes::{Buf, Bytes};
use uuid::Uuid;

/// Why a message could not be decoded. Any of these is the sender's fault; the broker answers
/// by closing the connection, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message ends early: {needed} more bytes needed, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("{what} of {claimed} exceeds the {remaining} bytes left in the frame")]
    TooLong { what: &'static str, claimed: u64, remaining: usize },
    #[error("invalid length {0}")]
    BadLength(i64),
    #[error("unsigned varint longer than 5 bytes")]
    BadVarint,
    #[error("tagged field tag {0} is out of range")]
    BadTag(u32),
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    #[error("{field} is null, which version {version} does not allow")]
    NullNotAllowed { field: &'static str, version: i16 },
    #[error("{0} is null, which it can never be")]
    Null(&'static str),
    #[error("tagged field {0} has bytes left over after its value")]
    TaggedFieldTooLong(&'static str),
    #[error("{message} has no version {version}")]
    UnsupportedVersion { message: &'static str, version: i16 },
}

fn need(buf: &Bytes, n: usize) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        return Err(DecodeError::Truncated { needed: n, remaining: buf.remaining() });
    }
    Ok(())
}

pub fn get_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(get_i8(buf)? != 0)
}

macro_rules! fixed {
    ($($name:ident: $ty:ty = $get:ident),* $(,)?) => {$(
        pub fn $name(buf: &mut Bytes) -> Result<$ty, DecodeError> {
            need(buf, std::mem::size_of::<$ty>())?;
            Ok(buf.$get())
        }
    )*};
}

fixed! {
    get_i8: i8 = get_i8,
    get_i16: i16 = get_i16,
    get_u16: u16 = get_u16,
    get_i32: i32 = get_i32,
    get_u32: u32 = get_u32,
    get_i64: i64 = get_i64,
    get_f64: f64 = get_f64,
}

pub fn get_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    need(buf, 16)?;
    let mut b = [0u8; 16];
    buf.copy_to_slice(&mut b);
    Ok(Uuid::from_bytes(b))
}

/// An unsigned varint of at most 32 bits (5 bytes), as Kafka's `ByteUtils.readUnsignedVarint`.
pub fn get_uvarint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = get_i8(buf)? as u8;
        if i == 4 && b > 0x0f {
            return Err(DecodeError::BadVarint);
        }
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::BadVarint)
}

/// A length or count for `what`, `None` for null: compact ones are unsigned varints of n + 1,
/// others an INT16 (strings) or INT32. A length above the bytes left is an error here, before
/// anything is allocated for it.
fn get_len(buf: &mut Bytes, compact: bool, wide: bool, what: &'static str) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        get_uvarint(buf)? as i64 - 1
    } else if wide {
        get_i32(buf)? as i64
    } else {
        get_i16(buf)? as i64
    };
    if len < -1 {
        return Err(DecodeError::BadLength(len));
    }
    if len == -1 {
        return Ok(None);
    }
    if len as u64 > buf.remaining() as u64 {
        return Err(DecodeError::TooLong { what, claimed: len as u64, remaining: buf.remaining() });
    }
    Ok(Some(len as usize))
}

/// A string, `None` for null, sharing `buf`'s memory.
pub fn get_string(buf: &mut Bytes, compact: bool) -> Result<Option<StrBytes>, DecodeError> {
    match get_len(buf, compact, false, "a string length")? {
        None => Ok(None),
        Some(n) => StrBytes::from_utf8(buf.split_to(n)).map(Some).map_err(|_| DecodeError::BadUtf8("a string")),
    }
}

/// A bytes or records field, `None` for null, sharing `buf`'s memory.
pub fn get_bytes(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    Ok(get_len(buf, compact, true, "a bytes length")?.map(|n| buf.split_to(n)))
}

/// An array, `None` for null. Every element takes at least one byte on the wire, so a count
/// above the bytes left is refused; memory is reserved for at most a bounded number of elements
/// up front and grows only as elements are actually decoded.
pub fn get_array<T>(
    buf: &mut Bytes,
    compact: bool,
    mut element: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    const MAX_RESERVED: usize = 1024;
    let Some(n) = get_len(buf, compact, true, "an array count")? else { return Ok(None) };
    let mut out = Vec::with_capacity(n.min(MAX_RESERVED));
    for _ in 0..n {
        out.push(element(buf)?);
    }
    Ok(Some(out))
}

/// The presence marker of a nullable struct: -1 null, anything else present.
pub fn get_struct_marker(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(get_i8(buf)? >= 0)
}

/// The number of tagged fields that follow; each takes at least two bytes.
pub fn get_tagged_field_count(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let n = get_uvarint(buf)?;
    if n as u64 > buf.remaining() as u64 {
        return Err(DecodeError::TooLong {
            what: "a tagged field count",
            claimed: n as u64,
            remaining: buf.remaining(),
        });
    }
    Ok(n)
}

/// One tagged field: its tag and its bytes (a slice of `buf`).
pub fn get_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = get_uvarint(buf)?;
    if tag > i32::MAX as u32 {
        // Kafka's tags are Java ints; no schema has one anywhere near this.
        return Err(DecodeError::BadTag(tag));
    }
    let size = get_uvarint(buf)? as usize;
    if size > buf.remaining() {
        return Err(DecodeError::TooLong { what: "a tagged field", claimed: size as u64, remaining: buf.remaining() });
    }
    Ok((tag, buf.split_to(size)))
}

/// A known tagged field's value must fill its declared size exactly.
pub fn expect_consumed(data: &Bytes, what: &'static str) -> Result<(), DecodeError> {
    if data.has_remaining() {
        return Err(DecodeError::TaggedFieldTooLong(what));
    }
    Ok(())
}

/// A field that is never null.
pub fn required<T>(value: Option<T>, what: &'static str) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::Null(what))
}

/// A field that may be null in some versions: null elsewhere is an error.
pub fn nullable<T>(value: Option<T>, allowed: bool, what: &'static str) -> Result<Option<T>, DecodeError> {
    if value.is_none() && !allowed {
        return Err(DecodeError::Null(what));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_beyond_the_frame_is_refused_before_allocation() {
        // 54 million elements claimed in a 4-byte count with nothing after it.
        let mut buf = Bytes::from_static(&[0x03, 0x3a, 0x00, 0x00]);
        let err = get_array(&mut buf, false, get_i32).expect_err("refused");
        assert!(matches!(err, DecodeError::TooLong { claimed: 54_132_736, remaining: 0, .. }), "{err}");
    }

    #[test]
    fn strings_and_bytes_share_the_frame_and_check_lengths() {
        let frame = Bytes::from_static(b"\x00\x03abc\x04xyz\xff\xff\x00\x09ab");
        let mut buf = frame.clone();
        assert_eq!(get_string(&mut buf, false).expect("ok").expect("non-null").as_str(), "abc");
        assert_eq!(&get_bytes(&mut buf, true).expect("ok").expect("non-null")[..], b"xyz");
        assert_eq!(get_string(&mut buf, false).expect("ok"), None);
        assert!(matches!(get_string(&mut buf, false), Err(DecodeError::TooLong { claimed: 9, .. })));
    }

    #[test]
    fn varints_longer_than_32_bits_are_refused() {
        assert_eq!(get_uvarint(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f])), Ok(u32::MAX));
        assert_eq!(get_uvarint(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x1f])), Err(DecodeError::BadVarint));
        assert!(get_uvarint(&mut Bytes::from_static(&[0x80])).is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(get_string(&mut Bytes::from_static(b"\x00\x01\xff"), false), Err(DecodeError::BadUtf8("a string")));
    }
}
