//! Several log directories (JBOD): partitions spread over them by count; a directory that fails
//! (replaced by a file, Kafka's own test of a failing disk) goes offline, its partitions answer
//! KAFKA_STORAGE_ERROR while the others keep serving; the broker starts with the directory still
//! broken, and serves everything again once it is back. In a cluster the controller moves the
//! failed replicas' leaderships to the other replicas and takes them out of the ISR.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strom_protocol::batch::testing::TestBatch;
use strom_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use strom_protocol::StrBytes;
use support::cluster::TestCluster;
use support::raw::RawClient;
use support::TestBroker;

const STORAGE_ERROR: i16 = 56;

/// The partitions of `topic` whose directories are in `dir`.
fn partitions_in(dir: &Path, topic: &str) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix(&format!("{topic}-"))?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Produces one record to each partition with acks=1; the error code per partition.
fn produce_each(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i16> {
    let records = TestBatch { records: &[(Some(b"k"), Some(b"value"))], ..Default::default() }.encode();
    let data = (0..partitions)
        .map(|p| PartitionProduceData::default().with_index(p).with_records(Some(records.clone().into())))
        .collect();
    let t = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(data);
    let req = ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![t]);
    let resp: ProduceResponse = RawClient::connect(bootstrap).call(ApiKey::Produce, 9, &req);
    resp.responses[0].partition_responses.iter().map(|p| (p.index, p.error_code)).collect()
}

/// Replaces `dir` by a file (its contents kept aside at `<dir>.aside`): every later file
/// operation under it fails with ENOTDIR/ENOENT, as on a dead disk.
fn break_dir(dir: &Path) -> PathBuf {
    let aside = dir.with_extension("aside");
    std::fs::rename(dir, &aside).expect("move the directory aside");
    std::fs::write(dir, b"not a directory").expect("a file in its place");
    aside
}

fn repair_dir(dir: &Path, aside: &Path) {
    std::fs::remove_file(dir).expect("remove the file");
    std::fs::rename(aside, dir).expect("put the directory back");
}

#[test]
fn a_failed_log_directory_goes_offline_while_the_others_keep_serving() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (d1, d2) = (tmp.path().join("data"), tmp.path().join("disk2"));
    let dirs = format!("log.dirs={},{}", d1.display(), d2.display());
    let overrides = vec![dirs, "log.flush.offset.checkpoint.interval.ms=100".to_string(), "num.partitions=6".into()];
    let mut broker = TestBroker::unstarted(None, tmp.path().to_path_buf(), support::free_port(), overrides);
    broker.launch();
    let b = broker.bootstrap();
    // Records acknowledged per partition, over every produce of the test.
    let mut acked: BTreeMap<i32, usize> = BTreeMap::new();
    let mut produce = |expect: &dyn Fn(i32) -> Option<i16>| {
        let errors = produce_each(&b, "spread", 6);
        for (p, e) in &errors {
            if *e == 0 {
                *acked.entry(*p).or_default() += 1;
            }
            if let Some(want) = expect(*p) {
                assert_eq!(*e, want, "partition {p}: {errors:?}");
            }
        }
        errors
    };
    produce(&|_| Some(0));
    let (in_d1, in_d2) = (partitions_in(&d1, "spread"), partitions_in(&d2, "spread"));
    assert_eq!((in_d1.len(), in_d2.len()), (3, 3), "spread by count: {in_d1:?} / {in_d2:?}");

    let aside = break_dir(&d2);
    // The next checkpoint write into the broken directory fails and takes it offline; the other
    // directory serves all along.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let errors = produce(&|p| in_d1.contains(&p).then_some(0));
        if in_d2.iter().all(|p| errors[p] == STORAGE_ERROR) {
            break;
        }
        assert!(Instant::now() < deadline, "directory never went offline: {errors:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(broker.log().contains("log directory offline"), "the failure is logged");
    // kafka-log-dirs shows the offline directory with its error, the other with its replicas.
    let shown = support::cluster::run_strom(&["log-dirs", "--bootstrap-server", &b, "--describe"]);
    let json: serde_json::Value = serde_json::from_str(shown.lines().last().expect("json")).expect("json");
    let dirs = json["brokers"][0]["logDirs"].as_array().expect("log dirs").clone();
    let dir = |path: &Path| dirs.iter().find(|d| d["logDir"] == path.display().to_string()).expect("dir").clone();
    assert_eq!(dir(&d2)["error"], "org.apache.kafka.common.errors.KafkaStorageException", "{shown}");
    assert!(dir(&d2)["partitions"].as_array().is_some_and(|p| p.is_empty()), "{shown}");
    assert!(dir(&d1)["error"].is_null(), "{shown}");
    let listed: Vec<String> = dir(&d1)["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["size"].as_i64().is_some_and(|s| s > 0))
        .map(|p| p["partition"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, in_d1.iter().map(|p| format!("spread-{p}")).collect::<Vec<_>>(), "{shown}");
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["log-dirs", "--bootstrap-server", &b, "--describe", "--broker-list", "1,9"])
        .output()
        .expect("run strom");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("The given brokers do not exist from --broker-list: 9"));

    // A restart with the directory still broken: it starts, the other directory serves, the
    // broken one's partitions are not recreated empty elsewhere.
    broker.kill();
    broker.restart();
    produce(&|p| Some(if in_d1.contains(&p) { 0 } else { STORAGE_ERROR }));
    assert_eq!(partitions_in(&d1, "spread"), in_d1);

    // Repaired: everything serves again, nothing acknowledged is lost.
    broker.kill();
    repair_dir(&d2, &aside);
    broker.restart();
    produce(&|_| Some(0));
    let total: usize = acked.values().sum();
    let read = broker.consume_all("spread", 6, total);
    for (p, n) in &acked {
        let got = read.iter().filter(|m| rdkafka::Message::partition(*m) == *p).count();
        assert_eq!(got, *n, "partition {p}: every acknowledged record read back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_moves_leaderships_off_a_failed_log_directory() {
    let root = tempfile::tempdir().expect("tmp");
    let dirs = format!("log.dirs={0}/n{{node}}/a,{0}/n{{node}}/b", root.path().display());
    let mut cluster = TestCluster::start(3, &[&dirs, "log.flush.offset.checkpoint.interval.ms=100"]);
    cluster.create_replicated(0, "jbod", 4, &[("min.insync.replicas", "2")]).await;
    cluster.wait_for_full_isr("jbod", Duration::from_secs(30));
    // Node 1's second directory fails; its process keeps running (heartbeats go on), so only
    // the report of the failed directory can move those replicas' leaderships.
    let failing = root.path().join("n1/b");
    let on_failing = partitions_in(&failing, "jbod");
    assert!(!on_failing.is_empty() && on_failing.len() < 4, "node 1 spreads its replicas: {on_failing:?}");
    let _aside = break_dir(&failing);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let views = cluster.partitions(1, "jbod");
        let moved =
            views.iter().filter(|p| on_failing.contains(&p.partition)).all(|p| p.leader != 1 && !p.isr.contains(&1));
        let kept = views.iter().filter(|p| !on_failing.contains(&p.partition)).all(|p| p.isr.contains(&1));
        if moved && kept {
            break;
        }
        assert!(Instant::now() < deadline, "replicas on the failed directory kept their place: {views:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cluster.nodes[0].is_running(), "node 1 still serves its other directory");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.nodes[0].log().contains("controller told: replicas in a failed log directory") {
        assert!(Instant::now() < deadline, "node 1 never logged its report");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every partition keeps taking acks=all writes (min.insync.replicas=2 on the healthy ones).
    for p in cluster.partitions(1, "jbod") {
        let leader = &cluster.nodes[support::cluster::node_of(p.leader)];
        assert_eq!(produce_to(&leader.bootstrap(), "jbod", p.partition, -1), 0, "partition {}", p.partition);
    }
    cluster.nodes.iter_mut().for_each(|n| n.kill());
}

/// Produces one record to one partition; its error code.
fn produce_to(bootstrap: &str, topic: &str, partition: i32, acks: i16) -> i16 {
    let records = TestBatch { records: &[(Some(b"k"), Some(b"value"))], ..Default::default() }.encode();
    let data = vec![PartitionProduceData::default().with_index(partition).with_records(Some(records.into()))];
    let t = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(data);
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![t]);
    let resp: ProduceResponse = RawClient::connect(bootstrap).call(ApiKey::Produce, 9, &req);
    resp.responses[0].partition_responses[0].error_code
}
