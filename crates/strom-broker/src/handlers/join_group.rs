//! JoinGroup: the first phase of the classic rebalance protocol. The response may wait until the
//! join round completes (all members rejoined, or the rebalance timeout passed).

use crate::dispatch::RequestContext;
use crate::group::classic::JoinRequest;
use crate::server::Broker;
use strom_protocol::messages::join_group_response::JoinGroupResponseMember;
use strom_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let v = ctx.api_version;
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.header.client_id.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: v >= 4,
        supports_skip_assignment: v >= 9,
    };
    let r = broker.groups.join(broker, join).await;
    let mut resp = JoinGroupResponse::default();
    resp.error_code = r.error;
    resp.generation_id = r.generation_id;
    if v >= 7 {
        resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    } else {
        resp.protocol_name = Some(StrBytes::from_string(r.protocol_name.unwrap_or_default()));
    }
    resp.leader = StrBytes::from_string(r.leader);
    resp.member_id = StrBytes::from_string(r.member_id);
    if v >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    resp.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default();
            out.member_id = StrBytes::from_string(m.member_id);
            if v >= 5 {
                out.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    resp
}
