//! The group APIs' part of the version sweep. Each version works on its own group, so that one
//! version's member does not disturb the next. The broker runs with no initial rebalance delay.

use bytes::{BufMut, Bytes, BytesMut};
use strom_protocol::messages::*;
use strom_protocol::StrBytes;

use super::support::raw::RawClient;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn subscription() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(5);
    b.put_slice(b"sweep");
    b.put_i32(-1);
    b.freeze()
}

/// Joins `group` as a new member at JoinGroup `version` (two steps from v4); (member id, generation).
fn join_at(c: &mut RawClient, group: &str, version: i16) -> (String, i32) {
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = subscription();
    let mut req = JoinGroupRequest::default();
    req.group_id = gid(group);
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 10_000;
    req.protocol_type = s("consumer");
    req.protocols = vec![p];
    let mut r: JoinGroupResponse = c.call(ApiKey::JoinGroup, version, &req);
    if r.error_code == 79 {
        req.member_id = r.member_id.clone();
        r = c.call(ApiKey::JoinGroup, version, &req);
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{version}");
    assert_eq!(r.leader, r.member_id, "JoinGroup v{version}: the only member leads");
    assert_eq!(r.members.len(), 1, "JoinGroup v{version}");
    (r.member_id.to_string(), r.generation_id)
}

fn sync_at(c: &mut RawClient, group: &str, member: &str, generation: i32, version: i16) -> SyncGroupResponse {
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = s(member);
    a.assignment = Bytes::from_static(b"assignment");
    let mut req = SyncGroupRequest::default();
    req.group_id = gid(group);
    req.member_id = s(member);
    req.generation_id = generation;
    if version >= 5 {
        req.protocol_type = Some(s("consumer"));
        req.protocol_name = Some(s("range"));
    }
    req.assignments = vec![a];
    c.call(ApiKey::SyncGroup, version, &req)
}

/// A stable one-member group.
fn stable_group(c: &mut RawClient, group: &str) -> (String, i32) {
    let (member, generation) = join_at(c, group, 5);
    assert_eq!(sync_at(c, group, &member, generation, 3).error_code, 0);
    (member, generation)
}

/// A standalone commit of offset 7 on sweep-0, at OffsetCommit v8.
fn commit_standalone(c: &mut RawClient, group: &str) {
    commit_at(c, group, 8);
}

fn commit_at(c: &mut RawClient, group: &str, version: i16) {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 7;
    p.committed_metadata = Some(s("meta"));
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s("sweep"));
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = gid(group);
    req.generation_id_or_member_epoch = -1;
    req.retention_time_ms = -1;
    req.topics = vec![t];
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, version, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v{version}");
}

/// Sweeps one version of a group API; false if `key` is not a group API.
pub fn sweep(c: &mut RawClient, key: ApiKey, v: i16) -> bool {
    let label = format!("{key:?} v{v}");
    let group = format!("sweep-{key:?}-v{v}");
    match key {
        ApiKey::FindCoordinator => {
            let mut req = FindCoordinatorRequest::default();
            if v >= 4 {
                req.coordinator_keys = vec![s(&group)];
            } else {
                req.key = s(&group);
            }
            let r: FindCoordinatorResponse = c.call(key, v, &req);
            if v >= 4 {
                assert_eq!(r.coordinators.len(), 1, "{label}");
                assert_eq!((r.coordinators[0].error_code, r.coordinators[0].node_id.0), (0, 1), "{label}");
            } else {
                assert_eq!((r.error_code, r.node_id.0), (0, 1), "{label}");
            }
        }
        ApiKey::JoinGroup => {
            join_at(c, &group, v);
        }
        ApiKey::SyncGroup => {
            let (member, generation) = join_at(c, &group, 5);
            let r = sync_at(c, &group, &member, generation, v);
            assert_eq!(r.error_code, 0, "{label}");
            assert_eq!(&r.assignment[..], b"assignment", "{label}");
        }
        ApiKey::Heartbeat => {
            let (member, generation) = stable_group(c, &group);
            let mut req = HeartbeatRequest::default();
            req.group_id = gid(&group);
            req.member_id = s(&member);
            req.generation_id = generation;
            let r: HeartbeatResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 0, "{label}");
        }
        ApiKey::LeaveGroup => {
            let (member, _) = stable_group(c, &group);
            let mut req = LeaveGroupRequest::default();
            req.group_id = gid(&group);
            if v >= 3 {
                let mut m = leave_group_request::MemberIdentity::default();
                m.member_id = s(&member);
                req.members = vec![m];
            } else {
                req.member_id = s(&member);
            }
            let r: LeaveGroupResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 0, "{label}");
            if v >= 3 {
                assert_eq!(r.members[0].error_code, 0, "{label}");
            }
        }
        ApiKey::OffsetCommit => commit_at(c, &group, v),
        ApiKey::OffsetFetch => {
            commit_standalone(c, &group);
            let mut req = OffsetFetchRequest::default();
            if v >= 8 {
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = gid(&group);
                g.topics = None;
                req.groups = vec![g];
                let r: OffsetFetchResponse = c.call(key, v, &req);
                assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 7, "{label}");
            } else {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = TopicName(s("sweep"));
                t.partition_indexes = vec![0];
                req.group_id = gid(&group);
                req.topics = Some(vec![t]);
                let r: OffsetFetchResponse = c.call(key, v, &req);
                let p = &r.topics[0].partitions[0];
                assert_eq!((p.committed_offset, p.metadata.as_deref()), (7, Some("meta")), "{label}");
            }
        }
        ApiKey::ListGroups => {
            stable_group(c, &group);
            let mut req = ListGroupsRequest::default();
            if v >= 4 {
                req.states_filter = vec![s("Stable")];
            }
            let r: ListGroupsResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 0, "{label}");
            assert!(r.groups.iter().any(|g| g.group_id.as_str() == group), "{label}");
        }
        ApiKey::DescribeGroups => {
            let (member, _) = stable_group(c, &group);
            let mut req = DescribeGroupsRequest::default();
            req.groups = vec![gid(&group)];
            let r: DescribeGroupsResponse = c.call(key, v, &req);
            let g = &r.groups[0];
            assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"), "{label}");
            assert_eq!(g.members[0].member_id.as_str(), member, "{label}");
            assert_eq!(&g.members[0].member_assignment[..], b"assignment", "{label}");
        }
        ApiKey::DeleteGroups => {
            commit_standalone(c, &group);
            let mut req = DeleteGroupsRequest::default();
            req.groups_names = vec![gid(&group)];
            let r: DeleteGroupsResponse = c.call(key, v, &req);
            assert_eq!(r.results[0].error_code, 0, "{label}");
        }
        ApiKey::OffsetDelete => {
            commit_standalone(c, &group);
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = TopicName(s("sweep"));
            t.partitions = vec![p];
            let mut req = OffsetDeleteRequest::default();
            req.group_id = gid(&group);
            req.topics = vec![t];
            let r: OffsetDeleteResponse = c.call(key, v, &req);
            assert_eq!(r.error_code, 0, "{label}");
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{label}");
        }
        _ => return false,
    }
    true
}
