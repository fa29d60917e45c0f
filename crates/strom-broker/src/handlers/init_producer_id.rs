//! InitProducerId. Idempotent producers get a fresh producer id with epoch 0, unique across
//! restarts (ids are reserved in blocks in the metadata log). Transactional producers go to the
//! coordinator of their `transactional.id`, which bumps the epoch (fencing an older producer,
//! aborting its open transaction) or, from v3, bumps the epoch they name (KIP-360).

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use std::sync::Arc;
use strom_metadata::ControllerOp;
use strom_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strom_protocol::ResponseError;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        resp.error_code = ResponseError::InvalidRequest.code();
        return resp;
    }
    if let Some(id) = &req.transactional_id {
        let expected = match (req.producer_id.0, req.producer_epoch) {
            (-1, -1) => None,
            (-1, _) | (_, -1) => {
                resp.error_code = ResponseError::InvalidRequest.code();
                return resp;
            }
            (pid, epoch) => Some((pid, epoch)),
        };
        match broker.txns.init_producer_id(broker, id.as_str(), req.transaction_timeout_ms, expected).await {
            Ok(Some((pid, epoch))) => {
                resp.producer_id = ProducerId(pid);
                resp.producer_epoch = epoch;
            }
            Ok(None) => resp.error_code = ResponseError::UnknownServerError.code(),
            Err(e) => resp.error_code = super::end_txn::for_version(e, ctx.api_version, 4).code(),
        }
        return resp;
    }
    let answer = broker.metadata.write(ControllerOp::AllocateProducerId).await;
    match answer.and_then(|a| a.into_producer_id().map_err(KafkaError::from)) {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => resp.error_code = e.code(),
    }
    resp
}
