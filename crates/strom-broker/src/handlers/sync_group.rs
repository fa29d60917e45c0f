//! SyncGroup: the leader hands out the assignment; every member gets its own share (followers
//! wait until the leader's SyncGroup arrives).

use crate::dispatch::RequestContext;
use crate::group::classic::SyncRequest;
use crate::server::Broker;
use strom_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let v = ctx.api_version;
    let sync = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: if v >= 5 { req.protocol_type.as_ref().map(|s| s.to_string()) } else { None },
        protocol_name: if v >= 5 { req.protocol_name.as_ref().map(|s| s.to_string()) } else { None },
        assignments: req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect(),
    };
    let r = broker.groups.sync(broker, sync).await;
    let mut resp = SyncGroupResponse::default();
    resp.error_code = r.error;
    if v >= 5 {
        resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    }
    resp.assignment = r.assignment;
    resp
}
