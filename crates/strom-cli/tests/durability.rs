//! Data survives a clean restart and a kill -9; retention removes whole old segments.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::{files_with_suffix, TestBroker};

async fn produce(producer: &FutureProducer, topic: &str, range: std::ops::Range<usize>) -> Vec<(i32, i64)> {
    let futures: Vec<_> = range
        .map(|i| {
            let value = format!("m{i}");
            producer
                .send_result(FutureRecord::to(topic).key(&value).payload(&value))
                .map_err(|(e, _)| e)
                .expect("enqueue")
        })
        .collect();
    let mut out = Vec::new();
    for f in futures {
        let d = f.await.expect("future").expect("delivered");
        out.push((d.partition, d.offset));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_data_and_offsets_survive_a_restart() {
    let mut broker = TestBroker::start(&[]);
    broker.create_topic("durable", 3, &[("retention.ms", "86400000")]).await;
    let producer = broker.producer(&[("acks", "all")]);
    let first = produce(&producer, "durable", 0..3000).await;
    drop(producer);
    broker.stop();
    assert!(broker.data_dir().join(".strom_cleanshutdown").exists(), "clean shutdown marker written");
    broker.restart();
    let log = broker.log();
    assert!(
        log.contains("after a clean shutdown: no recovery needed"),
        "a clean restart needs no recovery scan:\n{log}"
    );
    assert!(!log.contains("recovered logs after an unclean shutdown"), "{log}");

    let messages = broker.consume_all("durable", 3, 3000);
    assert_eq!(messages.len(), 3000);
    let producer = broker.producer(&[("acks", "all")]);
    let second = produce(&producer, "durable", 3000..3300).await;
    let mut high: HashMap<i32, i64> = HashMap::new();
    for (p, o) in &first {
        let h = high.entry(*p).or_insert(-1);
        *h = (*h).max(*o);
    }
    let mut seen_new: HashMap<i32, i64> = HashMap::new();
    for (p, o) in second {
        let expected = seen_new.get(&p).map(|x| x + 1).unwrap_or(high.get(&p).copied().unwrap_or(-1) + 1);
        assert_eq!(o, expected, "offsets continue after restart in partition {p}");
        seen_new.insert(p, o);
    }
    let md = broker.admin();
    let _ = md; // the topic config is checked through DescribeConfigs in the admin tests
}

/// Rewrites a stopped broker's metadata the way Strom kept it before the metadata quorum: one JSON
/// record per line in `__cluster_metadata/records.jsonl`, no `__cluster_metadata-0`.
fn rewrite_as_pre_quorum_data_dir(dir: &std::path::Path) {
    use strom_metadata::image::decode_records;
    use strom_metadata::quorum::{DurableQuorumLog, QUORUM_DIR};
    let (durable, state) = DurableQuorumLog::open(dir).expect("quorum files");
    drop(durable);
    let mut image = if state.snapshot.get_metadata().index > 0 {
        strom_metadata::MetadataImage::decode_snapshot(&state.snapshot.data).expect("snapshot")
    } else {
        strom_metadata::MetadataImage::default()
    };
    for e in &state.entries {
        decode_records(&e.data).expect("entry").iter().for_each(|r| image.apply(r));
    }
    assert!(image.topic("legacy").is_some(), "the quorum holds the topic");
    std::fs::remove_dir_all(dir.join(QUORUM_DIR)).expect("remove quorum dir");
    let (mut log, _) = strom_metadata::log::MetadataLog::open(dir).expect("legacy log");
    log.append(&image.to_records()).expect("write legacy records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_from_before_the_metadata_quorum_opens_unchanged() {
    let mut broker = TestBroker::start(&[]);
    broker.create_topic("legacy", 2, &[("retention.ms", "86400000")]).await;
    let producer = broker.producer(&[("acks", "all")]);
    produce(&producer, "legacy", 0..500).await;
    drop(producer);
    broker.stop();
    rewrite_as_pre_quorum_data_dir(&broker.data_dir());
    broker.restart();
    let log = broker.log();
    assert!(log.contains("moved the single-node metadata log into the metadata quorum"), "{log}");
    assert_eq!(broker.consume_all("legacy", 2, 500).len(), 500, "the old data is served");
    let producer = broker.producer(&[("acks", "all")]);
    produce(&producer, "legacy", 500..600).await;
    drop(producer);
    // Restarting again reads the quorum, not the old file (kept, renamed, for the operator).
    broker.stop();
    broker.restart();
    assert_eq!(broker.consume_all("legacy", 2, 600).len(), 600);
    let old = broker.data_dir().join("__cluster_metadata").join("records.jsonl.migrated");
    assert!(old.exists(), "the old log is kept as {}", old.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_acknowledged_message() {
    let mut broker = TestBroker::start(&["log.flush.interval.messages=1"]);
    broker.create_topic("crashy", 2, &[]).await;
    let producer = broker.producer(&[("acks", "1"), ("message.timeout.ms", "3000"), ("enable.idempotence", "false")]);
    let acked: Arc<Mutex<Vec<(i32, i64, String)>>> = Arc::default();
    let writer = {
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            let mut i = 0usize;
            loop {
                let batch: Vec<_> = (i..i + 50)
                    .map(|n| {
                        let value = format!("crash-{n}");
                        let f = producer
                            .send_result(FutureRecord::to("crashy").key(&value).payload(&value))
                            .map_err(|(e, _)| e)
                            .expect("enqueue");
                        (value, f)
                    })
                    .collect();
                i += 50;
                let mut failed = false;
                for (value, f) in batch {
                    match f.await {
                        Ok(Ok(d)) => acked.lock().expect("lock").push((d.partition, d.offset, value)),
                        _ => failed = true,
                    }
                }
                if failed {
                    return;
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 5000 {
        assert!(Instant::now() < deadline, "producer too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.kill();
    let _ = writer.await;
    broker.restart();
    assert!(broker.log().contains("recovered logs after an unclean shutdown"), "{}", broker.log());

    let acked = acked.lock().expect("lock").clone();
    let consumer: BaseConsumer = broker.client_config().create().expect("consumer");
    let mut total = 0usize;
    for p in 0..2 {
        let (low, high) = consumer.fetch_watermarks("crashy", p, Duration::from_secs(10)).expect("watermarks");
        assert_eq!(low, 0);
        total += high as usize;
    }
    let messages = broker.consume_all("crashy", 2, total);
    let mut by_offset: HashMap<(i32, i64), String> = HashMap::new();
    let mut next: HashMap<i32, i64> = HashMap::new();
    for m in &messages {
        let n = next.entry(m.partition()).or_insert(0);
        assert_eq!(m.offset(), *n, "contiguous offsets after recovery");
        *n += 1;
        by_offset
            .insert((m.partition(), m.offset()), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
    }
    for (p, o, value) in &acked {
        assert_eq!(by_offset.get(&(*p, *o)), Some(value), "acknowledged message at {p}:{o} survived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_and_consumers_carry_on() {
    let broker = TestBroker::start(&["log.retention.check.interval.ms=200"]);
    broker.create_topic("short", 1, &[("segment.bytes", "2048"), ("retention.ms", "1500")]).await;
    let producer = broker.producer(&[("linger.ms", "0"), ("batch.num.messages", "1")]);
    for i in 0..100 {
        let value = format!("{i:0>200}");
        producer
            .send_result(FutureRecord::<(), _>::to("short").payload(&value))
            .map_err(|(e, _)| e)
            .expect("enqueue")
            .await
            .expect("future")
            .expect("delivered");
    }
    let partition_dir = broker.data_dir().join("short-0");
    let before = files_with_suffix(&partition_dir, ".log").len();
    assert!(before > 5, "small segment.bytes rolls segments (got {before})");

    let consumer: BaseConsumer = broker
        .client_config()
        .set("group.id", "strom-test-assign-only")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(20);
    let low = loop {
        let (low, high) = consumer.fetch_watermarks("short", 0, Duration::from_secs(5)).expect("watermarks");
        assert_eq!(high, 100);
        if low > 0 && files_with_suffix(&partition_dir, ".log").len() == 1 {
            break low;
        }
        assert!(Instant::now() < deadline, "retention did not delete old segments (low={low})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(low <= 100);

    // A fetch below the log start offset is out of range.
    let mut raw = RawClient::connect(&broker.bootstrap());
    let mut req = FetchRequest::default();
    req.max_wait_ms = 10;
    req.max_bytes = 1 << 20;
    let mut part = FetchPartition::default();
    part.partition = 0;
    part.fetch_offset = 0;
    part.partition_max_bytes = 1 << 20;
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str("short"));
    topic.partitions = vec![part];
    req.topics = vec![topic];
    let resp: FetchResponse = raw.call(ApiKey::Fetch, 12, &req);
    assert_eq!(resp.responses[0].partitions[0].error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!(resp.responses[0].partitions[0].log_start_offset, low);

    // A consumer that starts below the log start with auto.offset.reset=earliest carries on.
    for i in 100..110 {
        let value = format!("{i:0>200}");
        producer
            .send_result(FutureRecord::<(), _>::to("short").payload(&value))
            .map_err(|(e, _)| e)
            .expect("enqueue")
            .await
            .expect("f")
            .expect("d");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("short", 0, Offset::Offset(0)).expect("add");
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.last().copied() != Some(109) {
        assert!(Instant::now() < deadline, "consumer did not carry on: {got:?}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            got.push(m.expect("no error").offset());
        }
    }
    assert!(got[0] >= low, "resumed at the log start offset or later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_directory_of_another_topic_id_is_never_served() {
    let mut broker = TestBroker::start(&[]);
    broker.create_topic("reborn", 1, &[]).await;
    let producer = broker.producer(&[("acks", "all")]);
    produce(&producer, "reborn", 0..50).await;
    drop(producer);
    broker.stop();
    let meta = broker.data_dir().join("reborn-0").join("partition.metadata");
    let text = std::fs::read_to_string(&meta).expect("partition.metadata written");
    assert!(text.starts_with("version: 0\ntopic_id: "), "{text}");
    // As if this directory were left by an older "reborn" deleted while the node was away.
    std::fs::write(&meta, "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n").expect("write");
    broker.restart();
    assert!(broker.log().contains("removing data of an older topic of the same name"), "{}", broker.log());
    let producer = broker.producer(&[("acks", "all")]);
    let offsets = produce(&producer, "reborn", 0..1).await;
    assert_eq!(offsets, vec![(0, 0)], "the topic starts empty, not with the older topic's records");
}
