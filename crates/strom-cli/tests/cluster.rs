//! Three-node clusters on loopback: the metadata quorum, forwarding to the active controller,
//! partitions spread over the brokers, consumer groups with their coordinator on another broker,
//! and the death of the active controller while topics are being created.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::cluster::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_of_a_three_node_cluster_serves_clients() {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.wait_for_controller(Duration::from_secs(20));
    // Created through node 2, whichever node is the controller: forwarded if need be, and
    // visible on node 2 as soon as the request is answered.
    cluster.nodes[1].create_topic("spread", 6, &[]).await;
    for i in 0..3 {
        let m = cluster.metadata(i);
        assert_eq!(m.cluster_id.as_deref(), Some(cluster.cluster_id.as_str()), "one cluster id on node {}", i + 1);
        let ids: BTreeSet<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
        assert_eq!(ids, BTreeSet::from([1, 2, 3]), "node {} lists every broker", i + 1);
        let topic = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "spread"));
        let leaders: BTreeSet<i32> =
            topic.expect("topic on every node").partitions.iter().map(|p| p.leader_id.0).collect();
        assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "partitions spread over the brokers");
    }

    // A producer that knows only node 3, and a consumer group that knows only node 1.
    let producer = cluster.nodes[2].producer(&[("acks", "all"), ("enable.idempotence", "true")]);
    let mut sent = Vec::new();
    for i in 0..600 {
        let key = format!("k{i}");
        let value = format!("v{i}");
        sent.push(producer.send_result(FutureRecord::to("spread").key(&key).payload(&value)).expect("queue"));
    }
    for f in sent {
        f.await.expect("delivery future").expect("delivered");
    }
    let consumer: StreamConsumer = cluster.nodes[0]
        .client_config()
        .set("group.id", "cluster-group")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["spread"]).expect("subscribe");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 600 {
        assert!(Instant::now() < deadline, "consumed {} of 600", seen.len());
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync).expect("commit through the coordinator");
    let committed = consumer.committed(Duration::from_secs(10)).expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        })
        .sum();
    assert_eq!(total, 600, "the group's committed offsets cover every record");

    // kafka-metadata-quorum's view, through any broker.
    let status = support::cluster::run_strom(&[
        "metadata-quorum",
        "--bootstrap-server",
        &cluster.nodes[1].bootstrap(),
        "describe",
        "--status",
    ]);
    assert!(status.contains(&format!("ClusterId:              {}", cluster.cluster_id)), "{status}");
    assert!(status.contains("CurrentVoters:          [1,2,3]"), "{status}");
    let replication = support::cluster::run_strom(&[
        "metadata-quorum",
        "--bootstrap-server",
        &cluster.nodes[2].bootstrap(),
        "describe",
        "--replication",
    ]);
    assert_eq!(replication.lines().filter(|l| l.ends_with("Leader")).count(), 1, "{replication}");
    assert_eq!(replication.lines().filter(|l| l.ends_with("Follower")).count(), 2, "{replication}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_controller_loses_no_acknowledged_topic_and_applies_none_twice() {
    let mut cluster = TestCluster::start(3, &[]);
    let first = cluster.wait_for_controller(Duration::from_secs(20));
    // The creating client talks to a node that is not the one to be killed.
    let via = (first + 1) % 3;
    let admin = cluster.nodes[via].admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let mut acknowledged = Vec::new();
    let mut killed_at = None;
    for i in 0..40 {
        if i == 10 {
            cluster.nodes[first].kill();
            killed_at = Some(Instant::now());
        }
        let name = format!("t{i}");
        let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
        // An error (the client's own, or the topic's) means "not acknowledged", nothing more.
        if let Ok(result) = admin.create_topics([&topic], &options).await {
            if result.into_iter().all(|r| r.is_ok()) {
                acknowledged.push(name);
            }
        }
    }
    let second = cluster.wait_for_controller(Duration::from_secs(20));
    assert_ne!(second, first, "a new controller took over");
    // The new controller fences the dead one (a broker too) at its first check, long before
    // broker.session.timeout.ms (9 s): its port refuses connections.
    let dead = first as i32 + 1;
    while cluster.metadata(second).brokers.iter().any(|b| b.node_id.0 == dead) {
        assert!(killed_at.expect("killed").elapsed() < Duration::from_secs(5), "the dead broker is still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acknowledged.len() >= 30, "creations went on after the failover: {acknowledged:?}");
    cluster.nodes[first].restart();
    // Every node, the restarted one included, ends with the same topics and ids.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views: Vec<BTreeMap<String, uuid::Uuid>> = (0..3)
            .map(|i| {
                cluster
                    .metadata(i)
                    .topics
                    .iter()
                    .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.topic_id)))
                    .collect()
            })
            .collect();
        let agree = views.iter().all(|v| v == &views[0]);
        if agree {
            for name in &acknowledged {
                assert!(views[0].contains_key(name), "acknowledged topic {name} is lost");
            }
            break;
        }
        assert!(Instant::now() < deadline, "nodes disagree on the topics: {views:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_is_fenced_before_its_session_ends_and_leads_again_after_restart() {
    // Kafka's 9 s session: the dead broker must be fenced long before it runs out, because its
    // listener refuses connections once its process is gone.
    let mut cluster = TestCluster::start(3, &["broker.session.timeout.ms=9000", "broker.heartbeat.interval.ms=300"]);
    let controller = cluster.wait_for_controller(Duration::from_secs(20));
    let victim = (controller + 1) % 3;
    let witness = (controller + 2) % 3;
    cluster.nodes[witness].create_topic("fenced", 3, &[]).await;
    let victim_id = victim as i32 + 1;
    let leaders = |cluster: &TestCluster| -> BTreeMap<i32, (i32, i32, i16)> {
        let m = cluster.metadata(witness);
        let t = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "fenced")).cloned();
        t.expect("topic")
            .partitions
            .iter()
            .map(|p| (p.partition_index, (p.leader_id.0, p.leader_epoch, p.error_code)))
            .collect()
    };
    let before = leaders(&cluster);
    let (&victims_partition, &(_, epoch_before, _)) =
        before.iter().find(|(_, (leader, _, _))| *leader == victim_id).expect("a partition on the victim");

    cluster.nodes[victim].kill();
    let killed_at = Instant::now();
    loop {
        let m = cluster.metadata(witness);
        let listed = m.brokers.iter().any(|b| b.node_id.0 == victim_id);
        let (leader, epoch, code) = leaders(&cluster)[&victims_partition];
        if !listed && leader == -1 {
            assert_eq!(code, 5, "LEADER_NOT_AVAILABLE for a partition without a live replica");
            assert!(epoch > epoch_before, "the leader epoch moved on");
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(6),
            "the dead broker was not fenced before its session ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // kafka-cluster's view: the cluster id, and the dead broker's registration removed.
    let witness_bootstrap = cluster.nodes[witness].bootstrap();
    let id = support::cluster::run_strom(&["cluster", "cluster-id", "--bootstrap-server", &witness_bootstrap]);
    assert_eq!(id.trim(), format!("Cluster ID: {}", cluster.cluster_id));
    let victim_arg = victim_id.to_string();
    let out = support::cluster::run_strom(&[
        "cluster",
        "unregister",
        "--bootstrap-server",
        &witness_bootstrap,
        "--id",
        &victim_arg,
    ]);
    assert_eq!(out.trim(), format!("Broker {victim_id} is no longer registered."));
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["cluster", "unregister", "--bootstrap-server", &witness_bootstrap, "--id", &victim_arg])
        .output()
        .expect("run strom");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("BROKER_ID_NOT_REGISTERED"));

    // Restarted, it registers again and leads its partition.
    cluster.nodes[victim].restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (leader, _, code) = leaders(&cluster)[&victims_partition];
        if leader == victim_id && code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted broker did not lead its partition again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its partition takes writes again.
    let producer = cluster.nodes[witness].producer(&[("acks", "all")]);
    producer
        .send(
            FutureRecord::<(), str>::to("fenced").partition(victims_partition).payload("back"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce to the partition of the restarted broker");

    // OffsetForLeaderEpoch on the new leader: its old epoch wrote nothing, so it ends where the
    // new one begins (0); the current epoch ends at the log end (1).
    let (_, epoch_now, _) = leaders(&cluster)[&victims_partition];
    let ask = |epoch: i32| {
        let mut p = strom_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.partition = victims_partition;
        p.leader_epoch = epoch;
        p.current_leader_epoch = epoch_now;
        let mut t = strom_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
        t.topic = strom_protocol::messages::TopicName(strom_protocol::StrBytes::from_static_str("fenced"));
        t.partitions = vec![p];
        let mut req = strom_protocol::messages::OffsetForLeaderEpochRequest::default();
        req.replica_id = strom_protocol::messages::BrokerId(-1);
        req.topics = vec![t];
        let r: strom_protocol::messages::OffsetForLeaderEpochResponse = support::raw::RawClient::connect(
            &cluster.nodes[victim].bootstrap(),
        )
        .call(strom_protocol::messages::ApiKey::OffsetForLeaderEpoch, 4, &req);
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    assert_eq!(ask(epoch_before), (0, epoch_before, 0));
    assert_eq!(ask(epoch_now), (0, epoch_now, 1));
}
