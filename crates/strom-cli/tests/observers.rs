//! Broker-only nodes (`process.roles=broker`): they follow the metadata quorum as observers,
//! fetching the committed log from the voters, and are brokers like any other.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};
use support::cluster::{run_strom, TestCluster};

const ROLES: [&str; 4] = ["broker,controller", "broker,controller", "broker,controller", "broker"];
const OBSERVER: usize = 3;

async fn create(cluster: &TestCluster, via: usize, name: &str, partitions: i32, replicas: i32) {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replicas));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = cluster.nodes[via].admin().create_topics([&topic], &options).await.expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// The metadata offset an observer's log says it started from, for each start in order.
fn observer_start_offsets(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("following the metadata quorum as an observer"))
        .filter_map(|l| l.split("offset=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_only_node_follows_the_quorum_hosts_replicas_and_serves_clients() {
    let mut cluster = TestCluster::start_with_roles(&ROLES, &[]);
    let controller = cluster.wait_for_controller(Duration::from_secs(20));
    assert_ne!(controller, OBSERVER, "an observer never becomes the controller");

    // Created through the observer: forwarded to the active controller, and known to the
    // observer as soon as the request is answered.
    create(&cluster, OBSERVER, "observed", 4, 4).await;
    let parts = cluster.partitions(OBSERVER, "observed");
    assert_eq!(parts.len(), 4, "the observer applied the creation before answering it");
    assert!(parts.iter().all(|p| p.replicas.contains(&4)), "replicas placed on the observer too: {parts:?}");
    cluster.wait_for_full_isr("observed", Duration::from_secs(30));
    let led_by_observer = cluster.partitions(0, "observed").iter().filter(|p| p.leader == 4).count();
    assert!(led_by_observer >= 1, "the observer leads its share of partitions");

    // Clients that know only the observer.
    let producer = cluster.nodes[OBSERVER].producer(&[("acks", "all"), ("enable.idempotence", "true")]);
    let mut sent = Vec::new();
    for i in 0..400 {
        let value = format!("v{i}");
        sent.push(producer.send_result(FutureRecord::<(), _>::to("observed").payload(&value)).expect("queue"));
    }
    for f in sent {
        f.await.expect("delivery future").expect("delivered");
    }
    let mut values: Vec<String> = cluster.nodes[OBSERVER]
        .consume_all("observed", 4, 400)
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    values.sort_by_key(|v| v[1..].parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(values, (0..400).map(|i| format!("v{i}")).collect::<Vec<_>>());

    // kafka-metadata-quorum: three voters, and node 4 as an observer with its progress.
    let replication = run_strom(&[
        "metadata-quorum",
        "--bootstrap-server",
        &cluster.nodes[OBSERVER].bootstrap(),
        "describe",
        "--replication",
    ]);
    let observer_line = replication.lines().find(|l| l.ends_with("Observer")).expect("an observer row");
    let fields: Vec<&str> = observer_line.split_whitespace().collect();
    assert_eq!(fields[0], "4", "{replication}");
    assert!(fields[1].parse::<i64>().expect("log end offset") > 0, "the observer's progress: {replication}");
    let status = run_strom(&["metadata-quorum", "--bootstrap-server", &cluster.bootstrap(), "describe", "--status"]);
    assert!(status.contains("CurrentVoters:          [1,2,3]"), "{status}");
    assert!(status.contains("CurrentObservers:       [4]"), "{status}");

    // Restarted after kill -9, the observer starts from its own copy of the log, not from zero,
    // and catches up with what was committed meanwhile.
    cluster.nodes[OBSERVER].kill();
    create(&cluster, controller, "while-down", 1, 3).await;
    cluster.nodes[OBSERVER].restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while observer_start_offsets(&cluster.nodes[OBSERVER].log()).len() < 2 {
        assert!(Instant::now() < deadline, "the observer did not start again");
        std::thread::sleep(Duration::from_millis(50));
    }
    let starts = observer_start_offsets(&cluster.nodes[OBSERVER].log());
    assert!(starts[1] > 0, "the restarted observer read its own log: {starts:?}");
    cluster.wait_for_partitions(OBSERVER, "while-down", Duration::from_secs(30), "caught up", |p| p.leader > 0);
    cluster.wait_for_full_isr("observed", Duration::from_secs(30));

    // The death of the active controller: the observer follows the new one and forwards to it.
    cluster.nodes[controller].kill();
    let next = cluster.wait_for_controller(Duration::from_secs(20));
    assert!(next != controller && next != OBSERVER);
    create(&cluster, OBSERVER, "after-failover", 2, 3).await;
    assert_eq!(cluster.partitions(OBSERVER, "after-failover").len(), 2);
}
