//! Controller-only nodes (`process.roles=controller`), Kafka's production layout: three nodes run
//! the metadata quorum and nothing else, three brokers follow it as observers and host every
//! replica. Clients never see the controllers; admin operations reach them forwarded.

mod support;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};
use strom_protocol::messages::create_topics_request::CreatableTopic;
use strom_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, TopicName,
};
use strom_protocol::StrBytes;
use support::cluster::{node_of, run_strom, TestCluster};
use support::raw::RawClient;

const ROLES: [&str; 6] = ["controller", "controller", "controller", "broker", "broker", "broker"];
const CONTROLLERS: std::ops::Range<usize> = 0..3;

fn describe_cluster(cluster: &TestCluster, node: usize, endpoint_type: i8) -> DescribeClusterResponse {
    let mut req = DescribeClusterRequest::default();
    req.endpoint_type = endpoint_type;
    RawClient::connect(&cluster.nodes[node].bootstrap()).call(ApiKey::DescribeCluster, 1, &req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_only_nodes_run_the_quorum_and_brokers_serve_every_client() {
    let mut cluster = TestCluster::start_with_roles(&ROLES, &[]);
    let controller = cluster.wait_for_controller(Duration::from_secs(20));
    assert!(CONTROLLERS.contains(&controller), "a broker-only node became the controller");

    // What clients see: only brokers, and a broker named as controller (admin requests sent
    // there are forwarded).
    let metadata = cluster.metadata(3);
    let mut brokers: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort_unstable();
    assert_eq!(brokers, vec![4, 5, 6], "controllers are not brokers");
    assert!(brokers.contains(&metadata.controller_id.0), "controller id {}", metadata.controller_id.0);

    // A controller listens on its controller listener only, and serves only controller APIs.
    let versions: ApiVersionsResponse =
        RawClient::connect(&cluster.nodes[0].bootstrap()).call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let keys: Vec<i16> = versions.api_keys.iter().map(|k| k.api_key).collect();
    assert!(keys.contains(&(ApiKey::DescribeQuorum as i16)) && keys.contains(&(ApiKey::CreateTopics as i16)));
    assert!(!keys.contains(&(ApiKey::Produce as i16)) && !keys.contains(&(ApiKey::Metadata as i16)), "{keys:?}");

    // DescribeCluster with KIP-919's endpoint types: controllers describe the quorum, and say
    // MISMATCHED_ENDPOINT_TYPE when asked for brokers; brokers the other way round.
    let quorum = describe_cluster(&cluster, 1, 2);
    assert_eq!(quorum.error_code, 0);
    assert_eq!(quorum.controller_id.0, controller as i32 + 1, "the active controller");
    assert_eq!(quorum.brokers.iter().map(|b| b.broker_id.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(describe_cluster(&cluster, 1, 1).error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
    assert_eq!(describe_cluster(&cluster, 4, 2).error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
    assert_eq!(describe_cluster(&cluster, 4, 1).brokers.len(), 3);

    // A topic created through a broker: forwarded to the controller, replicas on brokers only.
    cluster.create_replicated(3, "served", 3, &[]).await;
    cluster.wait_for_full_isr("served", Duration::from_secs(30));
    for p in cluster.partitions(4, "served") {
        assert!(p.replicas.iter().all(|r| (4..=6).contains(r)), "replicas on brokers only: {p:?}");
    }
    // CreateTopics sent to a controller that is not the active one (`--bootstrap-controller`).
    let follower = CONTROLLERS.clone().find(|&i| i != controller).expect("another controller");
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_static_str("via-controller"));
    topic.num_partitions = 2;
    topic.replication_factor = 3;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    let created: CreateTopicsResponse =
        RawClient::connect(&cluster.nodes[follower].bootstrap()).call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
    cluster.wait_for_partitions(5, "via-controller", Duration::from_secs(20), "created", |p| p.leader >= 4);

    let producer = cluster.nodes[3].producer(&[("acks", "all"), ("enable.idempotence", "true")]);
    let send = |from: usize, to: usize| {
        let sent: Vec<_> = (from..to)
            .map(|i| {
                producer.send_result(FutureRecord::<(), _>::to("served").payload(&format!("v{i}"))).expect("queue")
            })
            .collect();
        async move {
            for f in sent {
                f.await.expect("delivery future").expect("delivered");
            }
        }
    };
    send(0, 300).await;

    // The death of a broker is seen by a controller that is not a broker itself: its replicas
    // leave the ISR, its leaderships move.
    let victim = cluster.partitions(4, "served")[0].leader;
    cluster.nodes[node_of(victim)].kill();
    let survivor = if victim == 4 { 4 } else { 3 };
    let started = Instant::now();
    cluster.wait_for_partitions(survivor, "served", Duration::from_secs(20), "failed over", |p| {
        p.leader >= 4 && p.leader != victim
    });
    assert!(started.elapsed() < Duration::from_secs(5), "failover took {:?}", started.elapsed());
    send(300, 400).await;

    // The death of the active controller: another controller-only node takes over.
    cluster.nodes[controller].kill();
    let next = cluster.wait_for_controller(Duration::from_secs(20));
    assert!(CONTROLLERS.contains(&next) && next != controller);
    cluster.nodes[node_of(victim)].restart();
    cluster.wait_for_full_isr("served", Duration::from_secs(30));
    cluster.create_replicated(survivor, "after-failover", 1, &[]).await;
    send(400, 500).await;

    let mut values: Vec<String> = cluster.nodes[survivor]
        .consume_all("served", 3, 500)
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    values.sort_by_key(|v| v[1..].parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(values, (0..500).map(|i| format!("v{i}")).collect::<Vec<_>>());

    let status =
        run_strom(&["metadata-quorum", "--bootstrap-server", &cluster.nodes[3].bootstrap(), "describe", "--status"]);
    assert!(status.contains("CurrentVoters:          [1,2,3]"), "{status}");
    assert!(status.contains("CurrentObservers:       [4,5,6]"), "{status}");
}
