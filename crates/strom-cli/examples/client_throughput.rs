//! Producer throughput of strom-client beside librdkafka, against the same broker in one run
//! (issue 4's figure). Not a test.
//!
//! cargo run --release -p strom-cli --example client_throughput -- BOOTSTRAP RECORDS RECORD_BYTES [ROUNDS]
//!
//! Both producers: acks=1, linger.ms=5, batch.size=1000000, no compression, no idempotence,
//! keyless records on a 6-partition topic created per run; each round runs strom-client first,
//! then librdkafka, on fresh topics.

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use std::time::{Duration, Instant};
use strom_client::admin::{Admin, NewTopic};
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::Properties;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: client_throughput BOOTSTRAP RECORDS RECORD_BYTES [ROUNDS]");
        std::process::exit(1);
    }
    let bootstrap = args[1].clone();
    let records: usize = args[2].parse().expect("RECORDS is a number");
    let size: usize = args[3].parse().expect("RECORD_BYTES is a number");
    let rounds: usize = args.get(4).map_or(3, |r| r.parse().expect("ROUNDS is a number"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let pid = std::process::id();
    for round in 0..rounds {
        let ours = format!("client-throughput-{pid}-{round}-strom");
        let theirs = format!("client-throughput-{pid}-{round}-rdkafka");
        rt.block_on(create(&bootstrap, &[&ours, &theirs]));
        let a = rt.block_on(strom_client_run(&bootstrap, &ours, records, size));
        let b = librdkafka_run(&bootstrap, &theirs, records, size);
        let mb = |secs: f64| (records * size) as f64 / secs / 1e6;
        let rps = |secs: f64| records as f64 / secs;
        println!(
            "round {round}: strom-client {:.0} rec/s {:.1} MB/s | librdkafka {:.0} rec/s {:.1} MB/s | ratio {:.2}",
            rps(a),
            mb(a),
            rps(b),
            mb(b),
            b / a
        );
    }
}

async fn create(bootstrap: &str, topics: &[&str]) {
    let admin = Admin::new(&Properties::new().set("bootstrap.servers", bootstrap)).await.expect("admin");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(*t, 6, 1)).collect();
    for (t, r) in admin.create_topics(&new, false).await.expect("create") {
        r.unwrap_or_else(|e| panic!("creating {t}: {e}"));
    }
}

async fn strom_client_run(bootstrap: &str, topic: &str, records: usize, size: usize) -> f64 {
    let producer = Producer::new(
        &Properties::new()
            .set("bootstrap.servers", bootstrap)
            .set("acks", "1")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("buffer.memory", "268435456")
            .set("enable.idempotence", "false"),
    )
    .await
    .expect("producer");
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let start = Instant::now();
    for _ in 0..records {
        producer.send_and_forget(ProducerRecord::new(topic).value(payload.clone())).await.expect("send");
    }
    producer.close().await.expect("close");
    start.elapsed().as_secs_f64()
}

fn librdkafka_run(bootstrap: &str, topic: &str, records: usize, size: usize) -> f64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
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
    start.elapsed().as_secs_f64()
}
