//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while members
//! remain, GROUP_ID_NOT_FOUND for unknown groups).

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::delete_groups_response::DeletableGroupResult;
use strom_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for group_id in req.groups_names {
        let mut r = DeletableGroupResult::default();
        r.error_code = broker.groups.delete_group(broker, group_id.as_str());
        r.group_id = group_id;
        resp.results.push(r);
    }
    resp
}
