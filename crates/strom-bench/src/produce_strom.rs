//! Produce-only with Strom's own client (strom-client) instead of librdkafka: the same records,
//! settings, rate control and delivery accounting as `produce`, so the two clients can be compared
//! against one broker in one run (`--client strom`).

use crate::produce::{payload, report, share_of, Deliveries, Pace};
use crate::report::Report;
use crate::topic::{ensure_topic, extra_properties};
use crate::ProduceArgs;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::Properties;

pub fn run(args: &ProduceArgs) -> Result<Vec<Report>, String> {
    ensure_topic(&args.target)?;
    let mut props = Properties::new()
        .set("bootstrap.servers", args.target.bootstrap_server.as_str())
        .set("acks", args.acks.as_str())
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("compression.type", args.compression.as_str());
    for (k, v) in extra_properties(&args.target)? {
        props.insert(k, v);
    }
    // Two worker threads: librdkafka likewise runs its own threads beside the sending one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let producers = args.producers.max(1);
        let mut clients = Vec::new();
        for _ in 0..producers {
            clients.push(Producer::new(&props).await.map_err(|e| format!("producer: {e}"))?);
        }
        let deliveries = Deliveries::new(Instant::now());
        let budget = args.records.unwrap_or(u64::MAX);
        let mut tasks = Vec::new();
        for (n, producer) in clients.into_iter().enumerate() {
            let share = share_of(budget, producers, n);
            let (args, deliveries) = (args.clone(), Arc::clone(&deliveries));
            tasks.push(tokio::spawn(async move {
                send_loop(&producer, &args, &deliveries, share, args.rate / producers as f64).await
            }));
        }
        for t in tasks {
            t.await.map_err(|_| "a producer task panicked".to_string())??;
        }
        report(args, &deliveries)
    })
}

async fn send_loop(
    producer: &Producer,
    args: &ProduceArgs,
    deliveries: &Arc<Deliveries>,
    budget: u64,
    rate: f64,
) -> Result<(), String> {
    let value = Bytes::from(payload(args.record_size, budget ^ 0x9e37_79b9));
    let pace = Pace::new(args, deliveries, rate);
    let mut i = 0u64;
    while i < budget {
        let Some((due, wait)) = pace.next(i) else { break };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let due_us = due.as_micros() as u64;
        let (d, bytes) = (Arc::clone(deliveries), value.len() as u64);
        let record = ProducerRecord::new(args.target.topic.as_str()).value(value.clone());
        producer
            .send_with_callback(record, move |result| match result {
                Ok(_) => d.delivered(due_us, bytes),
                Err(e) => d.failure(&e),
            })
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        i += 1;
    }
    producer.flush().await.map_err(|e| format!("flush: {e}"))
}
