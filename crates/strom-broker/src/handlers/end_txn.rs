//! EndTxn (v0-4): commit or abort the producer's transaction on its coordinator (Kafka's
//! TV1 rules; v5, which bumps the epoch every transaction, is not served). Answered once
//! PrepareCommit/PrepareAbort is durable; the markers follow.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use std::sync::Arc;
use strom_protocol::messages::{EndTxnRequest, EndTxnResponse};
use strom_protocol::ResponseError;

/// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for clients older than KIP-588 (v2 of EndTxn,
/// AddPartitionsToTxn and AddOffsetsToTxn; v4 of InitProducerId).
pub fn for_version(e: ResponseError, version: i16, fenced_since: i16) -> ResponseError {
    if e == ResponseError::ProducerFenced && version < fenced_since {
        ResponseError::InvalidProducerEpoch
    } else {
        e
    }
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let mut resp = EndTxnResponse::default();
    let answer = broker
        .txns
        .end_txn(broker, req.transactional_id.as_str(), req.producer_id.0, req.producer_epoch, req.committed)
        .await;
    if let Err(e) = answer {
        resp.error_code = for_version(e, ctx.api_version, 2).code();
    }
    resp
}
