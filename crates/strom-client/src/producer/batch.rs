//! A batch of records for one partition, from the first append to the broker's answer.

use super::record::RecordMetadata;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use std::time::Instant;
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

pub struct PendingRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
    pub completion: Completion,
}

pub struct ProducerBatch {
    pub tp: TopicPartition,
    pub records: Vec<PendingRecord>,
    /// Estimated encoded size, for batch.size and max.request.size.
    pub size: usize,
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
}

impl ProducerBatch {
    pub fn new(tp: TopicPartition) -> ProducerBatch {
        ProducerBatch {
            tp,
            records: Vec::new(),
            size: 61,
            reserved: 0,
            created: Instant::now(),
            base_sequence: -1,
            attempts: 0,
            retry_at: None,
            encoded: None,
            full: false,
        }
    }

    /// The v2 record batch, compressed as configured.
    pub fn encode(&mut self, producer_id: i64, producer_epoch: i16, compression: Compression) -> Result<Bytes> {
        if let Some(b) = &self.encoded {
            return Ok(b.clone());
        }
        let records: Vec<Record> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if self.base_sequence < 0 { -1 } else { self.base_sequence.wrapping_add(i as i32) },
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        let mut buf = BytesMut::with_capacity(self.size);
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
            .map_err(|e| ClientError::Protocol(format!("encoding a batch for {}: {e}", self.tp)))?;
        let bytes = buf.freeze();
        self.encoded = Some(bytes.clone());
        Ok(bytes)
    }

    /// Completes every record: offsets follow the base offset in order.
    pub fn succeed(self, base_offset: i64, log_append_time: i64) {
        for (i, r) in self.records.into_iter().enumerate() {
            let meta = RecordMetadata {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset: if base_offset < 0 { -1 } else { base_offset + i as i64 },
                timestamp: if log_append_time >= 0 { log_append_time } else { r.timestamp },
            };
            r.completion.complete(Ok(meta));
        }
    }

    pub fn fail(self, error: ClientError) {
        for r in self.records {
            r.completion.complete(Err(error.clone()));
        }
    }
}
