//! A cluster of `strom server` processes on loopback ports, each a broker and a controller
//! unless started with other roles, formatted with one cluster id through `strom storage format`.

use super::raw::RawClient;
use super::TestBroker;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use std::process::Command;
use std::time::{Duration, Instant};
use strom_protocol::batch::testing::{TestBatch, TestRecord};
use strom_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use strom_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use strom_protocol::StrBytes;

pub struct TestCluster {
    /// Before the directory, so that a failed test's node logs are printed before it goes.
    pub nodes: Vec<TestBroker>,
    /// `process.roles` of each node.
    pub roles: Vec<String>,
    pub cluster_id: String,
    _tmp: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `n` combined nodes with extra overrides for each.
    pub fn start(n: usize, overrides: &[&str]) -> TestCluster {
        TestCluster::start_with_roles(&vec!["broker,controller"; n], overrides)
    }

    /// Starts one node per entry of `roles` (`process.roles`: node i+1 has `roles[i]`); the nodes
    /// with the controller role are the voters. `{node}` in an override is the node's id
    /// (`broker.rack=rack-{node}`).
    pub fn start_with_roles(roles: &[&str], overrides: &[&str]) -> TestCluster {
        let tmp = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = roles.iter().map(|_| (listen_port(), listen_port())).collect();
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(i, _)| roles[*i].contains("controller"))
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect();
        let cluster_id = run_strom(&["storage", "random-uuid"]).trim().to_string();
        let empty = tmp.path().join("empty.properties");
        std::fs::write(&empty, "").expect("write empty properties");
        let mut nodes = Vec::new();
        for (i, (port, controller)) in ports.iter().enumerate() {
            let dir = tmp.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(&dir).expect("node dir");
            let (broker, controls) = (roles[i].contains("broker"), roles[i].contains("controller"));
            let listeners = match (broker, controls) {
                (true, true) => format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
                (true, false) => format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
                (false, _) => format!("listeners=CONTROLLER://127.0.0.1:{controller}"),
            };
            // A controller-only node is reached on its controller listener, its only one.
            let port = if broker { port } else { controller };
            let mut props = vec![
                format!("node.id={}", i + 1),
                format!("process.roles={}", roles[i]),
                format!("controller.quorum.voters={}", voters.join(",")),
                listeners,
            ];
            props.extend(overrides.iter().map(|s| s.replace("{node}", &(i + 1).to_string())));
            let node = TestBroker::unstarted(None, dir, *port, props);
            let mut args = vec!["storage".to_string(), "format".into(), "-t".into(), cluster_id.clone()];
            args.extend(["-c".to_string(), empty.display().to_string()]);
            args.extend(["--override".to_string(), format!("log.dirs={}", node.data_dir().display())]);
            for o in node.overrides() {
                args.extend(["--override".to_string(), o.clone()]);
            }
            run_strom(&args.iter().map(String::as_str).collect::<Vec<_>>());
            nodes.push(node);
        }
        for node in &mut nodes {
            node.launch();
        }
        let roles = roles.iter().map(|r| r.to_string()).collect();
        let cluster = TestCluster { nodes, roles, cluster_id, _tmp: tmp };
        cluster.wait_for_registrations(Duration::from_secs(30));
        cluster
    }

    /// The indexes of the nodes with the broker role.
    pub fn brokers(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.roles[i].contains("broker")).collect()
    }

    /// Waits until every broker's Metadata lists every broker (all registered).
    pub fn wait_for_registrations(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let brokers = self.brokers();
        while !brokers.iter().all(|&i| self.metadata(i).brokers.len() == brokers.len()) {
            assert!(Instant::now() < deadline, "not every broker registered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn bootstrap(&self) -> String {
        self.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",")
    }

    /// Metadata (v12, all topics) as node `i` answers it.
    pub fn metadata(&self, i: usize) -> MetadataResponse {
        let mut req = MetadataRequest::default();
        req.topics = None;
        RawClient::connect(&self.nodes[i].bootstrap()).call(ApiKey::Metadata, 12, &req)
    }

    /// The index of the active controller: the running node whose log announces leadership of
    /// the highest term, once every running node's log names that node as leader (observers
    /// log the leader they learn of the same way).
    pub fn wait_for_controller(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let term_of = |line: &str| line.split("term=").nth(1)?.split_whitespace().next()?.parse::<u64>().ok();
        loop {
            let running: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running()).collect();
            let mut best: Option<(u64, usize)> = None;
            for &i in &running {
                for line in self.nodes[i].log().lines().filter(|l| l.contains("became leader at term")) {
                    if let Some(t) = term_of(line) {
                        if best.is_none_or(|(bt, _)| t > bt) {
                            best = Some((t, i));
                        }
                    }
                }
            }
            if let Some((term, leader)) = best {
                let announced = format!("leader=Some({}) term={term}", leader + 1);
                if running.iter().all(|&i| self.nodes[i].log().contains(&announced)) {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "no controller was elected");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One partition as a node's Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl TestCluster {
    /// The partitions of `topic` as node `i` describes them (empty if it does not know it).
    pub fn partitions(&self, i: usize, topic: &str) -> Vec<PartitionView> {
        let m = self.metadata(i);
        let Some(t) = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic)) else {
            return Vec::new();
        };
        let mut out: Vec<PartitionView> = t
            .partitions
            .iter()
            .map(|p| {
                let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
                isr.sort_unstable();
                PartitionView {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr,
                }
            })
            .collect();
        out.sort_by_key(|p| p.partition);
        out
    }

    /// Waits until node `i` shows `check` true for every partition of `topic`.
    pub fn wait_for_partitions(
        &self,
        i: usize,
        topic: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&PartitionView) -> bool,
    ) -> Vec<PartitionView> {
        let deadline = Instant::now() + timeout;
        loop {
            let parts = self.partitions(i, topic);
            if !parts.is_empty() && parts.iter().all(&check) {
                return parts;
            }
            assert!(Instant::now() < deadline, "{what}: node {} shows {parts:?}", i + 1);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node shows each partition of `topic` with all its replicas in
    /// the ISR.
    pub fn wait_for_full_isr(&mut self, topic: &str, timeout: Duration) {
        let running: Vec<usize> = self.brokers().into_iter().filter(|&i| self.nodes[i].is_running()).collect();
        for i in running {
            self.wait_for_partitions(i, topic, timeout, "full ISR", |p| {
                let mut replicas = p.replicas.clone();
                replicas.sort_unstable();
                p.leader >= 0 && p.isr == replicas
            });
        }
    }

    /// The bytes of every segment of `topic`-`partition` on node `i`, in offset order: the
    /// replica's log as a byte stream (segments roll at different offsets on different replicas).
    pub fn replica_log_bytes(&self, i: usize, topic: &str, partition: i32) -> Vec<u8> {
        let dir = self.nodes[i].data_dir().join(format!("{topic}-{partition}"));
        let mut segments = super::files_with_suffix(&dir, ".log");
        segments.sort();
        segments.iter().flat_map(|f| std::fs::read(f).expect("read segment")).collect()
    }
}

impl TestCluster {
    /// Creates `name` with three replicas per partition through node `node`.
    pub async fn create_replicated(&self, node: usize, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3));
        for (k, v) in configs {
            topic = topic.set(k, v);
        }
        let results = self.nodes[node].admin().create_topics([&topic], &AdminOptions::new()).await.expect("create");
        for r in results {
            r.expect("topic created");
        }
    }

    /// Produces one batch of `values` with the raw protocol to node `node`; the partition's error code.
    pub fn produce_raw(&self, node: usize, topic: &str, acks: i16, values: &[String]) -> i16 {
        self.produce_raw_response(node, topic, acks, values, 9).responses[0].partition_responses[0].error_code
    }

    /// Produce of `version` to partition 0 through node `node`; the whole response.
    pub fn produce_raw_response(
        &self,
        node: usize,
        topic: &str,
        acks: i16,
        values: &[String],
        version: i16,
    ) -> ProduceResponse {
        self.produce_raw_at(node, topic, acks, values, version, 0)
    }

    /// Produce of `version` to partition 0 through node `node`, every record with `timestamp`.
    pub fn produce_raw_at(
        &self,
        node: usize,
        topic: &str,
        acks: i16,
        values: &[String],
        version: i16,
        timestamp: i64,
    ) -> ProduceResponse {
        let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
        let batch = TestBatch { records: &records, timestamps: &[timestamp], ..Default::default() }.encode();
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(batch.into());
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = 5_000;
        req.topic_data = vec![t];
        RawClient::connect(&self.nodes[node].bootstrap()).call(ApiKey::Produce, version, &req)
    }

    /// Waits until the logs of every replica of `topic`-`partition` are the same bytes; returns them.
    pub fn wait_for_identical_replicas(&self, topic: &str, partition: i32, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            let logs: Vec<Vec<u8>> = (0..3).map(|i| self.replica_log_bytes(i, topic, partition)).collect();
            if !logs[0].is_empty() && logs.iter().all(|l| *l == logs[0]) {
                return logs[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "replicas of {topic}-{partition} differ: {:?} bytes",
                logs.iter().map(Vec::len).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The index in `nodes` of broker `id`.
pub fn node_of(id: i32) -> usize {
    id as usize - 1
}

/// A free port below the kernel's ephemeral range, so that no client connection of another test
/// takes it between now and the node's start (`free_port` hands out ephemeral ports). Never the
/// same port twice in one process: a cluster picks all its ports before any node binds one, so
/// the bind check alone cannot tell two picks of one cluster apart.
fn listen_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        ^ (std::process::id() as u64) << 20
        ^ SEQ.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut x = seed | 1;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
}

/// Runs the strom binary and returns its standard output.
pub fn run_strom(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).args(args).output().expect("run strom");
    assert!(out.status.success(), "strom {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
