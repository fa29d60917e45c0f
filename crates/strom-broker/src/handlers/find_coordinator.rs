//! FindCoordinator: the coordinator of a group is the leader of its `__consumer_offsets`
//! partition, that of a transactional id the leader of its `__transaction_state` partition;
//! either topic is created on first use, as Kafka does. Batched keys from v4 (KIP-699).

use super::cluster_view::{live_brokers, LiveBroker};
use crate::dispatch::RequestContext;
use crate::group::store::{coordinator_of, ensure_offsets_topic};
use crate::server::Broker;
use strom_protocol::messages::find_coordinator_response::Coordinator;
use strom_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// (error code, message) for one key, or the node when all is well.
async fn lookup(broker: &Broker, key: &str, key_type: i8) -> Result<LiveBroker, (i16, String)> {
    let failed = |e: crate::errors::KafkaError| (e.code(), e.message.unwrap_or_default());
    let leader = match key_type {
        KEY_TYPE_GROUP => {
            if key.is_empty() {
                return Err((ResponseError::InvalidGroupId.code(), "group id must not be empty".into()));
            }
            ensure_offsets_topic(broker).await.map_err(failed)?;
            coordinator_of(broker, key)
                .ok_or((ResponseError::CoordinatorNotAvailable.code(), "__consumer_offsets is not ready".to_string()))?
        }
        KEY_TYPE_TRANSACTION => {
            if key.is_empty() {
                return Err((ResponseError::InvalidRequest.code(), "transactional id must not be empty".into()));
            }
            crate::txn::store::ensure_txn_topic(broker).await.map_err(failed)?;
            crate::txn::store::coordinator_of(broker, key).ok_or((
                ResponseError::CoordinatorNotAvailable.code(),
                "__transaction_state is not ready".to_string(),
            ))?
        }
        other => return Err((ResponseError::InvalidRequest.code(), format!("unknown coordinator key type {other}"))),
    };
    live_brokers(broker).into_iter().find(|b| b.id == leader).ok_or((
        ResponseError::CoordinatorNotAvailable.code(),
        format!("the coordinator (broker {leader}) is not available"),
    ))
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let mut resp = FindCoordinatorResponse::default();
    if ctx.api_version < 4 {
        match lookup(broker, &req.key, req.key_type).await {
            Ok(b) => {
                resp.node_id = BrokerId(b.id);
                resp.host = StrBytes::from_string(b.host);
                resp.port = b.port;
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
            Ok(b) => {
                c.node_id = BrokerId(b.id);
                c.host = StrBytes::from_string(b.host);
                c.port = b.port;
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
