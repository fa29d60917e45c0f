//! Fetch: return stored batches as they are, waiting up to `max_wait_ms` until `min_bytes` are
//! available (the fetch purgatory). Consumers read up to the high watermark; a follower (the
//! request names a replica id) reads up to the log end, its fetch offset tells the leader how
//! far it has come (which may move the high watermark and the ISR), and a follower whose last
//! fetched epoch ends earlier in the leader's log is told the diverging epoch instead of data.
//!
//! Consumers of Fetch v11+ may read from a follower, up to its high watermark (KIP-392); with
//! `replica.selector.class=...RackAwareReplicaSelector` the leader sends a consumer that names
//! its rack to an in-sync follower in that rack (`preferred_read_replica`, no data).
//!
//! From v16 a partition refused with NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH names its
//! current leader, and the response that leader's endpoint (KIP-951).
//!
//! Incremental fetch sessions (KIP-227, `fetch_session.rs`): a full fetch with epoch 0 opens
//! one, an incremental fetch reads every partition of its session and is answered with those
//! that have news.

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::fetch_session::SessionContext;
use crate::purgatory::FetchPurgatory;
use crate::replica::quota::is_throttled;
use crate::replica::read_replica::{rack_aware, ReplicaView};
use crate::replica::{Partition, ReadLimit};
use crate::server::{now_ms, Broker};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use strom_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use strom_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;
use strom_storage::FileRegion;
use tokio::time::Instant;

/// Upper bound on how long a fetch may wait, whatever the client asks.
const MAX_WAIT_CAP_MS: u64 = 30_000;

/// A fetch response whose record data stays in segment files until it is written: the records
/// field of each partition named in `regions` is an empty placeholder for that file region.
pub struct FetchAnswer {
    pub response: FetchResponse,
    /// (topic index, partition index in that topic, its regions in offset order), in response
    /// order.
    pub regions: Vec<(usize, usize, Vec<FileRegion>)>,
}

impl FetchAnswer {
    fn without_data(response: FetchResponse) -> FetchAnswer {
        FetchAnswer { response, regions: Vec::new() }
    }
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, mut req: FetchRequest) -> FetchAnswer {
    let replica_id = if ctx.api_version >= 15 { req.replica_state.replica_id.0 } else { req.replica_id.0 };
    // An incremental fetch has its request rewritten to every partition of its session.
    let session = match broker.fetch_sessions.begin(&mut req, ctx.api_version, replica_id >= 0, now_ms()) {
        Ok(session) => session,
        Err(code) => {
            let mut resp = FetchResponse::default();
            resp.error_code = code.code();
            return FetchAnswer::without_data(resp);
        }
    };
    let answer = fetch_until_ready(broker, ctx, &req, replica_id).await;
    finish_session(broker, ctx, &req, &session, answer)
}

/// Reads until `min_bytes` are there, an error or news must be answered, or `max_wait_ms` passed.
async fn fetch_until_ready(broker: &Broker, ctx: &RequestContext, req: &FetchRequest, replica_id: i32) -> FetchAnswer {
    let deadline = Instant::now() + Duration::from_millis((req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP_MS));
    let min_bytes = req.min_bytes.max(0) as usize;
    loop {
        let mut wakeups = broker.fetch_purgatory.subscribe();
        let (answer, bytes, has_error) = read_once(broker, ctx, req, replica_id);
        if bytes >= min_bytes || has_error || Instant::now() >= deadline {
            return answer;
        }
        if !FetchPurgatory::wait(&mut wakeups, deadline).await {
            // Deadline passed with nothing new: answer with what there is (possibly nothing).
            return read_once(broker, ctx, req, replica_id).0;
        }
    }
}

/// Gives the answer its session id, and for an incremental fetch keeps only the partitions
/// with news (the file regions of the records follow their partitions' new places).
fn finish_session(
    broker: &Broker,
    ctx: &RequestContext,
    req: &FetchRequest,
    session: &SessionContext,
    answer: FetchAnswer,
) -> FetchAnswer {
    let FetchAnswer { mut response, regions } = answer;
    let with_records: std::collections::HashSet<(usize, usize)> = regions.iter().map(|(t, p, _)| (*t, *p)).collect();
    let kept = broker
        .fetch_sessions
        .finish(session, req, &mut response, ctx.api_version, now_ms(), |t, p| with_records.contains(&(t, p)));
    if !matches!(session, SessionContext::Incremental { .. }) {
        return FetchAnswer { response, regions };
    }
    // Old (topic, partition) indexes → new ones, in the order kept.
    let mut moved: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    let mut topic_at = None;
    let (mut new_topic, mut new_partition) = (0usize, 0usize);
    for (t, p) in kept {
        if topic_at != Some(t) {
            if topic_at.is_some() {
                new_topic += 1;
            }
            topic_at = Some(t);
            new_partition = 0;
        }
        moved.insert((t, p), (new_topic, new_partition));
        new_partition += 1;
    }
    let regions = regions.into_iter().filter_map(|(t, p, r)| moved.get(&(t, p)).map(|&(nt, np)| (nt, np, r))).collect();
    FetchAnswer { response, regions }
}

/// One pass over the requested partitions. Returns the answer, the record bytes in it, and
/// whether it must be answered at once (an error, a redirect or a diverging epoch in it).
fn read_once(broker: &Broker, ctx: &RequestContext, req: &FetchRequest, replica_id: i32) -> (FetchAnswer, usize, bool) {
    let from_follower = replica_id >= 0;
    let from_consumer_v11 = !from_follower && ctx.api_version >= 11;
    let limit_to = match (from_follower, req.isolation_level) {
        (true, _) => ReadLimit::LogEnd,
        (false, 1) => ReadLimit::LastStable,
        (false, _) => ReadLimit::HighWatermark,
    };
    let use_ids = ctx.api_version >= 13;
    let image = broker.metadata.image();
    let mut resp = FetchResponse::default();
    let mut budget = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut has_error = false;
    // A redirect or a diverging epoch is news the client needs now, like an error.
    let mut answer_now = false;
    let mut regions = Vec::new();
    // Reassignments may throttle what a leader sends to replicas out of the ISR.
    let leader_rate = broker.dynamic.current().leader_replication_throttled_rate;
    let throttle_checked = from_follower && leader_rate < i64::MAX as u64;
    let mut throttled_bytes = 0usize;
    for (topic_index, ft) in req.topics.iter().enumerate() {
        let topic = if use_ids { image.topic_by_id(&ft.topic_id) } else { image.topic(ft.topic.0.as_str()) };
        let mut topic_resp = FetchableTopicResponse::default();
        topic_resp.topic = ft.topic.clone();
        topic_resp.topic_id = ft.topic_id;
        for (partition_index, fp) in ft.partitions.iter().enumerate() {
            let mut pd = PartitionData::default();
            pd.partition_index = fp.partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            // As Kafka: a list (maybe empty) for read_committed, null for read_uncommitted.
            pd.aborted_transactions = (req.isolation_level == 1).then(Vec::new);
            let result: Result<(), KafkaError> = (|| {
                let t = topic.ok_or(if use_ids {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                })?;
                // Consumers of v11+ may read from followers (KIP-392); everything else from leaders.
                let partition = if from_consumer_v11 {
                    super::cluster_view::hosted_replica(broker, &t.name, fp.partition)?
                } else {
                    super::cluster_view::led_partition(broker, &t.name, fp.partition)?
                };
                check_leader_epoch(fp.current_leader_epoch, partition.leader_epoch())?;
                // Each partition gets at most partition_max_bytes of what is left of max_bytes;
                // only the first partition with data may exceed that, by its first batch, so that
                // a consumer always makes progress (KIP-74).
                let limit = (fp.partition_max_bytes.max(0) as usize).min(budget);
                let (start, hw, lso) = partition.stable_offsets()?;
                pd.high_watermark = hw;
                pd.last_stable_offset = lso;
                if ctx.api_version >= 5 {
                    pd.log_start_offset = start;
                }
                if from_consumer_v11 && broker.config.cluster.rack_aware_replica_selector && partition.is_leader() {
                    // An offset out of range is answered here, so that the consumer resets it
                    // rather than being sent back and forth.
                    let in_range = partition.log_bounds().ok().filter(|(s, e)| (*s..=*e).contains(&fp.fetch_offset));
                    let redirect = in_range.and_then(|(_, end)| {
                        preferred_read_replica(broker, &image, &partition, end, req.rack_id.as_str(), fp.fetch_offset)
                    });
                    if let Some(id) = redirect {
                        // Sent elsewhere: no data, answered at once, as Kafka does.
                        pd.preferred_read_replica = BrokerId(id);
                        pd.records = Some(Bytes::new());
                        answer_now = true;
                        return Ok(());
                    }
                }
                if from_follower {
                    if ctx.api_version >= 12 {
                        if let Some((epoch, end_offset)) =
                            partition.diverging_epoch(fp.last_fetched_epoch, fp.fetch_offset)?
                        {
                            pd.diverging_epoch.epoch = epoch;
                            pd.diverging_epoch.end_offset = end_offset;
                            pd.records = Some(Bytes::new());
                            answer_now = true;
                            return Ok(());
                        }
                    }
                    let commands =
                        partition.follower_fetched(replica_id, fp.fetch_offset, fp.log_start_offset, now_ms())?;
                    crate::replica::isr::apply(broker, &partition, commands);
                    pd.high_watermark = partition.high_watermark();
                }
                let throttled = throttle_checked
                    && is_throttled(
                        &image,
                        &t.name,
                        "leader.replication.throttled.replicas",
                        fp.partition,
                        broker.config.node_id,
                    );
                if throttled
                    && !partition.isr().contains(&replica_id)
                    && broker.replication_quotas.leader.exceeded(leader_rate)
                {
                    // Over the throttle: this replica gets no data this time (Kafka's empty records).
                    pd.records = Some(Bytes::new());
                    return Ok(());
                }
                if limit == 0 && total > 0 {
                    return Ok(());
                }
                let read = partition.read_region(fp.fetch_offset, limit.max(1), limit_to)?;
                pd.high_watermark = read.high_watermark;
                pd.last_stable_offset = read.last_stable_offset;
                if req.isolation_level == 1 {
                    pd.aborted_transactions = Some(read.aborted.iter().map(aborted_transaction).collect());
                }
                if ctx.api_version >= 5 {
                    pd.log_start_offset = read.log_start_offset;
                }
                pd.records = Some(Bytes::new());
                let len: usize = read.regions.iter().map(|r| r.len).sum();
                if len > 0 && (total == 0 || len <= limit) {
                    if throttled {
                        throttled_bytes += len;
                    }
                    total += len;
                    budget = budget.saturating_sub(len);
                    regions.push((topic_index, partition_index, read.regions));
                }
                Ok(())
            })();
            if let Err(e) = result {
                has_error = true;
                pd.error_code = e.code();
            }
            topic_resp.partitions.push(pd);
        }
        if !use_ids && topic.is_none() {
            topic_resp.topic = TopicName(StrBytes::from_string(ft.topic.0.to_string()));
        }
        resp.responses.push(topic_resp);
    }
    broker.replication_quotas.leader.record(throttled_bytes);
    if ctx.api_version >= 16 {
        add_leader_hints(broker, &image, &mut resp, use_ids);
    }
    (FetchAnswer { response: resp, regions }, total, has_error || answer_now)
}

/// KIP-951 (Fetch v16+): a partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH
/// names its current leader and epoch, and the response carries that leader's endpoint.
fn add_leader_hints(broker: &Broker, image: &strom_metadata::MetadataImage, resp: &mut FetchResponse, use_ids: bool) {
    let hinted = [ResponseError::NotLeaderOrFollower.code(), ResponseError::FencedLeaderEpoch.code()];
    let mut endpoints: BTreeMap<i32, NodeEndpoint> = BTreeMap::new();
    for topic in &mut resp.responses {
        let name = if use_ids {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in topic.partitions.iter_mut().filter(|p| hinted.contains(&p.error_code)) {
            let Some((leader, epoch, node)) = super::cluster_view::leader_of(broker, &name, p.partition_index) else {
                continue;
            };
            p.current_leader.leader_id = BrokerId(leader);
            p.current_leader.leader_epoch = epoch;
            endpoints.entry(leader).or_insert_with(|| super::cluster_view::node_endpoint!(NodeEndpoint, node));
        }
    }
    resp.node_endpoints = endpoints.into_values().collect();
}

/// The follower a consumer in `client_rack` should read `partition` from (this broker leads
/// it), by `replica.selector.class`; `None` to read here.
fn preferred_read_replica(
    broker: &Broker,
    image: &strom_metadata::MetadataImage,
    partition: &Partition,
    log_end_offset: i64,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    if client_rack.is_empty() {
        return None;
    }
    let leader = ReplicaView {
        id: broker.config.node_id,
        rack: broker.config.cluster.rack.clone(),
        log_end_offset,
        since_caught_up_ms: 0,
    };
    let followers: Vec<ReplicaView> = partition
        .read_replica_candidates(fetch_offset, now_ms())
        .into_iter()
        .filter_map(|(id, log_end_offset, since_caught_up_ms)| {
            // Only a broker clients can reach now.
            let b =
                image.brokers.get(&id).filter(|b| !b.fenced && b.endpoint(&broker.config.listener.name).is_some())?;
            Some(ReplicaView { id, rack: b.rack.clone(), log_end_offset, since_caught_up_ms })
        })
        .collect();
    rack_aware(client_rack, &leader, &followers)
}

/// KIP-320: a client that knows a newer epoch than ours talks to a stale leader; one that knows an
/// older epoch has stale metadata. -1 means the client does not say.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), KafkaError> {
    match requested {
        -1 => Ok(()),
        e if e > current => Err(ResponseError::UnknownLeaderEpoch.into()),
        e if e < current => Err(ResponseError::FencedLeaderEpoch.into()),
        _ => Ok(()),
    }
}

fn aborted_transaction(a: &strom_storage::transactions::AbortedTxn) -> AbortedTransaction {
    let mut out = AbortedTransaction::default();
    out.producer_id = ProducerId(a.producer_id);
    out.first_offset = a.first_offset;
    out
}
