//! Partition assignors, client side as in Kafka: the group leader runs one over every member's
//! subscription and sends the result back in SyncGroup. Names are Kafka's so that members of
//! different clients (Java, librdkafka, strom-client) using the same assignor share a group.
//! Also here: the consumer protocol codec for the bytes in JoinGroup metadata and SyncGroup
//! assignments.

mod range;
mod roundrobin;
mod sticky;
#[cfg(test)]
mod tests;

pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

use crate::TopicPartition;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;
use strom_protocol::messages::{consumer_protocol_assignment, consumer_protocol_subscription, TopicName};
use strom_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use strom_protocol::{Decodable, Encodable, StrBytes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member gives up everything before each rebalance.
    Eager,
    /// Members keep what they keep; only moving partitions are revoked (KIP-429).
    Cooperative,
}

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<String>,
    /// Partitions the member owns now (subscription v1+).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation those were owned in (subscription v2+), -1 if unknown.
    pub generation_id: i32,
    pub user_data: Option<Bytes>,
    pub rack_id: Option<String>,
}

/// member id → partitions.
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed consumer protocol data: {0}")]
pub struct AssignorError(String);

pub trait Assignor: Send + Sync {
    fn name(&self) -> &'static str;
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }
    /// `partitions_per_topic`: topic → partition count; topics missing there are skipped.
    fn assign(&self, partitions_per_topic: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment;
    /// User data this member sends with its subscription.
    fn subscription_user_data(&self, _owned: &[TopicPartition], _generation: i32) -> Option<Bytes> {
        None
    }
}

/// Kafka's assignor names, and the Java class names that mean the same.
pub fn assignor_by_name(name: &str) -> Option<Box<dyn Assignor>> {
    let short = name.trim().rsplit('.').next().unwrap_or("");
    match short {
        "range" | "RangeAssignor" => Some(Box::new(RangeAssignor)),
        "roundrobin" | "RoundRobinAssignor" => Some(Box::new(RoundRobinAssignor)),
        "sticky" | "StickyAssignor" => Some(Box::new(StickyAssignor)),
        "cooperative-sticky" | "CooperativeStickyAssignor" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Kafka's member order (MemberInfo.compareTo): by group.instance.id when both members have one,
/// else by member id.
pub(crate) fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> std::cmp::Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        _ => a.member_id.cmp(&b.member_id),
    }
}

/// Every partition of the topics someone subscribes to, sorted by topic then partition.
pub(crate) fn subscribed_partitions(
    counts: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> Vec<TopicPartition> {
    let mut topics: Vec<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    topics.sort();
    topics.dedup();
    topics
        .into_iter()
        .filter_map(|t| counts.get(t).map(|n| (t, *n)))
        .flat_map(|(t, n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
}

/// The i16 version, then a ConsumerProtocolSubscription at that version (0..=3).
pub fn encode_subscription(
    topics: &[String],
    user_data: Option<&Bytes>,
    owned: &[TopicPartition],
    generation: i32,
    rack: Option<&str>,
    version: i16,
) -> Bytes {
    let version = version.clamp(0, 3);
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| StrBytes::from_string(t.clone())).collect();
    sub.user_data = user_data.cloned();
    if version >= 1 {
        sub.owned_partitions = group_by_topic(owned)
            .into_iter()
            .map(|(t, ps)| {
                let mut o = consumer_protocol_subscription::TopicPartition::default();
                o.topic = TopicName(StrBytes::from_string(t.to_string()));
                o.partitions = ps;
                o
            })
            .collect();
    }
    if version >= 2 {
        sub.generation_id = generation;
    }
    if version >= 3 {
        sub.rack_id = rack.map(|r| StrBytes::from_string(r.to_string()));
    }
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    sub.encode(&mut buf, version).expect("fields are set only for versions that have them");
    buf.freeze()
}

/// Decodes a member's subscription; newer versions decode as the highest known (Kafka's rule).
pub fn decode_subscription(
    member_id: &str,
    group_instance_id: Option<&str>,
    metadata: &Bytes,
) -> Result<MemberSubscription, AssignorError> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Err(AssignorError(format!("subscription of {member_id} is {} bytes", buf.remaining())));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(AssignorError(format!("subscription version {version}")));
    }
    let sub =
        ConsumerProtocolSubscription::decode(&mut buf, version.min(3)).map_err(|e| AssignorError(e.to_string()))?;
    Ok(MemberSubscription {
        member_id: member_id.to_string(),
        group_instance_id: group_instance_id.map(String::from),
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned_partitions: sub
            .owned_partitions
            .iter()
            .flat_map(|o| o.partitions.iter().map(move |p| TopicPartition::new(o.topic.0.to_string(), *p)))
            .collect(),
        generation_id: if version >= 2 { sub.generation_id } else { -1 },
        user_data: sub.user_data,
        rack_id: sub.rack_id.map(|r| r.to_string()),
    })
}

/// Version 0 prefix and a ConsumerProtocolAssignment.
pub fn encode_assignment(partitions: &[TopicPartition], user_data: Option<&Bytes>) -> Bytes {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = group_by_topic(partitions)
        .into_iter()
        .map(|(t, ps)| {
            let mut o = consumer_protocol_assignment::TopicPartition::default();
            o.topic = TopicName(StrBytes::from_string(t.to_string()));
            o.partitions = ps;
            o
        })
        .collect();
    a.user_data = user_data.cloned();
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    a.encode(&mut buf, 0).expect("v0 assignment");
    buf.freeze()
}

/// The partitions in an assignment; empty bytes mean none (a member the leader left out).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>, AssignorError> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Ok(Vec::new());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(AssignorError(format!("assignment version {version}")));
    }
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.min(3)).map_err(|e| AssignorError(e.to_string()))?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|o| o.partitions.iter().map(move |p| TopicPartition::new(o.topic.0.to_string(), *p)))
        .collect())
}
