//! A quick librdkafka producer load, for a first throughput figure (not a test; the full
//! benchmark harness comes with the performance issue).
//!
//! cargo run --release -p strom-cli --example produce_throughput -- BOOTSTRAP TOPIC RECORDS RECORD_BYTES [ACKS]

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: produce_throughput BOOTSTRAP TOPIC RECORDS RECORD_BYTES [ACKS]");
        std::process::exit(1);
    }
    let (bootstrap, topic) = (&args[1], &args[2]);
    let records: usize = args[3].parse().expect("RECORDS is a number");
    let size: usize = args[4].parse().expect("RECORD_BYTES is a number");
    let acks = args.get(5).map(String::as_str).unwrap_or("1");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("enable.idempotence", "false")
        .create()
        .expect("producer");
    let payload = vec![b'x'; size];
    let start = Instant::now();
    for _ in 0..records {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    let mb = (records * size) as f64 / 1_000_000.0;
    println!(
        "{records} records of {size} B in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        mb / secs
    );
}
