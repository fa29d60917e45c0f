//! Produce-only: producer threads send records (as fast as allowed, or each at its share of
//! --rate), and every delivery report adds the record's latency from when it was due.

use crate::report::{new_histogram, Report};
use crate::topic::{client_config, ensure_topic};
use crate::ProduceArgs;
use hdrhistogram::Histogram;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counters shared by the delivery callbacks of all producers.
pub struct Deliveries {
    pub start: Instant,
    pub acked: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
    /// µs since `start` of the last acknowledgement.
    pub last_ack_us: AtomicU64,
    pub latency: Mutex<Histogram<u64>>,
    pub first_error: Mutex<Option<String>>,
}

impl Deliveries {
    pub fn new(start: Instant) -> Arc<Deliveries> {
        Arc::new(Deliveries {
            start,
            acked: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_ack_us: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            first_error: Mutex::new(None),
        })
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// One acknowledged record of `bytes`, due at `due_us`.
    pub fn delivered(&self, due_us: u64, bytes: u64) {
        let now = self.now_us();
        self.acked.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_ack_us.fetch_max(now, Ordering::Relaxed);
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let _ = h.record(now.saturating_sub(due_us).max(1));
    }

    pub fn failure(&self, error: &dyn std::fmt::Display) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| error.to_string());
    }
}

pub struct Context(pub Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    /// When the record was due, in µs since the run started.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, due_us: usize) {
        match result {
            Ok(m) => self.0.delivered(due_us as u64, m.payload_len() as u64),
            Err((e, _)) => self.0.failure(e),
        }
    }
}

pub fn new_producer(args: &ProduceArgs, deliveries: &Arc<Deliveries>) -> Result<ThreadedProducer<Context>, String> {
    let mut config = client_config(&args.target)?;
    config
        .set("acks", &args.acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("compression.type", &args.compression);
    config.create_with_context(Context(Arc::clone(deliveries))).map_err(|e| format!("producer: {e}"))
}

/// A value of `size` bytes: pseudo-random letters, compressible about as much as text.
pub fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// Producer `n`'s part of a record budget split over `producers` (the remainder to the first).
pub fn share_of(budget: u64, producers: usize, n: usize) -> u64 {
    budget / producers as u64 + u64::from((n as u64) < budget % producers as u64)
}

/// When each record is due: at `rate` records/s from the start (open loop), or now when unthrottled.
pub struct Pace {
    start: Instant,
    deadline: Duration,
    rate: f64,
}

impl Pace {
    pub fn new(args: &ProduceArgs, deliveries: &Deliveries, rate: f64) -> Pace {
        Pace { start: deliveries.start, deadline: Duration::from_secs_f64(args.duration), rate }
    }

    /// Record `i`'s due time since the start and how long to wait for it; `None` once the
    /// duration is over.
    pub fn next(&self, i: u64) -> Option<(Duration, Duration)> {
        let now = self.start.elapsed();
        if now >= self.deadline {
            return None;
        }
        let due = if self.rate > 0.0 { Duration::from_secs_f64(i as f64 / self.rate) } else { now };
        Some((due, due.saturating_sub(now)))
    }
}

/// Sends until the duration or the record budget runs out; `stamp` writes the due time into the
/// first 8 bytes of each value (for end-to-end latency).
pub fn send_loop(
    producer: &ThreadedProducer<Context>,
    args: &ProduceArgs,
    deliveries: &Deliveries,
    budget: u64,
    rate: f64,
    stamp: bool,
) -> Result<(), String> {
    let mut value = payload(args.record_size.max(if stamp { 8 } else { 0 }), budget ^ 0x9e37_79b9);
    let pace = Pace::new(args, deliveries, rate);
    let mut i = 0u64;
    while i < budget {
        let Some((due, wait)) = pace.next(i) else { break };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let due_us = due.as_micros() as usize;
        if stamp {
            value[..8].copy_from_slice(&(due_us as u64).to_be_bytes());
        }
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.target.topic, due_us).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => return Err(format!("send failed: {e}")),
            }
        }
        i += 1;
    }
    producer.flush(Duration::from_secs(60)).map_err(|e| format!("flush: {e}"))
}

pub fn run(args: &ProduceArgs) -> Result<Vec<Report>, String> {
    ensure_topic(&args.target)?;
    let producers = args.producers.max(1);
    let mut handles = Vec::new();
    let deliveries = Deliveries::new(Instant::now());
    let budget = args.records.unwrap_or(u64::MAX);
    let per_producer: Vec<ThreadedProducer<Context>> =
        (0..producers).map(|_| new_producer(args, &deliveries)).collect::<Result<_, _>>()?;
    for (n, producer) in per_producer.into_iter().enumerate() {
        let args = args.clone();
        let deliveries = Arc::clone(&deliveries);
        let share = share_of(budget, producers, n);
        let rate = args.rate / producers as f64;
        handles.push(std::thread::spawn(move || send_loop(&producer, &args, &deliveries, share, rate, false)));
    }
    for h in handles {
        h.join().map_err(|_| "a producer thread panicked".to_string())??;
    }
    report(args, &deliveries)
}

/// The produce report from the delivery counters (both clients).
pub fn report(args: &ProduceArgs, deliveries: &Deliveries) -> Result<Vec<Report>, String> {
    if let Some(e) = deliveries.first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(format!("{} records failed; first error: {e}", deliveries.failed.load(Ordering::Relaxed)));
    }
    let latency = deliveries.latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(vec![Report {
        client_cpu_seconds: crate::report::process_cpu_seconds(),
        scenario: "produce",
        records: deliveries.acked.load(Ordering::Relaxed),
        bytes: deliveries.bytes.load(Ordering::Relaxed),
        seconds: deliveries.last_ack_us.load(Ordering::Relaxed) as f64 / 1e6,
        latency,
        params: json!({
            "bootstrap": args.target.bootstrap_server, "topic": args.target.topic,
            "record_size": args.record_size, "partitions": args.target.partitions, "acks": args.acks,
            "compression": args.compression, "linger_ms": args.linger_ms, "producers": args.producers.max(1), "batch_size": args.batch_size,
            "client": format!("{:?}", args.client).to_lowercase(),
            "rate": args.rate, "duration": args.duration,
        }),
    }])
}
