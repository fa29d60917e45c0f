//! AddPartitionsToTxn (v0-3, from producers): the partitions join the producer's transaction
//! before it writes to them. As Kafka: a partition of a topic that does not exist fails the whole
//! request (UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the others); the
//! coordinator's answer otherwise goes to every partition. v4+ (batched, from brokers, KIP-890)
//! is not served yet.

use super::end_txn::for_version;
use crate::dispatch::RequestContext;
use crate::server::Broker;
use std::sync::Arc;
use strom_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use strom_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use strom_protocol::ResponseError;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let image = broker.metadata.image();
    let mut partitions = Vec::new();
    let mut unknown = std::collections::HashSet::new();
    for t in &req.v3_and_below_topics {
        for &p in &t.partitions {
            let exists = image.topic(t.name.0.as_str()).is_some_and(|topic| topic.partitions.contains_key(&p));
            let tp = (t.name.0.to_string(), p);
            if exists {
                partitions.push(tp);
            } else {
                unknown.insert(tp);
            }
        }
    }
    // One answer for every partition, unless some topic is unknown.
    let uniform = if unknown.is_empty() {
        let answer = broker
            .txns
            .add_partitions(
                broker,
                req.v3_and_below_transactional_id.as_str(),
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &partitions,
            )
            .await;
        Some(answer.err().map_or(0, |e| for_version(e, ctx.api_version, 2).code()))
    } else {
        None
    };
    let error_of = |tp: &(String, i32)| match uniform {
        Some(code) => code,
        None if unknown.contains(tp) => ResponseError::UnknownTopicOrPartition.code(),
        None => ResponseError::OperationNotAttempted.code(),
    };
    let mut resp = AddPartitionsToTxnResponse::default();
    for t in req.v3_and_below_topics {
        let mut topic = AddPartitionsToTxnTopicResult::default();
        topic.results_by_partition = t
            .partitions
            .iter()
            .map(|&p| {
                let mut r = AddPartitionsToTxnPartitionResult::default();
                r.partition_index = p;
                r.partition_error_code = error_of(&(t.name.0.to_string(), p));
                r
            })
            .collect();
        topic.name = t.name;
        resp.results_by_topic_v3_and_below.push(topic);
    }
    resp
}
