//! What every handler needs to know about the cluster: which brokers clients can reach, which
//! node to name as controller, and whether this broker leads (or hosts) a partition.

use crate::replica::Partition;
use crate::server::Broker;
use std::sync::Arc;
use strom_metadata::BrokerImage;
use strom_protocol::ResponseError;

/// A broker as clients reach it.
pub struct LiveBroker {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The registered, unfenced brokers with their endpoint on this broker's client listener; this
/// broker alone until its own registration is committed.
pub fn live_brokers(broker: &Broker) -> Vec<LiveBroker> {
    let image = broker.metadata.image();
    let listener = &broker.config.listener.name;
    let mut out: Vec<LiveBroker> =
        image.brokers.values().filter(|b| !b.fenced).filter_map(|b| reachable(b, listener)).collect();
    if broker.config.cluster.roles.broker && !out.iter().any(|b| b.id == broker.config.node_id) {
        out.push(LiveBroker {
            id: broker.config.node_id,
            host: broker.advertised_host.clone(),
            port: broker.advertised_port,
            rack: broker.config.cluster.rack.clone(),
        });
    }
    out
}

/// The controller id clients are given: this broker, as KRaft brokers name an alive broker
/// rather than the active controller (which clients cannot reach). Controller operations sent
/// here are forwarded to the active controller, so the answer is always a broker that works.
pub fn controller_id(broker: &Broker) -> i32 {
    broker.config.node_id
}

/// The partition if this broker leads it: UNKNOWN_TOPIC_OR_PARTITION when the metadata has no
/// such partition, NOT_LEADER_OR_FOLLOWER when another broker leads it (clients refresh their
/// metadata and go there).
pub fn led_partition(broker: &Broker, topic: &str, partition: i32) -> Result<Arc<Partition>, ResponseError> {
    let image = broker.metadata.image();
    let p =
        image.topic(topic).and_then(|t| t.partitions.get(&partition)).ok_or(ResponseError::UnknownTopicOrPartition)?;
    if p.leader != broker.config.node_id {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    broker.replicas.get(topic, partition).ok_or(ResponseError::NotLeaderOrFollower)
}

/// The partition if this broker hosts a replica of it, leader or follower: what a consumer of
/// Fetch v11+ may read (KIP-392), up to this replica's high watermark.
pub fn hosted_replica(broker: &Broker, topic: &str, partition: i32) -> Result<Arc<Partition>, ResponseError> {
    let image = broker.metadata.image();
    let p =
        image.topic(topic).and_then(|t| t.partitions.get(&partition)).ok_or(ResponseError::UnknownTopicOrPartition)?;
    if !p.replicas.contains(&broker.config.node_id) {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    broker.replicas.get(topic, partition).ok_or(ResponseError::NotLeaderOrFollower)
}

/// The leader of a partition another broker leads, as KIP-951 names it in a
/// NOT_LEADER_OR_FOLLOWER answer: (leader, leader epoch, how clients reach it).
pub fn current_leader(broker: &Broker, topic: &str, partition: i32) -> Option<(i32, i32, LiveBroker)> {
    leader_of(broker, topic, partition).filter(|(leader, ..)| *leader != broker.config.node_id)
}

/// The leader of a partition (this broker too), its epoch and how clients reach it.
pub fn leader_of(broker: &Broker, topic: &str, partition: i32) -> Option<(i32, i32, LiveBroker)> {
    let image = broker.metadata.image();
    let p = image.topic(topic)?.partitions.get(&partition)?;
    if p.leader < 0 {
        return None;
    }
    let b = image.brokers.get(&p.leader).filter(|b| !b.fenced)?;
    Some((p.leader, p.leader_epoch, reachable(b, &broker.config.listener.name)?))
}

/// A KIP-951 `NodeEndpoint` (Produce and Fetch responses each have their own type) for a
/// broker as clients reach it.
macro_rules! node_endpoint {
    ($endpoint:ty, $node:expr) => {{
        let node: $crate::handlers::cluster_view::LiveBroker = $node;
        let mut e = <$endpoint>::default();
        e.node_id = strom_protocol::messages::BrokerId(node.id);
        e.host = strom_protocol::StrBytes::from_string(node.host);
        e.port = node.port;
        e.rack = node.rack.map(strom_protocol::StrBytes::from_string);
        e
    }};
}
pub(crate) use node_endpoint;

/// A registered broker as clients reach it on `listener`.
fn reachable(b: &BrokerImage, listener: &str) -> Option<LiveBroker> {
    let e = b.endpoint(listener)?;
    Some(LiveBroker { id: b.id, host: e.host.clone(), port: e.port as i32, rack: b.rack.clone() })
}
