//! Heartbeat: keeps a member's session alive and tells it when a rebalance is in progress.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    resp.error_code = broker.groups.heartbeat(
        broker,
        req.group_id.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_deref(),
    );
    resp
}
