//! Replica fetchers: the follower's half of replication. For each leader this broker follows
//! partitions of, `num.replica.fetchers` tasks (a partition's fetcher is chosen by hashing it)
//! send replica Fetch requests (the replica id set, `replica.fetch.*` sizes and wait) over the
//! inter-broker listener, append what comes back as the leader wrote it, learn the high
//! watermark, and truncate when the leader names a diverging epoch.
//!
//! ```text
//!  publisher ─ image ─▶ ReplicaFetchers::update(partitions followed)
//!        (leader 2, fetcher 0) task: Fetch{offset=LEO, last epoch} ─▶ broker 2
//!                                    ◀─ records | diverging epoch | error
//!        records → Partition::append_from_leader  diverging → truncate_on_divergence
//!        OFFSET_OUT_OF_RANGE → reset_to_leader    other errors → back off that partition
//! ```

use super::follower::{FetchPosition, LeaderProgress};
use super::partition::Partition;
use crate::server::{now_ms, Broker};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use strom_client::conn::BrokerConnection;
use strom_protocol::fetch_session::FetchSessionClient;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strom_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use strom_protocol::{ResponseError, StrBytes};
use tokio::sync::Notify;
use tokio::time::Instant;

type Key = (String, i32);
/// (leader, fetcher index).
type FetcherKey = (i32, usize);

/// One partition a fetcher copies.
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Set after an error for this partition: not fetched again before then.
    retry_at: Option<Instant>,
}

/// What one fetcher task and the manager share.
#[derive(Default)]
struct FetcherShared {
    partitions: Mutex<BTreeMap<Key, Followed>>,
    changed: Notify,
}

impl FetcherShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Followed>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The broker's replica fetchers, by (leader, fetcher index).
#[derive(Default)]
pub struct ReplicaFetchers {
    fetchers: Mutex<HashMap<FetcherKey, Arc<FetcherShared>>>,
}

impl ReplicaFetchers {
    /// Ends every fetcher (shutdown): their tasks stop at their next turn.
    pub fn stop_all(&self) {
        self.fetchers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Makes the fetchers copy exactly `following` (each from the leader its state names),
    /// starting tasks for new leaders and ending those with nothing left to fetch.
    pub fn update(&self, broker: &Arc<Broker>, following: Vec<Arc<Partition>>) {
        let n = broker.config.cluster.num_replica_fetchers.max(1);
        let mut wanted: HashMap<FetcherKey, BTreeMap<Key, (Arc<Partition>, i32)>> = HashMap::new();
        for p in following {
            let Some(at) = p.fetch_position() else { continue };
            let mut h = DefaultHasher::new();
            (&p.topic, p.index).hash(&mut h);
            let slot = (h.finish() % n as u64) as usize;
            wanted.entry((at.leader, slot)).or_default().insert((p.topic.clone(), p.index), (p, at.leader_epoch));
        }
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        fetchers.retain(|key, shared| {
            if wanted.contains_key(key) {
                return true;
            }
            shared.lock().clear();
            shared.changed.notify_one();
            false
        });
        for (key, partitions) in wanted {
            let shared = fetchers.entry(key).or_insert_with(|| {
                let shared = Arc::new(FetcherShared::default());
                tracing::info!(leader = key.0, fetcher = key.1, "starting replica fetcher");
                tokio::spawn(run(Arc::downgrade(broker), key.0, Arc::downgrade(&shared)));
                shared
            });
            let mut current = shared.lock();
            current.retain(|k, _| partitions.contains_key(k));
            for (k, (partition, leader_epoch)) in partitions {
                match current.get_mut(&k) {
                    // A new leader epoch (or a new partition object) is fetched at once.
                    Some(f) if f.leader_epoch == leader_epoch && Arc::ptr_eq(&f.partition, &partition) => {}
                    _ => {
                        current.insert(k, Followed { partition, leader_epoch, retry_at: None });
                    }
                }
            }
            drop(current);
            shared.changed.notify_one();
        }
    }
}

/// One fetcher: runs while the manager keeps it (and the broker lives).
async fn run(broker: Weak<Broker>, leader: i32, shared: Weak<FetcherShared>) {
    let mut conn: Option<BrokerConnection> = None;
    // KIP-227: after the first fetch only changed positions travel (per connection).
    let mut session = FetchSessionClient::default();
    loop {
        let (Some(broker), Some(shared)) = (broker.upgrade(), shared.upgrade()) else { return };
        let now = Instant::now();
        let due: Vec<(Key, Arc<Partition>)> = shared
            .lock()
            .iter()
            .filter(|(_, f)| f.retry_at.is_none_or(|t| t <= now))
            .map(|(k, f)| (k.clone(), Arc::clone(&f.partition)))
            .collect();
        if due.is_empty() {
            if Arc::strong_count(&shared) == 1 {
                return; // The manager dropped this fetcher.
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), shared.changed.notified()).await;
            continue;
        }
        let backoff = Duration::from_millis(broker.config.cluster.replica_fetch_backoff_ms.clamp(10, 10_000));
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            session.reset();
            conn = match connect(&broker, leader).await {
                Ok(c) => Some(c),
                Err(why) => {
                    tracing::debug!(leader, "replica fetcher cannot connect: {why}");
                    drop((broker, shared));
                    tokio::time::sleep(backoff.min(Duration::from_millis(200))).await;
                    continue;
                }
            };
        }
        let Some(c) = conn.as_ref() else { continue };
        let positions: Vec<(Arc<Partition>, FetchPosition)> = due
            .into_iter()
            .filter_map(|(_, p)| p.fetch_position().filter(|at| at.leader == leader).map(|at| (p, at)))
            .collect();
        // Over the follower throttle, throttled replicas out of the ISR wait (Kafka leaves them
        // out of the fetch).
        let rate = broker.dynamic.current().follower_replication_throttled_rate;
        let positions: Vec<_> = if broker.replication_quotas.follower.exceeded(rate) {
            let node = broker.config.node_id;
            positions.into_iter().filter(|(p, _)| !throttled(&broker, p, rate) || p.isr().contains(&node)).collect()
        } else {
            positions
        };
        if positions.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(100), shared.changed.notified()).await;
            continue;
        }
        let request = session.prepare(fetch_request(&broker, &positions));
        let response: Result<(i16, FetchResponse), _> = c.send(ApiKey::Fetch, &request).await;
        match response {
            Ok((_, resp)) if resp.error_code == 0 => {
                session.answered(&resp);
                handle_response(&broker, &shared, c, &positions, resp, backoff).await;
            }
            Ok((_, resp)) if session_lost(resp.error_code) => {
                tracing::debug!(leader, error = resp.error_code, "replica fetch session lost; fetching in full");
                session.reset();
            }
            Ok((_, resp)) => {
                tracing::warn!(leader, error = resp.error_code, "replica fetch failed");
                session.reset();
                tokio::time::sleep(backoff).await;
            }
            Err(e) => {
                tracing::debug!(leader, "replica fetch failed: {e}");
                session.reset();
                conn = None;
                drop((broker, shared));
                tokio::time::sleep(backoff.min(Duration::from_millis(200))).await;
            }
        }
    }
}

/// Whether this broker's replica of `p` is named by its topic's follower throttle (and the
/// follower `rate` is set at all).
fn throttled(broker: &Broker, p: &Partition, rate: u64) -> bool {
    rate < i64::MAX as u64
        && crate::replica::quota::is_throttled(
            &broker.metadata.image(),
            &p.topic,
            "follower.replication.throttled.replicas",
            p.index,
            broker.config.node_id,
        )
}

/// FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH: the leader evicted or restarted
/// the session; a full fetch opens a new one at once.
fn session_lost(code: i16) -> bool {
    code == ResponseError::FetchSessionIdNotFound.code() || code == ResponseError::InvalidFetchSessionEpoch.code()
}

/// `host:port` of broker `id`'s inter-broker listener, as it registered it.
pub(crate) fn peer_address(broker: &Broker, id: i32) -> Result<String, String> {
    let image = broker.metadata.image();
    let listener = &broker.config.cluster.inter_broker_listener_name;
    let endpoint = image
        .brokers
        .get(&id)
        .and_then(|b| b.endpoint(listener))
        .ok_or_else(|| format!("broker {id} has no {listener} listener registered"))?;
    Ok(format!("{}:{}", endpoint.host, endpoint.port))
}

async fn connect(broker: &Broker, leader: i32) -> Result<BrokerConnection, String> {
    let addr = peer_address(broker, leader)?;
    let timeout = Duration::from_millis(broker.config.cluster.replica_fetch_wait_max_ms.max(0) as u64 + 30_000);
    let client_id = format!("broker-{}-fetcher", broker.config.node_id);
    BrokerConnection::connect(&addr, &client_id, timeout).await.map_err(|e| e.to_string())
}

fn fetch_request(broker: &Broker, positions: &[(Arc<Partition>, FetchPosition)]) -> FetchRequest {
    let cluster = &broker.config.cluster;
    let mut req = FetchRequest::default();
    // Fetch v12 (what strom-client speaks) names the replica in the request's replica_id; the
    // codec refuses fields a version lacks, so v15's ReplicaState stays unset.
    req.replica_id = BrokerId(broker.config.node_id);
    req.max_wait_ms = cluster.replica_fetch_wait_max_ms;
    req.min_bytes = cluster.replica_fetch_min_bytes;
    req.max_bytes = cluster.replica_fetch_response_max_bytes;
    req.isolation_level = 0;
    let mut topics: BTreeMap<&str, FetchTopic> = BTreeMap::new();
    for (p, at) in positions {
        let topic = topics.entry(p.topic.as_str()).or_insert_with(|| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(p.topic.clone()));
            t.topic_id = p.topic_id;
            t
        });
        let mut fp = FetchPartition::default();
        fp.partition = p.index;
        fp.current_leader_epoch = at.leader_epoch;
        fp.fetch_offset = at.fetch_offset;
        fp.last_fetched_epoch = at.last_fetched_epoch;
        fp.log_start_offset = at.log_start_offset;
        fp.partition_max_bytes = cluster.replica_fetch_max_bytes;
        topic.partitions.push(fp);
    }
    req.topics = topics.into_values().collect();
    req
}

async fn handle_response(
    broker: &Arc<Broker>,
    shared: &FetcherShared,
    conn: &BrokerConnection,
    positions: &[(Arc<Partition>, FetchPosition)],
    resp: FetchResponse,
    backoff: Duration,
) {
    let by_key: HashMap<(&str, i32), &(Arc<Partition>, FetchPosition)> =
        positions.iter().map(|e| ((e.0.topic.as_str(), e.0.index), e)).collect();
    let now = now_ms();
    let rate = broker.dynamic.current().follower_replication_throttled_rate;
    for topic in &resp.responses {
        for pd in &topic.partitions {
            let Some((partition, at)) = by_key.get(&(topic.topic.0.as_str(), pd.partition_index)) else { continue };
            let leader = LeaderProgress { high_watermark: pd.high_watermark, log_start_offset: pd.log_start_offset };
            let diverged = pd.diverging_epoch.epoch >= 0 || pd.diverging_epoch.end_offset >= 0;
            let outcome = match pd.error_code {
                0 if diverged => partition
                    .truncate_on_divergence(at, pd.diverging_epoch.epoch, pd.diverging_epoch.end_offset)
                    .map(|_| ()),
                0 => {
                    let records = pd.records.as_deref().unwrap_or_default();
                    if throttled(broker, partition, rate) {
                        broker.replication_quotas.follower.record(records.len());
                    }
                    let hw_before = partition.high_watermark();
                    let mut appended = partition.append_from_leader(at, records, leader, now).map(|_| ());
                    if appended.is_ok() {
                        // flush.messages / flush.ms on the follower too, off the async workers.
                        appended = partition.flush_if_requested(None).await;
                    }
                    if partition.high_watermark() != hw_before {
                        // Consumers reading from this follower (KIP-392) wait for its HW to move.
                        broker.fetch_purgatory.notify_append();
                    }
                    appended
                }
                code if code == ResponseError::OffsetOutOfRange.code() => {
                    let leader_end = leader_log_end(broker, conn, partition, at).await.unwrap_or(-1);
                    partition.reset_to_leader(at, pd.log_start_offset, leader_end).map(|_| ())
                }
                code => {
                    tracing::debug!(topic = %partition.topic, partition = partition.index, code, "replica fetch refused");
                    back_off(shared, partition, backoff_after(code, backoff));
                    continue;
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(topic = %partition.topic, partition = partition.index, "replicating failed: {e}");
                back_off(shared, partition, backoff);
            }
        }
    }
}

/// How long a partition waits after its fetch was refused with `code`. A leader that has not yet
/// applied the metadata naming it (NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH, an unknown
/// topic) will within milliseconds, and until this follower fetches the leader's HW, and with it
/// every acks=all produce, waits: so those are retried after 20 ms, not `replica.fetch.backoff.ms`
/// (1 s by default, which a fresh topic or every leader change paid in full).
fn backoff_after(code: i16, backoff: Duration) -> Duration {
    let leader_not_ready = [
        ResponseError::NotLeaderOrFollower,
        ResponseError::UnknownLeaderEpoch,
        ResponseError::UnknownTopicOrPartition,
        ResponseError::UnknownTopicId,
    ];
    if leader_not_ready.iter().any(|e| e.code() == code) {
        backoff.min(Duration::from_millis(20))
    } else {
        backoff
    }
}

fn back_off(shared: &FetcherShared, partition: &Partition, backoff: Duration) {
    if let Some(f) = shared.lock().get_mut(&(partition.topic.clone(), partition.index)) {
        f.retry_at = Some(Instant::now() + backoff);
    }
}

/// The leader's log end offset (ListOffsets latest as a replica: not bounded by the HW).
async fn leader_log_end(broker: &Broker, conn: &BrokerConnection, p: &Partition, at: &FetchPosition) -> Option<i64> {
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(broker.config.node_id);
    let mut topic = ListOffsetsTopic::default();
    topic.name = TopicName(StrBytes::from_string(p.topic.clone()));
    let mut part = ListOffsetsPartition::default();
    part.partition_index = p.index;
    part.current_leader_epoch = at.leader_epoch;
    part.timestamp = -1;
    topic.partitions.push(part);
    req.topics.push(topic);
    let (_, resp): (i16, ListOffsetsResponse) = conn.send(ApiKey::ListOffsets, &req).await.ok()?;
    let pr = resp.topics.first()?.partitions.first()?;
    (pr.error_code == 0).then_some(pr.offset)
}
