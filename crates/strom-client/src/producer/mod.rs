//! The producer: partitioning, batching, sending — Kafka's producer with Kafka's settings.
//!
//! ```no_run
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::producer::{Producer, ProducerRecord};
//! use strom_client::Properties;
//! let producer = Producer::new(&Properties::new().set("bootstrap.servers", "localhost:9092")).await?;
//! // Fire and forget:
//! producer.send_and_forget(ProducerRecord::new("events").value("hello")).await?;
//! // Synchronous: wait for the broker's answer.
//! let meta = producer.send_and_wait(ProducerRecord::new("events").key("k").value("v")).await?;
//! println!("written at {}-{}@{}", meta.topic, meta.partition, meta.offset);
//! // Asynchronous with a callback:
//! producer.send_with_callback(ProducerRecord::new("events").value("x"), |result| {
//!     if let Err(e) = result { eprintln!("send failed: {e}"); }
//! }).await?;
//! producer.close().await?;
//! # Ok(()) }
//! ```

pub mod accumulator;
pub mod batch;
pub mod config;
pub mod partitioner;
pub mod record;
mod sender;

pub use config::ProducerConfig;
pub use partitioner::{Partitioner, PartitionerContext};
pub use record::{ProducerRecord, RecordMetadata};

use crate::config::Properties;
use crate::conn::Cluster;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use accumulator::Accumulator;
use batch::{Completion, PendingRecord, ProducerBatch};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;
use strom_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse};
use tokio::sync::{oneshot, Notify, Semaphore};

pub(crate) struct Inner {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    acc: Mutex<Accumulator>,
    /// Wakes the sender task: a batch filled up, a flush began, an answer freed a partition.
    wake: Notify,
    /// Signalled whenever a batch completes (flush waits on it).
    idle: Notify,
    /// buffer.memory, in bytes.
    memory: Semaphore,
    partitioner: Box<dyn Partitioner>,
    producer: Mutex<(i64, i16)>,
    in_flight: Mutex<HashMap<i32, usize>>,
    /// A batch failed after its sequence numbers may have been used (or the broker reported a
    /// gap): the sequences of its partition can no longer continue, so the idempotent producer
    /// takes a new producer id, with every sequence starting again at 0, once nothing is in
    /// flight (Java's producer resets the id the same way). New batches wait until then.
    reset_needed: AtomicBool,
    resetting: AtomicBool,
}

impl Inner {
    fn lock_acc(&self) -> MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn producer_id(&self) -> (i64, i16) {
        *self.producer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_flight(&self, node: i32) -> usize {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied().unwrap_or(0)
    }

    fn total_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// Takes a new producer id (see `reset_needed`) and starts every partition's sequence at 0.
    async fn reset_producer_id(self: Arc<Self>) {
        loop {
            match init_producer_id(&self.cluster, &self.config).await {
                Ok(id) => {
                    let old = std::mem::replace(&mut *self.producer.lock().unwrap_or_else(|p| p.into_inner()), id);
                    self.lock_acc().queues.values_mut().for_each(|q| q.next_sequence = 0);
                    tracing::warn!(
                        old = old.0,
                        new = id.0,
                        "idempotent producer: a batch failed after its sequence numbers may have been used; \
                         continuing with a new producer id"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!("idempotent producer: a new producer id could not be had ({e}); trying again");
                    tokio::time::sleep(self.config.retry_backoff.max(std::time::Duration::from_millis(100))).await;
                }
            }
        }
        self.reset_needed.store(false, Ordering::SeqCst);
        self.resetting.store(false, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn add_in_flight(&self, node: i32, delta: isize) {
        let mut m = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(node).or_default();
        *n = n.saturating_add_signed(delta);
    }

    /// The batch is done (written or failed for good): report every record's outcome, then free
    /// its partition and its memory. In that order, so that flush() (which waits for the queues
    /// to empty) returns only after every callback has run, as Kafka's does.
    fn finish(&self, batch: ProducerBatch, result: Result<(i64, i64)>) {
        let tp = batch.tp.clone();
        let (base_sequence, count, reserved) = (batch.base_sequence, batch.record_count(), batch.reserved);
        // Only a batch that was never sent, or that the broker answered with an error, surely
        // did not land; after a timeout or a lost connection it may have, and reusing its
        // sequence numbers would make the broker take the next batch for a duplicate of it.
        let never_written = match &result {
            Ok(_) => false,
            Err(ClientError::Kafka { .. }) => true,
            Err(_) => batch.encoded.is_none(),
        };
        // OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID: the broker lost track of this
        // producer's sequence for the partition; only a new producer id gets past it.
        let gap_reported = matches!(&result, Err(ClientError::Kafka { code: 45 | 59, .. }));
        let current_id = batch.producer_id == self.producer_id().0;
        let failed_result = result.is_err();
        match result {
            Ok((offset, append_time)) => batch.succeed(offset, append_time),
            Err(e) => batch.fail(e),
        }
        {
            let mut acc = self.lock_acc();
            if let Some(q) = acc.queues.get_mut(&tp) {
                q.in_flight = false;
                let failed = base_sequence >= 0 && failed_result;
                let last = q.next_sequence == base_sequence.wrapping_add(count as i32);
                if failed && current_id && never_written && last && !gap_reported {
                    // Its sequence numbers were not used: the next batch takes them.
                    q.next_sequence = base_sequence;
                } else if failed && current_id && self.config.idempotence {
                    self.reset_needed.store(true, Ordering::SeqCst);
                }
            }
        }
        self.memory.add_permits(reserved);
        self.idle.notify_waiters();
        self.wake.notify_one();
    }

    /// A failed attempt: retry after retry.backoff.ms while retries and delivery.timeout.ms allow.
    fn retry_or_fail(&self, mut batch: ProducerBatch, error: ClientError) {
        batch.attempts += 1;
        let expired = batch.created.elapsed() >= self.config.delivery_timeout;
        if !error.is_retriable() || batch.attempts > self.config.retries || expired {
            let error = if expired && error.is_retriable() {
                ClientError::Timeout {
                    what: format!("delivering to {} ({error})", batch.tp),
                    after: self.config.delivery_timeout,
                }
            } else {
                error
            };
            self.finish(batch, Err(error));
            return;
        }
        tracing::debug!(tp = %batch.tp, attempt = batch.attempts, "retrying produce: {error}");
        if error.needs_metadata_refresh() {
            let cluster = Arc::clone(&self.cluster);
            tokio::spawn(async move {
                let _ = cluster.refresh().await;
            });
        }
        batch.retry_at = Some(Instant::now() + self.config.retry_backoff);
        let mut acc = self.lock_acc();
        let q = acc.queues.entry(batch.tp.clone()).or_default();
        q.in_flight = false;
        q.batches.push_front(batch);
    }
}

/// A handle to the producer; clones share one producer.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

/// The outcome of one send, as a future.
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata>>);

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

impl Producer {
    /// Connects, and with enable.idempotence gets a producer id (InitProducerId).
    pub async fn new(props: &Properties) -> Result<Producer> {
        let config = ProducerConfig::from_properties(props)?;
        let partitioner = partitioner::partitioner_by_name(&config.partitioner).ok_or_else(|| ClientError::Config {
            key: "partitioner.class".into(),
            message: format!("unknown partitioner '{}'", config.partitioner),
        })?;
        Producer::with_partitioner(config, partitioner).await
    }

    /// A producer with a user-defined partitioner.
    pub async fn with_partitioner(config: ProducerConfig, partitioner: Box<dyn Partitioner>) -> Result<Producer> {
        let cluster = Cluster::connect(config.cluster.clone()).await?;
        let producer_id = if config.idempotence { init_producer_id(&cluster, &config).await? } else { (-1, -1) };
        let inner = Arc::new(Inner {
            memory: Semaphore::new(config.buffer_memory),
            config,
            cluster,
            acc: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            idle: Notify::new(),
            partitioner,
            producer: Mutex::new(producer_id),
            in_flight: Mutex::new(HashMap::new()),
            reset_needed: AtomicBool::new(false),
            resetting: AtomicBool::new(false),
        });
        tokio::spawn(sender::run(Arc::clone(&inner)));
        Ok(Producer { inner })
    }

    /// Queues a record; the future resolves when the broker has it (or it failed for good).
    /// Waits up to max.block.ms for metadata and buffer space.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(record, Completion::Future(tx)).await?;
        Ok(DeliveryFuture(rx))
    }

    /// Sends and waits for the broker's answer.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Queues a record and calls `callback` with the outcome (on the producer's task: keep it short).
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata>) + Send + 'static,
    ) -> Result<()> {
        self.enqueue(record, Completion::Callback(Box::new(callback))).await
    }

    /// Queues a record and does not report the outcome (failures are logged).
    pub async fn send_and_forget(&self, record: ProducerRecord) -> Result<()> {
        self.enqueue(record, Completion::Ignore).await
    }

    async fn enqueue(&self, record: ProducerRecord, completion: Completion) -> Result<()> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let size = record.estimated_size();
        if size + 61 > cfg.max_request_size || size > cfg.buffer_memory {
            return Err(ClientError::RecordTooLarge { size, max: cfg.max_request_size.min(cfg.buffer_memory) });
        }
        // Fast path: the topic is in the current snapshot (no copy of its partition list).
        let snapshot = inner.cluster.snapshot();
        let fetched;
        let topic = match snapshot.topics.get(&record.topic) {
            Some(t) => t,
            None => {
                if inner.lock_acc().closed {
                    return Err(ClientError::Closed);
                }
                fetched = inner.cluster.wait_for_topic(&record.topic, cfg.max_block).await?;
                &fetched
            }
        };
        let partition = match record.partition {
            Some(p) if p < 0 || p >= topic.partition_count() => {
                return Err(ClientError::InvalidInput(format!(
                    "partition {p} of {} does not exist (it has {})",
                    record.topic,
                    topic.partition_count()
                )))
            }
            Some(p) => p,
            None => inner.partitioner.partition(&PartitionerContext {
                topic: &record.topic,
                key: record.key.as_deref(),
                partition_count: topic.partition_count(),
                available_partitions: &topic.available,
            }),
        };
        // Fast path without a timer; only a full buffer waits (up to max.block.ms).
        let permits = match inner.memory.try_acquire_many(size as u32) {
            Ok(p) => p,
            Err(_) => tokio::time::timeout(cfg.max_block, inner.memory.acquire_many(size as u32))
                .await
                .map_err(|_| ClientError::Timeout { what: "buffer.memory to free up".into(), after: cfg.max_block })?
                .map_err(|_| ClientError::Closed)?,
        };
        let partition_count = topic.partition_count();
        let tp = TopicPartition::new(record.topic, partition);
        let pending = PendingRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            completion,
        };
        let appended = {
            let mut acc = inner.lock_acc();
            if acc.closed {
                return Err(ClientError::Closed); // the permits go back as they drop
            }
            permits.forget();
            acc.append(&tp, pending, size, cfg.batch_size)
        };
        if appended.batch_full && record.partition.is_none() {
            inner.partitioner.on_new_batch(&tp.topic, partition_count, partition);
        }
        if appended.batch_full || appended.new_batch {
            inner.wake.notify_one();
        }
        Ok(())
    }

    /// Sends everything queued now and waits until every record has its outcome.
    pub async fn flush(&self) -> Result<()> {
        self.inner.lock_acc().flushing += 1;
        self.inner.wake.notify_one();
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.lock_acc().is_empty() {
                break;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), idle).await;
        }
        self.inner.lock_acc().flushing -= 1;
        Ok(())
    }

    /// Delivers everything queued (or reports its failure) and stops the sender.
    pub async fn close(&self) -> Result<()> {
        self.inner.lock_acc().closed = true;
        self.flush().await
    }

    /// The cluster view this producer uses (partition counts, leaders).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.inner.cluster
    }
}

/// InitProducerId, retried as Java's producer does while the error is retriable (a broker that is
/// still loading its coordinator state answers COORDINATOR_LOAD_IN_PROGRESS right after it
/// starts), every `retry.backoff.ms`, for at most `max.block.ms`.
async fn init_producer_id(cluster: &Cluster, config: &ProducerConfig) -> Result<(i64, i16)> {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    req.producer_id = strom_protocol::messages::ProducerId(-1);
    req.producer_epoch = -1;
    let deadline = tokio::time::Instant::now() + config.max_block;
    loop {
        let attempt = async {
            let resp: InitProducerIdResponse = cluster.send_any(ApiKey::InitProducerId, &req).await?;
            crate::error::check(resp.error_code)?;
            Ok::<_, ClientError>((resp.producer_id.0, resp.producer_epoch))
        };
        match attempt.await {
            Ok(id) => return Ok(id),
            Err(e) if e.is_retriable() && tokio::time::Instant::now() + config.retry_backoff < deadline => {
                tracing::debug!("InitProducerId failed ({e}); retrying in {:?}", config.retry_backoff);
                tokio::time::sleep(config.retry_backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
