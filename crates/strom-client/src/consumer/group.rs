//! Group membership with the classic protocol, client side: find the coordinator, join (two
//! steps since KIP-394), run the assignor when leading, sync, heartbeat on a background task,
//! leave. The poll loop drives joins; the heartbeat task only reports that a rejoin is needed.

use super::assignor::{self, Assignor, GroupAssignment, MemberSubscription, RebalanceProtocol};
use super::config::ConsumerConfig;
use super::offsets::find_coordinator;
use crate::conn::Cluster;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use strom_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use strom_protocol::messages::leave_group_request::MemberIdentity;
use strom_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use strom_protocol::messages::*;
use strom_protocol::StrBytes;

const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const FENCED_INSTANCE_ID: i16 = 82;
/// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS.
const COORDINATOR_ERRORS: [i16; 3] = [16, 15, 14];

/// What the poll loop and the heartbeat task share.
#[derive(Debug)]
pub struct MemberState {
    pub member_id: String,
    pub generation: i32,
    pub coordinator: Option<i32>,
    /// Joined and synced: heartbeats flow.
    pub stable: bool,
    /// The coordinator asked for a rejoin (or the membership was lost).
    pub rejoin_needed: bool,
    /// The membership was lost (fenced, evicted): partitions are gone without a revoke.
    pub lost: bool,
    pub last_poll: Instant,
    pub closed: bool,
}

pub type SharedState = Arc<Mutex<MemberState>>;

pub fn lock(state: &SharedState) -> MutexGuard<'_, MemberState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn new_state() -> SharedState {
    Arc::new(Mutex::new(MemberState {
        member_id: String::new(),
        generation: -1,
        coordinator: None,
        stable: false,
        rejoin_needed: true,
        lost: false,
        last_poll: Instant::now(),
        closed: false,
    }))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The result of a completed join round.
pub struct Joined {
    pub assigned: Vec<TopicPartition>,
    pub protocol: RebalanceProtocol,
}

/// Joins (or rejoins) the group and returns this member's assignment.
pub async fn join(
    cluster: &Cluster,
    cfg: &ConsumerConfig,
    group: &str,
    state: &SharedState,
    topics: &[String],
    owned: &[TopicPartition],
) -> Result<Joined> {
    let assignors: Vec<Box<dyn Assignor>> =
        cfg.assignors.iter().filter_map(|n| assignor::assignor_by_name(n)).collect();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let coordinator = coordinator(cluster, group, state).await?;
        let (member_id, generation) = {
            let st = lock(state);
            (st.member_id.clone(), st.generation)
        };
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId(s(group));
        req.session_timeout_ms = cfg.session_timeout.as_millis() as i32;
        req.rebalance_timeout_ms = cfg.max_poll_interval.as_millis().min(i32::MAX as u128) as i32;
        req.member_id = s(&member_id);
        req.group_instance_id = cfg.group_instance_id.as_deref().map(s);
        req.protocol_type = s("consumer");
        req.protocols = assignors
            .iter()
            .map(|a| {
                let mut p = JoinGroupRequestProtocol::default();
                p.name = s(a.name());
                let user_data = a.subscription_user_data(owned, generation);
                p.metadata = assignor::encode_subscription(topics, user_data.as_ref(), owned, generation, None, 1);
                p
            })
            .collect();
        let resp: JoinGroupResponse = match cluster.send_to(coordinator, ApiKey::JoinGroup, &req).await {
            Ok((_, r)) => r,
            Err(e) if e.is_retriable() && attempts < 20 => {
                lock(state).coordinator = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        match resp.error_code {
            0 => {}
            MEMBER_ID_REQUIRED => {
                lock(state).member_id = resp.member_id.to_string();
                continue;
            }
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                reset(state);
                continue;
            }
            REBALANCE_IN_PROGRESS => continue,
            code if COORDINATOR_ERRORS.contains(&code) && attempts < 20 => {
                lock(state).coordinator = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            code => return Err(ClientError::kafka(code, Some(format!("joining group {group}")))),
        }
        let me = resp.member_id.to_string();
        let protocol_name = resp.protocol_name.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let chosen = assignors.iter().find(|a| a.name() == protocol_name).ok_or_else(|| {
            ClientError::Protocol(format!("the coordinator chose unknown assignor '{protocol_name}'"))
        })?;
        {
            let mut st = lock(state);
            st.member_id = me.clone();
            st.generation = resp.generation_id;
        }
        let assignments = if resp.leader.as_str() == me && !resp.skip_assignment {
            lead(cluster, chosen.as_ref(), &resp).await?
        } else {
            GroupAssignment::new()
        };
        let build = |version: i16| {
            let mut sync = SyncGroupRequest::default();
            sync.group_id = GroupId(s(group));
            sync.generation_id = resp.generation_id;
            sync.member_id = s(&me);
            sync.group_instance_id = cfg.group_instance_id.as_deref().map(s);
            if version >= 5 {
                sync.protocol_type = Some(s("consumer"));
                sync.protocol_name = Some(s(&protocol_name));
            }
            sync.assignments = assignments
                .iter()
                .map(|(member, parts)| {
                    let mut a = SyncGroupRequestAssignment::default();
                    a.member_id = s(member);
                    a.assignment = assignor::encode_assignment(parts, None);
                    a
                })
                .collect();
            sync
        };
        let synced: SyncGroupResponse = match cluster.send_built(coordinator, ApiKey::SyncGroup, build).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() && attempts < 20 => continue,
            Err(e) => return Err(e),
        };
        match synced.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS => continue,
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                reset(state);
                continue;
            }
            code if COORDINATOR_ERRORS.contains(&code) && attempts < 20 => {
                lock(state).coordinator = None;
                continue;
            }
            code => return Err(ClientError::kafka(code, Some(format!("syncing group {group}")))),
        }
        let assigned =
            assignor::decode_assignment(&synced.assignment).map_err(|e| ClientError::Protocol(e.to_string()))?;
        {
            let mut st = lock(state);
            st.stable = true;
            st.rejoin_needed = false;
            st.lost = false;
        }
        tracing::info!(group, member = %me, generation = resp.generation_id, partitions = assigned.len(), "joined group");
        return Ok(Joined { assigned, protocol: chosen.protocol() });
    }
}

/// The leader's part: read every member's subscription, learn the partition counts, assign.
async fn lead(cluster: &Cluster, assignor: &dyn Assignor, resp: &JoinGroupResponse) -> Result<GroupAssignment> {
    let members: Vec<MemberSubscription> = resp
        .members
        .iter()
        .map(|m| {
            assignor::decode_subscription(m.member_id.as_str(), m.group_instance_id.as_deref(), &m.metadata)
                .map_err(|e| ClientError::Protocol(format!("subscription of {}: {e}", m.member_id)))
        })
        .collect::<Result<_>>()?;
    let mut topics: Vec<String> = members.iter().flat_map(|m| m.topics.iter().cloned()).collect();
    topics.sort();
    topics.dedup();
    cluster.add_topics(topics.iter().map(String::as_str));
    let snapshot = cluster.refresh().await?;
    let counts: BTreeMap<String, i32> =
        topics.iter().filter_map(|t| snapshot.topics.get(t).map(|i| (t.clone(), i.partition_count()))).collect();
    let mut assignment = assignor.assign(&counts, &members);
    for m in &members {
        assignment.entry(m.member_id.clone()).or_default();
    }
    Ok(assignment)
}

async fn coordinator(cluster: &Cluster, group: &str, state: &SharedState) -> Result<i32> {
    if let Some(c) = lock(state).coordinator {
        return Ok(c);
    }
    let mut last = None;
    for _ in 0..50 {
        match find_coordinator(cluster, group).await {
            Ok(node) => {
                lock(state).coordinator = Some(node);
                return Ok(node);
            }
            Err(e) if e.is_retriable() => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(ClientError::Closed))
}

/// Forget the membership: the next join starts as a new member.
pub fn reset(state: &SharedState) {
    let mut st = lock(state);
    st.member_id.clear();
    st.generation = -1;
    st.stable = false;
    st.rejoin_needed = true;
}

/// Heartbeats while the member is stable; reports rebalances and lost membership, and leaves
/// the group when poll() was not called within max.poll.interval.ms.
pub async fn heartbeat_loop(cluster: Arc<Cluster>, cfg: ConsumerConfig, group: String, state: SharedState) {
    loop {
        tokio::time::sleep(cfg.heartbeat_interval).await;
        let (member_id, generation, coordinator, stable, last_poll, closed) = {
            let st = lock(&state);
            (st.member_id.clone(), st.generation, st.coordinator, st.stable, st.last_poll, st.closed)
        };
        if closed {
            return;
        }
        let Some(coordinator) = coordinator.filter(|_| stable) else { continue };
        if last_poll.elapsed() > cfg.max_poll_interval {
            tracing::warn!(
                group = %group,
                "poll() was not called within max.poll.interval.ms ({:?}); leaving the group",
                cfg.max_poll_interval
            );
            let _ = leave(&cluster, &cfg, &group, &state).await;
            lock(&state).lost = true;
            continue;
        }
        let mut req = HeartbeatRequest::default();
        req.group_id = GroupId(s(&group));
        req.generation_id = generation;
        req.member_id = s(&member_id);
        req.group_instance_id = cfg.group_instance_id.as_deref().map(s);
        let code = match cluster.send_to::<_, HeartbeatResponse>(coordinator, ApiKey::Heartbeat, &req).await {
            Ok((_, r)) => r.error_code,
            Err(e) => {
                tracing::debug!(group = %group, "heartbeat failed: {e}");
                lock(&state).coordinator = None;
                continue;
            }
        };
        let mut st = lock(&state);
        if st.generation != generation {
            continue;
        }
        match code {
            0 => {}
            REBALANCE_IN_PROGRESS => {
                st.rejoin_needed = true;
            }
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID => {
                tracing::warn!(group = %group, code, "membership lost; rejoining");
                st.lost = true;
                st.stable = false;
                st.rejoin_needed = true;
                if code != FENCED_INSTANCE_ID {
                    st.member_id.clear();
                    st.generation = -1;
                }
            }
            c if COORDINATOR_ERRORS.contains(&c) => st.coordinator = None,
            c => tracing::warn!(group = %group, code = c, "unexpected heartbeat error"),
        }
    }
}

/// LeaveGroup for a dynamic member. A static member does not leave on close, so that a restart
/// within session.timeout.ms causes no rebalance (KIP-345).
pub async fn leave(cluster: &Cluster, cfg: &ConsumerConfig, group: &str, state: &SharedState) -> Result<()> {
    let (member_id, coordinator) = {
        let st = lock(state);
        (st.member_id.clone(), st.coordinator)
    };
    reset(state);
    if cfg.group_instance_id.is_some() || member_id.is_empty() {
        return Ok(());
    }
    let Some(coordinator) = coordinator else { return Ok(()) };
    let build = |version: i16| {
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(s(group));
        if version >= 3 {
            let mut m = MemberIdentity::default();
            m.member_id = s(&member_id);
            if version >= 5 {
                m.reason = Some(s("the consumer is leaving the group"));
            }
            req.members = vec![m];
        } else {
            req.member_id = s(&member_id);
        }
        req
    };
    let resp: LeaveGroupResponse = cluster.send_built(coordinator, ApiKey::LeaveGroup, build).await?;
    crate::error::check(resp.error_code)
}
