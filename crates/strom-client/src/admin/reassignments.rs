//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): what
//! `kafka-reassign-partitions` sends, to the active controller.

use super::Admin;
use crate::error::{ClientError, Result};
use std::collections::BTreeMap;
use strom_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use strom_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use strom_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use strom_protocol::StrBytes;

/// A reassignment in progress: the replicas now (the target first), being added and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// One partition's answer: `Ok` when the reassignment started (or was cancelled).
pub type ReassignmentResult = std::result::Result<(), ClientError>;

impl Admin {
    /// Starts reassignments (`Some(replicas)`) or cancels them (`None`), per partition.
    pub async fn alter_partition_reassignments(
        &self,
        changes: &BTreeMap<(String, i32), Option<Vec<i32>>>,
    ) -> Result<BTreeMap<(String, i32), ReassignmentResult>> {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.timeout_ms = 60_000;
        req.allow_replication_factor_change = true;
        let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for ((topic, partition), replicas) in changes {
            let mut p = ReassignablePartition::default();
            p.partition_index = *partition;
            p.replicas = replicas.as_ref().map(|r| r.iter().map(|b| BrokerId(*b)).collect());
            topics.entry(topic).or_default().push(p);
        }
        req.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = ReassignableTopic::default();
                t.name = TopicName(StrBytes::from_string(name.to_string()));
                t.partitions = partitions;
                t
            })
            .collect();
        let resp: AlterPartitionReassignmentsResponse =
            self.send_to_controller(ApiKey::AlterPartitionReassignments, &req).await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
        }
        let mut out = BTreeMap::new();
        for t in resp.responses {
            for p in t.partitions {
                let result = match p.error_code {
                    0 => Ok(()),
                    code => Err(ClientError::kafka(code, p.error_message.map(|m| m.to_string()))),
                };
                out.insert((t.name.0.to_string(), p.partition_index), result);
            }
        }
        Ok(out)
    }

    /// The reassignments in progress, of `partitions` (None: all).
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<BTreeMap<(String, i32), OngoingReassignment>> {
        let mut req = ListPartitionReassignmentsRequest::default();
        req.timeout_ms = 60_000;
        req.topics = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in ps {
                by_topic.entry(t).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(name, partition_indexes)| {
                    let mut t = ListPartitionReassignmentsTopics::default();
                    t.name = TopicName(StrBytes::from_string(name.to_string()));
                    t.partition_indexes = partition_indexes;
                    t
                })
                .collect()
        });
        let resp: ListPartitionReassignmentsResponse =
            self.send_to_controller(ApiKey::ListPartitionReassignments, &req).await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
        }
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect();
        let mut out = BTreeMap::new();
        for t in resp.topics {
            for p in t.partitions {
                let ongoing = OngoingReassignment {
                    replicas: ids(p.replicas),
                    adding: ids(p.adding_replicas),
                    removing: ids(p.removing_replicas),
                };
                out.insert((t.name.0.to_string(), p.partition_index), ongoing);
            }
        }
        Ok(out)
    }
}
