//! Turns a partition's fetched record set into consumer records: whole batches only (a fetch
//! may end in a partial one), CRCs checked (Java's check.crcs), compressed batches inflated,
//! control batches skipped, records before the position dropped. Keys, values and header values
//! are slices of the fetched (or inflated) buffer, not copies; headers keep their order and any
//! repeated keys, as Kafka's Headers do.

use super::fetcher::{ConsumerRecord, TimestampType};
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::Bytes;
use std::collections::HashSet;
use strom_protocol::batch::{self, BatchIter, RecordIter, BATCH_HEADER_LEN};

/// The records at or after `position` in `data`, and the offset after the last whole batch.
/// `aborted` (read_committed only) are the fetch's aborted transactions as (producer id, first
/// offset): their batches are dropped as Java's consumer drops them (`CompletedFetch`): a
/// producer's batches are aborted from the first offset of an aborted transaction of it that the
/// batch reaches, until its ABORT marker.
pub fn decode(
    tp: &TopicPartition,
    position: i64,
    data: Bytes,
    mut aborted: Vec<(i64, i64)>,
) -> Result<(Vec<ConsumerRecord>, i64)> {
    let corrupt = |e: String| ClientError::Protocol(format!("corrupt record batch from {tp}: {e}"));
    let data = data.slice(..complete_batches_len(&data));
    let mut records = Vec::new();
    let mut next_position = position;
    aborted.sort_unstable_by_key(|&(_, first)| first);
    let mut pending_aborts = aborted.into_iter().peekable();
    let mut aborted_producers: HashSet<i64> = HashSet::new();
    for item in BatchIter::new(&data).with_crc_check() {
        let (header, batch) = item.map_err(|e| corrupt(e.to_string()))?;
        next_position = next_position.max(header.last_offset() + 1);
        if header.has_producer_id() {
            while let Some((pid, _)) = pending_aborts.next_if(|&(_, first)| first <= header.last_offset()) {
                aborted_producers.insert(pid);
            }
            if header.is_control() {
                if is_abort_marker(&batch[BATCH_HEADER_LEN..]) {
                    aborted_producers.remove(&header.producer_id);
                }
            } else if header.is_transactional() && aborted_producers.contains(&header.producer_id) {
                continue;
            }
        }
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

/// Whether a control batch's body (uncompressed, one record) is an ABORT marker: its key is
/// version i16, type i16 with ABORT = 0 (COMMIT = 1).
fn is_abort_marker(body: &[u8]) -> bool {
    match RecordIter::new(body).next() {
        Some(Ok(r)) => r.key.is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == 0),
        _ => false,
    }
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
        let (records, next) = decode(&tp, 41, batch, Vec::new()).expect("decoded");
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
        let err = decode(&TopicPartition::new("t", 0), 0, Bytes::from(bytes), Vec::new()).expect_err("corrupt");
        assert!(err.to_string().contains("corrupt record batch from t-0"), "{err}");
    }

    /// A batch of `values` at `base` from producer `pid`, transactional; or its marker.
    fn txn_batch(pid: i64, base: i64, values: &[&str]) -> Vec<u8> {
        let mut w = BatchWriter::new(0);
        let none: [(&str, Option<&[u8]>); 0] = [];
        for v in values {
            w.append(1, None, Some(v.as_bytes()), &none);
        }
        let fields = BatchFields { base_offset: base, producer_id: pid, attributes: 0x10, ..BatchFields::default() };
        w.finish(&fields).to_vec()
    }

    fn marker(pid: i64, at: i64, commit: bool) -> Vec<u8> {
        let mut w = BatchWriter::new(0);
        let none: [(&str, Option<&[u8]>); 0] = [];
        w.append(1, Some(&[0, 0, 0, u8::from(commit)]), Some(&[0, 0, 0, 0, 0, 0]), &none);
        let fields = BatchFields { base_offset: at, producer_id: pid, attributes: 0x30, ..BatchFields::default() };
        w.finish(&fields).to_vec()
    }

    #[test]
    fn read_committed_drops_aborted_batches_up_to_their_marker_and_keeps_the_rest() {
        // A (pid 1) aborts 0-1, B (pid 2) commits 2, A writes again at 5 and commits.
        let mut data = Vec::new();
        data.extend(txn_batch(1, 0, &["a0", "a1"]));
        data.extend(txn_batch(2, 2, &["b0"]));
        data.extend(marker(1, 3, false));
        data.extend(marker(2, 4, true));
        data.extend(txn_batch(1, 5, &["a5"]));
        data.extend(marker(1, 6, true));
        let tp = TopicPartition::new("t", 0);
        let values = |aborted: Vec<(i64, i64)>| {
            let (records, next) = decode(&tp, 0, Bytes::from(data.clone()), aborted).expect("decoded");
            assert_eq!(next, 7);
            records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(vec![(1, 0)]), vec!["b0", "a5"], "read_committed");
        assert_eq!(values(Vec::new()), vec!["a0", "a1", "b0", "a5"], "read_uncommitted");
    }
}
