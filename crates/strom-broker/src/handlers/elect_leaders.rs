//! ElectLeaders (KIP-460): preferred or unclean leader election through the active controller,
//! answered per partition with Kafka's codes. v0 has no election type (always preferred).

use crate::dispatch::RequestContext;
use crate::server::Broker;
use std::collections::BTreeMap;
use strom_metadata::election::{ElectionOutcome, ElectionType};
use strom_metadata::{ControllerOp, OpAnswer};
use strom_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use strom_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

/// The error code and message of an outcome (0 and none for an election done).
fn result(outcome: ElectionOutcome) -> (i16, Option<&'static str>) {
    let (code, message) = match outcome {
        ElectionOutcome::Elected => return (0, None),
        ElectionOutcome::NotNeeded => {
            (ResponseError::ElectionNotNeeded, Some("Leader election not needed for topic partition."))
        }
        ElectionOutcome::PreferredNotAvailable => (
            ResponseError::PreferredLeaderNotAvailable,
            Some("Failed to elect leader for partition: the preferred replica is not live or not in the ISR."),
        ),
        ElectionOutcome::EligibleNotAvailable => (
            ResponseError::EligibleLeadersNotAvailable,
            Some("Failed to elect leader for partition: no live replica can lead."),
        ),
        ElectionOutcome::UnknownPartition => {
            (ResponseError::UnknownTopicOrPartition, Some("The partition does not exist."))
        }
    };
    (code.code(), message)
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    let election = match (ctx.api_version, req.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        (_, other) => {
            resp.error_code = ResponseError::InvalidRequest.code();
            tracing::debug!("ElectLeaders with unknown election type {other}");
            return resp;
        }
    };
    let partitions = req.topic_partitions.map(|topics| {
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p))).collect::<Vec<_>>()
    });
    let outcomes = match broker.metadata.write(ControllerOp::ElectLeaders { election, partitions }).await {
        Ok(OpAnswer::Elections(outcomes)) => outcomes,
        Ok(_) => Vec::new(),
        Err(e) => {
            resp.error_code = e.code();
            return resp;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, partition, outcome) in outcomes {
        let (code, message) = result(outcome);
        let mut r = PartitionResult::default();
        r.partition_id = partition;
        r.error_code = code;
        r.error_message = message.map(StrBytes::from_static_str);
        by_topic.entry(topic).or_default().push(r);
    }
    resp.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut r = ReplicaElectionResult::default();
            r.topic = TopicName(StrBytes::from_string(topic));
            r.partition_result = partition_result;
            r
        })
        .collect();
    resp
}
