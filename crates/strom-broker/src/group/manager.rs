//! The async adapter around the group coordinator: it turns the coordinator's deferred replies
//! into awaited futures, drives its timers, and makes commits and group metadata durable in
//! `__consumer_offsets` before they are acknowledged.

use super::classic::{
    Effects, GroupCoordinator, GroupDescription, GroupSettings, GroupState, JoinRequest, JoinResponse, Reply,
    RequestId, SyncRequest, SyncResponse,
};
use super::offsets::{OffsetStore, TopicPartitionKey};
use super::records::{self, CommittedOffset};
use super::store;
use crate::config::BrokerConfig;
use crate::server::{now_ms, Broker};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use strom_protocol::ResponseError;
use tokio::sync::{oneshot, Notify};

mod loading;

/// Who commits: a group member (generation ≥ 0) or a standalone consumer (generation -1).
pub struct CommitIdentity {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// A commit appended to `__consumer_offsets` and waiting for the ISR; visible to OffsetFetch
/// once [`GroupManager::commit_replicated`] is told it got there.
pub struct StagedCommit {
    pub appended: store::Appended,
    group: String,
    values: Vec<(String, i32, CommittedOffset)>,
}

/// One line of ListGroups.
pub struct GroupSummary {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// DescribeGroups' view of a group.
pub struct GroupInfo {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberInfo>,
}

pub struct MemberInfo {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

struct Inner {
    coordinator: GroupCoordinator,
    offsets: OffsetStore,
    joins: HashMap<RequestId, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<RequestId, oneshot::Sender<SyncResponse>>,
    /// `__consumer_offsets` partitions whose load found commits above the high watermark, with
    /// the leader epoch of that load: until the HW passes them their groups' offsets are not
    /// answered (COORDINATOR_LOAD_IN_PROGRESS), or a reader would see an older offset than the
    /// one the previous coordinator answered.
    settling: HashMap<i32, i32>,
}

pub struct GroupManager {
    inner: Mutex<Inner>,
    next_request: AtomicU64,
    /// Wakes the timer task when a new deadline may be earlier than the one it sleeps for.
    timers: Notify,
    offset_metadata_max_bytes: usize,
    offsets_retention_ms: i64,
}

/// Forgets the channel of a deferred request whose waiting future was dropped (the client went
/// away). The coordinator keeps the member as joined/synced, as Kafka does: its answer is lost and
/// the client asks again after reconnecting.
struct CancelOnDrop<'a> {
    manager: &'a GroupManager,
    id: RequestId,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut inner = self.manager.lock();
            inner.joins.remove(&self.id);
            inner.syncs.remove(&self.id);
        }
    }
}

impl GroupManager {
    pub fn new(config: &BrokerConfig) -> GroupManager {
        let settings = GroupSettings {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            max_size: config.group_max_size,
        };
        GroupManager {
            inner: Mutex::new(Inner {
                coordinator: GroupCoordinator::new(settings),
                offsets: OffsetStore::default(),
                joins: HashMap::new(),
                syncs: HashMap::new(),
                settling: HashMap::new(),
            }),
            next_request: AtomicU64::new(1),
            timers: Notify::new(),
            offset_metadata_max_bytes: config.offset_metadata_max_bytes,
            offsets_retention_ms: config.offsets_retention_minutes.saturating_mul(60_000),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands deferred replies to their waiters and writes changed groups to the log.
    fn apply_effects(&self, broker: &Broker, inner: &mut Inner, effects: Effects) {
        for (id, resp) in effects.joins {
            if let Some(tx) = inner.joins.remove(&id) {
                let _ = tx.send(resp);
            }
        }
        for (id, resp) in effects.syncs {
            if let Some(tx) = inner.syncs.remove(&id) {
                let _ = tx.send(resp);
            }
        }
        for group_id in effects.groups_to_persist {
            let value = inner.coordinator.snapshot(&group_id).map(|s| records::encode_group_value(&s));
            let entry = (records::encode_group_key(&group_id), value);
            if let Err(e) = store::append(broker, &group_id, &[entry], now_ms()) {
                tracing::warn!(group = %group_id, "could not persist group metadata: {:?}", e.message);
            }
        }
    }

    /// A request may have set an earlier deadline than the one the timer task sleeps for. (Never
    /// called from the timer task itself: a stored permit would make it spin.)
    fn deadlines_changed(&self) {
        self.timers.notify_one();
    }

    pub async fn join(&self, broker: &Broker, req: JoinRequest) -> JoinResponse {
        if let Some(code) = store::not_coordinator(broker, &req.group_id) {
            return JoinResponse::error(code);
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let reply = {
            let mut inner = self.lock();
            inner.joins.insert(id, tx);
            let (reply, effects) = inner.coordinator.join_group(id, req, now_ms());
            if matches!(reply, Reply::Now(_)) {
                inner.joins.remove(&id);
            }
            self.apply_effects(broker, &mut inner, effects);
            reply
        };
        self.deadlines_changed();
        match reply {
            Reply::Now(resp) => resp,
            Reply::Later => {
                let mut guard = CancelOnDrop { manager: self, id, armed: true };
                let result = rx.await;
                guard.armed = false;
                result.unwrap_or_else(|_| JoinResponse::error(ResponseError::CoordinatorNotAvailable.code()))
            }
        }
    }

    pub async fn sync(&self, broker: &Broker, req: SyncRequest) -> SyncResponse {
        if let Some(code) = store::not_coordinator(broker, &req.group_id) {
            return SyncResponse::error(code);
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let reply = {
            let mut inner = self.lock();
            inner.syncs.insert(id, tx);
            let (reply, effects) = inner.coordinator.sync_group(id, req, now_ms());
            if matches!(reply, Reply::Now(_)) {
                inner.syncs.remove(&id);
            }
            self.apply_effects(broker, &mut inner, effects);
            reply
        };
        self.deadlines_changed();
        match reply {
            Reply::Now(resp) => resp,
            Reply::Later => {
                let mut guard = CancelOnDrop { manager: self, id, armed: true };
                let result = rx.await;
                guard.armed = false;
                result.unwrap_or_else(|_| SyncResponse::error(ResponseError::CoordinatorNotAvailable.code()))
            }
        }
    }

    pub fn heartbeat(
        &self,
        broker: &Broker,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        if let Some(code) = store::not_coordinator(broker, group) {
            return code;
        }
        let mut inner = self.lock();
        let (code, effects) = inner.coordinator.heartbeat(group, generation, member, instance, now_ms());
        // A heartbeat only pushes a deadline later: no need to wake the timer.
        self.apply_effects(broker, &mut inner, effects);
        code
    }

    pub fn leave(&self, broker: &Broker, group: &str, members: &[(String, Option<String>)]) -> (i16, Vec<i16>) {
        if let Some(code) = store::not_coordinator(broker, group) {
            return (code, vec![code; members.len()]);
        }
        let mut inner = self.lock();
        let (code, per_member, effects) = inner.coordinator.leave_group(group, members, now_ms());
        self.apply_effects(broker, &mut inner, effects);
        drop(inner);
        self.deadlines_changed();
        (code, per_member)
    }

    /// Validates and durably stores a commit; returns one error code per offset, in order.
    pub fn commit_offsets(
        &self,
        broker: &Broker,
        who: &CommitIdentity,
        offsets: &[OffsetToCommit],
        now: i64,
    ) -> (Vec<i16>, Option<StagedCommit>) {
        if let Some(code) = store::not_coordinator(broker, &who.group_id) {
            return (vec![code; offsets.len()], None);
        }
        let mut inner = self.lock();
        let check = if who.group_id.is_empty() {
            Err(ResponseError::InvalidGroupId.code())
        } else {
            inner.coordinator.validate_commit(
                &who.group_id,
                who.generation_id,
                &who.member_id,
                who.group_instance_id.as_deref(),
                now,
            )
        };
        if let Err(code) = check {
            return (vec![code; offsets.len()], None);
        }
        let image = broker.metadata.image();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut entries = Vec::new();
        let mut accepted = Vec::new();
        for o in offsets {
            let exists = image.topic(&o.topic).is_some_and(|t| t.partitions.contains_key(&o.partition));
            if !exists {
                codes.push(ResponseError::UnknownTopicOrPartition.code());
            } else if o.metadata.len() > self.offset_metadata_max_bytes {
                codes.push(ResponseError::OffsetMetadataTooLarge.code());
            } else {
                let value = CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp_ms: now,
                };
                entries.push((
                    records::encode_offset_key(&who.group_id, &o.topic, o.partition),
                    Some(records::encode_offset_value(&value)),
                ));
                accepted.push((codes.len(), o.topic.clone(), o.partition, value));
                codes.push(0);
            }
        }
        let appended = match store::append(broker, &who.group_id, &entries, now) {
            Ok(appended) => appended,
            Err(e) => {
                tracing::warn!(group = %who.group_id, "offset commit failed: {:?}", e.message);
                for (i, ..) in &accepted {
                    codes[*i] = e.code();
                }
                return (codes, None);
            }
        };
        let Some(appended) = appended else { return (codes, None) };
        let record_offset = appended.end_offset - 1;
        for (_, topic, partition, _) in &accepted {
            inner.offsets.stage(&who.group_id, topic, *partition, record_offset);
        }
        let values = accepted.into_iter().map(|(_, topic, partition, value)| (topic, partition, value)).collect();
        (codes, Some(StagedCommit { appended, group: who.group_id.clone(), values }))
    }

    /// A staged commit reached the ISR (`replicated`) or did not: the offsets become visible,
    /// or stay as they were.
    pub fn commit_replicated(&self, staged: StagedCommit, replicated: bool) {
        let record_offset = staged.appended.end_offset - 1;
        let mut inner = self.lock();
        // Last first: a partition named twice in one commit keeps its last value, as the log
        // replays it.
        for (topic, partition, value) in staged.values.into_iter().rev() {
            inner.offsets.complete(&staged.group, &topic, partition, replicated.then_some(value), record_offset);
        }
    }

    pub fn committed_offsets(&self, group: &str) -> Vec<(TopicPartitionKey, CommittedOffset)> {
        self.lock().offsets.group_offsets(group)
    }

    /// Groups known to the coordinator, plus groups that only have committed offsets (standalone
    /// consumers), which Kafka lists as Empty.
    pub fn list(&self, states: &[String]) -> Vec<GroupSummary> {
        let inner = self.lock();
        let mut out: Vec<GroupSummary> = inner
            .coordinator
            .list_groups()
            .into_iter()
            .map(|g| GroupSummary { group_id: g.group_id, protocol_type: g.protocol_type, state: g.state.to_string() })
            .collect();
        for group in inner.offsets.groups() {
            if !out.iter().any(|g| g.group_id == group) {
                out.push(GroupSummary { group_id: group, protocol_type: String::new(), state: "Empty".into() });
            }
        }
        out.retain(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state)));
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    pub fn describe(&self, group: &str) -> GroupInfo {
        let inner = self.lock();
        let d = inner.coordinator.describe_group(group);
        let mut info = GroupInfo {
            state: d.state.to_string(),
            protocol_type: d.protocol_type,
            protocol: d.protocol,
            members: d
                .members
                .into_iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    metadata: m.metadata,
                    assignment: m.assignment,
                })
                .collect(),
        };
        if info.state == "Dead" && inner.offsets.has_offsets(group) {
            info.state = "Empty".into();
        }
        info
    }

    pub fn delete_group(&self, broker: &Broker, group: &str) -> i16 {
        if let Some(code) = store::not_coordinator(broker, group) {
            return code;
        }
        let mut inner = self.lock();
        let code = inner.coordinator.delete_group(group);
        let only_offsets = code == ResponseError::GroupIdNotFound.code() && inner.offsets.has_offsets(group);
        if code != 0 && !only_offsets {
            return code;
        }
        // Tombstones for the pending commits too: their records are in the log, and a new
        // coordinator would load them back.
        let mut partitions: Vec<TopicPartitionKey> =
            inner.offsets.group_offsets(group).into_iter().map(|(tp, _)| tp).collect();
        partitions.extend(inner.offsets.pending_partitions(group));
        partitions.sort();
        partitions.dedup();
        let mut entries: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            partitions.iter().map(|(t, p)| (records::encode_offset_key(group, t, *p), None)).collect();
        entries.push((records::encode_group_key(group), None));
        let at = match store::append(broker, group, &entries, now_ms()) {
            Ok(appended) => appended.map_or(-1, |a| a.end_offset - 1),
            Err(e) => return e.code(),
        };
        for ((t, p), _) in inner.offsets.group_offsets(group) {
            inner.offsets.apply(group, &t, p, None, at);
        }
        inner.offsets.forget_group_pending(group);
        tracing::info!(group, "deleted group and its offsets");
        0
    }

    /// OffsetDelete: per-partition codes, or a group-level error.
    pub fn delete_offsets(&self, broker: &Broker, group: &str, partitions: &[(String, i32)]) -> Result<Vec<i16>, i16> {
        if let Some(code) = store::not_coordinator(broker, group) {
            return Err(code);
        }
        let mut inner = self.lock();
        if inner.coordinator.group_state(group).is_none() && !inner.offsets.has_offsets(group) {
            return Err(ResponseError::GroupIdNotFound.code());
        }
        let subscribed = subscribed_topics(&inner.coordinator.describe_group(group));
        let image = broker.metadata.image();
        let mut codes = Vec::with_capacity(partitions.len());
        let mut entries = Vec::new();
        let mut deleted = Vec::new();
        for (topic, partition) in partitions {
            if image.topic(topic).is_none_or(|t| !t.partitions.contains_key(partition)) {
                codes.push(ResponseError::UnknownTopicOrPartition.code());
            } else if subscribed.contains(topic) {
                codes.push(ResponseError::GroupSubscribedToTopic.code());
            } else {
                codes.push(0);
                if inner.offsets.get(group, topic, *partition).is_some() {
                    entries.push((records::encode_offset_key(group, topic, *partition), None));
                    deleted.push((topic.clone(), *partition));
                }
            }
        }
        let at =
            store::append(broker, group, &entries, now_ms()).map_err(|e| e.code())?.map_or(-1, |a| a.end_offset - 1);
        for (topic, partition) in deleted {
            inner.offsets.apply(group, &topic, partition, None, at);
        }
        Ok(codes)
    }

    /// Drives session and rebalance timeouts, and expires offsets of empty groups after
    /// offsets.retention.minutes. Runs until `stop` fires.
    pub async fn run_timers(&self, broker: &Broker, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_expiry = now_ms();
        loop {
            let wait = {
                let inner = self.lock();
                let next = inner.coordinator.next_deadline_ms().unwrap_or(i64::MAX);
                (next.saturating_sub(now_ms())).clamp(0, 1000) as u64
            };
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = self.timers.notified() => {}
            }
            let now = now_ms();
            {
                let mut inner = self.lock();
                let effects = inner.coordinator.tick(now);
                self.apply_effects(broker, &mut inner, effects);
            }
            if now - last_expiry >= broker.config.offsets_retention_check_interval_ms as i64 {
                last_expiry = now;
                self.expire_offsets(broker, now);
            }
        }
    }

    /// Kafka's offset expiration: offsets of groups with no members, committed longer ago than
    /// offsets.retention.minutes, are removed.
    fn expire_offsets(&self, broker: &Broker, now: i64) {
        let mut inner = self.lock();
        let cutoff = now - self.offsets_retention_ms;
        for group in inner.offsets.groups() {
            let empty = inner.coordinator.group_state(&group).is_none_or(|s| s == GroupState::Empty);
            if !empty {
                continue;
            }
            let expired = inner.offsets.expired(&group, cutoff);
            if expired.is_empty() {
                continue;
            }
            let entries: Vec<_> =
                expired.iter().map(|(t, p)| (records::encode_offset_key(&group, t, *p), None)).collect();
            if let Ok(appended) = store::append(broker, &group, &entries, now) {
                let at = appended.map_or(-1, |a| a.end_offset - 1);
                for (t, p) in &expired {
                    inner.offsets.apply(&group, t, *p, None, at);
                }
                tracing::info!(group = %group, partitions = expired.len(), "expired committed offsets");
            }
        }
    }
}

/// Topics the members of a "consumer" group subscribe to (from their ConsumerProtocolSubscription).
fn subscribed_topics(d: &GroupDescription) -> Vec<String> {
    use strom_protocol::messages::ConsumerProtocolSubscription;
    use strom_protocol::Decodable;
    if d.protocol_type != "consumer" {
        return Vec::new();
    }
    let mut topics = Vec::new();
    for m in &d.members {
        let mut buf = m.metadata.clone();
        if buf.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([buf[0], buf[1]]);
        let _ = bytes::Buf::get_i16(&mut buf);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)) {
            topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
        }
    }
    topics
}
