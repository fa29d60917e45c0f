//! End-to-end latency: a consumer with every partition assigned at the end, then producers at a
//! fixed rate stamping each value with when it was due; latency is due-to-consumed. Transient
//! errors (a broker of a cluster killed) do not end the run: it measures the stall instead (the
//! longest gap between consumed records).

use crate::consume::new_consumer;
use crate::produce::{new_producer, send_loop, Deliveries};
use crate::report::{new_histogram, Report};
use crate::topic::ensure_topic;
use crate::ProduceArgs;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::Offset;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(args: &ProduceArgs) -> Result<Vec<Report>, String> {
    if args.rate <= 0.0 {
        return Err("e2e needs --rate RECORDS_PER_SEC (latency at an unbounded rate is queueing, not latency)".into());
    }
    ensure_topic(&args.target)?;
    let consumer: BaseConsumer = new_consumer(&args.target, None, Offset::End)?;
    // Let the consumer resolve its end offsets before anything is produced.
    let warm_up = Instant::now();
    let mut transient_errors = 0u64;
    while warm_up.elapsed() < Duration::from_secs(1) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
            transient(&e, &mut transient_errors)?;
        }
    }
    let deliveries = Deliveries::new(Instant::now());
    let done = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (args, deliveries, done) = (args.clone(), Arc::clone(&deliveries), Arc::clone(&done));
        std::thread::spawn(move || {
            let result = new_producer(&args, &deliveries)
                .and_then(|p| send_loop(&p, &args, &deliveries, args.records.unwrap_or(u64::MAX), args.rate, true));
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    let mut latency = new_histogram();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut quiet_since = Instant::now();
    // The longest time without a consumed record once records flow: a broker's death shows here.
    let mut longest_gap = Duration::ZERO;
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let now_us = deliveries.now_us();
                let payload = m.payload().unwrap_or_default();
                if payload.len() >= 8 {
                    let due_us = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
                    let _ = latency.record(now_us.saturating_sub(due_us).max(1));
                }
                if records > 0 {
                    longest_gap = longest_gap.max(quiet_since.elapsed());
                }
                records += 1;
                bytes += payload.len() as u64;
                quiet_since = Instant::now();
            }
            Some(Err(e)) => transient(&e, &mut transient_errors)?,
            None => {}
        }
        let all_in = done.load(Ordering::SeqCst) && records >= deliveries.acked.load(Ordering::Relaxed);
        if all_in || (done.load(Ordering::SeqCst) && quiet_since.elapsed() > Duration::from_secs(5)) {
            break;
        }
    }
    producer_thread.join().map_err(|_| "the producer thread panicked".to_string())??;
    let seconds = deliveries.last_ack_us.load(Ordering::Relaxed) as f64 / 1e6;
    Ok(vec![Report {
        client_cpu_seconds: crate::report::process_cpu_seconds(),
        scenario: "e2e",
        records,
        bytes,
        seconds,
        latency,
        params: json!({
            "bootstrap": args.target.bootstrap_server, "topic": args.target.topic,
            "record_size": args.record_size, "acks": args.acks, "rate": args.rate,
            "produced": deliveries.acked.load(Ordering::Relaxed), "duration": args.duration,
            "longest_gap_ms": longest_gap.as_secs_f64() * 1000.0, "transient_errors": transient_errors,
        }),
    }])
}

/// A consumer error librdkafka recovers from by itself (a broker gone, a leader moving) is
/// reported and counted, and the run goes on: its cost shows in the latency and the longest gap.
/// Only fatal errors end the run.
fn transient(e: &rdkafka::error::KafkaError, count: &mut u64) -> Result<(), String> {
    let fatal = matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::Fatal));
    if fatal {
        return Err(format!("consume: {e}"));
    }
    *count += 1;
    eprintln!("consume: {e} (retried by the client)");
    Ok(())
}
