//! UnregisterBroker (KIP-631; `kafka-cluster unregister --id N`): removes a broker's registration,
//! e.g. one that is gone for good. Its partitions get new leaders from their live ISR, or none.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_metadata::ControllerOp;
use strom_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: UnregisterBrokerRequest) -> UnregisterBrokerResponse {
    let mut resp = UnregisterBrokerResponse::default();
    if let Err(e) = broker.metadata.write(ControllerOp::UnregisterBroker { broker_id: req.broker_id.0 }).await {
        resp.error_code = e.code();
        resp.error_message = e.message.map(StrBytes::from_string);
    }
    resp
}
