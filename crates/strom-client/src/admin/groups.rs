//! Consumer group administration: list, describe, delete, and read or set committed offsets.

use super::Admin;
use crate::consumer::assignor::decode_assignment;
use crate::consumer::offsets::{self, CommitAs, OffsetAndMetadata};
use crate::error::{check, ClientError, Result};
use crate::TopicPartition;
use std::collections::BTreeMap;
use strom_protocol::messages::*;
use strom_protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    pub coordinator: i32,
}

impl Admin {
    pub async fn list_groups(&self) -> Result<Vec<ConsumerGroupListing>> {
        let snap = self.cluster.fetch_metadata(Some(&[])).await?;
        let mut out = Vec::new();
        let mut brokers: Vec<i32> = snap.brokers.keys().copied().collect();
        brokers.sort();
        for b in brokers {
            let (_, resp): (i16, ListGroupsResponse) =
                self.cluster.send_to(b, ApiKey::ListGroups, &ListGroupsRequest::default()).await?;
            check(resp.error_code)?;
            out.extend(resp.groups.into_iter().map(|g| ConsumerGroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes a group; an unknown group is reported as Dead, as Kafka does.
    pub async fn describe_group(&self, group: &str) -> Result<ConsumerGroupDescription> {
        let coordinator = offsets::find_coordinator(&self.cluster, group).await?;
        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(s(group))];
        let (_, resp): (i16, DescribeGroupsResponse) =
            self.cluster.send_to(coordinator, ApiKey::DescribeGroups, &req).await?;
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("empty DescribeGroups answer".into()))?;
        check(g.error_code)?;
        let consumer = g.protocol_type.as_str() == "consumer" || g.protocol_type.is_empty();
        Ok(ConsumerGroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            coordinator,
            members: g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: if consumer {
                        decode_assignment(&m.member_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        })
    }

    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for group in groups {
            let coordinator = offsets::find_coordinator(&self.cluster, group).await?;
            let mut req = DeleteGroupsRequest::default();
            req.groups_names = vec![GroupId(s(group))];
            let (_, resp): (i16, DeleteGroupsResponse) =
                self.cluster.send_to(coordinator, ApiKey::DeleteGroups, &req).await?;
            for r in resp.results {
                let result = if r.error_code == 0 { Ok(()) } else { Err(ClientError::kafka(r.error_code, None)) };
                out.push((r.group_id.0.to_string(), result));
            }
        }
        Ok(out)
    }

    /// Deletes a group's committed offsets for some partitions (Kafka's deleteConsumerGroupOffsets,
    /// the OffsetDelete API). The group-level error (GROUP_ID_NOT_FOUND, ...) fails the call; each
    /// partition has its own result (GROUP_SUBSCRIBED_TO_TOPIC when members still consume it).
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let coordinator = offsets::find_coordinator(&self.cluster, group).await?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let mut req = OffsetDeleteRequest::default();
        req.group_id = GroupId(s(group));
        req.topics = by_topic
            .into_iter()
            .map(|(name, ps)| {
                let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
                t.name = TopicName(s(name));
                t.partitions = ps
                    .into_iter()
                    .map(|p| {
                        let mut rp = offset_delete_request::OffsetDeleteRequestPartition::default();
                        rp.partition_index = p;
                        rp
                    })
                    .collect();
                t
            })
            .collect();
        let (_, resp): (i16, OffsetDeleteResponse) =
            self.cluster.send_to(coordinator, ApiKey::OffsetDelete, &req).await?;
        check(resp.error_code)?;
        let mut out = Vec::new();
        for t in resp.topics {
            for p in t.partitions {
                let result = if p.error_code == 0 { Ok(()) } else { Err(ClientError::kafka(p.error_code, None)) };
                out.push((TopicPartition::new(t.name.0.to_string(), p.partition_index), result));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The group's committed offsets (all partitions it has committed for).
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        Ok(offsets::fetch_committed_retrying(&self.cluster, None, group, &[]).await?.1)
    }

    /// Sets committed offsets (as kafka-consumer-groups --reset-offsets does). The coordinator
    /// refuses while the group has active members.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        let coordinator = offsets::find_coordinator(&self.cluster, group).await?;
        let who = CommitAs { generation_id: -1, member_id: String::new(), group_instance_id: None };
        offsets::commit(&self.cluster, coordinator, group, &who, offsets).await
    }
}
