//! The partition side of transactions, driven as a transaction coordinator would drive it:
//! transactional batches produced raw, ended by WriteTxnMarkers. librdkafka's read_committed
//! consumer must see only committed records and stop at the last stable offset; a
//! read_uncommitted one sees everything; both across a restart (the `.txnindex` files).

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use strom_protocol::batch::{BatchFields, BatchRecord, BatchSpec};
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strom_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use strom_protocol::messages::*;
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

const TOPIC: &str = "ledger";

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// An idempotent producer id and epoch (transactions are begun by the batches' flag here).
fn producer_id(b: &TestBroker) -> (i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    let resp: InitProducerIdResponse = RawClient::connect(&b.bootstrap()).call(ApiKey::InitProducerId, 4, &req);
    assert_eq!(resp.error_code, 0, "InitProducerId");
    (resp.producer_id.0, resp.producer_epoch)
}

/// Produces `values` (acks=all) as one batch: transactional for `Some((pid, epoch, seq))`.
fn produce(b: &TestBroker, producer: Option<(i64, i16, i32)>, values: &[&str]) {
    let records: Vec<BatchRecord<'_>> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
    let fields = match producer {
        Some((pid, epoch, seq)) => BatchFields {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            attributes: 0x10,
            ..BatchFields::default()
        },
        None => BatchFields::default(),
    };
    let batch = BatchSpec { fields, timestamps: &[1_700_000_000_000], records: &records }.encode();
    let mut p = produce_request::PartitionProduceData::default();
    p.records = Some(batch.into());
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(TOPIC);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![t];
    let resp: ProduceResponse = RawClient::connect(&b.bootstrap()).call(ApiKey::Produce, 9, &req);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0, "produce {values:?}");
}

/// Ends `pid`'s transaction on partition 0; returns the partition's error code.
fn end_txn(b: &TestBroker, pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> i16 {
    let mut t = WritableTxnMarkerTopic::default();
    t.name = name(TOPIC);
    t.partition_indexes = vec![0];
    let mut m = WritableTxnMarker::default();
    m.producer_id = ProducerId(pid);
    m.producer_epoch = epoch;
    m.transaction_result = commit;
    m.coordinator_epoch = coordinator_epoch;
    m.topics = vec![t];
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![m];
    let resp: WriteTxnMarkersResponse = RawClient::connect(&b.bootstrap()).call(ApiKey::WriteTxnMarkers, 1, &req);
    assert_eq!(resp.markers[0].producer_id.0, pid);
    resp.markers[0].topics[0].partitions[0].error_code
}

/// Aborted transactions of a fetch answer, as (producer id, first offset); None: null.
type Aborted = Option<Vec<(i64, i64)>>;

/// A raw Fetch v12 of partition 0 from offset 0: (high watermark, last stable offset, aborted
/// transactions, bytes of records).
fn fetch(b: &TestBroker, isolation_level: i8) -> (i64, i64, Aborted, usize) {
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(TOPIC);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_bytes = 1 << 20;
    req.isolation_level = isolation_level;
    req.topics = vec![t];
    let resp: FetchResponse = RawClient::connect(&b.bootstrap()).call(ApiKey::Fetch, 12, &req);
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    let aborted =
        pd.aborted_transactions.as_ref().map(|a| a.iter().map(|t| (t.producer_id.0, t.first_offset)).collect());
    (pd.high_watermark, pd.last_stable_offset, aborted, pd.records.as_ref().map_or(0, |r| r.len()))
}

/// ListOffsets LATEST of partition 0 at `isolation_level`.
fn latest(b: &TestBroker, isolation_level: i8) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = name(TOPIC);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.isolation_level = isolation_level;
    req.topics = vec![t];
    let resp: ListOffsetsResponse = RawClient::connect(&b.bootstrap()).call(ApiKey::ListOffsets, 8, &req);
    resp.topics[0].partitions[0].offset
}

/// What librdkafka reads from the beginning at `isolation` until `end` (the partition's HW or
/// LSO) is reached: the values, in order.
fn read(b: &TestBroker, isolation: &str, end: i64) -> Vec<String> {
    let consumer: BaseConsumer = b
        .client_config()
        .set("group.id", "txn-readers")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).expect("add partition");
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let position = consumer.position().expect("position").elements()[0].offset().to_raw().unwrap_or(-1);
        if position >= end {
            break;
        }
        assert!(Instant::now() < deadline, "{isolation}: at {position} of {end} after {values:?}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    values
}

/// The same with strom-client's consumer.
async fn read_with_strom_client(b: &TestBroker, isolation: &str, end: i64) -> Vec<String> {
    use strom_client::consumer::Consumer;
    use strom_client::{Properties, TopicPartition};
    let props = Properties::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("isolation.level", isolation)
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.wait.ms", "100");
    let mut consumer = Consumer::new(&props).await.expect("strom-client consumer");
    let tp = TopicPartition::new(TOPIC, 0);
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumer.position(&tp).is_none_or(|p| p < end) {
        assert!(Instant::now() < deadline, "{isolation}: at {:?} of {end} after {values:?}", consumer.position(&tp));
        for r in consumer.poll(Duration::from_millis(200)).await.expect("poll") {
            values.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_consumers_see_only_committed_records_and_stop_at_open_transactions() {
    let mut b = TestBroker::start(&[]);
    b.create_topic(TOPIC, 1, &[]).await;
    let (pid, epoch) = producer_id(&b);

    // An open transaction holds the last stable offset at its first offset.
    produce(&b, Some((pid, epoch, 0)), &["a0", "a1", "a2"]); // 0..2
    produce(&b, None, &["plain-0"]); // 3
    assert_eq!(fetch(&b, 1), (4, 0, Some(vec![]), 0), "nothing readable before the open transaction");
    assert_eq!(fetch(&b, 0).2, None, "read_uncommitted gets no aborted list");
    assert_eq!((latest(&b, 1), latest(&b, 0)), (0, 4));
    assert_eq!(read(&b, "read_uncommitted", 4), vec!["a0", "a1", "a2", "plain-0"]);

    // Aborted: read_committed readers skip it with the aborted list.
    assert_eq!(end_txn(&b, pid, epoch, false, 0), 0, "abort");
    let (hw, lso, aborted, bytes) = fetch(&b, 1);
    assert_eq!((hw, lso, aborted), (5, 5, Some(vec![(pid, 0)])));
    assert!(bytes > 0);
    assert_eq!(read(&b, "read_committed", 5), vec!["plain-0"]);

    // Committed: visible.
    produce(&b, Some((pid, epoch, 3)), &["b0", "b1"]); // 5..6
    assert_eq!(latest(&b, 1), 5);
    assert_eq!(end_txn(&b, pid, epoch, true, 0), 0, "commit");
    assert_eq!(latest(&b, 1), 8);
    assert_eq!(read(&b, "read_committed", 8), vec!["plain-0", "b0", "b1"]);
    assert_eq!(read_with_strom_client(&b, "read_committed", 8).await, vec!["plain-0", "b0", "b1"]);
    let everything = vec!["a0", "a1", "a2", "plain-0", "b0", "b1"];
    assert_eq!(read_with_strom_client(&b, "read_uncommitted", 8).await, everything);

    // Markers from an older coordinator or for an older producer epoch are refused.
    assert_eq!(end_txn(&b, pid, epoch, false, 5), 0, "an empty abort from coordinator epoch 5");
    assert_eq!(end_txn(&b, pid, epoch, true, 4), 52, "TRANSACTION_COORDINATOR_FENCED");
    assert_eq!(end_txn(&b, pid, epoch - 1, true, 5), 47, "INVALID_PRODUCER_EPOCH");

    // The aborted-transaction index survives a crash and a clean restart.
    b.kill();
    b.restart();
    assert_eq!(fetch(&b, 1).2, Some(vec![(pid, 0)]));
    assert_eq!(read(&b, "read_committed", 9), vec!["plain-0", "b0", "b1"]);
    b.stop();
    b.restart();
    assert_eq!(read(&b, "read_committed", 9), vec!["plain-0", "b0", "b1"]);

    // kafka-dump-log's view: the index entry and the markers.
    b.stop();
    let dir = b.data_dir().join(format!("{TOPIC}-0"));
    let dump = |file: &str, extra: &[&str]| {
        let path = dir.join(file);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["dump-log", "--files", path.to_str().expect("utf-8 path")])
            .args(extra)
            .output()
            .expect("run strom dump-log");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let index = dump("00000000000000000000.txnindex", &[]);
    let entry = format!("version: 0 producerId: {pid} firstOffset: 0 lastOffset: 4 lastStableOffset: 5");
    assert!(index.contains(&entry), "{index}");
    let log = dump("00000000000000000000.log", &["--deep-iteration"]);
    assert!(log.contains("endTxnMarker: ABORT coordinatorEpoch: 0"), "{log}");
    assert!(log.contains("endTxnMarker: COMMIT coordinatorEpoch: 0"), "{log}");
}
