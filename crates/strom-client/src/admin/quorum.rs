//! DescribeQuorum: the metadata quorum's leader and each voter's progress (what
//! `kafka-metadata-quorum describe` shows); UnregisterBroker (`kafka-cluster unregister`).

use super::Admin;
use crate::error::Result;
use strom_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use strom_protocol::messages::{ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use strom_protocol::StrBytes;

/// One voter or observer of the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub id: i32,
    pub log_end_offset: i64,
    /// -1 when unknown (and for the leader itself).
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

#[derive(Debug, Clone)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

impl Admin {
    /// Removes a broker's registration (Kafka's Admin.unregisterBroker).
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<()> {
        let mut req = strom_protocol::messages::UnregisterBrokerRequest::default();
        req.broker_id = strom_protocol::messages::BrokerId(broker_id);
        let resp: strom_protocol::messages::UnregisterBrokerResponse =
            self.cluster.send_any(ApiKey::UnregisterBroker, &req).await?;
        if resp.error_code != 0 {
            return Err(crate::ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
        }
        Ok(())
    }

    pub async fn describe_metadata_quorum(&self) -> Result<QuorumInfo> {
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
        topic.partitions = vec![partition];
        let mut req = DescribeQuorumRequest::default();
        req.topics = vec![topic];
        let resp: DescribeQuorumResponse = self.cluster.send_any(ApiKey::DescribeQuorum, &req).await?;
        if resp.error_code != 0 {
            return Err(crate::ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
        }
        let p = resp.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| {
            crate::ClientError::kafka(
                strom_protocol::ResponseError::UnknownTopicOrPartition.code(),
                Some("no __cluster_metadata partition in the answer".into()),
            )
        })?;
        if p.error_code != 0 {
            return Err(crate::ClientError::kafka(p.error_code, p.error_message.as_ref().map(|m| m.to_string())));
        }
        let replica = |r: &strom_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
            id: r.replica_id.0,
            log_end_offset: r.log_end_offset,
            last_fetch_timestamp: r.last_fetch_timestamp,
            last_caught_up_timestamp: r.last_caught_up_timestamp,
        };
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: p.current_voters.iter().map(replica).collect(),
            observers: p.observers.iter().map(replica).collect(),
        })
    }
}
