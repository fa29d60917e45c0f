//! Turns a partition's fetched record set into consumer records: whole batches only (a fetch
//! may end in a partial one), CRCs checked (Java's check.crcs), compressed batches inflated,
//! control batches skipped, records before the position dropped. Keys, values and header values
//! are slices of the fetched (or inflated) buffer, not copies; headers keep their order and any
//! repeated keys, as Kafka's Headers do.

use super::fetcher::{ConsumerRecord, TimestampType};
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::Bytes;
use strom_protocol::batch::{self, BatchIter, RecordIter, BATCH_HEADER_LEN};

/// The records at or after `position` in `data`, and the offset after the last whole batch.
pub fn decode(tp: &TopicPartition, position: i64, data: Bytes) -> Result<(Vec<ConsumerRecord>, i64)> {
    let corrupt = |e: String| ClientError::Protocol(format!("corrupt record batch from {tp}: {e}"));
    let data = data.slice(..complete_batches_len(&data));
    let mut records = Vec::new();
    let mut next_position = position;
    for item in BatchIter::new(&data).with_crc_check() {
        let (header, batch) = item.map_err(|e| corrupt(e.to_string()))?;
        next_position = next_position.max(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < position {
            continue;
        }
        let body = data.slice_ref(&batch[BATCH_HEADER_LEN..]);
        let body = strom_protocol::compression::decompress(
            header.compression(),
            body,
            strom_protocol::compression::READER_MAX_INFLATED_BATCH_BYTES,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let timestamp_type = match header.timestamp_type() {
            batch::TimestampType::LogAppendTime => TimestampType::LogAppendTime,
            batch::TimestampType::CreateTime => TimestampType::CreateTime,
        };
        let share = |b: &[u8]| body.slice_ref(b);
        for record in RecordIter::new(&body) {
            let r = record.map_err(|e| corrupt(e.to_string()))?;
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < position {
                continue;
            }
            records.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                timestamp: match timestamp_type {
                    TimestampType::LogAppendTime => header.max_timestamp,
                    TimestampType::CreateTime => header.base_timestamp.wrapping_add(r.timestamp_delta),
                },
                timestamp_type,
                key: r.key.map(share),
                value: r.value.map(share),
                headers: r
                    .headers
                    .iter()
                    .map(|h| (String::from_utf8_lossy(h.key).into_owned(), h.value.map(share)))
                    .collect(),
            });
        }
    }
    Ok((records, next_position))
}

/// The length of the prefix of `data` made of whole batches (baseOffset:8, batchLength:4, ...).
fn complete_batches_len(data: &[u8]) -> usize {
    let mut at = 0;
    while data.len() >= at + 12 {
        let len = i32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        if len < 0 {
            break;
        }
        let end = at + 12 + len as usize;
        if end > data.len() {
            break;
        }
        at = end;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::batch::{BatchFields, BatchWriter};

    #[test]
    fn a_partial_trailing_batch_is_left_out() {
        let mut data = vec![0u8; 12];
        data[11] = 4;
        data.extend_from_slice(&[1, 2, 3, 4]);
        let whole = data.len();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 1]);
        assert_eq!(complete_batches_len(&data), whole);
    }

    #[test]
    fn repeated_header_keys_stay_in_order_and_positions_skip_earlier_records() {
        let mut w = BatchWriter::new(0);
        let headers = [("k", Some(&b"1"[..])), ("k", Some(&b"2"[..])), ("n", None)];
        for ts in [10, 11, 12] {
            w.append(ts, Some(b"key"), Some(b"value"), &headers);
        }
        let batch = w.finish(&BatchFields { base_offset: 40, ..BatchFields::default() });
        let tp = TopicPartition::new("t", 0);
        let (records, next) = decode(&tp, 41, batch).expect("decoded");
        assert_eq!(next, 43);
        assert_eq!(records.iter().map(|r| (r.offset, r.timestamp)).collect::<Vec<_>>(), vec![(41, 11), (42, 12)]);
        let keys: Vec<(&str, Option<&[u8]>)> =
            records[0].headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        assert_eq!(keys, vec![("k", Some(&b"1"[..])), ("k", Some(&b"2"[..])), ("n", None)]);
    }

    #[test]
    fn a_flipped_byte_is_reported_not_returned() {
        let mut w = BatchWriter::new(0);
        let none: [(&str, Option<&[u8]>); 0] = [];
        w.append(1, None, Some(b"v"), &none);
        let mut bytes = w.finish(&BatchFields::default()).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = decode(&TopicPartition::new("t", 0), 0, Bytes::from(bytes)).expect_err("corrupt");
        assert!(err.to_string().contains("corrupt record batch from t-0"), "{err}");
    }
}
