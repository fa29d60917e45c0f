//! The classic group coordinator as a state machine without I/O: calls take the current time and
//! return a reply (now or later) plus [`Effects`] (deferred replies, groups to persist). The
//! async adapter in `group::manager` owns the clock, the channels and the log.
//!
//! States follow Kafka: Empty → PreparingRebalance (members (re)join; the round ends when all
//! have, or at the rebalance timeout) → CompletingRebalance (the leader computes the assignment
//! and sends it in SyncGroup) → Stable. Generation ids only grow.

mod codes;
mod group;
mod join;
mod members;
mod rebalance;
mod types;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use types::*;

use crate::group::records::{StoredGroup, StoredMember};
use group::{Group, Member};
use std::collections::HashMap;

pub struct GroupCoordinator {
    settings: GroupSettings,
    groups: HashMap<String, Group>,
}

impl GroupCoordinator {
    pub fn new(settings: GroupSettings) -> GroupCoordinator {
        GroupCoordinator { settings, groups: HashMap::new() }
    }

    /// Applies every session and round timeout that has passed by `now`.
    pub fn tick(&mut self, now: i64) -> Effects {
        let mut fx = Effects::default();
        let delay = self.settings.initial_rebalance_delay_ms;
        for group in self.groups.values_mut() {
            if group.next_deadline_ms().is_some_and(|d| d <= now) {
                group.expire(delay, &mut fx, now);
            }
        }
        fx
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups.values().filter_map(Group::next_deadline_ms).min()
    }

    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    pub fn list_groups(&self) -> Vec<GroupListing> {
        self.groups
            .values()
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// DescribeGroups' view: an unknown group is Dead; metadata and assignments only when Stable.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let Some(g) = self.groups.get(group_id) else {
            return GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        let stable = g.state == GroupState::Stable;
        let protocol = if stable { g.protocol.clone().unwrap_or_default() } else { String::new() };
        let mut members: Vec<&Member> = g.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            members: members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable { m.metadata_for(&protocol) } else { Default::default() },
                    assignment: if stable { m.assignment.clone() } else { Default::default() },
                })
                .collect(),
            protocol,
        }
    }

    /// DeleteGroups: only an Empty group can go (its offsets are the adapter's business).
    pub fn delete_group(&mut self, group_id: &str) -> i16 {
        match self.groups.get(group_id).map(|g| g.state) {
            None | Some(GroupState::Dead) => codes::GROUP_ID_NOT_FOUND,
            Some(GroupState::Empty) => {
                self.groups.remove(group_id);
                codes::NONE
            }
            Some(_) => codes::NON_EMPTY_GROUP,
        }
    }

    /// Kafka's checks for OffsetCommit against a group the coordinator knows. A commit from a
    /// member also counts as a sign of life.
    pub fn validate_commit(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        now: i64,
    ) -> Result<(), i16> {
        let Some(g) = self.groups.get_mut(group_id) else {
            return if generation < 0 { Ok(()) } else { Err(codes::ILLEGAL_GENERATION) };
        };
        if g.state == GroupState::Dead {
            return Err(codes::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && g.state == GroupState::Empty {
            // A standalone consumer or an admin client that only stores offsets here.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance.is_some() {
            // Kafka's ClassicGroup.validateMember, then the generation.
            if let Some(i) = instance {
                if !g.static_members.contains_key(i) {
                    return Err(codes::UNKNOWN_MEMBER_ID);
                }
            }
            if g.is_static_member_fenced(instance, member_id) {
                return Err(codes::FENCED_INSTANCE_ID);
            }
            if !g.members.contains_key(member_id) {
                return Err(codes::UNKNOWN_MEMBER_ID);
            }
            if generation != g.generation {
                return Err(codes::ILLEGAL_GENERATION);
            }
        } else {
            // No member and no generation (an admin client's AlterConsumerGroupOffsets, or
            // OffsetCommit v0): only an Empty group takes such commits.
            return Err(codes::UNKNOWN_MEMBER_ID);
        }
        match g.state {
            GroupState::CompletingRebalance => Err(codes::REBALANCE_IN_PROGRESS),
            _ => {
                if let Some(m) = g.members.get_mut(member_id) {
                    m.session_deadline_ms = now + m.session_timeout_ms as i64;
                }
                Ok(())
            }
        }
    }

    /// What `__consumer_offsets` keeps of a group (None: the group is gone, write a tombstone).
    pub fn snapshot(&self, group_id: &str) -> Option<StoredGroup> {
        let g = self.groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        let mut members: Vec<&Member> = g.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        Some(StoredGroup {
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            generation: g.generation,
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            state_timestamp_ms: g.state_timestamp_ms,
            members: members
                .into_iter()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Forgets the groups `unload` names (their coordinator moved to another broker); returns
    /// the ids of the join and sync requests they had waiting, to be answered elsewhere.
    pub fn remove_groups(&mut self, unload: impl Fn(&str) -> bool) -> Vec<RequestId> {
        let doomed: Vec<String> = self.groups.keys().filter(|g| unload(g)).cloned().collect();
        let mut waiting = Vec::new();
        for id in doomed {
            if let Some(g) = self.groups.remove(&id) {
                for m in g.members.values() {
                    waiting.extend(m.pending_join.iter().chain(m.pending_sync.iter()).copied());
                }
            }
        }
        waiting
    }

    /// Rebuilds a group read back from `__consumer_offsets` at start-up. Members get a fresh
    /// session: those that are gone are evicted after their session timeout, as in Kafka.
    pub fn restore(&mut self, group_id: String, stored: StoredGroup, now: i64) {
        let mut g = Group::new(&group_id, now);
        g.generation = stored.generation;
        g.protocol_type = Some(stored.protocol_type).filter(|t| !t.is_empty());
        g.protocol = stored.protocol.clone();
        g.leader = stored.leader;
        g.state_timestamp_ms = stored.state_timestamp_ms;
        let protocol = stored.protocol.unwrap_or_default();
        for (order, m) in stored.members.into_iter().enumerate() {
            if let Some(instance) = &m.group_instance_id {
                g.static_members.insert(instance.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    pending_join: None,
                    pending_sync: None,
                    session_deadline_ms: now + m.session_timeout_ms as i64,
                    join_order: order as u64,
                },
            );
        }
        g.next_join_order = g.members.len() as u64;
        g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        if g.leader.as_ref().is_some_and(|l| !g.members.contains_key(l)) {
            g.leader = None;
        }
        self.groups.insert(group_id, g);
    }
}
