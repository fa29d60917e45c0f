//! Per-record checks of a produce request that Kafka's LogValidator makes and that need the
//! records themselves, not only the batch headers (KIP-467: the partition is refused with
//! INVALID_RECORD and `record_errors` naming each bad record by its index in its batch).
//!
//! Only topics that need them pay for them: today, keys on compacted topics. Compressed batches
//! are inflated for the check, bounded by `MAX_INFLATED_BATCH_BYTES`; the stored bytes stay the
//! ones the producer sent.

use crate::errors::KafkaError;
use strom_protocol::batch::{BatchIter, RecordIter, BATCH_HEADER_LEN};
use strom_protocol::compression::decompress;
use strom_protocol::ResponseError;

/// How far one batch may inflate while its records are checked.
const MAX_INFLATED_BATCH_BYTES: usize = 64 << 20;

/// One rejected record: its index within its batch and why, as in ProduceResponse v8+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Records without a key, which a compacted topic cannot take (Kafka's `validateKey`).
/// `batches` passed `validate_produce_batches`. Control batches are not checked.
pub fn keyless_records(batches: &[u8], topic: &str, partition: i32) -> Result<Vec<RecordError>, KafkaError> {
    let corrupt = |what: String| KafkaError::new(ResponseError::CorruptMessage, what);
    let mut errors = Vec::new();
    let data = bytes::Bytes::copy_from_slice(batches);
    for item in BatchIter::new(&data) {
        let (header, batch) = item.map_err(|e| corrupt(e.to_string()))?;
        if header.is_control() {
            continue;
        }
        let body = data.slice_ref(&batch[BATCH_HEADER_LEN..]);
        let records =
            decompress(header.compression(), body, MAX_INFLATED_BATCH_BYTES).map_err(|e| corrupt(e.to_string()))?;
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
