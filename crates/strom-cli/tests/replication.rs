//! Replicated partitions on three-node clusters: acks=all writes survive the death of every
//! partition leader in turn, a stopped follower leaves the ISR and rejoins it, and a leader that
//! took writes it could not replicate truncates them when it comes back as a follower; committed
//! offsets survive their coordinator, and are visible only once replicated.

mod support;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};
use strom_protocol::messages::ApiKey;
use strom_protocol::StrBytes;
use support::cluster::TestCluster;
use support::raw::RawClient;
use support::workload::{check_read_back, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_writes_survive_killing_every_partition_leader_in_turn() {
    let mut cluster = TestCluster::start(3, &["broker.heartbeat.interval.ms=300"]);
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "durable", 3, &[("min.insync.replicas", "2")]).await;
    cluster.wait_for_full_isr("durable", Duration::from_secs(20));
    for i in 0..3 {
        let parts = cluster.partitions(i, "durable");
        assert!(parts.iter().all(|p| p.replicas.len() == 3 && p.isr.len() == 3), "node {}: {parts:?}", i + 1);
    }

    let writer = Writer::start(&cluster, "durable", 3);

    for partition in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let witness = (0..3).find(|&i| cluster.nodes[i].is_running()).expect("a running node");
        let leader = cluster.partitions(witness, "durable")[partition as usize].leader;
        let victim = support::cluster::node_of(leader);
        cluster.nodes[victim].kill();
        let witness = (victim + 1) % 3;
        let killed_at = Instant::now();
        cluster.wait_for_partitions(witness, "durable", Duration::from_secs(15), "a new leader", |p| {
            p.partition != partition || (p.leader >= 0 && p.leader != leader)
        });
        eprintln!("partition {partition}: leader {leader} killed, new leader after {:?}", killed_at.elapsed());
        cluster.nodes[victim].restart();
        cluster.wait_for_full_isr("durable", Duration::from_secs(30));
    }
    let acked = writer.finish().await;
    cluster.wait_for_full_isr("durable", Duration::from_secs(30));
    check_read_back(&cluster, "durable", 3, &acked);
    for partition in 0..3 {
        cluster.wait_for_identical_replicas("durable", partition, Duration::from_secs(30));
    }
    // The followers fetched through incremental fetch sessions (KIP-227) all along: a few per
    // leader and restart, not one per fetch (which a session failing every time would open).
    let opened: Vec<usize> =
        (0..3).map(|i| cluster.nodes[i].log().matches("opened a fetch session for a follower").count()).collect();
    assert!(opened.iter().all(|&n| n >= 1) && opened.iter().sum::<usize>() <= 60, "sessions opened: {opened:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_leaves_the_isr_and_rejoins_after_catching_up() {
    // A session long enough that only the ISR protocol, not fencing, removes the stopped follower.
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=1500", "broker.session.timeout.ms=60000"]);
    let controller = cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "isr", 1, &[("min.insync.replicas", "3")]).await;
    cluster.wait_for_full_isr("isr", Duration::from_secs(20));
    let parts = cluster.partitions(0, "isr");
    let leader = support::cluster::node_of(parts[0].leader);
    let follower = (0..3).find(|&i| i != leader && i != controller).unwrap_or((leader + 1) % 3);
    let values: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
    assert_eq!(cluster.produce_raw(leader, "isr", -1, &values), 0, "acks=all with the full ISR");

    cluster.nodes[follower].pause();
    let stopped_at = Instant::now();
    // Written while the follower is stopped and still in the ISR: above the high watermark,
    // so a lookup by timestamp does not find it yet (Kafka's fetchOffsetByTimestamp).
    let late: Vec<String> = vec!["late".into()];
    let answer = cluster.produce_raw_at(leader, "isr", 1, &late, 9, 1_000);
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(list_offset(&cluster, leader, "isr", 1), (-1, -1), "nothing fetchable at or after ts 1");
    assert_eq!(list_offset(&cluster, leader, "isr", -3), (-1, -1), "the max timestamp is not fetchable yet");
    let follower_id = follower as i32 + 1;
    cluster.wait_for_partitions(leader, "isr", Duration::from_secs(15), "the ISR shrinks", |p| {
        !p.isr.contains(&follower_id)
    });
    let shrunk_after = stopped_at.elapsed();
    assert!(
        shrunk_after >= Duration::from_millis(1500),
        "shrank after {shrunk_after:?}, before replica.lag.time.max.ms"
    );
    assert_eq!(cluster.produce_raw(leader, "isr", -1, &values), 19, "NOT_ENOUGH_REPLICAS below min.insync.replicas");
    assert_eq!(cluster.produce_raw(leader, "isr", 1, &values), 0, "acks=1 still works");

    cluster.nodes[follower].resume();
    cluster.wait_for_partitions(leader, "isr", Duration::from_secs(20), "the follower rejoins", |p| {
        p.isr.contains(&follower_id)
    });
    assert_eq!(cluster.produce_raw(leader, "isr", -1, &values), 0, "acks=all again");
    assert_eq!(list_offset(&cluster, leader, "isr", 1), (1_000, 5), "found once below the high watermark");
    assert_eq!(list_offset(&cluster, leader, "isr", -3), (1_000, 5));
    cluster.wait_for_identical_replicas("isr", 0, Duration::from_secs(20));
}

/// ListOffsets (v8) of partition 0 for `timestamp`, as (timestamp, offset).
fn list_offset(cluster: &TestCluster, node: usize, topic: &str, timestamp: i64) -> (i64, i64) {
    use strom_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use strom_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, TopicName};
    let mut p = ListOffsetsPartition::default();
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = strom_protocol::messages::BrokerId(-1);
    req.topics = vec![t];
    let resp: ListOffsetsResponse =
        RawClient::connect(&cluster.nodes[node].bootstrap()).call(ApiKey::ListOffsets, 8, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.timestamp, p.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_wrote_alone_truncates_its_unreplicated_suffix_when_it_returns() {
    let mut cluster = TestCluster::start(3, &["broker.heartbeat.interval.ms=300"]);
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "diverge", 1, &[]).await;
    cluster.wait_for_full_isr("diverge", Duration::from_secs(20));
    let parts = cluster.partitions(0, "diverge");
    let old_leader = support::cluster::node_of(parts[0].leader);
    let committed: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
    assert_eq!(cluster.produce_raw(old_leader, "diverge", -1, &committed), 0);
    cluster.wait_for_identical_replicas("diverge", 0, Duration::from_secs(20));

    // Both followers die; the leader takes writes alone (acks=1), then dies too.
    let followers: Vec<usize> = (0..3).filter(|&i| i != old_leader).collect();
    for &f in &followers {
        cluster.nodes[f].kill();
    }
    let lost: Vec<String> = (0..5).map(|i| format!("unreplicated-{i}")).collect();
    assert_eq!(cluster.produce_raw(old_leader, "diverge", 1, &lost), 0, "the lone leader takes acks=1 writes");
    cluster.nodes[old_leader].kill();

    // The followers return, elect a new leader among themselves and take new writes.
    for &f in &followers {
        cluster.nodes[f].restart();
    }
    let old_leader_id = old_leader as i32 + 1;
    let parts = cluster.wait_for_partitions(followers[0], "diverge", Duration::from_secs(30), "a new leader", |p| {
        p.leader >= 0 && p.leader != old_leader_id
    });
    let new_leader = support::cluster::node_of(parts[0].leader);
    let newer: Vec<String> = (0..7).map(|i| format!("newer-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Retried only on errors that mean nothing was appended.
        match cluster.produce_raw(new_leader, "diverge", -1, &newer) {
            0 => break,
            code @ (3 | 5 | 6) => assert!(Instant::now() < deadline, "the new leader refuses writes: {code}"),
            code => panic!("acks=all produce to the new leader failed with {code}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // The old leader comes back as a follower: its five records are cut, the leader's copied.
    cluster.nodes[old_leader].restart();
    cluster.wait_for_identical_replicas("diverge", 0, Duration::from_secs(30));
    assert!(
        cluster.nodes[old_leader].log().contains("truncating a suffix the leader does not have"),
        "{}",
        cluster.nodes[old_leader].log()
    );
    let read = cluster.nodes[new_leader].consume_all("diverge", 1, 17);
    let values: Vec<String> =
        read.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect();
    let expected: Vec<String> = committed.iter().chain(newer.iter()).cloned().collect();
    assert_eq!(values, expected);
}

/// The node that coordinates `group`, as node `asking` answers FindCoordinator.
fn coordinator(cluster: &TestCluster, asking: usize, group: &str) -> i32 {
    use strom_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_string(group.to_string());
    let resp: FindCoordinatorResponse =
        RawClient::connect(&cluster.nodes[asking].bootstrap()).call(ApiKey::FindCoordinator, 3, &req);
    assert_eq!(resp.error_code, 0, "FindCoordinator");
    resp.node_id.0
}

async fn consume_in_group(cluster: &TestCluster, node: usize, group: &str, count: usize) -> Vec<String> {
    use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
    let consumer: StreamConsumer = cluster.nodes[node]
        .client_config()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("max.poll.interval.ms", "20000")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&["work"]).expect("subscribe");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < count {
        assert!(Instant::now() < deadline, "consumed {} of {count}", got.len());
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    // Retried like a client would across a coordinator move.
    while let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        assert!(Instant::now() < deadline, "commit failed: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_the_death_of_the_group_coordinator() {
    let mut cluster =
        TestCluster::start(3, &["broker.heartbeat.interval.ms=300", "group.initial.rebalance.delay.ms=0"]);
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "work", 3, &[]).await;
    cluster.wait_for_full_isr("work", Duration::from_secs(20));
    let producer = cluster.nodes[0].producer(&[("acks", "all"), ("enable.idempotence", "true")]);
    for i in 0..300 {
        let value = format!("job-{i}");
        producer
            .send(FutureRecord::<(), str>::to("work").partition(i % 3).payload(&value), Duration::from_secs(10))
            .await
            .expect("produce");
    }
    let first = consume_in_group(&cluster, 0, "workers", 150).await;
    let offsets_replicas =
        cluster.wait_for_partitions(0, "__consumer_offsets", Duration::from_secs(20), "RF 3", |p| p.isr.len() == 3);
    assert_eq!(offsets_replicas[0].replicas.len(), 3, "offsets.topic.replication.factor 3 on three brokers");

    let old = coordinator(&cluster, 0, "workers");
    cluster.nodes[support::cluster::node_of(old)].kill();
    let witness = (support::cluster::node_of(old) + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        let c = coordinator(&cluster, witness, "workers");
        if c >= 0 && c != old {
            break c;
        }
        assert!(Instant::now() < deadline, "no new coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(new, old);
    // A new member of the group on the surviving brokers resumes where the group committed.
    let rest = consume_in_group(&cluster, witness, "workers", 150).await;
    let mut all: Vec<String> = first.iter().chain(rest.iter()).cloned().collect();
    all.sort();
    let mut expected: Vec<String> = (0..300).map(|i| format!("job-{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "every record once across the coordinator move");
}

fn commit_raw(bootstrap: &str, group: &str, offset: i64) -> i16 {
    use strom_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use strom_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName};
    let mut p = OffsetCommitRequestPartition::default();
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("ledger"));
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    let resp: OffsetCommitResponse = RawClient::connect(bootstrap).call(ApiKey::OffsetCommit, 8, &req);
    resp.topics[0].partitions[0].error_code
}

fn fetch_committed(cluster: &TestCluster, node: usize, group: &str) -> i64 {
    fetch_committed_answer(cluster, node, group).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_commit_is_visible_only_once_the_isr_has_it() {
    let mut cluster = TestCluster::start(3, &["group.initial.rebalance.delay.ms=0"]);
    cluster.create_replicated(0, "ledger", 1, &[]).await;
    let coordinator = support::cluster::node_of(coordinator(&cluster, 0, "bookkeepers"));
    cluster.wait_for_full_isr("__consumer_offsets", Duration::from_secs(30));
    assert_eq!(commit_raw(&cluster.nodes[coordinator].bootstrap(), "bookkeepers", 5), 0);
    assert_eq!(fetch_committed(&cluster, coordinator, "bookkeepers"), 5);

    // The coordinator's followers stop: the next commit is appended but cannot be replicated
    // (the ISR does not shrink within replica.lag.time.max.ms), so it is neither answered nor
    // handed out by OffsetFetch: a new coordinator might never see it.
    let others: Vec<usize> = (0..3).filter(|&i| i != coordinator).collect();
    for &i in &others {
        cluster.nodes[i].pause();
    }
    let pending = {
        let bootstrap = cluster.nodes[coordinator].bootstrap();
        std::thread::spawn(move || commit_raw(&bootstrap, "bookkeepers", 9))
    };
    std::thread::sleep(Duration::from_millis(500));
    let during = fetch_committed(&cluster, coordinator, "bookkeepers");
    for &i in &others {
        cluster.nodes[i].resume();
    }
    assert_eq!(during, 5, "an unreplicated commit was handed out");
    assert_eq!(pending.join().expect("commit thread"), 0, "answered once replicated");
    assert_eq!(fetch_committed(&cluster, coordinator, "bookkeepers"), 9);
}

/// OffsetFetch v8 of `group` at `node`: the committed offset of its only partition (-1: none),
/// or the group's error code.
fn fetch_committed_answer(cluster: &TestCluster, node: usize, group: &str) -> Result<i64, i16> {
    use strom_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use strom_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = GroupId(StrBytes::from_string(group.to_string()));
    g.topics = None;
    let mut req = OffsetFetchRequest::default();
    req.groups = vec![g];
    let resp: OffsetFetchResponse =
        RawClient::connect(&cluster.nodes[node].bootstrap()).call(ApiKey::OffsetFetch, 8, &req);
    match resp.groups[0].error_code {
        0 => Ok(resp.groups[0].topics.first().map_or(-1, |t| t.partitions[0].committed_offset)),
        code => Err(code),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_coordinator_never_answers_an_offset_older_than_its_predecessor_did() {
    // Followers learn the high watermark late (their fetches wait up to 3 s for data), so the
    // replica that takes over has the last commit above its HW when it loads the group.
    let mut cluster = TestCluster::start(
        3,
        &["group.initial.rebalance.delay.ms=0", "replica.fetch.wait.max.ms=3000", "broker.heartbeat.interval.ms=300"],
    );
    cluster.create_replicated(0, "ledger", 1, &[]).await;
    let old = support::cluster::node_of(coordinator(&cluster, 0, "auditors"));
    cluster.wait_for_full_isr("__consumer_offsets", Duration::from_secs(30));
    assert_eq!(commit_raw(&cluster.nodes[old].bootstrap(), "auditors", 5), 0);
    let partition = strom_broker::group::records::partition_for_group("auditors", 50);
    cluster.wait_for_identical_replicas("__consumer_offsets", partition, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(commit_raw(&cluster.nodes[old].bootstrap(), "auditors", 9), 0);
    assert_eq!(fetch_committed(&cluster, old, "auditors"), 9, "answered by the old coordinator");
    cluster.nodes[old].kill();

    // Every answer of the survivors from now on is an error the client retries, or 9.
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut retriable = 0;
    'outer: loop {
        for &node in &survivors {
            match fetch_committed_answer(&cluster, node, "auditors") {
                Ok(9) => break 'outer,
                Ok(other) => panic!("node {} answered committed offset {other} after 9", node + 1),
                Err(code @ 14..=16) => retriable += usize::from(code == 14),
                Err(code) => panic!("OffsetFetch failed with {code}"),
            }
        }
        assert!(Instant::now() < deadline, "no survivor answered 9");
        std::thread::sleep(Duration::from_millis(5));
    }
    let loaded_held = survivors.iter().any(|&n| cluster.nodes[n].log().contains("held=1"));
    eprintln!("COORDINATOR_LOAD_IN_PROGRESS answers: {retriable}; a load held the commit back: {loaded_held}");
    assert!(loaded_held, "the new coordinator loaded the last commit above its high watermark");
}
