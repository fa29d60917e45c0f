//! Per-record checks of a produce request that Kafka's LogValidator makes and that need the
//! records themselves, not only the batch headers (KIP-467: the partition is refused with
//! INVALID_RECORD and `record_errors` naming each bad record by its index in its batch).
//!
//! Only what needs the records pays for them: keys on compacted topics (compressed batches are
//! inflated for that check), and record timestamps outside `message.timestamp.before.max.ms` /
//! `after.max.ms`, which are first judged from the smallest and largest timestamp of each batch
//! (exact for uncompressed batches, the header's for compressed ones) and searched record by
//! record only when a batch is out of range. Inflation is bounded by `BROKER_MAX_INFLATED_BATCH_BYTES`;
//! the stored bytes stay the ones the producer sent, unless the topic's `compression.type` names
//! another codec, in which case the batch is recompressed (`recompressed`), as Kafka does.

use crate::errors::KafkaError;
use strom_protocol::batch::{BatchIter, ProducedBatch, RecordIter, TimestampType, BATCH_HEADER_LEN, NO_TIMESTAMP};
use strom_protocol::compression::{decompress, BROKER_MAX_INFLATED_BATCH_BYTES};
use strom_protocol::ResponseError;

/// One rejected record: its index within its batch and why, as in ProduceResponse v8+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Records without a key, which a compacted topic cannot take (Kafka's `validateKey`).
/// `batches` passed `validate_produce_batches`. Control batches are not checked.
pub fn keyless_records(data: &bytes::Bytes, topic: &str, partition: i32) -> Result<Vec<RecordError>, KafkaError> {
    let corrupt = |what: String| KafkaError::new(ResponseError::CorruptMessage, what);
    let mut errors = Vec::new();
    for item in BatchIter::new(data) {
        let (header, batch) = item.map_err(|e| corrupt(e.to_string()))?;
        if header.is_control() {
            continue;
        }
        let body = data.slice_ref(&batch[BATCH_HEADER_LEN..]);
        let records = decompress(header.compression(), body, BROKER_MAX_INFLATED_BATCH_BYTES)
            .map_err(|e| corrupt(e.to_string()))?;
        for (index, record) in RecordIter::new(&records).enumerate() {
            let record = record.map_err(|e| corrupt(e.to_string()))?;
            if record.key.is_none() {
                errors.push(RecordError {
                    batch_index: index as i32,
                    message: format!(
                        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
                    ),
                });
            }
        }
    }
    Ok(errors)
}

/// The range of record timestamps a CreateTime topic accepts at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct TimestampBounds {
    pub now_ms: i64,
    /// `message.timestamp.before.max.ms`
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`
    pub after_max_ms: i64,
}

impl TimestampBounds {
    /// Kafka's `recordHasInvalidTimestamp` (in 128 bits: the defaults are near `i64::MAX`).
    fn rejects(&self, timestamp: i64) -> bool {
        let diff = i128::from(self.now_ms) - i128::from(timestamp);
        diff > i128::from(self.before_max_ms) || -diff > i128::from(self.after_max_ms)
    }
}

/// Records whose timestamps a topic refuses (Kafka's `validateTimestamp`): on a CreateTime topic,
/// timestamps out of `bounds`; on a LogAppendTime topic, batches that claim LogAppendTime
/// themselves. `batches` is what `validate_produce_batches` returned `validated` for.
pub fn timestamp_errors(
    data: &bytes::Bytes,
    validated: &[ProducedBatch],
    bounds: TimestampBounds,
    log_append_time: bool,
) -> Result<Vec<RecordError>, KafkaError> {
    let mut errors = Vec::new();
    let mut at = 0usize;
    for b in validated {
        let h = &b.header;
        let batch = data.slice(at..at + h.total_size());
        at += h.total_size();
        if log_append_time {
            if h.timestamp_type() == TimestampType::LogAppendTime {
                for index in 0..h.records_count {
                    errors.push(RecordError {
                        batch_index: index,
                        message: format!(
                            "Invalid timestamp type in message with offset {}. Producer should not set timestamp type to LogAppendTime.",
                            h.base_offset + i64::from(index)
                        ),
                    });
                }
            }
            continue;
        }
        match b.timestamps {
            Some((lo, hi)) if bounds.rejects(lo) || bounds.rejects(hi) => {}
            _ => continue,
        }
        let records = decompress(h.compression(), batch.slice(BATCH_HEADER_LEN..), BROKER_MAX_INFLATED_BATCH_BYTES)
            .map_err(|e| KafkaError::new(ResponseError::CorruptMessage, e.to_string()))?;
        for (index, record) in RecordIter::new(&records).enumerate() {
            let record = record.map_err(|e| KafkaError::new(ResponseError::CorruptMessage, e.to_string()))?;
            let timestamp = h.base_timestamp.wrapping_add(record.timestamp_delta);
            if timestamp != NO_TIMESTAMP && bounds.rejects(timestamp) {
                errors.push(RecordError {
                    batch_index: index as i32,
                    message: format!(
                        "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                        h.base_offset + i64::from(record.offset_delta),
                        bounds.now_ms.wrapping_sub(bounds.before_max_ms),
                        bounds.now_ms.wrapping_add(bounds.after_max_ms)
                    ),
                });
            }
        }
    }
    Ok(errors)
}

/// Kafka's partition-level message for rejected records (LogValidator.processRecordErrors).
pub fn rejection_message(errors: &[RecordError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| format!("RecordError(batchIndex={}, message='{}')", e.batch_index, e.message))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

/// The codec a topic's `compression.type` imposes (`producer`: none, keep what came).
pub fn topic_codec(compression_type: &str) -> Option<strom_protocol::batch::Compression> {
    use strom_protocol::batch::Compression;
    match compression_type.trim() {
        "uncompressed" | "none" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// The request's batches with every batch in `codec` (Kafka's recompression when a topic's
/// `compression.type` is not `producer`); the bytes as they came when all already are.
pub fn recompressed(
    batches: bytes::Bytes,
    validated: &[ProducedBatch],
    codec: strom_protocol::batch::Compression,
) -> Result<bytes::Bytes, KafkaError> {
    if validated.iter().all(|b| b.header.compression() == codec) {
        return Ok(batches);
    }
    let mut out = bytes::BytesMut::with_capacity(batches.len());
    let mut at = 0usize;
    for b in validated {
        let size = b.header.total_size();
        let batch = &batches[at..at + size];
        at += size;
        if b.header.compression() == codec {
            out.extend_from_slice(batch);
            continue;
        }
        let again =
            strom_protocol::compression::recompress_batch(batch, &b.header, codec, BROKER_MAX_INFLATED_BATCH_BYTES)
                .map_err(|e| KafkaError::new(ResponseError::CorruptMessage, e.to_string()))?;
        out.extend_from_slice(&again);
    }
    Ok(out.freeze())
}
