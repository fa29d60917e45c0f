//! Transactions on a 3-node cluster: markers go to partition leaders on other brokers, and the
//! transaction coordinator fails over (kill -9) to a replica of its `__transaction_state`
//! partition that resumes the transactional id.

mod support;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::{Duration, Instant};
use strom_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use strom_protocol::StrBytes;
use support::cluster::TestCluster;
use support::raw::RawClient;

const TOPIC: &str = "ledger";
const ID: &str = "settlement";

fn producer(cluster: &TestCluster, node: usize) -> FutureProducer {
    let p: FutureProducer = cluster.nodes[node]
        .client_config()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("transactional.id", ID)
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Retried while a new coordinator loads (librdkafka gives up after its own timeout).
    while let Err(e) = p.init_transactions(Duration::from_secs(30)) {
        assert!(Instant::now() < deadline, "init_transactions: {e}");
        std::thread::sleep(Duration::from_millis(500));
    }
    p
}

async fn transaction(p: &FutureProducer, values: &[&str], commit: bool) {
    p.begin_transaction().expect("begin");
    for (i, v) in values.iter().enumerate() {
        p.send(FutureRecord::<(), str>::to(TOPIC).partition(i as i32 % 3).payload(*v), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("send");
    }
    if commit {
        p.commit_transaction(Duration::from_secs(30)).expect("commit");
    } else {
        p.abort_transaction(Duration::from_secs(30)).expect("abort");
    }
}

fn coordinator(cluster: &TestCluster, asking: usize) -> i32 {
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_static_str(ID);
    req.key_type = 1;
    let resp: FindCoordinatorResponse =
        RawClient::connect(&cluster.nodes[asking].bootstrap()).call(ApiKey::FindCoordinator, 3, &req);
    assert_eq!(resp.error_code, 0, "FindCoordinator: {:?}", resp.error_message);
    resp.node_id.0
}

fn read_committed(cluster: &TestCluster, node: usize, expected: usize) -> Vec<String> {
    let mut config = cluster.nodes[node].client_config();
    config.set("bootstrap.servers", cluster.bootstrap());
    support::read_values(config, TOPIC, 3, "read_committed", expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_leaders_and_survive_the_death_of_their_coordinator() {
    let mut cluster = TestCluster::start(
        3,
        &[
            "broker.heartbeat.interval.ms=300",
            "transaction.state.log.num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    cluster.wait_for_controller(Duration::from_secs(20));
    cluster.create_replicated(0, TOPIC, 3, &[]).await;
    cluster.wait_for_full_isr(TOPIC, Duration::from_secs(20));
    let leaders: std::collections::BTreeSet<i32> = cluster.partitions(0, TOPIC).iter().map(|p| p.leader).collect();
    assert!(leaders.len() > 1, "the partitions' leaders are spread over the brokers: {leaders:?}");

    let p = producer(&cluster, 0);
    transaction(&p, &["c1", "c2", "c3"], true).await;
    transaction(&p, &["a1", "a2", "a3"], false).await;
    transaction(&p, &["c4", "c5", "c6"], true).await;
    assert_eq!(read_committed(&cluster, 0, 6), vec!["c1", "c2", "c3", "c4", "c5", "c6"]);
    drop(p);

    // The coordinator dies; a replica of its partition takes the id over.
    cluster.wait_for_full_isr("__transaction_state", Duration::from_secs(30));
    let old = support::cluster::node_of(coordinator(&cluster, 0));
    cluster.nodes[old].kill();
    let survivor = (old + 1) % 3;
    let p = producer(&cluster, survivor);
    assert_ne!(coordinator(&cluster, survivor), old as i32 + 1, "a new coordinator");
    transaction(&p, &["c7", "c8", "c9"], true).await;
    let all: Vec<String> = (1..=9).map(|i| format!("c{i}")).collect();
    assert_eq!(read_committed(&cluster, survivor, 9), all);
}
