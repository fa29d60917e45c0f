//! FindCoordinator: this node coordinates every group (single node). Batched keys from v4
//! (KIP-699). Transaction coordinators do not exist yet, so transaction keys get
//! COORDINATOR_NOT_AVAILABLE with a sentence saying why.

use crate::dispatch::RequestContext;
use crate::group::store::ensure_offsets_topic;
use crate::server::Broker;
use strom_protocol::messages::find_coordinator_response::Coordinator;
use strom_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

const KEY_TYPE_GROUP: i8 = 0;

/// (error code, message) for one key, or the node when all is well.
async fn lookup(broker: &Broker, key: &str, key_type: i8) -> Result<(), (i16, String)> {
    if key_type != KEY_TYPE_GROUP {
        return Err((
            ResponseError::CoordinatorNotAvailable.code(),
            "Strom does not support transactions yet (no transaction coordinator)".into(),
        ));
    }
    if key.is_empty() {
        return Err((ResponseError::InvalidGroupId.code(), "group id must not be empty".into()));
    }
    ensure_offsets_topic(broker).await.map_err(|e| (e.code(), e.message.unwrap_or_default()))
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let mut resp = FindCoordinatorResponse::default();
    let node = BrokerId(broker.config.node_id);
    let host = StrBytes::from_string(broker.advertised_host.clone());
    if ctx.api_version < 4 {
        match lookup(broker, &req.key, req.key_type).await {
            Ok(()) => {
                resp.node_id = node;
                resp.host = host;
                resp.port = broker.advertised_port;
            }
            Err((code, message)) => {
                resp.error_code = code;
                resp.node_id = BrokerId(-1);
                if ctx.api_version >= 1 {
                    resp.error_message = Some(StrBytes::from_string(message));
                }
            }
        }
        return resp;
    }
    for key in req.coordinator_keys {
        let mut c = Coordinator::default();
        match lookup(broker, &key, req.key_type).await {
            Ok(()) => {
                c.node_id = node;
                c.host = host.clone();
                c.port = broker.advertised_port;
            }
            Err((code, message)) => {
                c.error_code = code;
                c.node_id = BrokerId(-1);
                c.error_message = Some(StrBytes::from_string(message));
            }
        }
        c.key = key;
        resp.coordinators.push(c);
    }
    resp
}
