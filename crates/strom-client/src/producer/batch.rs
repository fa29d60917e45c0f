//! A batch of records for one partition, from the first append to the broker's answer.

use super::record::RecordMetadata;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use strom_protocol::batch::Compression;
use strom_protocol::batch::{BatchFields, BatchWriter, BATCH_HEADER_LEN};
use tokio::sync::oneshot;

/// How the sender of a record hears the outcome.
pub enum Completion {
    Future(oneshot::Sender<Result<RecordMetadata>>),
    Callback(Box<dyn FnOnce(Result<RecordMetadata>) + Send>),
    Ignore,
}

impl Completion {
    fn complete(self, result: Result<RecordMetadata>) {
        match self {
            Completion::Future(tx) => {
                let _ = tx.send(result);
            }
            Completion::Callback(f) => f(result),
            Completion::Ignore => {
                if let Err(e) = result {
                    tracing::warn!("a record sent without a callback failed: {e}");
                }
            }
        }
    }
}

/// A record on its way into a batch.
pub struct PendingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
    pub completion: Completion,
}

/// A batch of records for one partition: its records are encoded as they are appended (Kafka's
/// MemoryRecordsBuilder), so a queued record costs its encoded bytes plus its completion.
pub struct ProducerBatch {
    pub tp: TopicPartition,
    /// The records so far; taken when the batch is encoded for its first attempt.
    writer: Option<BatchWriter>,
    /// Per record, in order: how its sender hears the outcome, and its timestamp.
    completions: Vec<(Completion, i64)>,
    /// buffer.memory this batch holds, released when it completes.
    pub reserved: usize,
    pub created: Instant,
    /// Set at the first drain with idempotence; kept across retries so the broker can dedupe.
    pub base_sequence: i32,
    pub attempts: u32,
    /// Not before this instant (retry.backoff.ms after a failed attempt).
    pub retry_at: Option<Instant>,
    /// The bytes sent on the first attempt, resent unchanged on retries.
    pub encoded: Option<Bytes>,
    /// No further record of the size just added fits: send it without waiting for linger.ms.
    pub full: bool,
    /// The producer id the batch was encoded with (-1 before its first attempt).
    pub producer_id: i64,
}

impl ProducerBatch {
    pub fn new(tp: TopicPartition, capacity: usize) -> ProducerBatch {
        ProducerBatch {
            tp,
            writer: Some(BatchWriter::new(capacity)),
            completions: Vec::new(),
            reserved: 0,
            created: Instant::now(),
            base_sequence: -1,
            attempts: 0,
            retry_at: None,
            encoded: None,
            full: false,
            producer_id: -1,
        }
    }

    /// Bytes on the wire, header included.
    pub fn size(&self) -> usize {
        match (&self.writer, &self.encoded) {
            (Some(w), _) => w.size(),
            (None, Some(b)) => b.len(),
            (None, None) => BATCH_HEADER_LEN,
        }
    }

    pub fn record_count(&self) -> usize {
        self.completions.len()
    }

    /// Encodes the record into this batch if it is still open and the record fits in
    /// `batch_size` (an empty batch takes any record, as Kafka's does); otherwise hands it back.
    /// `reserved` is the buffer.memory the record holds until the batch completes.
    pub fn try_append(
        &mut self,
        record: PendingRecord,
        reserved: usize,
        batch_size: usize,
    ) -> Result<(), PendingRecord> {
        let Some(writer) = self.writer.as_mut().filter(|_| !self.full) else { return Err(record) };
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let size = writer.record_size(record.timestamp, key, value, &record.headers);
        if writer.count() > 0 && writer.size() + size > batch_size {
            return Err(record);
        }
        writer.append(record.timestamp, key, value, &record.headers);
        self.completions.push((record.completion, record.timestamp));
        self.reserved += reserved;
        // No further record of this size would fit: send without waiting for linger.ms.
        self.full = writer.size() + size > batch_size;
        Ok(())
    }

    /// The v2 record batch, compressed as configured; the same bytes on every attempt.
    pub fn encode(&mut self, producer_id: i64, producer_epoch: i16, compression: Compression) -> Result<Bytes> {
        if let Some(b) = &self.encoded {
            return Ok(b.clone());
        }
        let writer = self.writer.take().unwrap_or_else(|| BatchWriter::new(0));
        let fields = BatchFields {
            attributes: compression as i16,
            producer_id,
            producer_epoch,
            base_sequence: self.base_sequence,
            ..BatchFields::default()
        };
        let bytes = match compression {
            Compression::None => writer.finish(&fields),
            codec => writer
                .finish_with(&fields, |records, out| strom_protocol::compression::compress(codec, records, out))
                .map_err(|e| ClientError::Protocol(format!("compressing a batch for {}: {e}", self.tp)))?,
        };
        self.encoded = Some(bytes.clone());
        Ok(bytes)
    }

    /// Completes every record: offsets follow the base offset in order.
    pub fn succeed(self, base_offset: i64, log_append_time: i64) {
        let topic: Arc<str> = Arc::from(self.tp.topic.as_str());
        for (i, (completion, timestamp)) in self.completions.into_iter().enumerate() {
            let meta = RecordMetadata {
                topic: Arc::clone(&topic),
                partition: self.tp.partition,
                offset: if base_offset < 0 { -1 } else { base_offset + i as i64 },
                timestamp: if log_append_time >= 0 { log_append_time } else { timestamp },
            };
            completion.complete(Ok(meta));
        }
    }

    pub fn fail(self, error: ClientError) {
        for (completion, _) in self.completions {
            completion.complete(Err(error.clone()));
        }
    }
}
