//! Per-partition queues of batches between `send` and the sender task. A partition has at most
//! one batch in flight, which keeps records in order across retries (idempotence then makes a
//! retried batch land once).

use super::batch::{PendingRecord, ProducerBatch};
use crate::TopicPartition;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct PartitionQueue {
    pub batches: VecDeque<ProducerBatch>,
    pub in_flight: bool,
    /// Next sequence number (idempotence), per partition as Kafka numbers them.
    pub next_sequence: i32,
}

#[derive(Default)]
pub struct Accumulator {
    pub queues: HashMap<TopicPartition, PartitionQueue>,
    /// Set by flush() and close(): send everything now, linger or not.
    pub flushing: usize,
    pub closed: bool,
}

/// What an append did, so the caller can tell the partitioner and wake the sender.
pub struct Appended {
    /// The batch the record went into is full: the sender should take it now.
    pub batch_full: bool,
    /// A batch was started: the sender must learn its linger deadline.
    pub new_batch: bool,
}

impl Accumulator {
    /// Adds a record to the partition's last batch, or to a new one if it does not fit there.
    /// `reserved` is the buffer.memory it holds until its batch completes.
    pub fn append(
        &mut self,
        tp: &TopicPartition,
        record: PendingRecord,
        reserved: usize,
        batch_size: usize,
    ) -> Appended {
        if let Some(queue) = self.queues.get_mut(tp) {
            return Self::append_to(queue, tp, record, reserved, batch_size);
        }
        let queue = self.queues.entry(tp.clone()).or_default();
        Self::append_to(queue, tp, record, reserved, batch_size)
    }

    fn append_to(
        queue: &mut PartitionQueue,
        tp: &TopicPartition,
        record: PendingRecord,
        reserved: usize,
        batch_size: usize,
    ) -> Appended {
        let record = match queue.batches.back_mut() {
            Some(last) => match last.try_append(record, reserved, batch_size) {
                Ok(()) => return Appended { batch_full: last.full, new_batch: false },
                Err(record) => record,
            },
            None => record,
        };
        // As Kafka: room for batch.size, or for the one record that is larger.
        let mut batch = ProducerBatch::new(tp.clone(), batch_size.max(reserved));
        if batch.try_append(record, reserved, batch_size).is_err() {
            unreachable!("an empty batch takes any record");
        }
        let batch_full = batch.full;
        queue.batches.push_back(batch);
        Appended { batch_full, new_batch: true }
    }

    /// Batches that may be sent now: for each partition without a batch in flight, its first
    /// batch if full, lingered long enough, flushing, or behind another batch.
    pub fn ready(&self, linger: Duration, batch_size: usize, now: Instant) -> Vec<TopicPartition> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.in_flight)
            .filter_map(|(tp, q)| {
                let b = q.batches.front()?;
                if b.retry_at.is_some_and(|t| t > now) {
                    return None;
                }
                let ready = b.full
                    || b.size() >= batch_size
                    || q.batches.len() > 1
                    || now.duration_since(b.created) >= linger
                    || self.flushing > 0
                    || self.closed
                    || b.attempts > 0;
                ready.then(|| tp.clone())
            })
            .collect()
    }

    /// When the sender must look again (the earliest linger or retry expiry), if anything waits.
    pub fn next_wakeup(&self, linger: Duration) -> Option<Instant> {
        self.queues
            .values()
            .filter(|q| !q.in_flight)
            .filter_map(|q| q.batches.front())
            .map(|b| b.retry_at.unwrap_or(b.created + linger))
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.values().all(|q| q.batches.is_empty() && !q.in_flight)
    }
}
