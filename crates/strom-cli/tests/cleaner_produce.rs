//! Measurement, not a check (ignored; run with `--release`): what the log cleaner costs produce
//! throughput. The same keyed workload (1 KiB values over 10,000 keys, librdkafka with
//! linger.ms=5, acks=1) to a compacted topic with 16 MiB segments, with the cleaner off, on at
//! full speed, and throttled by `log.cleaner.io.max.bytes.per.second`:
//!
//! `cargo test --release -p strom-cli --test cleaner_produce -- --ignored --nocapture`

mod support;

use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};
use support::TestBroker;

const RECORDS: usize = 1_500_000;
const VALUE: usize = 1024;

/// Produces the workload; MB/s.
async fn produce(broker: &TestBroker) -> f64 {
    let producer: FutureProducer = broker.producer(&[("linger.ms", "5"), ("batch.size", "1000000"), ("acks", "1")]);
    let value = vec![b'v'; VALUE];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(10_000);
    for i in 0..RECORDS {
        let key = format!("key-{}", (i * 7_919) % 10_000);
        let record = FutureRecord::to("table").key(&key).payload(&value);
        match producer.send_result(record) {
            Ok(f) => pending.push(f),
            Err((e, _)) => panic!("enqueue: {e}"),
        }
        if pending.len() == 10_000 {
            for f in pending.drain(..) {
                f.await.expect("delivered").expect("produced");
            }
        }
    }
    for f in pending {
        f.await.expect("delivered").expect("produced");
    }
    (RECORDS * VALUE) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Bytes the cleaner read, from its log lines.
fn cleaned_bytes(broker: &TestBroker) -> u64 {
    broker
        .log()
        .lines()
        .filter(|l| l.contains("cleaned log"))
        .filter_map(|l| l.split("read_bytes=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
async fn cleaner_cost_to_produce_throughput() {
    let runs = [
        ("cleaner off", vec!["log.cleaner.enable=false"]),
        ("cleaner at full speed", vec!["log.cleaner.backoff.ms=100"]),
        (
            "cleaner throttled to 20 MB/s",
            vec!["log.cleaner.backoff.ms=100", "log.cleaner.io.max.bytes.per.second=20000000"],
        ),
    ];
    for (name, overrides) in runs.iter().chain(runs.iter()) {
        let broker = TestBroker::start(overrides);
        let configs =
            [("cleanup.policy", "compact"), ("segment.bytes", "16777216"), ("min.cleanable.dirty.ratio", "0.1")];
        broker.create_topic("table", 1, &configs).await;
        let mb_s = produce(&broker).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!(
            "{name}: produce {mb_s:.0} MB/s ({} MB); cleans finished meanwhile read {} MB",
            RECORDS * VALUE / 1_000_000,
            cleaned_bytes(&broker) / 1_000_000
        );
    }
}
