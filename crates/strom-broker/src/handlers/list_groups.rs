//! ListGroups: every group this coordinator knows, with its state (v4+) and type (v5+, always
//! "classic" until the KIP-848 protocol exists), filtered by state and type.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::list_groups_response::ListedGroup;
use strom_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let states: Vec<String> =
        if v >= 4 { req.states_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let types: Vec<String> =
        if v >= 5 { req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect() } else { Vec::new() };
    let mut resp = ListGroupsResponse::default();
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return resp;
    }
    for g in broker.groups.list(&states) {
        let mut out = ListedGroup::default();
        out.group_id = GroupId(StrBytes::from_string(g.group_id));
        out.protocol_type = StrBytes::from_string(g.protocol_type);
        if v >= 4 {
            out.group_state = StrBytes::from_string(g.state);
        }
        if v >= 5 {
            out.group_type = StrBytes::from_static_str("classic");
        }
        resp.groups.push(out);
    }
    resp
}
