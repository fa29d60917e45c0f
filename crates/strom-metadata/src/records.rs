//! The records of the metadata log. Named after their KRaft counterparts (TopicRecord,
//! PartitionRecord, ConfigRecord, RemoveTopicRecord, ProducerIdsRecord) so that the later Raft
//! replication carries the same facts. Stored as one JSON object per line: readable by an
//! operator, and a torn last line after a crash is easy to detect and drop.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic was created; its id stays the same for its whole life and tells a re-created topic
    /// of the same name apart from the old one.
    Topic { name: String, topic_id: Uuid },
    /// A partition exists (or changed) with this replica set, leader and epochs.
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        /// During a reassignment (KIP-455): the replicas being added and being removed; both
        /// are in `replicas`. Absent from records written before reassignments existed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<i32>,
    },
    /// A topic config was set (`value: Some`) or removed back to the broker default (`None`).
    Config { topic: String, key: String, value: Option<String> },
    /// A dynamic broker config (KIP-226) was set or removed: for one broker (`broker_id: Some`)
    /// or as the cluster-wide default (`None`, Kafka's resource name "").
    BrokerConfig { broker_id: Option<i32>, key: String, value: Option<String> },
    /// The topic and all its partitions are gone.
    RemoveTopic { topic_id: Uuid },
    /// Producer ids below `next_producer_id` are handed out; fences ids across restarts.
    ProducerIds { next_producer_id: i64 },
    /// A broker (re)registered (KRaft's RegisterBrokerRecord). A new incarnation of the same id
    /// replaces the old registration; `broker_epoch` grows with every registration.
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        broker_epoch: i64,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        fenced: bool,
    },
    /// The replicas of these partitions on a broker sit in a log directory that failed (JBOD):
    /// they leave the ISR and may not lead until the broker registers again (KIP-858's offline
    /// log directories, by partition instead of by directory id).
    ReplicasOffline { broker_id: i32, broker_epoch: i64, partitions: Vec<(Uuid, i32)> },
    /// A registered broker was fenced or unfenced (KRaft's BrokerRegistrationChangeRecord).
    BrokerRegistrationChange { broker_id: i32, broker_epoch: i64, fenced: bool },
    /// A broker's registration was removed (`strom cluster unregister`).
    UnregisterBroker { broker_id: i32, broker_epoch: i64 },
}

/// One listener of a broker, as clients and other brokers reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}
