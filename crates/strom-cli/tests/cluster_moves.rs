//! `strom cluster drain` and `strom cluster rebalance` on a 4-node cluster: draining broker 3
//! under an acks=all load moves every replica off it (producers see only retriable errors,
//! nothing is lost), and a rebalance spreads replicas and preferred leaders over a broker that
//! held nothing.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use std::process::Command;
use std::time::Duration;
use support::cluster::TestCluster;
use support::workload::{check_read_back, Writer};

fn cluster_tool(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).arg("cluster").args(args).output().expect("run strom");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A topic whose partitions all live on brokers 1, 2 and 3.
async fn create_on_three(cluster: &TestCluster, name: &str, partitions: usize) {
    let layouts: Vec<Vec<i32>> =
        (0..partitions as i32).map(|p| vec![1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3]).collect();
    let refs: Vec<&[i32]> = layouts.iter().map(Vec::as_slice).collect();
    let topic =
        NewTopic::new(name, partitions as i32, TopicReplication::Variable(&refs)).set("min.insync.replicas", "2");
    for r in cluster.nodes[0].admin().create_topics([&topic], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    cluster.wait_for_partitions(0, name, Duration::from_secs(30), "full ISR", |p| p.isr.len() == 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_broker_under_load_moves_every_replica_off_it_and_loses_nothing() {
    let cluster = TestCluster::start(4, &[]);
    create_on_three(&cluster, "drained", 3).await;
    let writer = Writer::start(&cluster, "drained", 3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = cluster.bootstrap();
    let (ok, plan, err) = cluster_tool(&["drain", "--bootstrap-server", &b, "--broker", "3"]);
    assert!(ok, "{err}");

    assert!(plan.contains("Moving every replica off broker 3: "), "{plan}");
    assert!(plan.contains("drained-0: 1,2,3 -> 1,2,4"), "{plan}");
    assert!(plan.contains("Run again with --execute"), "{plan}");
    let (ok, out, err) =
        cluster_tool(&["drain", "--bootstrap-server", &b, "--broker", "3", "--execute", "--throttle", "50000000"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Broker 3 holds no replicas. It can be stopped now, then unregistered"), "{out}");
    assert!(out.contains("Clearing topic-level throttles"), "{out}");
    for i in [0, 1, 3] {
        for p in cluster.partitions(i, "drained") {
            assert!(!p.replicas.contains(&3) && p.leader != 3, "node {}: {p:?}", i + 1);
        }
    }
    let m = cluster.metadata(0);
    let on_three: Vec<String> = m
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.replica_nodes.iter().any(|r| r.0 == 3))
        .map(|(t, p)| format!("{:?}-{}", t.name, p.partition_index))
        .collect();
    assert!(on_three.is_empty(), "still on broker 3: {on_three:?}");
    let acked = writer.finish().await;
    check_read_back(&cluster, "drained", 3, &acked);
    // Nothing of the topic is left to move (the group's read back has since created
    // __consumer_offsets, which may use broker 3 again: it is still registered).
    let (ok, out, _) = cluster_tool(&["drain", "--bootstrap-server", &b, "--broker", "3"]);
    assert!(ok && !out.contains("drained-"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_spreads_replicas_and_leaders_over_a_new_broker() {
    let cluster = TestCluster::start(4, &[]);
    create_on_three(&cluster, "spread", 4).await;
    let b = cluster.bootstrap();
    let (ok, out, err) = cluster_tool(&["rebalance", "--bootstrap-server", &b, "--execute"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Preferred leaders elected for"), "{out}");
    let parts = cluster.wait_for_partitions(0, "spread", Duration::from_secs(30), "balanced", |p| {
        p.isr.len() == 3 && p.leader == p.replicas[0]
    });
    let mut replicas = [0; 5];
    let mut leaders = [0; 5];
    for p in &parts {
        p.replicas.iter().for_each(|r| replicas[*r as usize] += 1);
        leaders[p.leader as usize] += 1;
    }
    assert_eq!(&replicas[1..], &[3, 3, 3, 3], "{parts:?}");
    assert_eq!(&leaders[1..], &[1, 1, 1, 1], "{parts:?}");
}
