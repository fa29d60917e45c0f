//! DescribeQuorum (KIP-595; what `kafka-metadata-quorum describe --status | --replication` asks):
//! the metadata quorum's leader, epoch, high watermark and each voter's progress, from the
//! active controller (forwarded there when this node is not it). The quorum's Raft term is the
//! leader epoch; offsets are Raft indexes.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_metadata::{ControllerOp, OpAnswer, VoterProgress};
use strom_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use strom_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let mut resp = DescribeQuorumResponse::default();
    let asks_for_metadata_partition = req.topics.len() == 1
        && req.topics[0].topic_name.as_str() == METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    if !asks_for_metadata_partition {
        resp.error_code = ResponseError::UnknownTopicOrPartition.code();
        return resp;
    }
    let description = match broker.metadata.write(ControllerOp::DescribeQuorum).await {
        Ok(OpAnswer::Quorum(d)) => d,
        Ok(_) => {
            resp.error_code = ResponseError::UnknownServerError.code();
            return resp;
        }
        Err(e) => {
            resp.error_code = e.code();
            if ctx.api_version >= 2 {
                resp.error_message = e.message.map(StrBytes::from_string);
            }
            return resp;
        }
    };
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    partition.leader_id = BrokerId(description.leader_id);
    partition.leader_epoch = description.leader_epoch;
    partition.high_watermark = description.high_watermark;
    partition.current_voters = description
        .voters
        .iter()
        .map(|v| {
            let mut r = ReplicaState::default();
            r.replica_id = BrokerId(v.id);
            r.log_end_offset = v.log_end_offset;
            if ctx.api_version >= 1 {
                r.last_fetch_timestamp = v.last_fetch_ms;
                r.last_caught_up_timestamp = v.last_caught_up_ms;
            }
            r
        })
        .collect();
    // Nodes that are not voters follow the log as observers: those that fetched from this
    // leader with their progress, other registered brokers without.
    let image = broker.metadata.image();
    let is_voter = |id: i32| description.voters.iter().any(|v| v.id == id);
    let unseen = image
        .brokers
        .keys()
        .filter(|id| !is_voter(**id) && !description.observers.iter().any(|o| o.id == **id))
        .map(|&id| VoterProgress { id, log_end_offset: -1, last_fetch_ms: -1, last_caught_up_ms: -1 });
    let mut observers: Vec<VoterProgress> =
        description.observers.iter().filter(|o| !is_voter(o.id)).cloned().chain(unseen).collect();
    observers.sort_by_key(|o| o.id);
    partition.observers = observers
        .iter()
        .map(|o| {
            let mut r = ReplicaState::default();
            r.replica_id = BrokerId(o.id);
            r.log_end_offset = o.log_end_offset;
            if ctx.api_version >= 1 {
                r.last_fetch_timestamp = o.last_fetch_ms;
                r.last_caught_up_timestamp = o.last_caught_up_ms;
            }
            r
        })
        .collect();
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions = vec![partition];
    resp.topics = vec![topic];
    if ctx.api_version >= 2 {
        resp.nodes = broker
            .config
            .cluster
            .voters
            .iter()
            .map(|v| {
                let mut n = Node::default();
                n.node_id = BrokerId(v.id);
                let mut l = Listener::default();
                l.name = StrBytes::from_string(
                    broker.config.cluster.controller_listener_names.first().cloned().unwrap_or_default(),
                );
                l.host = StrBytes::from_string(v.host.clone());
                l.port = v.port;
                n.listeners = vec![l];
                n
            })
            .collect();
    }
    resp
}
