//! Preferred leader election (`strom leader-election`, Kafka's kafka-leader-election): after a
//! restart a broker's partitions are led elsewhere; the election gives each partition its first
//! assigned replica back as leader, reports partitions that needed nothing, and refuses unknown
//! partitions with Kafka's exception names.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{node_of, TestCluster};

/// `strom leader-election --bootstrap-server B --election-type T` and `what`: (success, stdout).
fn elect(bootstrap: &str, election: &str, what: &[&str]) -> (bool, String) {
    let mut args = vec!["leader-election", "--bootstrap-server", bootstrap, "--election-type", election];
    args.extend_from_slice(what);
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).args(&args).output().expect("run strom");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preferred_election_moves_leaders_back_after_a_restart() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.create_replicated(0, "elect", 3, &[]).await;
    cluster.wait_for_full_isr("elect", Duration::from_secs(30));
    let before = cluster.partitions(0, "elect");
    assert!(before.iter().all(|p| p.leader == p.replicas[0]), "new partitions are led by their first replica");
    // The preferred leader of partition 0 restarts: its leadership moves away and stays away.
    let preferred = before[0].replicas[0];
    cluster.nodes[node_of(preferred)].kill();
    let survivor = (0..3).find(|&i| i != node_of(preferred)).expect("a survivor");
    cluster.wait_for_partitions(survivor, "elect", Duration::from_secs(30), "leader moved", |p| p.leader != preferred);
    cluster.nodes[node_of(preferred)].restart();
    cluster.wait_for_full_isr("elect", Duration::from_secs(30));
    let moved: Vec<String> = cluster
        .partitions(0, "elect")
        .iter()
        .filter(|p| p.leader != p.replicas[0])
        .map(|p| format!("elect-{}", p.partition))
        .collect();
    assert!(moved.contains(&"elect-0".to_string()), "partition 0 is led elsewhere after the restart");

    let b = cluster.bootstrap();
    let (ok, out) = elect(&b, "PREFERRED", &["--all-topic-partitions"]);
    assert!(ok);
    assert_eq!(out, format!("Successfully completed leader election (PREFERRED) for partitions {}", moved.join(", ")));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cluster.partitions(survivor, "elect").iter().all(|p| p.leader == p.replicas[0]) {
        assert!(Instant::now() < deadline, "leaders not back: {:?}", cluster.partitions(survivor, "elect"));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing left to do; one partition asked for by name; an unknown one.
    assert_eq!(
        elect(&b, "preferred", &["--all-topic-partitions"]),
        (true, "Valid replica already elected for partitions".into())
    );
    let one = elect(&b, "PREFERRED", &["--topic", "elect", "--partition", "1"]);
    assert_eq!(one, (true, "Valid replica already elected for partitions elect-1".into()));
    let (ok, printed) = elect(&b, "PREFERRED", &["--topic", "elect", "--partition", "9"]);
    assert!(!ok);
    assert!(
        printed.contains("Error completing leader election (PREFERRED) for partition: elect-9: org.apache.kafka.common.errors.UnknownTopicOrPartitionException"),
        "{printed}"
    );
    cluster.nodes.iter_mut().for_each(|n| n.kill());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_leader_rebalance_moves_leaders_back_without_a_command() {
    let mut cluster = TestCluster::start(3, &["leader.imbalance.check.interval.seconds=1"]);
    cluster.create_replicated(0, "auto", 3, &[]).await;
    cluster.wait_for_full_isr("auto", Duration::from_secs(30));
    let preferred = cluster.partitions(0, "auto")[0].replicas[0];
    cluster.nodes[node_of(preferred)].kill();
    let survivor = (0..3).find(|&i| i != node_of(preferred)).expect("a survivor");
    cluster.wait_for_partitions(survivor, "auto", Duration::from_secs(30), "leader moved", |p| p.leader != preferred);
    cluster.nodes[node_of(preferred)].restart();
    // Back in the ISR, the broker's one preferred partition (100 % > 10 %) is given back to it.
    cluster.wait_for_partitions(survivor, "auto", Duration::from_secs(30), "preferred leaders", |p| {
        p.leader == p.replicas[0]
    });
    let logs: String = cluster.nodes.iter().map(|n| n.log()).collect();
    assert!(logs.contains("auto leader rebalance: preferred replicas lead again"), "done by the controller itself");
    cluster.nodes.iter_mut().for_each(|n| n.kill());
}
