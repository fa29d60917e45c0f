//! LeaveGroup: one member (v0-2) or a batch of members with optional group.instance.id (v3+,
//! KIP-345) leave; the group rebalances.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::leave_group_response::MemberResponse;
use strom_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if ctx.api_version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let (error, per_member) = broker.groups.leave(broker, req.group_id.as_str(), &members);
    let mut resp = LeaveGroupResponse::default();
    if ctx.api_version >= 3 {
        resp.error_code = error;
        resp.members = req
            .members
            .into_iter()
            .zip(per_member)
            .map(|(m, code)| {
                let mut r = MemberResponse::default();
                r.member_id = m.member_id;
                r.group_instance_id = m.group_instance_id;
                r.error_code = code;
                r
            })
            .collect();
    } else {
        // A single member: its own error is the answer.
        resp.error_code = if error != 0 { error } else { per_member.first().copied().unwrap_or(0) };
    }
    resp
}
