//! Offsets: the group coordinator (FindCoordinator), commits (OffsetCommit), committed offsets
//! (OffsetFetch) and log offsets by time (ListOffsets). Used by the consumer and the admin client.

use crate::conn::Cluster;
use crate::error::{check, ClientError, Result};
use crate::TopicPartition;
use std::collections::{BTreeMap, HashMap};
use strom_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strom_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use strom_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use strom_protocol::messages::*;
use strom_protocol::{ResponseError, StrBytes};

/// ListOffsets timestamps with special meaning.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// An offset to commit, with Kafka's optional metadata string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    pub metadata: String,
}

impl OffsetAndMetadata {
    pub fn new(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata { offset, metadata: String::new() }
    }
}

/// Who commits: a member of a generation, or a standalone consumer (generation -1, no member id).
#[derive(Debug, Clone, Default)]
pub struct CommitAs {
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The coordinator of `group` (FindCoordinator), as a broker id known to the cluster view.
pub async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<i32> {
    let mut req = FindCoordinatorRequest::default();
    req.key = s(group);
    req.key_type = 0;
    let resp: FindCoordinatorResponse = cluster.send_any(ApiKey::FindCoordinator, &req).await?;
    if resp.error_code != 0 {
        return Err(ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
    }
    let node = resp.node_id.0;
    if !cluster.snapshot().brokers.contains_key(&node) {
        cluster.refresh().await?;
    }
    Ok(node)
}

pub async fn commit(
    cluster: &Cluster,
    coordinator: i32,
    group: &str,
    who: &CommitAs,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, o) in offsets {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = tp.partition;
        p.committed_offset = o.offset;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some(s(&o.metadata));
        topics.entry(&tp.topic).or_default().push(p);
    }
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = who.generation_id;
    req.member_id = s(&who.member_id);
    req.group_instance_id = who.group_instance_id.as_deref().map(s);
    req.retention_time_ms = -1;
    req.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(s(name));
            t.partitions = partitions;
            t
        })
        .collect();
    let (_, resp): (i16, OffsetCommitResponse) = cluster.send_to(coordinator, ApiKey::OffsetCommit, &req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::kafka(
                    p.error_code,
                    Some(format!("committing {}-{}", t.name.0, p.partition_index)),
                ));
            }
        }
    }
    Ok(())
}

/// Committed offsets of `group` for `partitions` (all of the group's when empty). Partitions
/// without a commit are absent.
/// [`fetch_committed`] asked again for up to request.timeout.ms while the answer is retriable, as
/// Java's consumer and admin client retry: a coordinator still loading
/// (COORDINATOR_LOAD_IN_PROGRESS) is asked again, a moved one (NOT_COORDINATOR,
/// COORDINATOR_NOT_AVAILABLE) is found again. `coordinator` is the one to ask first, if known;
/// the answer names the one that answered.
pub async fn fetch_committed_retrying(
    cluster: &Cluster,
    mut coordinator: Option<i32>,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<(i32, BTreeMap<TopicPartition, OffsetAndMetadata>)> {
    let deadline = std::time::Instant::now() + cluster.config.request_timeout;
    loop {
        let attempt = async {
            let c = match coordinator {
                Some(c) => c,
                None => find_coordinator(cluster, group).await?,
            };
            fetch_committed(cluster, c, group, partitions).await.map(|offsets| (c, offsets))
        };
        match attempt.await {
            Err(e) if e.is_retriable() && std::time::Instant::now() < deadline => {
                tracing::debug!(group, "fetching committed offsets will be retried: {e}");
                if e.code() != Some(ResponseError::CoordinatorLoadInProgress.code()) {
                    coordinator = None;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

pub async fn fetch_committed(
    cluster: &Cluster,
    coordinator: i32,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(s(group));
    req.require_stable = false;
    if partitions.is_empty() {
        req.topics = None;
    } else {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        req.topics = Some(
            by_topic
                .into_iter()
                .map(|(name, ps)| {
                    let mut t = OffsetFetchRequestTopic::default();
                    t.name = TopicName(s(name));
                    t.partition_indexes = ps;
                    t
                })
                .collect(),
        );
    }
    let (_, resp): (i16, OffsetFetchResponse) = cluster.send_to(coordinator, ApiKey::OffsetFetch, &req).await?;
    check(resp.error_code)?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(p.error_code)?;
            if p.committed_offset >= 0 {
                out.insert(
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    OffsetAndMetadata {
                        offset: p.committed_offset,
                        metadata: p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// ListOffsets for each partition at a timestamp (or [`EARLIEST`] / [`LATEST`]), asked of each
/// partition's leader. The answer is (offset, timestamp); offset -1 when no record is that late.
/// A leader that moved (or one that is behind or deposed: UNKNOWN_ / FENCED_LEADER_EPOCH) is
/// asked again with fresh metadata for up to request.timeout.ms, as Java's clients retry.
pub async fn list_offsets(
    cluster: &Cluster,
    query: &BTreeMap<TopicPartition, i64>,
    isolation_level: i8,
) -> Result<HashMap<TopicPartition, (i64, i64)>> {
    let deadline = std::time::Instant::now() + cluster.config.request_timeout;
    loop {
        match list_offsets_once(cluster, query, isolation_level).await {
            Err(e) if e.is_retriable() && std::time::Instant::now() < deadline => {
                tracing::debug!("listing offsets will be retried: {e}");
                if e.needs_metadata_refresh() {
                    // A failed refresh is one more reason to try again, not the end.
                    let _ = cluster.refresh().await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn list_offsets_once(
    cluster: &Cluster,
    query: &BTreeMap<TopicPartition, i64>,
    isolation_level: i8,
) -> Result<HashMap<TopicPartition, (i64, i64)>> {
    let snapshot = cluster.snapshot();
    let mut by_leader: HashMap<i32, Vec<(&TopicPartition, i64, i32)>> = HashMap::new();
    for (tp, ts) in query {
        let (leader, epoch) = snapshot
            .topics
            .get(&tp.topic)
            .and_then(|t| t.leader_and_epoch(tp.partition))
            .ok_or_else(|| ClientError::kafka(3, Some(format!("no leader known for {tp}"))))?;
        by_leader.entry(leader).or_default().push((tp, *ts, epoch));
    }
    let mut out = HashMap::new();
    for (leader, parts) in by_leader {
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (tp, ts, epoch) in parts {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = tp.partition;
            p.timestamp = ts;
            // A deposed leader refuses (UNKNOWN_LEADER_EPOCH) instead of answering from its log.
            p.current_leader_epoch = epoch;
            topics.entry(&tp.topic).or_default().push(p);
        }
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.isolation_level = isolation_level;
        req.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = ListOffsetsTopic::default();
                t.name = TopicName(s(name));
                t.partitions = partitions;
                t
            })
            .collect();
        let (_, resp): (i16, ListOffsetsResponse) = cluster.send_to(leader, ApiKey::ListOffsets, &req).await?;
        for t in resp.topics {
            for p in t.partitions {
                check(p.error_code)?;
                out.insert(TopicPartition::new(t.name.0.to_string(), p.partition_index), (p.offset, p.timestamp));
            }
        }
    }
    Ok(out)
}
