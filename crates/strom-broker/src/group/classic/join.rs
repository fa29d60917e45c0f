//! JoinGroup, as Kafka's GroupCoordinator handles it: new members (with KIP-394's two-step join
//! for dynamic members), known members rejoining, and static members (KIP-345) replacing their
//! previous incarnation without a rebalance.

use super::codes;
use super::group::{Group, Member};
use super::types::{Effects, GroupState, JoinRequest, JoinResponse, Reply, RequestId};
use super::GroupCoordinator;
use bytes::Bytes;

impl GroupCoordinator {
    /// Handles one JoinGroup. The answer usually comes later, when the round completes.
    pub fn join_group(&mut self, request: RequestId, req: JoinRequest, now: i64) -> (Reply<JoinResponse>, Effects) {
        let mut fx = Effects::default();
        let reply = self.do_join(request, req, now, &mut fx);
        (reply, fx)
    }

    fn do_join(&mut self, request: RequestId, req: JoinRequest, now: i64, fx: &mut Effects) -> Reply<JoinResponse> {
        let fail = |code| Reply::Now(JoinResponse::error(code));
        if req.group_id.is_empty() {
            return fail(codes::INVALID_GROUP_ID);
        }
        let s = &self.settings;
        if req.session_timeout_ms < s.min_session_timeout_ms || req.session_timeout_ms > s.max_session_timeout_ms {
            return fail(codes::INVALID_SESSION_TIMEOUT);
        }
        let known_member = !req.member_id.is_empty();
        if !self.groups.contains_key(&req.group_id) {
            if known_member {
                return fail(codes::UNKNOWN_MEMBER_ID);
            }
            self.groups.insert(req.group_id.clone(), Group::new(&req.group_id, now));
        }
        let delay = self.settings.initial_rebalance_delay_ms;
        let max_size = self.settings.max_size;
        let group = self.groups.get_mut(&req.group_id).expect("inserted above");
        let reply = if !accepts_joining_member(group, &req.member_id, max_size) {
            group.remove_member(&req.member_id);
            fail(codes::GROUP_MAX_SIZE_REACHED)
        } else if known_member {
            join_known_member(group, request, req, delay, fx, now)
        } else {
            join_new_member(group, request, req, delay, fx, now)
        };
        group.try_complete_join(fx, now);
        if group.state == GroupState::Empty && group.generation == 0 && group.members.is_empty() {
            // A failed first join leaves nothing worth keeping.
            let id = group.group_id.clone();
            if group.pending_members.is_empty() {
                self.groups.remove(&id);
            }
        }
        reply
    }
}

/// Kafka's acceptJoiningMember: group.max.size counts members awaiting join while a round is in
/// progress, and all members otherwise.
fn accepts_joining_member(group: &Group, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            group.members.get(member_id).is_some_and(|m| m.pending_join.is_some())
                || group.members.values().filter(|m| m.pending_join.is_some()).count() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max_size
        }
    }
}

fn join_new_member(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    delay: i32,
    fx: &mut Effects,
    now: i64,
) -> Reply<JoinResponse> {
    if !group.accepts_protocols(&req.protocol_type, &req.protocols) {
        return Reply::Now(JoinResponse::error(codes::INCONSISTENT_GROUP_PROTOCOL));
    }
    let member_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
    if let Some(instance) = req.group_instance_id.clone() {
        if let Some(old_id) = group.static_members.get(&instance).cloned() {
            return replace_static_member(group, request, req, &old_id, member_id, delay, fx, now);
        }
        add_member_and_rebalance(group, request, req, member_id, delay, fx, now);
        return Reply::Later;
    }
    if req.require_known_member_id {
        // KIP-394: the member retries with this id; until then it only holds a place.
        group.pending_members.insert(member_id.clone(), now + req.session_timeout_ms as i64);
        return Reply::Now(JoinResponse { member_id, ..JoinResponse::error(codes::MEMBER_ID_REQUIRED) });
    }
    add_member_and_rebalance(group, request, req, member_id, delay, fx, now);
    Reply::Later
}

fn join_known_member(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    delay: i32,
    fx: &mut Effects,
    now: i64,
) -> Reply<JoinResponse> {
    let fail = |code| Reply::Now(JoinResponse::error(code));
    if group.pending_members.contains_key(&req.member_id) {
        let member_id = req.member_id.clone();
        add_member_and_rebalance(group, request, req, member_id, delay, fx, now);
        return Reply::Later;
    }
    let instance = req.group_instance_id.as_deref();
    if group.is_static_member_fenced(instance, &req.member_id) {
        return fail(codes::FENCED_INSTANCE_ID);
    }
    let instance_unknown = instance.is_some_and(|i| !group.static_members.contains_key(i));
    if !group.members.contains_key(&req.member_id) || instance_unknown {
        return fail(codes::UNKNOWN_MEMBER_ID);
    }
    if !group.accepts_protocols(&req.protocol_type, &req.protocols) {
        return fail(codes::INCONSISTENT_GROUP_PROTOCOL);
    }
    let member = &group.members[&req.member_id];
    let unchanged = member.protocols == req.protocols;
    let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, request, req, delay, fx, now);
            Reply::Later
        }
        // The member missed its JoinGroup answer: repeat it.
        GroupState::CompletingRebalance if unchanged => Reply::Now(group.join_response(&req.member_id)),
        // Nothing changed for a follower: it keeps the current generation.
        GroupState::Stable if unchanged && !is_leader => {
            refresh_session(group, &req.member_id, now);
            Reply::Now(group.join_response(&req.member_id))
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member_and_rebalance(group, request, req, delay, fx, now);
            Reply::Later
        }
        GroupState::Empty | GroupState::Dead => fail(codes::UNKNOWN_MEMBER_ID),
    }
}

fn refresh_session(group: &mut Group, member_id: &str, now: i64) {
    if let Some(m) = group.members.get_mut(member_id) {
        m.session_deadline_ms = now + m.session_timeout_ms as i64;
    }
}

fn add_member_and_rebalance(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    member_id: String,
    delay: i32,
    fx: &mut Effects,
    now: i64,
) {
    if group.members.is_empty() {
        group.protocol_type = Some(req.protocol_type.clone());
    }
    if let Some(instance) = &req.group_instance_id {
        group.static_members.insert(instance.clone(), member_id.clone());
    }
    if group.leader.is_none() {
        group.leader = Some(member_id.clone());
    }
    group.pending_members.remove(&member_id);
    let join_order = group.next_join_order;
    group.next_join_order += 1;
    tracing::info!(group = %group.group_id, member = %member_id, "new member joined");
    group.members.insert(
        member_id.clone(),
        Member {
            member_id,
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            pending_join: Some(request),
            pending_sync: None,
            session_deadline_ms: now + req.session_timeout_ms as i64,
            join_order,
        },
    );
    if group.state == GroupState::PreparingRebalance && group.initial_join {
        group.initial_member_added = true;
    }
    group.maybe_prepare_rebalance(delay, fx, now, "a member joined");
}

fn update_member_and_rebalance(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    delay: i32,
    fx: &mut Effects,
    now: i64,
) {
    let member = group.members.get_mut(&req.member_id).expect("caller checked membership");
    let reason =
        if member.protocols != req.protocols { "a member's subscription changed" } else { "a member rejoined" };
    if let Some(old) = member.pending_join.replace(request) {
        fx.joins.push((old, JoinResponse::error(codes::REBALANCE_IN_PROGRESS)));
    }
    member.protocols = req.protocols;
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    member.session_deadline_ms = now + req.session_timeout_ms as i64;
    group.maybe_prepare_rebalance(delay, fx, now, reason);
}

/// KIP-345: a static member came back with a new member id. The old id is fenced; a stable group
/// keeps its generation and assignment when the chosen protocol does not change.
#[allow(clippy::too_many_arguments)]
fn replace_static_member(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    old_id: &str,
    new_id: String,
    delay: i32,
    fx: &mut Effects,
    now: i64,
) -> Reply<JoinResponse> {
    let Some(mut member) = group.members.remove(old_id) else {
        return Reply::Now(JoinResponse::error(codes::UNKNOWN_MEMBER_ID));
    };
    if let Some(old) = member.pending_join.take() {
        fx.joins.push((old, JoinResponse::error(codes::FENCED_INSTANCE_ID)));
    }
    if let Some(old) = member.pending_sync.take() {
        fx.syncs.push((old, super::types::SyncResponse::error(codes::FENCED_INSTANCE_ID)));
    }
    let old_leader = group.leader.clone().unwrap_or_default();
    if group.leader.as_deref() == Some(old_id) {
        group.leader = Some(new_id.clone());
    }
    if group.awaiting_sync.remove(old_id) {
        group.awaiting_sync.insert(new_id.clone());
    }
    let instance = req.group_instance_id.clone().expect("static member has an instance id");
    group.static_members.insert(instance.clone(), new_id.clone());
    member.member_id = new_id.clone();
    member.client_id = req.client_id;
    member.client_host = req.client_host;
    member.protocols = req.protocols;
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    member.session_deadline_ms = now + req.session_timeout_ms as i64;
    group.members.insert(new_id.clone(), member);
    tracing::info!(group = %group.group_id, instance = %instance, old = %old_id, new = %new_id, "static member rejoined");
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol => {
            fx.groups_to_persist.push(group.group_id.clone());
            let mut response = group.join_response(&new_id);
            if req.supports_skip_assignment {
                // KIP-814: a returning leader learns the members but must not reassign.
                response.skip_assignment = response.leader == new_id;
            } else {
                // Older clients: an old leader id keeps the returning member from assigning.
                response.leader = old_leader;
                response.members.clear();
            }
            Reply::Now(response)
        }
        GroupState::Stable | GroupState::CompletingRebalance | GroupState::PreparingRebalance => {
            group.members.get_mut(&new_id).expect("inserted above").pending_join = Some(request);
            group.maybe_prepare_rebalance(delay, fx, now, "a static member rejoined with changes");
            Reply::Later
        }
        GroupState::Empty | GroupState::Dead => Reply::Now(JoinResponse::error(codes::UNKNOWN_MEMBER_ID)),
    }
}
