//! Log compaction on a 3-node cluster: every replica cleans its own log below its own high
//! watermark, so a follower that becomes leader serves the latest value of every key at its
//! offset; followers keep replicating into a leader's cleaned log (its holes); a topic deleted
//! and created again under the same name starts its cleaning over (no stale first dirty offset).

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cluster::{node_of, TestCluster};

const TOPIC_CONFIGS: [(&str, &str); 4] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "4096"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("min.insync.replicas", "2"),
];

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Writes `count` records over `keys` keys; the latest (offset, value) of each key.
async fn write(
    producer: &FutureProducer,
    topic: &str,
    from: usize,
    count: usize,
    keys: usize,
) -> BTreeMap<String, (i64, String)> {
    let mut latest = BTreeMap::new();
    for i in from..from + count {
        let key = format!("key-{}", i % keys);
        let delivered = producer
            .send(FutureRecord::to(topic).key(&key).payload(&format!("v-{i}")), Duration::from_secs(30))
            .await
            .expect("produced");
        latest.insert(key, (delivered.offset, format!("v-{i}")));
    }
    latest
}

/// Every (offset, key, value) of partition 0 up to `end`.
fn read_all(bootstrap: &str, topic: &str, end: i64) -> Vec<(i64, String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", "compaction-cluster-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut out: Vec<(i64, String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|(o, ..)| *o + 1 < end) {
        assert!(Instant::now() < deadline, "read up to {:?} of {end}", out.last());
        // Errors (a leader just killed) are passed over: the client finds the new one.
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((m.offset(), text(m.key()), text(m.payload())));
        }
    }
    out
}

/// The latest value of every key, each at the offset it was written at, nothing else.
fn check(read: &[(i64, String, String)], latest: &BTreeMap<String, (i64, String)>, what: &str) {
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "{what}: offsets increase");
    let mut seen: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for (offset, key, value) in read {
        seen.insert(key.clone(), (*offset, value.clone()));
    }
    assert_eq!(&seen, latest, "{what}: the latest value of every key at its offset");
}

/// Waits until every node's log says it cleaned `topic`-0 `times` times in all.
fn wait_for_cleaning(cluster: &TestCluster, topic: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let needle = format!("topic={topic} partition=0");
    loop {
        let counts: Vec<usize> = cluster
            .nodes
            .iter()
            .map(|n| n.log().lines().filter(|l| l.contains("cleaned log") && l.contains(&needle)).count())
            .collect();
        if counts.iter().all(|&c| c >= times) {
            return;
        }
        assert!(Instant::now() < deadline, "replicas cleaned {topic} {counts:?} times, wanted {times} each");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the leader of `topic`-0 and waits until another node leads; the killed leader's id.
fn kill_leader(cluster: &mut TestCluster, topic: &str) -> i32 {
    let leader = cluster.partitions(0, topic)[0].leader;
    cluster.nodes[node_of(leader)].kill();
    let survivor = (0..3).find(|&i| i != node_of(leader)).expect("a survivor");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.partitions(survivor, topic)[0].leader == leader {
        assert!(Instant::now() < deadline, "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    }
    leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_compacts_and_a_new_leader_serves_the_compacted_log() {
    let mut cluster = TestCluster::start(3, &["log.cleaner.backoff.ms=50"]);
    let bootstrap = cluster.bootstrap();
    cluster.create_replicated(0, "table", 1, &TOPIC_CONFIGS).await;
    cluster.wait_for_full_isr("table", Duration::from_secs(30));
    let producer = producer(&bootstrap);
    let mut latest = write(&producer, "table", 0, 1_500, 20).await;
    wait_for_cleaning(&cluster, "table", 1);
    let end = latest.values().map(|(o, _)| *o).max().expect("records") + 1;
    let read = read_all(&bootstrap, "table", end);
    assert!(read.len() < 1_500 / 3, "the leader's log was compacted: {} records left", read.len());
    check(&read, &latest, "from the first leader");

    // The leader dies: a follower that cleaned its own log leads, and serves the same records.
    let leader = kill_leader(&mut cluster, "table");
    check(&read_all(&bootstrap, "table", end), &latest, "from the new leader");

    // More writes to the new leader; the old leader comes back, follows the cleaned log (its
    // holes) and cleans again itself.
    latest.extend(write(&producer, "table", 1_500, 500, 20).await);
    cluster.nodes[node_of(leader)].restart();
    cluster.wait_for_full_isr("table", Duration::from_secs(30));
    wait_for_cleaning(&cluster, "table", 2);
    let end = latest.values().map(|(o, _)| *o).max().expect("records") + 1;
    check(&read_all(&bootstrap, "table", end), &latest, "after the old leader rejoined");
    // Two more leaders in turn serve the same records.
    for round in 0..2 {
        let current = kill_leader(&mut cluster, "table");
        check(&read_all(&bootstrap, "table", end), &latest, &format!("leader change {round}"));
        cluster.nodes[node_of(current)].restart();
        cluster.wait_for_full_isr("table", Duration::from_secs(30));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_again_under_the_same_name_is_cleaned_from_its_start() {
    let mut cluster = TestCluster::start(3, &["log.cleaner.backoff.ms=50"]);
    let bootstrap = cluster.bootstrap();
    cluster.create_replicated(0, "again", 1, &TOPIC_CONFIGS).await;
    cluster.wait_for_full_isr("again", Duration::from_secs(30));
    let producer = producer(&bootstrap);
    write(&producer, "again", 0, 1_500, 20).await;
    wait_for_cleaning(&cluster, "again", 1);

    let admin = cluster.nodes[0].admin();
    let deleted = admin.delete_topics(&["again"], &rdkafka::admin::AdminOptions::new()).await.expect("delete");
    deleted.into_iter().for_each(|r| {
        r.expect("deleted");
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.partitions(0, "again").is_empty() {
        assert!(Instant::now() < deadline, "topic not deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.create_replicated(0, "again", 1, &TOPIC_CONFIGS).await;
    cluster.wait_for_full_isr("again", Duration::from_secs(30));
    // Fewer records than the old topic had: a first dirty offset left from it would lie past
    // the new log's end, or inside it, and leave its first records uncleaned.
    let latest = write(&producer, "again", 0, 600, 10).await;
    wait_for_cleaning(&cluster, "again", 2);
    let end = latest.values().map(|(o, _)| *o).max().expect("records") + 1;
    let read = read_all(&bootstrap, "again", end);
    assert!(read.len() < 600 / 3, "the new log was compacted from its start: {} records left", read.len());
    check(&read, &latest, "the re-created topic");
    cluster.nodes.iter_mut().for_each(|n| n.kill());
}
