//! DescribeGroups: state, protocol and members (client id, host, subscription metadata and
//! assignment). An unknown group is described as Dead with no members, as Kafka does.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use strom_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let mut resp = DescribeGroupsResponse::default();
    for group_id in req.groups {
        let mut g = DescribedGroup::default();
        if let Some(code) = crate::group::store::not_coordinator(broker, group_id.as_str()) {
            g.error_code = code;
            g.group_id = group_id;
            resp.groups.push(g);
            continue;
        }
        let d = broker.groups.describe(group_id.as_str());
        g.group_id = group_id;
        g.group_state = StrBytes::from_string(d.state);
        g.protocol_type = StrBytes::from_string(d.protocol_type);
        g.protocol_data = StrBytes::from_string(d.protocol);
        if v >= 3 {
            g.authorized_operations = i32::MIN;
        }
        g.members = d
            .members
            .into_iter()
            .map(|m| {
                let mut out = DescribedGroupMember::default();
                out.member_id = StrBytes::from_string(m.member_id);
                if v >= 4 {
                    out.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                }
                out.client_id = StrBytes::from_string(m.client_id);
                out.client_host = StrBytes::from_string(m.client_host);
                out.member_metadata = m.metadata;
                out.member_assignment = m.assignment;
                out
            })
            .collect();
        resp.groups.push(g);
    }
    resp
}
