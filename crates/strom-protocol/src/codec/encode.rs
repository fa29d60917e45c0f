//! Primitive writers over a [`Sink`]. A value the wire format cannot carry (a string over
//! 32,767 bytes before flexible versions, a field that a version lacks set to a non-default
//! value) is an error naming it, never a silently wrong frame.

use super::Sink;
use bytes::Bytes;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{message} has no version {version}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("{field} is set, but version {version} has no such field")]
    FieldNotInVersion { field: &'static str, version: i16 },
    #[error("{field} is null, which version {version} does not allow")]
    NullNotAllowed { field: &'static str, version: i16 },
    #[error("a string of {0} bytes is longer than the 32767 a non-flexible version can carry")]
    StringTooLong(usize),
    #[error("tagged field tag {0} is negative")]
    BadTag(i32),
    #[error("{0} bytes or elements do not fit in a length field")]
    TooLong(usize),
}

pub fn put_bool<S: Sink>(out: &mut S, v: bool) {
    out.put_slice(&[v as u8]);
}

macro_rules! fixed {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        pub fn $name<S: Sink>(out: &mut S, v: $ty) {
            out.put_slice(&v.to_be_bytes());
        }
    )*};
}

fixed! { put_i8: i8, put_i16: i16, put_u16: u16, put_i32: i32, put_u32: u32, put_i64: i64, put_f64: f64 }

pub fn put_uuid<S: Sink>(out: &mut S, v: &Uuid) {
    out.put_slice(v.as_bytes());
}

pub fn put_uvarint<S: Sink>(out: &mut S, mut v: u32) {
    let mut b = [0u8; 5];
    let mut n = 0;
    while v >= 0x80 {
        b[n] = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
        n += 1;
    }
    b[n] = v as u8;
    out.put_slice(&b[..=n]);
}

fn put_len<S: Sink>(out: &mut S, len: usize, compact: bool, wide: bool) -> Result<(), EncodeError> {
    if compact {
        let v = u32::try_from(len).ok().and_then(|l| l.checked_add(1)).ok_or(EncodeError::TooLong(len))?;
        put_uvarint(out, v);
    } else if wide {
        put_i32(out, i32::try_from(len).map_err(|_| EncodeError::TooLong(len))?);
    } else {
        put_i16(out, i16::try_from(len).map_err(|_| EncodeError::StringTooLong(len))?);
    }
    Ok(())
}

pub fn put_string<S: Sink>(out: &mut S, v: &str, compact: bool) -> Result<(), EncodeError> {
    put_len(out, v.len(), compact, false)?;
    out.put_slice(v.as_bytes());
    Ok(())
}

pub fn put_null_string<S: Sink>(out: &mut S, compact: bool) {
    if compact {
        put_uvarint(out, 0);
    } else {
        put_i16(out, -1);
    }
}

pub fn put_bytes<S: Sink>(out: &mut S, v: &Bytes, compact: bool) -> Result<(), EncodeError> {
    put_len(out, v.len(), compact, true)?;
    out.put_slice(v);
    Ok(())
}

pub fn put_null_bytes<S: Sink>(out: &mut S, compact: bool) {
    put_null_array(out, compact);
}

pub fn put_array_len<S: Sink>(out: &mut S, len: usize, compact: bool) -> Result<(), EncodeError> {
    put_len(out, len, compact, true)
}

pub fn put_null_array<S: Sink>(out: &mut S, compact: bool) {
    if compact {
        put_uvarint(out, 0);
    } else {
        put_i32(out, -1);
    }
}

/// The unknown tagged fields with tags in `from..to`, in tag order, so that they interleave with
/// the known ones as Kafka requires (ascending tags).
pub fn put_unknown_tagged_fields<S: Sink>(
    out: &mut S,
    fields: &BTreeMap<i32, Bytes>,
    from: u32,
    to: u32,
) -> Result<(), EncodeError> {
    for (&tag, data) in fields.iter() {
        let tag = u32::try_from(tag).map_err(|_| EncodeError::BadTag(tag))?;
        if tag < from || tag >= to {
            continue;
        }
        put_uvarint(out, tag);
        put_uvarint(out, u32::try_from(data.len()).map_err(|_| EncodeError::TooLong(data.len()))?);
        out.put_slice(data);
    }
    Ok(())
}
