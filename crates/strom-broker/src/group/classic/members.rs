//! SyncGroup, Heartbeat and LeaveGroup: what members do between and after join rounds.

use super::codes;
use super::group::Group;
use super::types::{Effects, GroupState, Reply, RequestId, SyncRequest, SyncResponse};
use super::GroupCoordinator;
use bytes::Bytes;

impl GroupCoordinator {
    /// Handles one SyncGroup. Followers wait for the leader's assignment; the leader's arrival
    /// makes the group Stable and answers everybody.
    pub fn sync_group(&mut self, request: RequestId, req: SyncRequest, now: i64) -> (Reply<SyncResponse>, Effects) {
        let mut fx = Effects::default();
        let fail = |code| Reply::Now(SyncResponse::error(code));
        if req.group_id.is_empty() {
            return (fail(codes::INVALID_GROUP_ID), fx);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return (fail(codes::UNKNOWN_MEMBER_ID), fx);
        };
        if let Err(code) = check_member(group, &req.member_id, req.group_instance_id.as_deref(), req.generation_id) {
            return (fail(code), fx);
        }
        if req.protocol_type.as_ref().is_some_and(|t| group.protocol_type.as_ref() != Some(t))
            || req.protocol_name.as_ref().is_some_and(|n| group.protocol.as_ref() != Some(n))
        {
            return (fail(codes::INCONSISTENT_GROUP_PROTOCOL), fx);
        }
        let reply = match group.state {
            GroupState::Empty | GroupState::Dead => fail(codes::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => fail(codes::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => {
                member_synced(group, &req.member_id, now);
                let member = group.members.get_mut(&req.member_id).expect("checked above");
                if let Some(old) = member.pending_sync.replace(request) {
                    fx.syncs.push((old, SyncResponse::error(codes::REBALANCE_IN_PROGRESS)));
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    install_assignment(group, req.assignments, &mut fx, now);
                }
                Reply::Later
            }
            GroupState::Stable => {
                member_synced(group, &req.member_id, now);
                Reply::Now(sync_response(group, &group.members[&req.member_id].assignment))
            }
        };
        (reply, fx)
    }

    /// Handles one Heartbeat: keeps the session alive and says whether a rebalance is under way.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        now: i64,
    ) -> (i16, Effects) {
        let fx = Effects::default();
        if group_id.is_empty() {
            return (codes::INVALID_GROUP_ID, fx);
        }
        let Some(group) = self.groups.get_mut(group_id) else { return (codes::UNKNOWN_MEMBER_ID, fx) };
        if let Err(code) = check_member(group, member_id, instance, generation) {
            return (code, fx);
        }
        let member = group.members.get_mut(member_id).expect("checked above");
        let code = match group.state {
            GroupState::Empty | GroupState::Dead => return (codes::UNKNOWN_MEMBER_ID, fx),
            GroupState::PreparingRebalance => codes::REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => codes::NONE,
        };
        member.session_deadline_ms = now + member.session_timeout_ms as i64;
        (code, fx)
    }

    /// Handles LeaveGroup for a batch of (member id, group instance id); a static member may be
    /// named by its instance id alone. Returns the group-level code and one code per member.
    pub fn leave_group(
        &mut self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
        now: i64,
    ) -> (i16, Vec<i16>, Effects) {
        let mut fx = Effects::default();
        if group_id.is_empty() {
            return (codes::INVALID_GROUP_ID, Vec::new(), fx);
        }
        let delay = self.settings.initial_rebalance_delay_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return (codes::NONE, vec![codes::UNKNOWN_MEMBER_ID; leaving.len()], fx);
        };
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance) in leaving {
            let code = match instance {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    None => codes::UNKNOWN_MEMBER_ID,
                    Some(current) if !member_id.is_empty() && current != *member_id => codes::FENCED_INSTANCE_ID,
                    Some(current) => {
                        tracing::info!(group = %group_id, member = %current, instance = %instance, "static member left");
                        group.remove_member_and_rebalance(&current, delay, &mut fx, now, "a static member left");
                        codes::NONE
                    }
                },
                None if group.pending_members.remove(member_id).is_some() => {
                    group.try_complete_join(&mut fx, now);
                    codes::NONE
                }
                None if !group.members.contains_key(member_id) => codes::UNKNOWN_MEMBER_ID,
                None => {
                    tracing::info!(group = %group_id, member = %member_id, "member left");
                    group.remove_member_and_rebalance(member_id, delay, &mut fx, now, "a member left");
                    codes::NONE
                }
            };
            results.push(code);
        }
        (codes::NONE, results, fx)
    }
}

/// The checks Kafka makes, in its order, before SyncGroup and Heartbeat.
fn check_member(group: &Group, member_id: &str, instance: Option<&str>, generation: i32) -> Result<(), i16> {
    if group.state == GroupState::Dead {
        Err(codes::COORDINATOR_NOT_AVAILABLE)
    } else if group.is_static_member_fenced(instance, member_id) {
        Err(codes::FENCED_INSTANCE_ID)
    } else if !group.members.contains_key(member_id) {
        Err(codes::UNKNOWN_MEMBER_ID)
    } else if generation != group.generation {
        Err(codes::ILLEGAL_GENERATION)
    } else {
        Ok(())
    }
}

fn member_synced(group: &mut Group, member_id: &str, now: i64) {
    group.awaiting_sync.remove(member_id);
    if group.awaiting_sync.is_empty() && group.state != GroupState::PreparingRebalance {
        group.rebalance_deadline_ms = None;
    }
    if let Some(m) = group.members.get_mut(member_id) {
        m.session_deadline_ms = now + m.session_timeout_ms as i64;
    }
}

fn sync_response(group: &Group, assignment: &Bytes) -> SyncResponse {
    SyncResponse {
        error: codes::NONE,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        assignment: assignment.clone(),
    }
}

/// The leader's assignment arrived: store it (members it left out get nothing), become Stable,
/// persist the group, and answer every waiting SyncGroup.
fn install_assignment(group: &mut Group, assignments: Vec<(String, Bytes)>, fx: &mut Effects, now: i64) {
    for member in group.members.values_mut() {
        member.assignment = Bytes::new();
    }
    for (member_id, assignment) in assignments {
        if let Some(member) = group.members.get_mut(&member_id) {
            member.assignment = assignment;
        }
    }
    group.transition(GroupState::Stable, now);
    fx.groups_to_persist.push(group.group_id.clone());
    let waiting: Vec<(RequestId, Bytes)> =
        group.members.values_mut().filter_map(|m| m.pending_sync.take().map(|r| (r, m.assignment.clone()))).collect();
    for (request, assignment) in waiting {
        fx.syncs.push((request, sync_response(group, &assignment)));
    }
    tracing::info!(group = %group.group_id, generation = group.generation, members = group.members.len(), "group is stable");
}
