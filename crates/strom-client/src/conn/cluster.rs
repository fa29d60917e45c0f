//! The cluster as the client sees it: bootstrap servers, a metadata snapshot (brokers, topics,
//! partition leaders), and one pipelined connection per broker, reconnected with backoff.

use super::connection::BrokerConnection;
use crate::config::Properties;
use crate::error::{ClientError, Result};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use strom_protocol::messages::metadata_request::MetadataRequestTopic;
use strom_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use strom_protocol::{Decodable, Encodable, StrBytes};

/// Connection settings shared by the producer, consumer and admin client (Kafka's names).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub bootstrap_servers: Vec<String>,
    pub client_id: String,
    pub request_timeout: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    pub metadata_max_age: Duration,
    pub allow_auto_create_topics: bool,
}

impl ClusterConfig {
    pub fn from_properties(p: &Properties, default_client_id: &str) -> Result<ClusterConfig> {
        Ok(ClusterConfig {
            bootstrap_servers: p.bootstrap_servers()?,
            client_id: p.string("client.id", default_client_id),
            request_timeout: p.millis("request.timeout.ms", 30_000)?,
            reconnect_backoff: p.millis("reconnect.backoff.ms", 50)?,
            reconnect_backoff_max: p.millis("reconnect.backoff.max.ms", 1_000)?,
            metadata_max_age: p.millis("metadata.max.age.ms", 300_000)?,
            allow_auto_create_topics: p.boolean("allow.auto.create.topics", true)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    /// -1 while the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub partitions: Vec<PartitionInfo>,
    /// Partitions with a leader, computed once per metadata refresh.
    pub available: Vec<i32>,
}

impl TopicInfo {
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Partitions with a leader (Kafka's availablePartitionsForTopic).
    pub fn available_partitions(&self) -> Vec<i32> {
        self.partitions.iter().filter(|p| p.leader >= 0).map(|p| p.partition).collect()
    }

    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions.iter().find(|p| p.partition == partition).map(|p| p.leader).filter(|l| *l >= 0)
    }

    /// The partition's leader and its leader epoch (-1: unknown), when it has a leader.
    pub fn leader_and_epoch(&self, partition: i32) -> Option<(i32, i32)> {
        self.partitions.iter().find(|p| p.partition == partition && p.leader >= 0).map(|p| (p.leader, p.leader_epoch))
    }
}

/// Keeps what `previous` knew of a partition when `topics` (a newer answer) names an older
/// leader epoch for it, as Java's client does (KIP-320): a broker that is behind (cut off from
/// the quorum, or its metadata held up) still names the leaders it knew, and a client that took
/// them would follow a deposed leader, which may answer OFFSET_OUT_OF_RANGE and reset positions.
fn keep_newer_leader_epochs(previous: &Snapshot, topics: &mut HashMap<String, TopicInfo>) {
    for (name, topic) in topics.iter_mut() {
        let Some(old) = previous.topics.get(name).filter(|old| old.topic_id == topic.topic_id) else { continue };
        let mut kept = false;
        for p in topic.partitions.iter_mut() {
            if let Some(o) = old.partitions.iter().find(|o| o.partition == p.partition) {
                if p.leader_epoch >= 0 && o.leader_epoch > p.leader_epoch {
                    tracing::debug!(topic = %name, partition = p.partition, epoch = p.leader_epoch,
                        current = o.leader_epoch, "metadata names an older leader epoch; keeping the newer");
                    *p = o.clone();
                    kept = true;
                }
            }
        }
        if kept {
            topic.available = topic.available_partitions();
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: HashMap<i32, String>,
    pub topics: HashMap<String, TopicInfo>,
    /// Topics the last refresh asked for and the error each got (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub topic_errors: HashMap<String, i16>,
}

struct Backoff {
    failures: u32,
    retry_at: Instant,
}

pub struct Cluster {
    pub config: ClusterConfig,
    snapshot: RwLock<(Arc<Snapshot>, Instant)>,
    /// Topics whose metadata the client keeps fresh.
    interesting: Mutex<BTreeSet<String>>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<BrokerConnection>>>,
    backoff: Mutex<HashMap<String, Backoff>>,
}

impl Cluster {
    /// Creates the cluster view and fetches the broker list from a bootstrap server.
    pub async fn connect(config: ClusterConfig) -> Result<Arc<Cluster>> {
        let cluster = Arc::new(Cluster {
            config,
            snapshot: RwLock::new((Arc::new(Snapshot::default()), Instant::now())),
            interesting: Mutex::new(BTreeSet::new()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
        });
        cluster.refresh().await?;
        Ok(cluster)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// Adds topics to those kept fresh.
    pub fn add_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut set = self.interesting.lock().unwrap_or_else(|p| p.into_inner());
        set.extend(topics.into_iter().map(String::from));
    }

    /// Fetches metadata for the interesting topics (only brokers if there are none).
    pub async fn refresh(&self) -> Result<Arc<Snapshot>> {
        let topics: Vec<String> = self.interesting.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        self.fetch_metadata(Some(&topics)).await
    }

    /// Metadata for all topics (None) or the given ones; replaces the snapshot.
    pub async fn fetch_metadata(&self, topics: Option<&[String]>) -> Result<Arc<Snapshot>> {
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut r = MetadataRequestTopic::default();
                    r.name = Some(TopicName(StrBytes::from_string(t.clone())));
                    r
                })
                .collect()
        });
        req.allow_auto_topic_creation = self.config.allow_auto_create_topics;
        let resp: MetadataResponse = self.send_any(ApiKey::Metadata, &req).await?;
        let mut snap = Snapshot {
            cluster_id: resp.cluster_id.map(|c| c.to_string()),
            controller_id: resp.controller_id.0,
            ..Default::default()
        };
        for b in &resp.brokers {
            snap.brokers.insert(b.node_id.0, format!("{}:{}", b.host, b.port));
        }
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else { continue };
            if t.error_code != 0 {
                snap.topic_errors.insert(name, t.error_code);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let available = partitions.iter().filter(|p| p.leader >= 0).map(|p| p.partition).collect();
            snap.topics.insert(
                name.clone(),
                TopicInfo { name, topic_id: *t.topic_id.as_bytes(), is_internal: t.is_internal, partitions, available },
            );
        }
        let mut stored = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        keep_newer_leader_epochs(&stored.0, &mut snap.topics);
        let snap = Arc::new(snap);
        *stored = (Arc::clone(&snap), Instant::now());
        Ok(snap)
    }

    /// Refreshes if the snapshot is older than metadata.max.age.ms.
    pub async fn maybe_refresh(&self) -> Result<()> {
        let age = self.snapshot.read().unwrap_or_else(|p| p.into_inner()).1.elapsed();
        if age >= self.config.metadata_max_age {
            self.refresh().await?;
        }
        Ok(())
    }

    /// The topic's metadata, refreshing until it is known or `timeout` passes (Kafka's max.block.ms
    /// wait for metadata). An unknown topic ends with UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn wait_for_topic(&self, topic: &str, timeout: Duration) -> Result<TopicInfo> {
        if let Some(t) = self.snapshot().topics.get(topic) {
            return Ok(t.clone());
        }
        self.add_topics([topic]);
        let deadline = Instant::now() + timeout;
        let mut last_error = 3;
        loop {
            match self.refresh().await {
                Ok(snap) => {
                    if let Some(t) = snap.topics.get(topic) {
                        return Ok(t.clone());
                    }
                    last_error = snap.topic_errors.get(topic).copied().unwrap_or(3);
                    let retriable =
                        strom_protocol::ResponseError::try_from_code(last_error).is_some_and(|e| e.is_retriable());
                    if !retriable {
                        return Err(ClientError::kafka(last_error, Some(format!("topic {topic}"))));
                    }
                }
                Err(e) if !e.is_retriable() => return Err(e),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(ClientError::kafka(
                    last_error,
                    Some(format!("topic {topic} not present in metadata after {} ms", timeout.as_millis())),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())))
                .await;
        }
    }

    /// The connection to broker `node_id` (connecting if needed).
    pub async fn broker(&self, node_id: i32) -> Result<Arc<BrokerConnection>> {
        let addr = self
            .snapshot()
            .brokers
            .get(&node_id)
            .cloned()
            .ok_or_else(|| ClientError::Protocol(format!("broker {node_id} is not in the cluster metadata")))?;
        self.connection(&addr).await
    }

    /// A connection to `addr`, reusing a live one; reconnects wait out reconnect.backoff.ms,
    /// doubling per failure up to reconnect.backoff.max.ms. No lock is held while waiting or
    /// connecting: a dead broker's backoff must not hold up requests to the live ones (a
    /// metadata refresh that finds the new leader, the produce that goes there).
    pub async fn connection(&self, addr: &str) -> Result<Arc<BrokerConnection>> {
        if let Some(c) = self.connections.lock().await.get(addr).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        if let Some(wait) = self.backoff_left(addr) {
            tokio::time::sleep(wait).await;
        }
        match BrokerConnection::connect(addr, &self.config.client_id, self.config.request_timeout).await {
            Ok(c) => {
                self.backoff_lock().remove(addr);
                let mut conns = self.connections.lock().await;
                if let Some(existing) = conns.get(addr).filter(|c| !c.is_closed()) {
                    // Another task connected meanwhile: one connection per broker.
                    return Ok(Arc::clone(existing));
                }
                let c = Arc::new(c);
                conns.insert(addr.to_string(), Arc::clone(&c));
                Ok(c)
            }
            Err(e) => {
                let mut backoff = self.backoff_lock();
                let b = backoff.entry(addr.to_string()).or_insert(Backoff { failures: 0, retry_at: Instant::now() });
                b.failures += 1;
                let delay = self
                    .config
                    .reconnect_backoff
                    .saturating_mul(1 << b.failures.min(10))
                    .min(self.config.reconnect_backoff_max);
                b.retry_at = Instant::now() + delay;
                tracing::debug!(%addr, "connect failed: {e}");
                Err(e)
            }
        }
    }

    /// How long `addr` is still in its reconnect backoff, if it is.
    fn backoff_left(&self, addr: &str) -> Option<Duration> {
        let left = self.backoff_lock().get(addr).map(|b| b.retry_at.saturating_duration_since(Instant::now()));
        left.filter(|w| !w.is_zero())
    }

    fn backoff_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Backoff>> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends to any reachable broker: known brokers first, then the bootstrap servers.
    pub async fn send_any<Req: Encodable, Resp: Decodable>(&self, api: ApiKey, req: &Req) -> Result<Resp> {
        let mut addrs: Vec<String> = self.snapshot().brokers.values().cloned().collect();
        addrs.sort();
        for b in &self.config.bootstrap_servers {
            if !addrs.contains(b) {
                addrs.push(b.clone());
            }
        }
        // Brokers waiting out a reconnect backoff (likely down) last, as Java's least-loaded node.
        addrs.sort_by_key(|a| self.backoff_left(a).is_some());
        let mut last = None;
        for addr in addrs {
            match self.connection(&addr).await {
                Ok(conn) => match conn.send(api, req).await {
                    Ok((_, resp)) => return Ok(resp),
                    Err(e) if e.is_retriable() => last = Some(e),
                    Err(e) => return Err(e),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config {
            key: "bootstrap.servers".into(),
            message: "no servers to connect to".into(),
        }))
    }

    /// Sends to broker `node_id` a request built for the negotiated version (for requests with
    /// fields that only some versions have).
    pub async fn send_built<Req: Encodable, Resp: Decodable>(
        &self,
        node_id: i32,
        api: ApiKey,
        build: impl FnOnce(i16) -> Req,
    ) -> Result<Resp> {
        let conn = self.broker(node_id).await?;
        let version = conn.versions().pick(api)?;
        conn.send_versioned(api, version, &build(version)).await
    }

    /// Sends to broker `node_id`; returns the version used with the response.
    pub async fn send_to<Req: Encodable, Resp: Decodable>(
        &self,
        node_id: i32,
        api: ApiKey,
        req: &Req,
    ) -> Result<(i16, Resp)> {
        self.broker(node_id).await?.send(api, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: u8, partitions: &[(i32, i32, i32)]) -> TopicInfo {
        let partitions: Vec<PartitionInfo> = partitions
            .iter()
            .map(|&(partition, leader, leader_epoch)| PartitionInfo {
                partition,
                leader,
                leader_epoch,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                error_code: 0,
            })
            .collect();
        let mut t =
            TopicInfo { name: "t".into(), topic_id: [id; 16], is_internal: false, partitions, available: Vec::new() };
        t.available = t.available_partitions();
        t
    }

    #[test]
    fn an_answer_with_an_older_leader_epoch_does_not_replace_a_newer_one() {
        let mut previous = Snapshot::default();
        previous.topics.insert("t".into(), topic(1, &[(0, 2, 7), (1, 3, 4)]));
        // A broker cut off since epoch 5 of partition 0 still names broker 1 as its leader.
        let mut answer = HashMap::from([("t".to_string(), topic(1, &[(0, 1, 5), (1, -1, 5)]))]);
        keep_newer_leader_epochs(&previous, &mut answer);
        let t = &answer["t"];
        assert_eq!((t.partitions[0].leader, t.partitions[0].leader_epoch), (2, 7), "the newer leader stays");
        assert_eq!((t.partitions[1].leader, t.partitions[1].leader_epoch), (-1, 5), "a newer epoch is taken");
        assert_eq!(t.available, vec![0]);
        // A topic created again (another id) starts over, and an answer without epochs is taken.
        let mut recreated = HashMap::from([("t".to_string(), topic(2, &[(0, 1, 0)]))]);
        keep_newer_leader_epochs(&previous, &mut recreated);
        assert_eq!(recreated["t"].partitions[0].leader, 1);
        let mut no_epoch = HashMap::from([("t".to_string(), topic(1, &[(0, 1, -1)]))]);
        keep_newer_leader_epochs(&previous, &mut no_epoch);
        assert_eq!(no_epoch["t"].partitions[0].leader, 1);
    }
}
