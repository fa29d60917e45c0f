//! Fetch honours the request's max_bytes (fetch.max.bytes) across partitions as Kafka does: each
//! partition gets at most partition_max_bytes of what is left, and only the first partition with
//! data may go past the budget by its first batch (KIP-74). A consumer whose
//! receive.message.max.bytes is just above fetch.max.bytes must never get a larger response.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use support::TestBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stay_within_fetch_max_bytes_across_partitions() {
    const PARTITIONS: i32 = 20;
    const PER_PARTITION: usize = 1_000;
    let broker = TestBroker::start(&[]);
    broker.create_topic("wide", PARTITIONS, &[]).await;
    let producer = broker.producer(&[("linger.ms", "100"), ("batch.size", "1000000"), ("compression.type", "none")]);
    let payload = vec![b'x'; 1024];
    let mut sends = Vec::new();
    for i in 0..PARTITIONS as usize * PER_PARTITION {
        let p = (i % PARTITIONS as usize) as i32;
        sends.push(
            producer.send_result(FutureRecord::<(), _>::to("wide").partition(p).payload(&payload)).expect("queue"),
        );
    }
    for s in sends {
        s.await.expect("delivery").expect("delivered");
    }

    // librdkafka drops the connection when a response exceeds receive.message.max.bytes
    // ("Invalid response size"), and then makes no progress.
    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "fetch-limits")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "1000000")
        .set("receive.message.max.bytes", "1010000")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("wide", p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let expected = PARTITIONS as usize * PER_PARTITION;
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < expected {
        assert!(Instant::now() < deadline, "consumed {got} of {expected}:\n{}", broker.log());
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("consume without error");
            got += 1;
        }
    }
}
