//! Scenario tests of the coordinator, driven with an explicit clock.

use super::*;
use bytes::Bytes;

pub(super) const SESSION: i32 = 10_000;
pub(super) const REBALANCE: i32 = 30_000;

pub(super) fn settings(delay: i32) -> GroupSettings {
    GroupSettings {
        min_session_timeout_ms: 1_000,
        max_session_timeout_ms: 60_000,
        initial_rebalance_delay_ms: delay,
        max_size: 100,
    }
}

pub(super) fn request(group: &str, member: &str, instance: Option<&str>, protocols: &[(&str, &str)]) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        group_instance_id: instance.map(String::from),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|(n, m)| (n.to_string(), Bytes::from(m.to_string()))).collect(),
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

/// Collects the deferred replies of every call.
#[derive(Default)]
pub(super) struct Inbox {
    pub joins: Vec<(RequestId, JoinResponse)>,
    pub syncs: Vec<(RequestId, SyncResponse)>,
    pub persisted: Vec<String>,
}

impl Inbox {
    pub fn take(&mut self, fx: Effects) {
        self.joins.extend(fx.joins);
        self.syncs.extend(fx.syncs);
        self.persisted.extend(fx.groups_to_persist);
    }

    pub fn join(&mut self, id: RequestId) -> Option<JoinResponse> {
        let i = self.joins.iter().position(|(r, _)| *r == id)?;
        Some(self.joins.remove(i).1)
    }

    pub fn sync(&mut self, id: RequestId) -> Option<SyncResponse> {
        let i = self.syncs.iter().position(|(r, _)| *r == id)?;
        Some(self.syncs.remove(i).1)
    }
}

fn now_reply<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Later => panic!("expected an immediate reply"),
    }
}

/// Two-step join; returns the member id (the join itself is pending).
fn join_new(c: &mut GroupCoordinator, inbox: &mut Inbox, rid: RequestId, group: &str, now: i64) -> String {
    let (r, fx) = c.join_group(rid, request(group, "", None, &[("range", "m")]), now);
    inbox.take(fx);
    let first = now_reply(r);
    assert_eq!(first.error, codes::MEMBER_ID_REQUIRED);
    let (r, fx) = c.join_group(rid, request(group, &first.member_id, None, &[("range", "m")]), now);
    inbox.take(fx);
    assert!(matches!(r, Reply::Later));
    first.member_id
}

fn sync(
    c: &mut GroupCoordinator,
    inbox: &mut Inbox,
    rid: RequestId,
    gen: i32,
    member: &str,
    plan: &[(&str, &str)],
    now: i64,
) -> Reply<SyncResponse> {
    let req = SyncRequest {
        group_id: "g".into(),
        generation_id: gen,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: plan.iter().map(|(m, a)| (m.to_string(), Bytes::from(a.to_string()))).collect(),
    };
    let (r, fx) = c.sync_group(rid, req, now);
    inbox.take(fx);
    r
}

#[test]
fn first_member_round_completes_at_once_without_initial_delay() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    let resp = inbox.join(1).expect("answered");
    assert_eq!((resp.error, resp.generation_id, resp.leader.as_str()), (0, 1, a.as_str()));
    assert_eq!(resp.members.len(), 1, "the leader sees the members");
    assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
    let r = sync(&mut c, &mut inbox, 2, 1, &a, &[(a.as_str(), "p0")], 0);
    assert!(matches!(r, Reply::Later));
    assert_eq!(&inbox.sync(2).expect("leader answered").assignment[..], b"p0");
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    assert_eq!(inbox.persisted, vec!["g".to_string()]);
}

#[test]
fn initial_delay_gathers_members_into_one_generation() {
    let mut c = GroupCoordinator::new(settings(1_000));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    let b = join_new(&mut c, &mut inbox, 2, "g", 500);
    inbox.take(c.tick(999));
    assert!(inbox.joins.is_empty(), "still within the delay");
    assert_eq!(c.next_deadline_ms(), Some(1_000));
    inbox.take(c.tick(1_000));
    assert!(inbox.joins.is_empty(), "a member arrived during the delay: it is extended");
    let next = c.next_deadline_ms().expect("deadline");
    inbox.take(c.tick(next));
    let (ra, rb) = (inbox.join(1).expect("a"), inbox.join(2).expect("b"));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a);
    assert_eq!((ra.members.len(), rb.members.len()), (2, 0));
    assert_eq!(rb.member_id, b);
}

#[test]
fn a_newcomer_makes_everyone_rejoin_and_the_generation_advance() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1).expect("gen 1");
    assert!(matches!(sync(&mut c, &mut inbox, 2, 1, &a, &[(a.as_str(), "all")], 0), Reply::Later));
    let b = join_new(&mut c, &mut inbox, 3, "g", 10);
    assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
    let (code, _) = c.heartbeat("g", 1, &a, None, 20);
    assert_eq!(code, codes::REBALANCE_IN_PROGRESS);
    let (r, fx) = c.join_group(4, request("g", &a, None, &[("range", "m")]), 30);
    inbox.take(fx);
    assert!(matches!(r, Reply::Later));
    let (ra, rb) = (inbox.join(4).expect("a"), inbox.join(3).expect("b"));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, a, "the leader stays");
    // A stale generation is refused.
    let (code, _) = c.heartbeat("g", 1, &b, None, 40);
    assert_eq!(code, codes::ILLEGAL_GENERATION);
    // The follower waits for the leader.
    assert!(matches!(sync(&mut c, &mut inbox, 5, 2, &b, &[], 50), Reply::Later));
    assert!(inbox.sync(5).is_none());
    sync(&mut c, &mut inbox, 6, 2, &a, &[(a.as_str(), "x"), (b.as_str(), "y")], 60);
    assert_eq!(&inbox.sync(5).expect("b").assignment[..], b"y");
    assert_eq!(&inbox.sync(6).expect("a").assignment[..], b"x");
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    sync(&mut c, &mut inbox, 2, 1, &a, &[], 0);
    let _b = join_new(&mut c, &mut inbox, 3, "g", 100);
    // A keeps heartbeating but never rejoins.
    for t in (1_000..REBALANCE as i64).step_by(1_000) {
        c.heartbeat("g", 1, &a, None, t);
        inbox.take(c.tick(t));
    }
    assert!(inbox.join(3).is_none());
    inbox.take(c.tick(100 + REBALANCE as i64));
    let rb = inbox.join(3).expect("round completed");
    assert_eq!((rb.generation_id, rb.members.len()), (2, 1), "b leads alone");
    assert_eq!(c.heartbeat("g", 2, &a, None, 40_000).0, codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_silent_member_is_evicted_after_its_session_timeout() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    sync(&mut c, &mut inbox, 2, 1, &a, &[], 0);
    assert_eq!(c.next_deadline_ms(), Some(SESSION as i64));
    inbox.take(c.tick(SESSION as i64 - 1));
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    inbox.take(c.tick(SESSION as i64));
    assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    assert_eq!(c.snapshot("g").expect("kept").generation, 2, "emptying is a generation of its own");
}

#[test]
fn leaving_members_trigger_a_rebalance_and_the_last_one_empties_the_group() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    sync(&mut c, &mut inbox, 2, 1, &a, &[], 0);
    let (code, per, fx) = c.leave_group("g", &[(a.clone(), None), ("nobody".into(), None)], 5);
    inbox.take(fx);
    assert_eq!((code, per), (0, vec![0, codes::UNKNOWN_MEMBER_ID]));
    assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    assert_eq!(c.delete_group("g"), 0);
    assert_eq!(c.delete_group("g"), codes::GROUP_ID_NOT_FOUND);
    assert_eq!(c.describe_group("g").state, GroupState::Dead);
}

#[test]
fn incompatible_protocols_are_refused() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    join_new(&mut c, &mut inbox, 1, "g", 0);
    let (r, _) = c.join_group(2, request("g", "", None, &[("roundrobin", "m")]), 1);
    assert_eq!(now_reply(r).error, codes::INCONSISTENT_GROUP_PROTOCOL);
    let (r, _) = c.join_group(3, request("g", "", None, &[]), 1);
    assert_eq!(now_reply(r).error, codes::INCONSISTENT_GROUP_PROTOCOL);
}

#[test]
fn the_protocol_most_members_prefer_among_common_ones_wins() {
    let mut c = GroupCoordinator::new(settings(1_000));
    let mut inbox = Inbox::default();
    let both = [("range", "m"), ("cooperative-sticky", "m")];
    let sticky_first = [("cooperative-sticky", "m"), ("range", "m")];
    for (rid, protocols) in [(1, &both[..]), (2, &sticky_first[..]), (3, &sticky_first[..])] {
        let (r, fx) = c.join_group(rid, request("g", "", None, protocols), 0);
        inbox.take(fx);
        let id = now_reply(r).member_id;
        let (_, fx) = c.join_group(rid, request("g", &id, None, protocols), 0);
        inbox.take(fx);
    }
    while inbox.joins.is_empty() {
        let deadline = c.next_deadline_ms().expect("a round in progress");
        inbox.take(c.tick(deadline));
    }
    assert_eq!(inbox.join(1).expect("a").protocol_name.as_deref(), Some("cooperative-sticky"));
}

#[test]
fn group_max_size_refuses_extra_members() {
    let mut c = GroupCoordinator::new(GroupSettings { max_size: 1, ..settings(0) });
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    sync(&mut c, &mut inbox, 2, 1, &a, &[], 0);
    let (r, _) = c.join_group(3, request("g", "", None, &[("range", "m")]), 1);
    assert_eq!(now_reply(r).error, codes::GROUP_MAX_SIZE_REACHED);
}

#[test]
fn session_timeouts_outside_the_broker_bounds_are_refused() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut req = request("g", "", None, &[("range", "m")]);
    req.session_timeout_ms = 500;
    assert_eq!(now_reply(c.join_group(1, req, 0).0).error, codes::INVALID_SESSION_TIMEOUT);
    assert_eq!(
        now_reply(c.join_group(2, request("", "", None, &[("range", "m")]), 0).0).error,
        codes::INVALID_GROUP_ID
    );
    assert_eq!(
        now_reply(c.join_group(3, request("g", "ghost", None, &[("range", "m")]), 0).0).error,
        codes::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_static_member_returns_without_a_rebalance_and_fences_its_old_id() {
    let mut c = GroupCoordinator::new(settings(1_000));
    let mut inbox = Inbox::default();
    let (ra, fx) = c.join_group(1, request("g", "", Some("ia"), &[("range", "m")]), 0);
    inbox.take(fx);
    let (rb, fx) = c.join_group(2, request("g", "", Some("ib"), &[("range", "m")]), 10);
    inbox.take(fx);
    assert!(matches!((ra, rb), (Reply::Later, Reply::Later)), "static members join in one step");
    let deadline = c.next_deadline_ms().expect("deadline");
    inbox.take(c.tick(deadline));
    let deadline = c.next_deadline_ms().expect("extended deadline");
    inbox.take(c.tick(deadline));
    let (ja, jb) = (inbox.join(1).expect("a"), inbox.join(2).expect("b"));
    let (a, b) = (ja.member_id.clone(), jb.member_id.clone());
    sync(&mut c, &mut inbox, 3, 1, &b, &[], deadline);
    sync(&mut c, &mut inbox, 4, 1, &a, &[(a.as_str(), "pa"), (b.as_str(), "pb")], deadline);
    assert_eq!(&inbox.sync(3).expect("b").assignment[..], b"pb");

    // A restarts with a new member id.
    let (r, fx) = c.join_group(5, request("g", "", Some("ia"), &[("range", "m")]), deadline + 100);
    inbox.take(fx);
    let back = now_reply(r);
    assert_eq!((back.error, back.generation_id), (0, 1));
    assert!(back.skip_assignment, "the returning leader must not reassign (KIP-814)");
    assert_eq!(c.group_state("g"), Some(GroupState::Stable));
    assert_eq!(c.heartbeat("g", 1, &b, Some("ib"), deadline + 200).0, 0);
    let r = now_reply(sync(&mut c, &mut inbox, 6, 1, &back.member_id, &[], deadline + 300));
    assert_eq!(&r.assignment[..], b"pa");
    assert_eq!(c.heartbeat("g", 1, &a, Some("ia"), deadline + 400).0, codes::FENCED_INSTANCE_ID);
}

#[test]
fn commits_are_checked_against_membership_and_generation() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    assert_eq!(c.validate_commit("standalone", -1, "", None, 0), Ok(()));
    assert_eq!(c.validate_commit("unknown", 3, "m", None, 0), Err(codes::ILLEGAL_GENERATION));
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    assert_eq!(c.validate_commit("g", 1, &a, None, 0), Err(codes::REBALANCE_IN_PROGRESS));
    sync(&mut c, &mut inbox, 2, 1, &a, &[], 0);
    assert_eq!(c.validate_commit("g", 1, &a, None, 0), Ok(()));
    assert_eq!(c.validate_commit("g", 0, &a, None, 0), Err(codes::ILLEGAL_GENERATION));
    assert_eq!(c.validate_commit("g", 1, "other", None, 0), Err(codes::UNKNOWN_MEMBER_ID));
    // An admin client's commit (no member, generation -1) to a group with members: Kafka
    // answers UNKNOWN_MEMBER_ID, not ILLEGAL_GENERATION.
    assert_eq!(c.validate_commit("g", -1, "", None, 0), Err(codes::UNKNOWN_MEMBER_ID));
    // A generation with no member id is checked as the member "" (unknown), as Kafka does.
    assert_eq!(c.validate_commit("g", 1, "", None, 0), Err(codes::UNKNOWN_MEMBER_ID));
    // A static instance id nobody holds.
    assert_eq!(c.validate_commit("g", 1, &a, Some("nobody"), 0), Err(codes::UNKNOWN_MEMBER_ID));
}

#[test]
fn a_snapshot_restores_a_stable_group() {
    let mut c = GroupCoordinator::new(settings(0));
    let mut inbox = Inbox::default();
    let a = join_new(&mut c, &mut inbox, 1, "g", 0);
    inbox.join(1);
    sync(&mut c, &mut inbox, 2, 1, &a, &[(a.as_str(), "pa")], 0);
    let stored = c.snapshot("g").expect("snapshot");
    let mut restored = GroupCoordinator::new(settings(0));
    restored.restore("g".into(), stored.clone(), 1_000);
    assert_eq!(restored.group_state("g"), Some(GroupState::Stable));
    assert_eq!(restored.snapshot("g"), Some(StoredGroup { ..stored }));
    assert_eq!(restored.heartbeat("g", 1, &a, None, 1_001).0, 0);
}
