//! Fetching from the closest replica (KIP-392): with Kafka's RackAwareReplicaSelector the leader
//! sends a consumer that names its rack to an in-sync follower in that rack, and a follower
//! serves consumers of Fetch v11+ up to its high watermark.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_protocol::batch::BatchIter;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;
use support::cluster::{node_of, TestCluster};
use support::raw::RawClient;

const TOPIC: &str = "near";
const RECORDS: usize = 200;

fn fetch(cluster: &TestCluster, node: usize, version: i16, rack: &str) -> FetchResponse {
    fetch_at(cluster, node, version, rack, 0, 10)
}

fn fetch_at(
    cluster: &TestCluster,
    node: usize,
    version: i16,
    rack: &str,
    offset: i64,
    max_wait_ms: i32,
) -> FetchResponse {
    let part = FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20);
    let t = FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str(TOPIC))).with_partitions(vec![part]);
    let req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_max_bytes(1 << 20)
        .with_rack_id(StrBytes::from_string(rack.to_string()))
        .with_topics(vec![t]);
    RawClient::connect(&cluster.nodes[node].bootstrap()).call(ApiKey::Fetch, version, &req)
}

fn record_count(resp: &FetchResponse) -> usize {
    let records = resp.responses[0].partitions[0].records.clone().unwrap_or_default();
    BatchIter::new(&records).map(|b| b.expect("whole batches").0.records_count as usize).sum()
}

/// Remembers, per statistics report, the broker partition 0 is fetched from.
#[derive(Clone, Default)]
struct FetchedFrom(Arc<Mutex<Vec<(i32, i32)>>>);

impl ClientContext for FetchedFrom {
    fn stats(&self, statistics: Statistics) {
        if let Some(p) = statistics.topics.get(TOPIC).and_then(|t| t.partitions.get(&0)) {
            self.0.lock().expect("lock").push((p.broker, p.leader));
        }
    }
}

impl ConsumerContext for FetchedFrom {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_from_an_in_sync_replica_in_their_rack() {
    let selector = "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector";
    let mut cluster = TestCluster::start(3, &["broker.rack=rack-{node}", selector]);
    cluster.create_replicated(0, TOPIC, 1, &[]).await;
    cluster.wait_for_full_isr(TOPIC, Duration::from_secs(30));
    let leader = cluster.partitions(0, TOPIC)[0].leader;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    let producer = cluster.nodes[0].producer(&[("acks", "all")]);
    for i in 0..RECORDS {
        producer
            .send(FutureRecord::<(), _>::to(TOPIC).payload(&format!("v{i}")), Duration::from_secs(10))
            .await
            .expect("sent");
    }

    // The leader sends a consumer of the follower's rack there, without data and at once (the
    // consumer would wait for fetch.wait.max.ms otherwise)...
    let asked = Instant::now();
    let redirected = fetch_at(&cluster, node_of(leader), 11, &format!("rack-{follower}"), 0, 5_000);
    assert!(asked.elapsed() < Duration::from_secs(2), "a redirect is answered at once");
    let p = &redirected.responses[0].partitions[0];
    assert_eq!((p.error_code, p.preferred_read_replica.0), (0, follower), "sent to the follower in its rack");
    assert_eq!(record_count(&redirected), 0);
    assert_eq!(p.high_watermark, RECORDS as i64);
    // An offset out of range is answered by the leader itself, so that the consumer resets it.
    let beyond = fetch_at(&cluster, node_of(leader), 11, &format!("rack-{follower}"), 10_000, 10);
    let p = &beyond.responses[0].partitions[0];
    assert_eq!((p.error_code, p.preferred_read_replica.0), (1, -1), "OFFSET_OUT_OF_RANGE, no redirect");
    // ...and keeps a consumer of its own rack, of no rack, or of a rack without replicas.
    for rack in [format!("rack-{leader}"), String::new(), "elsewhere".into()] {
        let here = fetch(&cluster, node_of(leader), 11, &rack);
        assert_eq!(here.responses[0].partitions[0].preferred_read_replica.0, -1, "rack {rack:?}");
        assert!(record_count(&here) > 0, "rack {rack:?}: data from the leader");
    }

    // The follower serves consumers of v11+ up to its high watermark (the leader's, one fetch
    // later); older versions only read from leaders.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let there = fetch(&cluster, node_of(follower), 11, "");
        let p = &there.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        if p.high_watermark == RECORDS as i64 && record_count(&there) == RECORDS {
            break;
        }
        assert!(Instant::now() < deadline, "the follower's high watermark stays at {}", p.high_watermark);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fetch(&cluster, node_of(follower), 10, "").responses[0].partitions[0].error_code,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );

    // librdkafka with client.rack follows the leader's answer and reads everything from there.
    let context = FetchedFrom::default();
    let consumer: BaseConsumer<FetchedFrom> = cluster.nodes[node_of(leader)]
        .client_config()
        .set("group.id", "near-readers")
        .set("client.rack", format!("rack-{follower}"))
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "100")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(context.clone())
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.len() < RECORDS || !context.0.lock().expect("lock").iter().any(|&(b, _)| b == follower) {
        assert!(Instant::now() < deadline, "read {} records; fetched from {:?}", values.len(), context.0.lock());
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            values
                .push(String::from_utf8_lossy(m.expect("no consume error").payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(values, (0..RECORDS).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let seen = context.0.lock().expect("lock").clone();
    assert!(seen.iter().all(|&(_, l)| l == leader || l == -1), "the leader stays {leader}: {seen:?}");

    // A follower never serves what is above its high watermark: with the third replica stopped
    // the leader's HW stays, while the follower copies new records (acks=1) past it.
    let third = (1..=3).find(|&id| id != leader && id != follower).expect("a third replica");
    cluster.nodes[node_of(third)].pause();
    let late = vec!["late".to_string()];
    let acked = cluster.produce_raw_at(node_of(leader), TOPIC, 1, &late, 9, 1);
    assert_eq!(acked.responses[0].partition_responses[0].error_code, 0);
    std::thread::sleep(Duration::from_millis(500));
    let from_follower = fetch_at(&cluster, node_of(follower), 11, "", RECORDS as i64, 10);
    let from_leader = fetch_at(&cluster, node_of(leader), 11, "", RECORDS as i64, 10);
    cluster.nodes[node_of(third)].resume();
    let p = &from_follower.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, RECORDS as i64), "the HW waits for the stopped replica");
    assert_eq!(record_count(&from_follower), 0, "nothing above the follower's HW");
    assert_eq!(record_count(&from_leader), 0, "nor above the leader's");
}
