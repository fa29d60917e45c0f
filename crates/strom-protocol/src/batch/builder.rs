//! Encodes uncompressed v2 record batches: used by the broker for the records it writes itself
//! (consumer offsets, group metadata) and by tests to send exactly the bytes a client would.

use super::{compute_crc, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};

/// (key, value) of one record; `None` is null (a null value is a tombstone).
pub type BatchRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// What goes into a batch; `Default` is an uncompressed, non-idempotent batch at offset 0 with
/// timestamp 0.
#[derive(Debug, Clone)]
pub struct BatchSpec<'a> {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Raw attribute bits (compression, timestamp type, transactional, control). Compression bits
    /// only label the batch: the records are written uncompressed regardless.
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// One timestamp per record, or a single one used for all records; empty means 0.
    pub timestamps: &'a [i64],
    /// (key, value) per record; `None` is null.
    pub records: &'a [BatchRecord<'a>],
}

impl Default for BatchSpec<'_> {
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            timestamps: &[],
            records: &[],
        }
    }
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

impl BatchSpec<'_> {
    /// Encodes the batch with a correct CRC.
    ///
    /// Panics if `timestamps` has neither one entry nor one per record (a caller bug).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.records.len();
        let ts = |i: usize| -> i64 {
            match self.timestamps.len() {
                0 => 0,
                1 => self.timestamps[0],
                len => {
                    assert_eq!(len, n, "one timestamp per record, or exactly one");
                    self.timestamps[i]
                }
            }
        };
        let base_timestamp = if n == 0 { 0 } else { ts(0) };
        let max_timestamp = (0..n).map(&ts).max().unwrap_or(base_timestamp);
        let mut records = Vec::new();
        for (i, (key, value)) in self.records.iter().enumerate() {
            let mut body = vec![0u8]; // attributes
            put_varlong(&mut body, ts(i) - base_timestamp);
            put_varlong(&mut body, i as i64);
            put_nullable(&mut body, *key);
            put_nullable(&mut body, *value);
            put_varlong(&mut body, 0); // no headers
            put_varlong(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        let batch_length = (BATCH_HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0u8; 4]); // CRC, filled below
        out.extend_from_slice(&self.attributes.to_be_bytes());
        let last_offset_delta = n.saturating_sub(1) as i32;
        out.extend_from_slice(&last_offset_delta.to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&(n as i32).to_be_bytes());
        out.extend_from_slice(&records);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }
}
