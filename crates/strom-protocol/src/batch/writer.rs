//! Writes a v2 record batch record by record into one buffer, as Kafka's MemoryRecordsBuilder
//! does: each record is encoded when it is appended (no per-record objects kept until send
//! time), and the 61-byte header is filled in place when the batch is closed. Used by
//! strom-client's producer and by the broker for the batches it writes itself.

use super::{BATCH_HEADER_LEN, CRC_AT, LOG_OVERHEAD, MAGIC_V2};
use bytes::{BufMut, Bytes, BytesMut};

/// The header fields a writer cannot know from its records.
#[derive(Debug, Clone, Copy)]
pub struct BatchFields {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Raw attribute bits: compression, timestamp type, transactional, control.
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl Default for BatchFields {
    /// An uncompressed, non-idempotent batch at offset 0.
    fn default() -> Self {
        BatchFields {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A batch being written: room for the header, then the records.
pub struct BatchWriter {
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// Bytes of `v` as a zig-zag varint (Kafka's varint and varlong share this encoding).
pub fn varlong_size(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    // 1 byte per started 7 bits; 0 still takes one byte.
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `v` as a zig-zag varint.
pub fn put_varlong(out: &mut impl BufMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

fn nullable_size(b: Option<&[u8]>) -> usize {
    b.map_or(1, |b| varlong_size(b.len() as i64) + b.len())
}

pub(super) fn put_nullable(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

impl BatchWriter {
    /// An empty batch with room for `capacity` bytes of records before it grows.
    pub fn new(capacity: usize) -> BatchWriter {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN + capacity);
        buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchWriter { buf, count: 0, base_timestamp: 0, max_timestamp: 0 }
    }

    /// Records appended so far.
    pub fn count(&self) -> i32 {
        self.count
    }

    /// The batch's size if it were closed now, header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// The encoded records (without the header), e.g. to compress them.
    pub fn records(&self) -> &[u8] {
        &self.buf[BATCH_HEADER_LEN..]
    }

    /// The size a record takes in this batch if appended next, length prefix included.
    pub fn record_size<H: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(H, Option<V>)],
    ) -> usize {
        let body = self.body_size(timestamp, key, value, headers);
        varlong_size(body as i64) + body
    }

    fn body_size<H: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(H, Option<V>)],
    ) -> usize {
        let delta = if self.count == 0 { 0 } else { timestamp.wrapping_sub(self.base_timestamp) };
        let headers_size: usize = headers
            .iter()
            .map(|(k, v)| nullable_size(Some(k.as_ref())) + nullable_size(v.as_ref().map(AsRef::as_ref)))
            .sum();
        1 + varlong_size(delta)
            + varlong_size(self.count as i64)
            + nullable_size(key)
            + nullable_size(value)
            + varlong_size(headers.len() as i64)
            + headers_size
    }

    /// Appends one record with attributes 0 (record attributes are unused in v2).
    pub fn append<H: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(H, Option<V>)],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        let body = self.body_size(timestamp, key, value, headers);
        self.buf.reserve(varlong_size(body as i64) + body);
        put_varlong(&mut self.buf, body as i64);
        self.buf.put_u8(0);
        put_varlong(&mut self.buf, timestamp.wrapping_sub(self.base_timestamp));
        put_varlong(&mut self.buf, self.count as i64);
        put_nullable(&mut self.buf, key);
        put_nullable(&mut self.buf, value);
        put_varlong(&mut self.buf, headers.len() as i64);
        for (k, v) in headers {
            put_nullable(&mut self.buf, Some(k.as_ref()));
            put_nullable(&mut self.buf, v.as_ref().map(AsRef::as_ref));
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
    }

    /// Closes the batch with its records as appended: fills the header and the CRC.
    pub fn finish(self, fields: &BatchFields) -> Bytes {
        let mut buf = self.buf;
        write_header(&mut buf, fields, self.count, self.base_timestamp, self.max_timestamp);
        buf.freeze()
    }

    /// Closes the batch with `records` in place of the appended ones (their compressed form,
    /// written by `compress` into the buffer it is given); `fields.attributes` names the codec.
    pub fn finish_with<E>(
        self,
        fields: &BatchFields,
        compress: impl FnOnce(&[u8], &mut BytesMut) -> Result<(), E>,
    ) -> Result<Bytes, E> {
        let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + self.records().len() / 2);
        out.put_bytes(0, BATCH_HEADER_LEN);
        compress(self.records(), &mut out)?;
        write_header(&mut out, fields, self.count, self.base_timestamp, self.max_timestamp);
        Ok(out.freeze())
    }
}

/// Fills the 61-byte header at the front of `batch` (whose records follow it) and its CRC.
fn write_header(batch: &mut [u8], f: &BatchFields, count: i32, base_timestamp: i64, max_timestamp: i64) {
    let batch_length = (batch.len() - LOG_OVERHEAD) as i32;
    let mut h = &mut batch[..BATCH_HEADER_LEN];
    h.put_i64(f.base_offset);
    h.put_i32(batch_length);
    h.put_i32(f.partition_leader_epoch);
    h.put_i8(MAGIC_V2);
    h.put_u32(0); // the CRC, below
    h.put_i16(f.attributes);
    h.put_i32((count - 1).max(0));
    h.put_i64(base_timestamp);
    h.put_i64(max_timestamp);
    h.put_i64(f.producer_id);
    h.put_i16(f.producer_epoch);
    h.put_i32(f.base_sequence);
    h.put_i32(count);
    let crc = super::compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchHeader, RecordIter};

    #[test]
    fn varlong_sizes_match_the_encoding() {
        for v in [0i64, 1, -1, 63, 64, -64, -65, 8191, 8192, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(varlong_size(v), b.len(), "{v}");
        }
    }

    #[test]
    fn records_parse_back_with_sizes_and_timestamps() {
        let mut w = BatchWriter::new(0);
        let headers = [("h1", Some(&b"x"[..])), ("h2", None)];
        let size = w.record_size(1000, Some(b"k"), Some(b"value"), &headers);
        w.append(1000, Some(b"k"), Some(b"value"), &headers);
        assert_eq!(w.size(), BATCH_HEADER_LEN + size);
        let none: [(&str, Option<&[u8]>); 0] = [];
        w.append(990, None, None, &none);
        let fields = BatchFields { producer_id: 7, producer_epoch: 1, base_sequence: 5, ..BatchFields::default() };
        let batch = w.finish(&fields);
        crate::batch::verify_crc(&batch).expect("valid CRC");
        let h = BatchHeader::parse(&batch).expect("header");
        assert_eq!((h.record_count(), h.total_size()), (2, batch.len()));
        assert_eq!((h.base_timestamp, h.max_timestamp, h.producer_id, h.base_sequence), (1000, 1000, 7, 5));
        let records: Vec<_> = RecordIter::new(&batch[BATCH_HEADER_LEN..]).collect::<Result<_, _>>().expect("records");
        assert_eq!(records[0].key, Some(&b"k"[..]));
        assert_eq!(records[0].headers[1].value, None);
        assert_eq!((records[1].timestamp_delta, records[1].offset_delta, records[1].value), (-10, 1, None));
    }
}
