//! Individual records inside an uncompressed v2 batch.
//!
//! The broker rarely needs them (it stores batches whole), but validating a produce request and
//! answering ListOffsets by timestamp look at each record's offset and timestamp delta.
//!
//! ```text
//!  length:varint attributes:i8 timestampDelta:varlong offsetDelta:varint
//!  keyLength:varint key valueLength:varint value headerCount:varint
//!  [headerKeyLength:varint headerKey headerValueLength:varint headerValue]*
//! ```
//! Varints are zigzag-encoded like protobuf's `sint32`/`sint64`; a length of -1 means null.

use super::BatchError;

/// One record header (`key` is a non-null UTF-8 string in Kafka; kept as bytes here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// Header name.
    pub key: &'a [u8],
    /// Header value; `None` is null.
    pub value: Option<&'a [u8]>,
}

/// A record borrowed from its batch; offsets and timestamps are deltas from the batch header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Unused by Kafka today, kept for fidelity.
    pub attributes: i8,
    /// Added to the batch's `base_timestamp` to get the record's timestamp.
    pub timestamp_delta: i64,
    /// Added to the batch's `base_offset` to get the record's offset.
    pub offset_delta: i32,
    /// The partitioning key; `None` is a null key (not the same as empty).
    pub key: Option<&'a [u8]>,
    /// The payload; `None` is a tombstone for compacted topics.
    pub value: Option<&'a [u8]>,
    /// Application headers, in order.
    pub headers: Vec<RecordHeader<'a>>,
}

/// Iterates the records of an uncompressed batch, given the bytes after the 61-byte header. Stops
/// after the first error.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    bytes: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> RecordIter<'a> {
    /// Starts at the first record; `records` are the bytes after the batch header.
    pub fn new(records: &'a [u8]) -> RecordIter<'a> {
        RecordIter { bytes: records, position: 0, failed: false }
    }
}

fn malformed(what: &str) -> BatchError {
    BatchError::Malformed(format!("record: {what}"))
}

/// A cursor over one record's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = *self.bytes.get(self.at).ok_or_else(|| malformed("varint runs past the end"))?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| malformed("varint out of i32 range"))
    }

    fn i8(&mut self) -> Result<i8, BatchError> {
        let byte = *self.bytes.get(self.at).ok_or_else(|| malformed("truncated attributes"))?;
        self.at += 1;
        Ok(byte as i8)
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self.at.checked_add(len as usize).ok_or_else(|| malformed("length overflow"))?;
        let slice = self.bytes.get(self.at..end).ok_or_else(|| malformed("field runs past the record"))?;
        self.at = end;
        Ok(Some(slice))
    }
}

fn parse_record(body: &[u8]) -> Result<Record<'_>, BatchError> {
    let mut c = Cursor { bytes: body, at: 0 };
    let attributes = c.i8()?;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable_bytes()?;
    let value = c.nullable_bytes()?;
    let header_count = c.varint()?;
    if header_count < 0 {
        return Err(malformed("negative header count"));
    }
    let mut headers = Vec::new();
    for _ in 0..header_count {
        let key = c.nullable_bytes()?.ok_or_else(|| malformed("null header key"))?;
        let value = c.nullable_bytes()?;
        headers.push(RecordHeader { key, value });
    }
    if c.at != body.len() {
        return Err(malformed("record length does not match its fields"));
    }
    Ok(Record { attributes, timestamp_delta, offset_delta, key, value, headers })
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.bytes.len() {
            return None;
        }
        let mut c = Cursor { bytes: self.bytes, at: self.position };
        let result = c.varint().and_then(|len| {
            if len < 0 {
                return Err(malformed("negative record length"));
            }
            let end = c.at.checked_add(len as usize).ok_or_else(|| malformed("length overflow"))?;
            let body = self.bytes.get(c.at..end).ok_or_else(|| malformed("record runs past the batch"))?;
            let record = parse_record(body)?;
            Ok((record, end))
        });
        match result {
            Ok((record, end)) => {
                self.position = end;
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
