//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): reassignments start
//! and are cancelled through the active controller, each partition answered with Kafka's code;
//! the list is read from this broker's image (the partitions with replicas being added or
//! removed).

use crate::dispatch::RequestContext;
use crate::server::Broker;
use std::collections::BTreeMap;
use strom_metadata::reassignment::{ongoing_reassignments, ReassignmentError};
use strom_metadata::{ControllerOp, OpAnswer};
use strom_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use strom_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use strom_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

fn error(e: &ReassignmentError) -> (ResponseError, String) {
    match e {
        ReassignmentError::UnknownTopicOrPartition(m) => (ResponseError::UnknownTopicOrPartition, m.clone()),
        ReassignmentError::InvalidReplicaAssignment(m) => (ResponseError::InvalidReplicaAssignment, m.clone()),
        ReassignmentError::InvalidReplicationFactor(m) => (ResponseError::InvalidReplicationFactor, m.clone()),
        ReassignmentError::NoReassignmentInProgress => {
            (ResponseError::NoReassignmentInProgress, "No partition reassignment is in progress.".into())
        }
    }
}

pub async fn alter(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut resp = AlterPartitionReassignmentsResponse::default();
    // v0 always allows a new replication factor.
    let allow = ctx.api_version == 0 || req.allow_replication_factor_change;
    resp.allow_replication_factor_change = allow;
    let requests: Vec<_> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let replicas = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                (t.name.0.to_string(), p.partition_index, replicas)
            })
        })
        .collect();
    if requests.is_empty() {
        return resp;
    }
    let op = ControllerOp::AlterReassignments { requests, allow_replication_factor_change: allow };
    let outcomes = match broker.metadata.write(op).await {
        Ok(OpAnswer::Reassignments(outcomes)) => outcomes,
        Ok(other) => {
            tracing::warn!("AlterPartitionReassignments: the controller answered {other:?}");
            resp.error_code = ResponseError::UnknownServerError.code();
            return resp;
        }
        Err(e) => {
            resp.error_code = e.code();
            return resp;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for (topic, partition, outcome) in outcomes {
        let mut r = ReassignablePartitionResponse::default();
        r.partition_index = partition;
        if let Err(e) = outcome {
            let (code, message) = error(&e);
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
        by_topic.entry(topic).or_default().push(r);
    }
    resp.responses = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = ReassignableTopicResponse::default();
            t.name = TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            t
        })
        .collect();
    resp
}

pub async fn list(
    broker: &Broker,
    _ctx: &RequestContext,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut resp = ListPartitionReassignmentsResponse::default();
    let asked: Option<Vec<(String, Vec<i32>)>> =
        req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
    let image = broker.metadata.image();
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for (topic, partition, replicas, adding, removing) in ongoing_reassignments(&image, asked.as_deref()) {
        let mut p = OngoingPartitionReassignment::default();
        p.partition_index = partition;
        p.replicas = ids(replicas);
        p.adding_replicas = ids(adding);
        p.removing_replicas = ids(removing);
        by_topic.entry(topic).or_default().push(p);
    }
    resp.topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = OngoingTopicReassignment::default();
            t.name = TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            t
        })
        .collect();
    resp
}
