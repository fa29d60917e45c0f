//! The classic group protocol on the wire, where exact error codes and timing matter: the
//! KIP-394 two-step join, session-timeout eviction, static membership (KIP-345), offset commit
//! metadata, and the admin APIs' error codes.

mod support;

use bytes::{BufMut, Bytes, BytesMut};
use std::time::{Duration, Instant};
use strom_protocol::messages::*;
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

const BROKER: &[&str] = &["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"];
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

/// A ConsumerProtocolSubscription v0 for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1);
    b.freeze()
}

fn join(c: &mut RawClient, group: &str, member: &str, instance: Option<&str>, session_ms: i32) -> JoinGroupResponse {
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    p.metadata = subscription(&["t"]);
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.into()));
    req.session_timeout_ms = session_ms;
    req.rebalance_timeout_ms = 10_000;
    req.member_id = StrBytes::from_string(member.into());
    req.group_instance_id = instance.map(|i| StrBytes::from_string(i.into()));
    req.protocol_type = StrBytes::from_static_str("consumer");
    req.protocols = vec![p];
    c.call(ApiKey::JoinGroup, 5, &req)
}

/// Two-step join (KIP-394) for a dynamic member; one call for a static one.
fn join_fully(c: &mut RawClient, group: &str, instance: Option<&str>, session_ms: i32) -> JoinGroupResponse {
    let first = join(c, group, "", instance, session_ms);
    if first.error_code == MEMBER_ID_REQUIRED {
        return join(c, group, first.member_id.as_str(), instance, session_ms);
    }
    first
}

fn sync(
    c: &mut RawClient,
    group: &str,
    gen: i32,
    member: &str,
    instance: Option<&str>,
    assign: &[(&str, &str)],
) -> SyncGroupResponse {
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.into()));
    req.generation_id = gen;
    req.member_id = StrBytes::from_string(member.into());
    req.group_instance_id = instance.map(|i| StrBytes::from_string(i.into()));
    req.assignments = assign
        .iter()
        .map(|(m, a)| {
            let mut x = sync_group_request::SyncGroupRequestAssignment::default();
            x.member_id = StrBytes::from_string(m.to_string());
            x.assignment = Bytes::from(a.to_string());
            x
        })
        .collect();
    c.call(ApiKey::SyncGroup, 3, &req)
}

fn heartbeat(c: &mut RawClient, group: &str, gen: i32, member: &str, instance: Option<&str>) -> i16 {
    let mut req = HeartbeatRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.into()));
    req.generation_id = gen;
    req.member_id = StrBytes::from_string(member.into());
    req.group_instance_id = instance.map(|i| StrBytes::from_string(i.into()));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &req);
    r.error_code
}

#[test]
fn two_step_join_sync_commit_and_fetch_with_metadata() {
    let broker = TestBroker::start(BROKER);
    let mut c = RawClient::connect(&broker.bootstrap());
    let mut md = metadata_request::MetadataRequestTopic::default();
    md.name = Some(TopicName(StrBytes::from_static_str("t")));
    let mut mreq = MetadataRequest::default();
    mreq.topics = Some(vec![md]);
    let _: MetadataResponse = c.call(ApiKey::Metadata, 12, &mreq);

    let mut fc = FindCoordinatorRequest::default();
    fc.key = StrBytes::from_static_str("g");
    let f: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &fc);
    assert_eq!((f.error_code, f.node_id.0), (0, 1));

    let first = join(&mut c, "g", "", None, 5000);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty(), "the broker hands out the member id");
    let joined = join(&mut c, "g", first.member_id.as_str(), None, 5000);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let me = joined.member_id.to_string();
    let synced = sync(&mut c, "g", joined.generation_id, &me, None, &[(&me, "all-of-t")]);
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"all-of-t");
    assert_eq!(heartbeat(&mut c, "g", joined.generation_id, &me, None), 0);
    assert_eq!(heartbeat(&mut c, "g", joined.generation_id, "stranger", None), UNKNOWN_MEMBER_ID);

    // Commit with a metadata string, read it back through both OffsetFetch forms.
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 42;
    p.committed_metadata = Some(StrBytes::from_static_str("checkpoint-42"));
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p.clone()];
    let mut missing = offset_commit_request::OffsetCommitRequestTopic::default();
    missing.name = TopicName(StrBytes::from_static_str("no-such-topic"));
    missing.partitions = vec![p];
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.generation_id_or_member_epoch = joined.generation_id;
    commit.member_id = StrBytes::from_string(me.clone());
    commit.topics = vec![t, missing];
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(r.topics[1].partitions[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let mut fetch = OffsetFetchRequest::default();
    let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
    g.group_id = GroupId(StrBytes::from_static_str("g"));
    g.topics = None;
    fetch.groups = vec![g];
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &fetch);
    let part = &r.groups[0].topics[0].partitions[0];
    assert_eq!((part.committed_offset, part.metadata.as_deref()), (42, Some("checkpoint-42")));
    let mut single = OffsetFetchRequest::default();
    single.group_id = GroupId(StrBytes::from_static_str("g"));
    let mut ft = offset_fetch_request::OffsetFetchRequestTopic::default();
    ft.name = TopicName(StrBytes::from_static_str("t"));
    ft.partition_indexes = vec![0];
    single.topics = Some(vec![ft]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 5, &single);
    assert_eq!(r.topics[0].partitions[0].committed_offset, 42);

    let mut list = ListGroupsRequest::default();
    list.states_filter = vec![StrBytes::from_static_str("Stable")];
    let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &list);
    assert!(r.groups.iter().any(|g| g.group_id.as_str() == "g" && g.group_state.as_str() == "Stable"));
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(StrBytes::from_static_str("g"))];
    let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del);
    assert_eq!(r.results[0].error_code, NON_EMPTY_GROUP);
}

#[test]
fn a_silent_member_is_evicted_after_its_session_timeout() {
    let broker = TestBroker::start(BROKER);
    let (mut a, mut b) = (RawClient::connect(&broker.bootstrap()), RawClient::connect(&broker.bootstrap()));
    let ja = join_fully(&mut a, "evict", None, 1500);
    let a_id = ja.member_id.to_string();
    assert_eq!(sync(&mut a, "evict", ja.generation_id, &a_id, None, &[(&a_id, "x")]).error_code, 0);
    // B joins while A keeps heartbeating: A learns of the rebalance and rejoins.
    let (jb, ja2) = std::thread::scope(|s| {
        let hb = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                assert!(Instant::now() < deadline, "A never saw the rebalance");
                if heartbeat(&mut a, "evict", ja.generation_id, &a_id, None) == REBALANCE_IN_PROGRESS {
                    return join(&mut a, "evict", &a_id, None, 1500);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let jb = join_fully(&mut b, "evict", None, 5000);
        (jb, hb.join().expect("a"))
    });
    assert_eq!(jb.generation_id, ja2.generation_id);
    assert!(jb.generation_id > ja.generation_id, "generations only increase");
    let b_id = jb.member_id.to_string();
    // A goes silent; B heartbeats until the coordinator evicts A.
    let silent_since = Instant::now();
    let deadline = silent_since + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "A was never evicted");
        let code = heartbeat(&mut b, "evict", jb.generation_id, &b_id, None);
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert!(code == 0 || code == REBALANCE_IN_PROGRESS, "heartbeat error {code}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(silent_since.elapsed() >= Duration::from_millis(1200), "not evicted before the session timeout");
    let alone = join(&mut b, "evict", &b_id, None, 5000);
    assert_eq!(alone.error_code, 0);
    assert!(alone.generation_id > jb.generation_id);
    assert_eq!(alone.members.len(), 1, "only B remains");
}

#[test]
fn a_static_member_restarting_causes_no_rebalance() {
    // An initial delay lets A and B land in the same first generation.
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=1000", "group.min.session.timeout.ms=1000"]);
    let (mut a, mut b) = (RawClient::connect(&broker.bootstrap()), RawClient::connect(&broker.bootstrap()));
    let (ja, jb) = std::thread::scope(|s| {
        let ta = s.spawn(|| join_fully(&mut a, "static", Some("instance-a"), 5000));
        std::thread::sleep(Duration::from_millis(100));
        let jb = join_fully(&mut b, "static", Some("instance-b"), 5000);
        (ta.join().unwrap_or_else(|_| panic!("a: {}", broker.log())), jb)
    });
    assert_eq!(ja.generation_id, jb.generation_id);
    let (a_id, b_id) = (ja.member_id.to_string(), jb.member_id.to_string());
    let leader = ja.leader.to_string();
    let plan = [(a_id.as_str(), "for-a"), (b_id.as_str(), "for-b")];
    let gen = ja.generation_id;
    std::thread::scope(|s| {
        let ta = s
            .spawn(|| sync(&mut a, "static", gen, &a_id, Some("instance-a"), if leader == a_id { &plan } else { &[] }));
        let rb = sync(&mut b, "static", gen, &b_id, Some("instance-b"), if leader == b_id { &plan } else { &[] });
        assert_eq!(&rb.assignment[..], b"for-b");
        assert_eq!(&ta.join().expect("a").assignment[..], b"for-a");
    });

    // A restarts: a fresh connection, empty member id, same instance id.
    let mut a2 = RawClient::connect(&broker.bootstrap());
    let rejoined = join(&mut a2, "static", "", Some("instance-a"), 5000);
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, gen, "no new generation");
    let new_a = rejoined.member_id.to_string();
    assert_ne!(new_a, a_id);
    assert_eq!(heartbeat(&mut b, "static", gen, &b_id, Some("instance-b")), 0, "B sees no rebalance");
    let back = sync(&mut a2, "static", gen, &new_a, Some("instance-a"), &[]);
    assert_eq!(&back.assignment[..], b"for-a", "the old assignment comes back");
    assert_eq!(
        heartbeat(&mut a, "static", gen, &a_id, Some("instance-a")),
        FENCED_INSTANCE_ID,
        "the old incarnation is fenced"
    );
}
