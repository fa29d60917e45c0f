//! Partition reassignment (`strom reassign-partitions`, Kafka's kafka-reassign-partitions,
//! KIP-455) on a 4-node cluster under an acks=all load: a partition moves from brokers {1,2,3}
//! to {2,3,4} with a replication throttle, `--verify` reports completion and removes the
//! throttles, the old replica's data is deleted, a group consumer reads on through the move,
//! and every acknowledged record is read back exactly once in order.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::TestCluster;
use support::workload::{check_read_back, GroupReader, Writer};

/// `strom reassign-partitions --bootstrap-server B <args>`: (success, stdout, stderr).
fn reassign(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["reassign-partitions", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).args(&all).output().expect("run strom");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The topic's throttled-replica configs as node 0 describes them (unset ones left out).
async fn throttle_configs(cluster: &TestCluster, topic: &str) -> Vec<(String, String)> {
    let admin = cluster.nodes[0].admin();
    let r = admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await.expect("describe");
    let resource = r.into_iter().next().expect("one resource").expect("described");
    let mut out: Vec<(String, String)> = resource
        .entries
        .into_iter()
        .filter(|e| e.name.contains("replication.throttled") && !e.is_default)
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_to_other_brokers_under_load_with_a_throttle_and_nothing_is_lost() {
    let cluster = TestCluster::start(4, &[]);
    let topic = NewTopic::new("moving", 1, TopicReplication::Variable(&[&[1, 2, 3]])).set("min.insync.replicas", "2");
    let admin = cluster.nodes[0].admin();
    for r in admin.create_topics([&topic], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    cluster.wait_for_partitions(0, "moving", Duration::from_secs(30), "full ISR", |p| p.isr.len() == 3);
    let writer = Writer::start(&cluster, "moving", 1);
    let reader = GroupReader::start(&cluster, "moving");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.read_so_far() == 0 {
        assert!(Instant::now() < deadline, "the group consumer read nothing before the move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, r#"{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[2,3,4]}]}"#)
        .expect("write plan");
    let plan = plan.display().to_string();
    let b = cluster.bootstrap();
    let (ok, out, err) = reassign(&b, &["--execute", "--reassignment-json-file", &plan, "--throttle", "20000000"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(r#"{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]}]}"#), "{out}");
    assert!(out.contains("Save this to use as the --reassignment-json-file option during rollback"), "{out}");
    assert!(out.contains("The inter-broker throttle limit was set to 20000000 B/s"), "{out}");
    assert!(out.contains("Successfully started partition reassignment for moving-0"), "{out}");
    let read_when_started = reader.read_so_far();
    assert_eq!(
        throttle_configs(&cluster, "moving").await,
        vec![
            ("follower.replication.throttled.replicas".to_string(), "0:4".to_string()),
            ("leader.replication.throttled.replicas".to_string(), "0:1,0:2,0:3".to_string()),
        ]
    );
    // A second reassignment is refused while one is in progress (unless --additional).
    let listed = reassign(&b, &["--list"]).1;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut verified = String::new();
    if listed.contains("moving-0: replicas: 2,3,4,1. adding: 4. removing: 1.") {
        let (ok, _, err) = reassign(&b, &["--execute", "--reassignment-json-file", &plan]);
        assert!(!ok && err.contains("Cannot execute because there is an existing partition assignment."), "{err}");
    }
    while !verified.contains("is completed.") {
        assert!(Instant::now() < deadline, "the reassignment did not complete: {verified}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (ok, out, err) = reassign(&b, &["--verify", "--reassignment-json-file", &plan]);
        assert!(ok, "{out}{err}");
        verified = out;
    }
    let read_during_move = reader.read_so_far() - read_when_started;
    assert!(
        verified.starts_with("Status of partition reassignment:\nReassignment of partition moving-0 is completed.\n"),
        "{verified}"
    );
    assert!(verified.contains("Clearing broker-level throttles on brokers 1,2,3,4"), "{verified}");
    assert!(verified.contains("Clearing topic-level throttles on topic moving"), "{verified}");
    assert!(throttle_configs(&cluster, "moving").await.is_empty(), "the throttles are gone");
    assert_eq!(reassign(&b, &["--list"]).1.trim(), "No partition reassignments found.");
    let p = cluster.wait_for_partitions(1, "moving", Duration::from_secs(30), "moved", |p| p.replicas == vec![2, 3, 4]);
    assert_ne!(p[0].leader, 1, "broker 1 leads nothing it no longer holds");

    // The writer kept going through the move; everything acknowledged is there once, in order,
    // and the group consumer read on while the replicas moved.
    let acked = writer.finish().await;
    check_read_back(&cluster, "moving", 1, &acked);
    assert!(read_during_move > 0, "the group consumer read nothing while the partition moved");
    reader.finish(&acked);
    // Broker 1 removed its copy.
    let old = cluster.nodes[0].data_dir().join("moving-0");
    let deadline = Instant::now() + Duration::from_secs(15);
    while old.exists() {
        assert!(Instant::now() < deadline, "{} is still there", old.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Cancelling when nothing is in progress.
    let (ok, out, _) = reassign(&b, &["--cancel", "--reassignment-json-file", &plan, "--preserve-throttles"]);
    assert!(ok);
    assert_eq!(out.trim(), "None of the specified partition reassignments are active.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_proposes_a_plan_over_the_given_brokers_and_cancel_reverts() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.create_replicated(0, "plan", 2, &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let topics = dir.path().join("topics.json");
    std::fs::write(&topics, r#"{"topics":[{"topic":"plan"}],"version":1}"#).expect("write");
    let b = cluster.bootstrap();
    let topics = topics.display().to_string();
    let (ok, out, err) = reassign(&b, &["--generate", "--topics-to-move-json-file", &topics, "--broker-list", "1,2"]);
    assert!(!ok && err.contains("more than the 2 brokers of --broker-list"), "{out}{err}");
    let (ok, out, err) = reassign(&b, &["--generate", "--topics-to-move-json-file", &topics, "--broker-list", "3,2,1"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Current partition replica assignment");
    assert_eq!(lines[3], "Proposed partition reassignment configuration");
    let proposed: serde_json::Value = serde_json::from_str(lines[4]).expect("JSON");
    assert_eq!(proposed["partitions"].as_array().expect("partitions").len(), 2);
    assert_eq!(proposed["partitions"][0]["log_dirs"], serde_json::json!(["any", "any", "any"]));
    let (ok, _, err) = reassign(&b, &["--generate", "--topics-to-move-json-file", &topics, "--broker-list", "1,2,9"]);
    assert!(!ok && err.contains("Unknown broker id 9"), "{err}");
    // A move to a broker that is down never completes; --cancel puts the partition back.
    cluster.wait_for_full_isr("plan", Duration::from_secs(30));
    let before = cluster.partitions(0, "plan")[0].replicas.clone();
    let plan = dir.path().join("plan.json");
    let target: Vec<i32> = before.iter().rev().copied().collect();
    std::fs::write(
        &plan,
        format!(r#"{{"version":1,"partitions":[{{"topic":"plan","partition":0,"replicas":{target:?}}}]}}"#),
    )
    .expect("write plan");
    let plan = plan.display().to_string();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"version":1,"partitions":[{"topic":"plan","partition":0,"replicas":[1,1,2]}]}"#)
        .expect("write");
    let (ok, _, err) = reassign(&b, &["--execute", "--reassignment-json-file", &bad.display().to_string()]);
    assert!(!ok && err.contains("Duplicate replica assignment found for plan-0"), "{err}");
    // A reorder completes at once (every target replica is in the ISR already).
    let (ok, out, err) = reassign(&b, &["--execute", "--reassignment-json-file", &plan]);
    assert!(ok, "{out}{err}");
    let p = cluster.wait_for_partitions(0, "plan", Duration::from_secs(15), "reordered", |p| {
        p.partition != 0 || p.replicas == target
    });
    assert_eq!(p[0].replicas, target);
    let (ok, out, _) = reassign(&b, &["--cancel", "--reassignment-json-file", &plan]);
    assert!(ok);
    assert!(out.starts_with("None of the specified partition reassignments are active."), "{out}");
}

/// Moves a partition holding `mb` MiB from {1,2,3} to {2,3,4}: seconds until `--verify`
/// reports completion.
async fn timed_move(mb: usize, throttle: Option<&str>) -> f64 {
    use rdkafka::producer::FutureRecord;
    let cluster = TestCluster::start(4, &[]);
    let topic = NewTopic::new("bulk", 1, TopicReplication::Variable(&[&[1, 2, 3]]));
    for r in cluster.nodes[0].admin().create_topics([&topic], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    cluster.wait_for_partitions(0, "bulk", Duration::from_secs(30), "full ISR", |p| p.isr.len() == 3);
    let producer = cluster.nodes[0].producer(&[
        ("bootstrap.servers", cluster.bootstrap().as_str()),
        ("acks", "all"),
        ("linger.ms", "20"),
    ]);
    let value = vec![7u8; 16 * 1024];
    let mut pending = Vec::new();
    for _ in 0..mb * 64 {
        pending.push(producer.send_result(FutureRecord::<(), [u8]>::to("bulk").payload(&value)).expect("queue"));
        if pending.len() >= 2_000 {
            for f in pending.drain(..) {
                f.await.expect("delivery").expect("acknowledged");
            }
        }
    }
    for f in pending {
        f.await.expect("delivery").expect("acknowledged");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, r#"{"version":1,"partitions":[{"topic":"bulk","partition":0,"replicas":[2,3,4]}]}"#)
        .expect("plan");
    let plan = plan.display().to_string();
    let b = cluster.bootstrap();
    let mut args = vec!["--execute", "--reassignment-json-file", plan.as_str()];
    if let Some(t) = throttle {
        args.extend(["--throttle", t]);
    }
    let started = Instant::now();
    let (ok, out, err) = reassign(&b, &args);
    assert!(ok, "{out}{err}");
    loop {
        let (_, out, _) = reassign(&b, &["--verify", "--reassignment-json-file", &plan]);
        if out.contains("is completed.") {
            return started.elapsed().as_secs_f64();
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no completion: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `cargo test --release -p strom-cli --test reassignment -- --ignored --nocapture`
/// (docs/benchmarks.md): 256 MiB moved with no throttle and with 20 MB/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn reassignment_throughput_with_and_without_a_throttle() {
    let mb = 256;
    let free = timed_move(mb, None).await;
    println!("{mb} MiB moved without a throttle in {free:.1} s: {:.0} MB/s", mb as f64 * 1.048576 / free);
    let throttled = timed_move(mb, Some("20000000")).await;
    println!(
        "{mb} MiB moved with --throttle 20000000 in {throttled:.1} s: {:.0} MB/s",
        mb as f64 * 1.048576 / throttled
    );
}
