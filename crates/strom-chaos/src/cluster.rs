//! The cluster under test: the network, the nodes (each a broker and a controller), and the
//! harness's own admin client for the questions nemeses ask (who leads this partition, who is
//! the active controller) and for waiting until the cluster is whole again.

use crate::net::Network;
use crate::node::{Node, NodeSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strom_client::admin::Admin;
use strom_client::Properties;

pub const BROKER_PORT: u16 = 9092;
pub const CONTROLLER_PORT: u16 = 9093;

pub struct ChaosCluster {
    pub nodes: Vec<Node>,
    pub admin: Admin,
    pub bootstrap: String,
    /// Dropped after the nodes (their processes stop before the namespaces go).
    pub net: Network,
}

/// What every node runs with: Kafka's defaults except where a round of a few seconds needs
/// things to happen sooner (ISR shrinks, segment rolls) or a smaller footprint.
fn properties(net: &Network, id: usize, nodes: usize, data: &Path) -> String {
    let ip = net.node_ip(id);
    let voters: Vec<String> = (1..=nodes).map(|i| format!("{i}@{}:{CONTROLLER_PORT}", net.node_ip(i))).collect();
    let rf = nodes.min(3);
    [
        format!("node.id={id}"),
        "process.roles=broker,controller".into(),
        format!("controller.quorum.voters={}", voters.join(",")),
        format!("listeners=PLAINTEXT://{ip}:{BROKER_PORT},CONTROLLER://{ip}:{CONTROLLER_PORT}"),
        format!("log.dirs={}", data.display()),
        format!("default.replication.factor={rf}"),
        format!("offsets.topic.replication.factor={rf}"),
        "offsets.topic.num.partitions=10".into(),
        "min.insync.replicas=2".into(),
        "replica.lag.time.max.ms=3000".into(),
        "broker.session.timeout.ms=4000".into(),
        "broker.heartbeat.interval.ms=1000".into(),
        "log.segment.bytes=1048576".into(),
        "auto.create.topics.enable=false".into(),
    ]
    .join("\n")
}

impl ChaosCluster {
    /// Creates the network, formats and starts `n` nodes under `work`, and waits until every
    /// broker is registered.
    pub async fn start(n: usize, strom: &Path, work: &Path, env: &[(String, String)]) -> Result<ChaosCluster, String> {
        let net = Network::create(n)?;
        let out = std::process::Command::new(strom)
            .args(["storage", "random-uuid"])
            .output()
            .map_err(|e| format!("{}: {e}", strom.display()))?;
        let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let root: PathBuf = work.join(format!("node{id}"));
            let spec = NodeSpec {
                id,
                namespace: net.namespace(id),
                ip: net.node_ip(id),
                properties: properties(&net, id, n, &root.join("data")),
                root,
                strom: strom.to_path_buf(),
                env: env.to_vec(),
            };
            nodes.push(Node::prepare(spec, &cluster_id)?);
        }
        for node in &mut nodes {
            node.start()?;
        }
        let bootstrap: Vec<String> = (1..=n).map(|i| format!("{}:{BROKER_PORT}", net.node_ip(i))).collect();
        let bootstrap = bootstrap.join(",");
        let deadline = Instant::now() + Duration::from_secs(90);
        let admin = loop {
            match Admin::new(&client_properties(&bootstrap)).await {
                Ok(a) => break a,
                Err(e) if Instant::now() > deadline => return Err(format!("no node answered within 90 s: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let cluster = ChaosCluster { nodes, admin, bootstrap, net };
        loop {
            if let Ok(d) = cluster.admin.describe_cluster().await {
                if d.brokers.len() == n {
                    return Ok(cluster);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("the {n} brokers did not all register within 90 s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn node(&mut self, id: usize) -> &mut Node {
        &mut self.nodes[id - 1]
    }

    /// The broker leading `topic`-`partition`, as metadata says now.
    pub async fn leader_of(&self, topic: &str, partition: i32) -> Option<usize> {
        let topics = self.admin.describe_topics(&[topic]).await.ok()?;
        let p = topics.first()?.partitions.iter().find(|p| p.partition == partition)?;
        (p.leader > 0).then_some(p.leader as usize)
    }

    /// The active controller, as the quorum describes itself.
    pub async fn controller(&self) -> Option<usize> {
        let q = self.admin.describe_metadata_quorum().await.ok()?;
        (q.leader_id > 0).then_some(q.leader_id as usize)
    }

    /// Waits until every node runs and every partition of `topics` has a leader and all its
    /// replicas in the ISR. Returns how long that took.
    pub async fn wait_whole(&mut self, topics: &[String], timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            let down: Vec<usize> = self.nodes.iter_mut().filter_map(|n| (!n.is_running()).then_some(n.id)).collect();
            if !down.is_empty() {
                return Err(format!("nodes {down:?} are not running"));
            }
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            match self.admin.describe_topics(&names).await {
                Ok(infos) => {
                    let short: Vec<String> = infos
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                        .filter(|(_, p)| p.leader < 0 || p.isr.len() < p.replicas.len())
                        .map(|(t, p)| format!("{}-{} leader {} isr {:?}", t.name, p.partition, p.leader, p.isr))
                        .collect();
                    if short.is_empty() {
                        return Ok(start.elapsed());
                    }
                    last = short.join(", ");
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("not whole after {} s: {last}", timeout.as_secs()))
    }

    /// Stops every node with a controlled shutdown.
    pub fn stop_all(&mut self) {
        for n in &mut self.nodes {
            n.stop(Duration::from_secs(20));
        }
    }
}

/// Kafka client settings for the harness's clients: short timeouts, so that a client stuck on
/// an unreachable node gives up and looks elsewhere within a round.
pub fn client_properties(bootstrap: &str) -> Properties {
    Properties::new()
        .set("bootstrap.servers", bootstrap)
        .set("request.timeout.ms", "5000")
        .set("metadata.max.age.ms", "5000")
        .set("reconnect.backoff.max.ms", "500")
}
