//! Rewriting a stored batch with some of its records, as Kafka's `MemoryRecords.filterTo` does
//! for the log cleaner: the batch keeps its base offset, last offset delta (so the producer's
//! last sequence and the offsets after it stay as they were), producer fields, leader epoch and
//! codec; the records kept are encoded again with their own offset deltas and timestamps, and
//! the header gets its new count, length, timestamps and CRC. A batch may keep no record at all
//! (the last batch of an idempotent producer, which producer-state recovery needs).
//!
//! KIP-534: once a batch holds a tombstone that survived a clean, its base timestamp becomes the
//! delete horizon (`deleteHorizonMs`, attribute bit 6), after which a later clean removes it.

use super::writer::{put_nullable, put_varlong, varlong_size};
use super::{BatchHeader, RecordHeader, TimestampType, BATCH_HEADER_LEN, CRC_AT, LOG_OVERHEAD};
use crate::compression::{compress, CompressionError};
use bytes::{BufMut, Bytes, BytesMut};

/// Attribute bit 6: the base timestamp is the batch's delete horizon (KIP-534).
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// One record to keep, with its absolute timestamp.
#[derive(Debug, Clone)]
pub struct KeptRecord<'a> {
    pub offset_delta: i32,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<RecordHeader<'a>>,
}

/// The batch `original` describes, holding only `kept` (in offset order), with
/// `delete_horizon_ms` recorded when given (it then becomes the base timestamp).
pub fn rewrite_batch(
    original: &BatchHeader,
    kept: &[KeptRecord<'_>],
    delete_horizon_ms: Option<i64>,
) -> Result<Bytes, CompressionError> {
    let base_timestamp = delete_horizon_ms.or(kept.first().map(|r| r.timestamp)).unwrap_or(original.base_timestamp);
    let max_timestamp = match original.timestamp_type() {
        TimestampType::LogAppendTime => original.max_timestamp,
        TimestampType::CreateTime => kept.iter().map(|r| r.timestamp).max().unwrap_or(original.max_timestamp),
    };
    let mut records = BytesMut::new();
    for r in kept {
        let mut body = BytesMut::new();
        body.put_u8(0);
        put_varlong(&mut body, r.timestamp.wrapping_sub(base_timestamp));
        put_varlong(&mut body, i64::from(r.offset_delta));
        put_nullable(&mut body, r.key);
        put_nullable(&mut body, r.value);
        put_varlong(&mut body, r.headers.len() as i64);
        for h in &r.headers {
            put_nullable(&mut body, Some(h.key));
            put_nullable(&mut body, h.value);
        }
        records.reserve(varlong_size(body.len() as i64) + body.len());
        put_varlong(&mut records, body.len() as i64);
        records.put_slice(&body);
    }
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len());
    out.put_bytes(0, BATCH_HEADER_LEN);
    compress(original.compression(), &records, &mut out)?;
    let mut h = *original;
    if delete_horizon_ms.is_some() {
        h.attributes |= DELETE_HORIZON_BIT;
    }
    h.base_timestamp = base_timestamp;
    h.max_timestamp = max_timestamp;
    h.records_count = kept.len() as i32;
    h.batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| CompressionError::TooLarge { codec: original.compression(), max: i32::MAX as usize })?;
    out[..BATCH_HEADER_LEN].copy_from_slice(&h.to_bytes());
    let crc = super::compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::testing::{encode_test_batch, TestRecord};
    use crate::batch::{verify_crc, BatchIter, RecordIter};

    #[test]
    fn a_rewritten_batch_keeps_offsets_and_the_kept_records() {
        let records: Vec<TestRecord<'_>> =
            vec![(Some(b"a".as_slice()), Some(b"1".as_slice())), (Some(b"b"), Some(b"2")), (Some(b"a"), None)];
        let original = encode_test_batch(100, 7, 0, 40, &[1_000, 1_005, 1_009], &records);
        let (header, _) = BatchIter::new(&original).next().expect("a batch").expect("valid");
        let body = &original[BATCH_HEADER_LEN..];
        let all: Vec<_> = RecordIter::new(body).map(|r| r.expect("record")).collect();
        let kept = vec![
            KeptRecord { offset_delta: 1, timestamp: 1_005, key: all[1].key, value: all[1].value, headers: vec![] },
            KeptRecord { offset_delta: 2, timestamp: 1_009, key: all[2].key, value: all[2].value, headers: vec![] },
        ];
        let rewritten = rewrite_batch(&header, &kept, Some(90_000)).expect("rewrite");
        verify_crc(&rewritten).expect("a valid CRC");
        let (h, _) = BatchIter::new(&rewritten).next().expect("a batch").expect("valid");
        assert_eq!((h.base_offset, h.last_offset(), h.records_count), (100, 102, 2));
        assert_eq!((h.producer_id, h.base_sequence), (7, 40), "the producer's sequences stay");
        assert_eq!(h.delete_horizon_ms(), Some(90_000));
        assert_eq!(h.max_timestamp, 1_009);
        let again: Vec<_> = RecordIter::new(&rewritten[BATCH_HEADER_LEN..]).map(|r| r.expect("record")).collect();
        assert_eq!(
            again.iter().map(|r| (r.offset_delta, r.key, r.value)).collect::<Vec<_>>(),
            vec![(1, Some(b"b".as_slice()), Some(b"2".as_slice())), (2, Some(b"a".as_slice()), None)]
        );
        assert_eq!(h.base_timestamp + again[0].timestamp_delta, 1_005, "timestamps survive the new base");
        let empty = rewrite_batch(&header, &[], None).expect("an empty batch");
        let (h, _) = BatchIter::new(&empty).next().expect("a batch").expect("valid");
        assert_eq!((h.records_count, h.last_offset(), h.delete_horizon_ms()), (0, 102, None));
    }
}
