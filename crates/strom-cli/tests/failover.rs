//! Leadership moves on three- and five-node clusters: a rolling restart by SIGTERM under load costs the
//! producers nothing, a produce or fetch to a broker that does not lead names the leader (KIP-951), and with every in-sync
//! replica gone a partition stays offline unless its topic allows unclean leader election, which
//! then elects an out-of-sync replica and loses data.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::message::Message;
use std::time::Duration;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;
use support::cluster::TestCluster;
use support::raw::RawClient;
use support::workload::{check_read_back, Writer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_by_sigterm_under_load_loses_nothing() {
    let mut cluster = TestCluster::start(3, &["broker.heartbeat.interval.ms=300"]);
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "rolling", 3, &[("min.insync.replicas", "2")]).await;
    cluster.wait_for_full_isr("rolling", Duration::from_secs(20));
    let writer = Writer::start(&cluster, "rolling", 3);
    for node in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let id = node as i32 + 1;
        cluster.nodes[node].stop();
        let witness = (node + 1) % 3;
        let parts = cluster.partitions(witness, "rolling");
        assert!(parts.iter().all(|p| p.leader != id), "leaderships moved before the exit: {parts:?}");
        cluster.nodes[node].restart();
        cluster.wait_for_full_isr("rolling", Duration::from_secs(30));
    }
    let acked = writer.finish().await;
    check_read_back(&cluster, "rolling", 3, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_or_fetch_to_a_broker_that_does_not_lead_names_the_leader_and_its_endpoint() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, "hints", 1, &[]).await;
    cluster.wait_for_full_isr("hints", Duration::from_secs(20));
    let parts = cluster.partitions(0, "hints");
    let leader = parts[0].leader;
    let follower = (0..3).find(|&i| i as i32 + 1 != leader).expect("a follower");
    let values = vec!["v".to_string()];
    // KIP-951: from Produce v10 the refusal carries the current leader, epoch and endpoint.
    let resp = cluster.produce_raw_response(follower, "hints", 1, &values, 11);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!((p.current_leader.leader_id.0, p.current_leader.leader_epoch), (leader, parts[0].leader_epoch));
    assert_eq!(resp.node_endpoints.len(), 1);
    let endpoint = &resp.node_endpoints[0];
    assert_eq!(endpoint.node_id.0, leader);
    let (host, port) = cluster.nodes[support::cluster::node_of(leader)]
        .bootstrap()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.parse::<i32>().expect("port")))
        .expect("host:port");
    assert_eq!((endpoint.host.to_string(), endpoint.port), (host.clone(), port));
    // Before v10 there is no such field: the plain error.
    let old = cluster.produce_raw_response(follower, "hints", 1, &values, 9);
    assert_eq!(old.responses[0].partition_responses[0].error_code, 6);
    assert!(old.node_endpoints.is_empty());

    // Fetch v16 likewise, from a broker that holds no replica (a follower serves consumers).
    let outsider = (0..3).find(|&i| i != follower && i as i32 + 1 != leader).expect("a third node");
    let assignment: &[&[i32]] = &[&[leader, follower as i32 + 1]];
    let topic = NewTopic::new("hints-two", 1, TopicReplication::Variable(assignment));
    for r in cluster.nodes[0].admin().create_topics([&topic], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    cluster.wait_for_partitions(outsider, "hints-two", Duration::from_secs(20), "known", |p| p.leader == leader);
    let metadata = cluster.metadata(outsider);
    let named = |t: &&strom_protocol::messages::metadata_response::MetadataResponseTopic| {
        t.name.as_ref().is_some_and(|n| n.as_str() == "hints-two")
    };
    let topic_id = metadata.topics.iter().find(named).expect("known").topic_id;
    let fetch = |version: i16| -> FetchResponse {
        let part = FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20);
        // By name up to v12, by id from v13.
        let t = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("hints-two")))
            .with_topic_id(topic_id)
            .with_partitions(vec![part]);
        let req = FetchRequest::default().with_max_wait_ms(10).with_topics(vec![t]);
        RawClient::connect(&cluster.nodes[outsider].bootstrap()).call(ApiKey::Fetch, version, &req)
    };
    let hinted = fetch(16);
    let p = &hinted.responses[0].partitions[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(p.current_leader.leader_id.0, leader);
    assert_eq!(
        hinted.node_endpoints.iter().map(|e| (e.node_id.0, e.host.to_string(), e.port)).collect::<Vec<_>>(),
        vec![(leader, host.clone(), port)]
    );
    assert!(fetch(12).node_endpoints.is_empty(), "v12-15 have no endpoints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_isr_member_gone_only_an_unclean_topic_elects_an_out_of_sync_replica() {
    // The follower leaves the ISR by lagging (SIGSTOP), not by fencing: a long session. Five
    // voters, so that the quorum outlives a stopped follower and a dead leader.
    let mut cluster = TestCluster::start(5, &["replica.lag.time.max.ms=1000", "broker.session.timeout.ms=60000"]);
    let controller = cluster.wait_for_controller(Duration::from_secs(20));
    let leader = (controller + 1) % 5;
    let follower = (controller + 2) % 5;
    let (leader_id, follower_id) = (leader as i32 + 1, follower as i32 + 1);
    let assignment: &[&[i32]] = &[&[leader_id, follower_id]];
    for (name, unclean) in [("clean", "false"), ("dirty", "true")] {
        let topic = NewTopic::new(name, 1, TopicReplication::Variable(assignment))
            .set("unclean.leader.election.enable", unclean);
        let admin = cluster.nodes[controller].admin();
        for r in admin.create_topics([&topic], &AdminOptions::new()).await.expect("create") {
            r.expect("created");
        }
        // Every node has applied the topic, the leader included, before it is written to.
        cluster.wait_for_full_isr(name, Duration::from_secs(20));
        assert_eq!(cluster.partitions(controller, name)[0].leader, leader_id);
        let replicated: Vec<String> = (0..4).map(|i| format!("{name}-replicated-{i}")).collect();
        assert_eq!(cluster.produce_raw(leader, name, -1, &replicated), 0);
    }
    cluster.nodes[follower].pause();
    for name in ["clean", "dirty"] {
        cluster.wait_for_partitions(controller, name, Duration::from_secs(15), "the ISR shrinks", |p| {
            p.isr == [leader_id]
        });
        let alone: Vec<String> = (0..3).map(|i| format!("{name}-alone-{i}")).collect();
        assert_eq!(cluster.produce_raw(leader, name, -1, &alone), 0, "min.insync.replicas=1: the leader alone");
    }
    cluster.nodes[leader].kill();
    // The dead leader is fenced; its partitions have no live ISR member.
    cluster.wait_for_partitions(controller, "clean", Duration::from_secs(15), "offline", |p| p.leader == -1);
    let dirty = cluster
        .wait_for_partitions(controller, "dirty", Duration::from_secs(15), "unclean", |p| p.leader == follower_id);
    assert_eq!(dirty[0].isr, vec![follower_id], "the unclean leader is the whole ISR");
    assert!(cluster.nodes[controller].log().contains("unclean leader election"), "the data loss is reported");
    cluster.nodes[follower].resume();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cluster.partitions(controller, "clean")[0].leader, -1, "the clean topic stays offline");
    let read = cluster.nodes[follower].consume_all("dirty", 1, 4);
    let values: Vec<String> =
        read.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect();
    assert_eq!(values, (0..4).map(|i| format!("dirty-replicated-{i}")).collect::<Vec<_>>(), "what it had, no more");

    // The old leader returns: it leads the clean topic again with everything it took, and
    // follows the unclean leader of the dirty one, dropping the records the election lost.
    cluster.nodes[leader].restart();
    cluster.wait_for_partitions(controller, "clean", Duration::from_secs(20), "back", |p| p.leader == leader_id);
    let read = cluster.nodes[leader].consume_all("clean", 1, 7);
    assert_eq!(read.len(), 7, "nothing of the clean topic was lost");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (a, b) = (cluster.replica_log_bytes(leader, "dirty", 0), cluster.replica_log_bytes(follower, "dirty", 0));
        if a == b {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the old leader did not follow the unclean leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}
