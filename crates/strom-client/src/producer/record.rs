//! What the producer sends and what it gets back.

use bytes::Bytes;
use std::sync::Arc;

/// A record to send. Build it with [`ProducerRecord::new`] and the setters.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// Send to this partition instead of asking the partitioner.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    /// `None` sends a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; the send time when `None`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>) -> ProducerRecord {
        ProducerRecord { topic: topic.into(), ..Default::default() }
    }

    pub fn key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    pub fn value(mut self, value: impl Into<Bytes>) -> ProducerRecord {
        self.value = Some(value.into());
        self
    }

    pub fn partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    pub fn timestamp(mut self, ms: i64) -> ProducerRecord {
        self.timestamp = Some(ms);
        self
    }

    /// Bytes this record takes in a batch (an upper bound of the v2 record encoding).
    pub fn estimated_size(&self) -> usize {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + len(v) + 10).sum();
        21 + len(&self.key) + len(&self.value) + headers
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Shared by every record of the batch (no copy per record).
    pub topic: Arc<str>,
    pub partition: i32,
    /// -1 with acks=0, where the broker does not say.
    pub offset: i64,
    /// The record's timestamp, or the broker's append time for LogAppendTime topics.
    pub timestamp: i64,
}
