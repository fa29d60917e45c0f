//! CreatePartitions: grow a topic to a new partition count, optionally with explicit replica
//! assignments for the new partitions. Kafka never shrinks a topic.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_metadata::ControllerOp;
use strom_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use strom_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let assignments = t
            .assignments
            .filter(|a| !a.is_empty())
            .map(|a| a.into_iter().map(|x| x.broker_ids.into_iter().map(|b| b.0).collect()).collect());
        let op = ControllerOp::CreatePartitions {
            name: name.clone(),
            total: t.count,
            assignments,
            validate_only: req.validate_only,
        };
        let result = broker.metadata.write(op).await;
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name;
        if let Err(e) = result {
            r.error_code = e.code();
            r.error_message = e.message.map(StrBytes::from_string);
        }
        resp.results.push(r);
    }
    resp
}
