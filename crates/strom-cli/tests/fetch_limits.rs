//! Fetch honours the request's max_bytes (fetch.max.bytes) across partitions as Kafka does: each
//! partition gets at most partition_max_bytes of what is left, and only the first partition with
//! data may go past the budget by its first batch (KIP-74). A consumer whose
//! receive.message.max.bytes is just above fetch.max.bytes must never get a larger response.
//! And a fetch fills max_bytes across segment boundaries, not just from one segment.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use strom_protocol::batch::BatchIter;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;
use support::raw::RawClient;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_reads_across_segments() {
    // Copied through the connection's buffer (loopback default) and sent with sendfile.
    for overrides in [&[][..], &["fetch.zero.copy=true"][..]] {
        reads_across_segments(overrides).await;
    }
}

async fn reads_across_segments(overrides: &[&str]) {
    let broker = TestBroker::start(overrides);
    broker.create_topic("rolled", 1, &[("segment.bytes", "2000")]).await;
    let producer = broker.producer(&[("linger.ms", "0"), ("compression.type", "none")]);
    for i in 0..40 {
        let value = format!("{i:0>300}");
        producer
            .send(FutureRecord::<(), _>::to("rolled").payload(&value), Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("{e}"));
    }
    let segments = support::files_with_suffix(&broker.data_dir().join("rolled-0"), ".log").len();
    assert!(segments >= 5, "only {segments} segments");
    let part = FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20);
    let topic =
        FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("rolled"))).with_partitions(vec![part]);
    let req = FetchRequest::default().with_max_wait_ms(10).with_max_bytes(1 << 20).with_topics(vec![topic]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    for version in [4, 12] {
        let resp: FetchResponse = raw.call(ApiKey::Fetch, version, &req);
        let records = resp.responses[0].partitions[0].records.clone().unwrap_or_default();
        let offsets: Vec<i64> =
            BatchIter::new(&records).with_crc_check().map(|b| b.expect("whole, valid batches").0.base_offset).collect();
        assert_eq!(
            offsets,
            (0..40).collect::<Vec<i64>>(),
            "v{version}: all 40 batches from {segments} segments in one fetch"
        );
    }
    // With a smaller max_bytes, whole batches only, up to the limit.
    let part = FetchPartition::default().with_partition(0).with_fetch_offset(3).with_partition_max_bytes(1 << 20);
    let topic =
        FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("rolled"))).with_partitions(vec![part]);
    let req = FetchRequest::default().with_max_wait_ms(10).with_max_bytes(3000).with_topics(vec![topic]);
    let resp: FetchResponse = raw.call(ApiKey::Fetch, 12, &req);
    let records = resp.responses[0].partitions[0].records.clone().unwrap_or_default();
    assert!(records.len() <= 3000 && records.len() > 2000, "{} bytes", records.len());
    let first = BatchIter::new(&records).next().expect("a batch").expect("valid").0.base_offset;
    assert_eq!(first, 3);
}
