//! InitProducerId for idempotent producers: a fresh producer id with epoch 0, unique across
//! restarts (ids are reserved in blocks in the metadata log). Transactional ids need the
//! transaction coordinator, which Strom does not have yet.

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_metadata::ControllerOp;
use strom_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strom_protocol::ResponseError;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.as_ref().is_some_and(|t| t.is_empty()) {
        resp.error_code = ResponseError::InvalidRequest.code();
        return resp;
    }
    if req.transactional_id.is_some() {
        tracing::warn!("InitProducerId with a transactional.id: transactions are not supported yet");
        resp.error_code = ResponseError::CoordinatorNotAvailable.code();
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
