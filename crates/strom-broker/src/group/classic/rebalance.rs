//! The join round of one group: preparing a rebalance, completing it into the next generation,
//! and removing members. These mirror Kafka's GroupCoordinator (prepareRebalance, onCompleteJoin,
//! removeMemberAndUpdateGroup) so that clients see the same sequence of states and errors.

use super::codes;
use super::group::Group;
use super::types::{Effects, GroupState, JoinResponse, SyncResponse};
use bytes::Bytes;

impl Group {
    /// Whether every member has sent JoinGroup for this round (and no KIP-394 member id handed
    /// out is still unused).
    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.pending_join.is_some())
    }

    /// Starts a join round. A rebalance started from Empty waits group.initial.rebalance.delay.ms
    /// so that consumers starting together land in one generation.
    pub fn prepare_rebalance(&mut self, initial_delay_ms: i32, fx: &mut Effects, now: i64, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment the leader may be computing is void; followers waiting for it retry.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(id) = m.pending_sync.take() {
                    fx.syncs.push((id, SyncResponse::error(codes::REBALANCE_IN_PROGRESS)));
                }
            }
        }
        self.awaiting_sync.clear();
        let from_empty = self.state == GroupState::Empty;
        self.transition(GroupState::PreparingRebalance, now);
        self.round_started_ms = now;
        let timeout = self.max_rebalance_timeout_ms();
        if from_empty && initial_delay_ms > 0 {
            self.initial_join = true;
            self.initial_member_added = false;
            self.rebalance_deadline_ms = Some(now + timeout.min(initial_delay_ms as i64));
        } else {
            self.initial_join = false;
            self.rebalance_deadline_ms = Some(now + timeout);
        }
        tracing::info!(group = %self.group_id, generation = self.generation, reason, "preparing to rebalance");
    }

    /// Kafka's maybePrepareRebalance: only Empty, Stable and CompletingRebalance can start a round.
    pub fn maybe_prepare_rebalance(&mut self, initial_delay_ms: i32, fx: &mut Effects, now: i64, reason: &str) {
        if matches!(self.state, GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(initial_delay_ms, fx, now, reason);
        }
    }

    /// Completes the round early when everybody rejoined (the initial delay always runs out).
    pub fn try_complete_join(&mut self, fx: &mut Effects, now: i64) {
        if self.state == GroupState::PreparingRebalance && !self.initial_join && self.all_members_joined() {
            self.complete_join(fx, now);
        }
    }

    /// The round is over: members that did not rejoin are dropped, the generation advances, the
    /// protocol is chosen, and every waiting JoinGroup is answered (the leader with the members).
    pub fn complete_join(&mut self, fx: &mut Effects, now: i64) {
        let missing: Vec<String> =
            self.members.values().filter(|m| m.pending_join.is_none()).map(|m| m.member_id.clone()).collect();
        for id in &missing {
            tracing::info!(group = %self.group_id, member = %id, "member did not rejoin in time, removing it");
            self.remove_member(id);
        }
        self.pending_members.clear();
        self.initial_join = false;
        self.rebalance_deadline_ms = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(GroupState::Empty, now);
            fx.groups_to_persist.push(self.group_id.clone());
            tracing::info!(group = %self.group_id, generation = self.generation, "group is empty");
            return;
        }
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.join_order).map(|m| m.member_id.clone());
        }
        self.protocol = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now);
        self.awaiting_sync = self.members.keys().cloned().collect();
        // Members get the rebalance timeout to send SyncGroup.
        self.rebalance_deadline_ms = Some(now + self.max_rebalance_timeout_ms());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            let member = self.members.get_mut(&id).expect("member listed above");
            member.session_deadline_ms = now + member.session_timeout_ms as i64;
            if let Some(request) = member.pending_join.take() {
                fx.joins.push((request, response));
            }
        }
        tracing::info!(
            group = %self.group_id,
            generation = self.generation,
            members = self.members.len(),
            protocol = self.protocol.as_deref().unwrap_or(""),
            "rebalance round complete, waiting for the leader's assignment"
        );
    }

    /// Forgets a member (no rebalance); a new leader is picked if it led.
    pub fn remove_member(&mut self, member_id: &str) {
        let Some(member) = self.members.remove(member_id) else { return };
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).is_some_and(|id| id == member_id) {
                self.static_members.remove(instance);
            }
        }
        self.awaiting_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.values().min_by_key(|m| m.join_order).map(|m| m.member_id.clone());
        }
    }

    /// A member left or its session expired: answer whatever it was waiting for with
    /// UNKNOWN_MEMBER_ID, remove it, and rebalance the rest.
    pub fn remove_member_and_rebalance(
        &mut self,
        member_id: &str,
        initial_delay_ms: i32,
        fx: &mut Effects,
        now: i64,
        reason: &str,
    ) {
        let Some(member) = self.members.get_mut(member_id) else { return };
        if let Some(request) = member.pending_join.take() {
            fx.joins.push((request, JoinResponse::error(codes::UNKNOWN_MEMBER_ID)));
        }
        if let Some(request) = member.pending_sync.take() {
            fx.syncs.push((request, SyncResponse::error(codes::UNKNOWN_MEMBER_ID)));
        }
        self.remove_member(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(initial_delay_ms, fx, now, reason);
                self.try_complete_join(fx, now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(fx, now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The earliest moment this group needs the timer: a session, a KIP-394 member id, or the round.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.pending_join.is_none() && m.pending_sync.is_none())
            .map(|m| m.session_deadline_ms);
        sessions.chain(self.pending_members.values().copied()).chain(self.rebalance_deadline_ms).min()
    }

    /// Session and round timeouts that have passed by `now`.
    pub fn expire(&mut self, initial_delay_ms: i32, fx: &mut Effects, now: i64) {
        let stale_pending: Vec<String> =
            self.pending_members.iter().filter(|(_, d)| **d <= now).map(|(id, _)| id.clone()).collect();
        for id in stale_pending {
            self.pending_members.remove(&id);
            self.try_complete_join(fx, now);
        }
        let silent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.pending_join.is_none() && m.pending_sync.is_none() && m.session_deadline_ms <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in silent {
            tracing::info!(group = %self.group_id, member = %id, "member's session timed out, removing it");
            self.remove_member_and_rebalance(&id, initial_delay_ms, fx, now, "session timeout");
        }
        let Some(deadline) = self.rebalance_deadline_ms.filter(|d| *d <= now) else { return };
        match self.state {
            GroupState::PreparingRebalance => {
                let limit = self.round_started_ms + self.max_rebalance_timeout_ms();
                if self.initial_join && self.initial_member_added && deadline < limit {
                    self.initial_member_added = false;
                    self.rebalance_deadline_ms = Some((now + initial_delay_ms as i64).min(limit));
                } else {
                    self.initial_join = false;
                    self.complete_join(fx, now);
                }
            }
            GroupState::CompletingRebalance | GroupState::Stable if !self.awaiting_sync.is_empty() => {
                let laggards: Vec<String> = self.awaiting_sync.iter().cloned().collect();
                for id in &laggards {
                    tracing::info!(group = %self.group_id, member = %id, "member did not sync in time, removing it");
                    if let Some(request) = self.members.get_mut(id).and_then(|m| m.pending_sync.take()) {
                        fx.syncs.push((request, SyncResponse::error(codes::REBALANCE_IN_PROGRESS)));
                    }
                    self.remove_member(id);
                }
                self.prepare_rebalance(initial_delay_ms, fx, now, "members failed to sync");
                self.try_complete_join(fx, now);
            }
            _ => self.rebalance_deadline_ms = None,
        }
    }
}
