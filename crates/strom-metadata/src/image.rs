//! The in-memory picture of the cluster built by applying metadata records in order. Readers get
//! an immutable `Arc<MetadataImage>`; a change builds a new image and swaps it in.

use crate::records::{BrokerEndpoint, MetadataRecord};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One partition's replica set and leadership.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped on each leader change; fences stale leaders and lets clients detect truncation.
    pub leader_epoch: i32,
    /// Bumped on each change of the partition's state.
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas being added (catching up, not yet
    /// counted as the target) and being removed once they have; both are in `replicas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment in progress ends with (all of them when there is none).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }

    /// The replicas before the reassignment in progress (all of them when there is none).
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.adding_replicas.contains(r)).collect()
    }
}

/// A topic with its partitions and its topic-level config overrides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Only the keys set on this topic; broker defaults fill in the rest.
    pub configs: BTreeMap<String, String>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerImage {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is left out of Metadata responses.
    pub fenced: bool,
    /// Partitions whose replica on this broker is in a failed log directory (this incarnation).
    #[serde(default)]
    pub offline_replicas: std::collections::BTreeSet<(Uuid, i32)>,
}

impl BrokerImage {
    /// Whether the broker's replica of the partition may be in the ISR and lead.
    pub fn can_serve(&self, topic_id: &Uuid, partition: i32) -> bool {
        !self.fenced && !self.offline_replicas.contains(&(*topic_id, partition))
    }

    /// The endpoint of listener `name`.
    pub fn endpoint(&self, name: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// The whole cluster metadata at one point of the metadata log.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerImage>,
    pub topics: BTreeMap<String, TopicImage>,
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// Dynamic broker configs (KIP-226) set as the cluster-wide default.
    pub cluster_configs: BTreeMap<String, String>,
    /// Dynamic broker configs set for one broker; they win over the cluster-wide default.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Number of records applied (the single-node log's position).
    pub applied_records: u64,
    /// The image's position in the metadata log: the offset after the last applied batch (the
    /// single-node log counts records, the quorum counts entries). Set by whoever applies.
    pub offset: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    /// Applies one record. Records come from the controller, which validated them, or from the
    /// log written by it; a record that names an unknown topic is therefore ignored with a warning
    /// rather than trusted.
    pub fn apply(&mut self, record: &MetadataRecord) {
        self.applied_records += 1;
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_names_by_id.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            } => {
                let Some(name) = self.topic_names_by_id.get(topic_id) else {
                    tracing::warn!(%topic_id, "metadata: partition record for unknown topic id");
                    return;
                };
                if let Some(topic) = self.topics.get_mut(name) {
                    topic.partitions.insert(
                        *partition,
                        PartitionImage {
                            partition: *partition,
                            replicas: replicas.clone(),
                            isr: isr.clone(),
                            leader: *leader,
                            leader_epoch: *leader_epoch,
                            partition_epoch: *partition_epoch,
                            adding_replicas: adding_replicas.clone(),
                            removing_replicas: removing_replicas.clone(),
                        },
                    );
                }
            }
            MetadataRecord::Config { topic, key, value } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    match value {
                        Some(v) => t.configs.insert(key.clone(), v.clone()),
                        None => t.configs.remove(key),
                    };
                }
            }
            MetadataRecord::BrokerConfig { broker_id, key, value } => {
                let configs = match broker_id {
                    Some(id) => self.broker_configs.entry(*id).or_default(),
                    None => &mut self.cluster_configs,
                };
                match value {
                    Some(v) => configs.insert(key.clone(), v.clone()),
                    None => configs.remove(key),
                };
                if let Some(id) = broker_id {
                    if self.broker_configs.get(id).is_some_and(BTreeMap::is_empty) {
                        self.broker_configs.remove(id);
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                assert!(*next_producer_id >= self.next_producer_id, "producer id blocks never go back");
                self.next_producer_id = *next_producer_id;
            }
            MetadataRecord::RegisterBroker { broker_id, incarnation_id, broker_epoch, endpoints, rack, fenced } => {
                if let Some(old) = self.brokers.get(broker_id) {
                    assert!(*broker_epoch > old.epoch, "broker epochs only grow");
                }
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: *broker_epoch,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                        offline_replicas: Default::default(),
                    },
                );
            }
            MetadataRecord::ReplicasOffline { broker_id, broker_epoch, partitions } => {
                match self.brokers.get_mut(broker_id) {
                    Some(b) if b.epoch == *broker_epoch => b.offline_replicas.extend(partitions.iter().copied()),
                    _ => {
                        tracing::warn!(broker_id, broker_epoch, "metadata: offline replicas of an unknown broker epoch")
                    }
                }
            }
            MetadataRecord::BrokerRegistrationChange { broker_id, broker_epoch, fenced } => {
                match self.brokers.get_mut(broker_id) {
                    Some(b) if b.epoch == *broker_epoch => b.fenced = *fenced,
                    _ => tracing::warn!(
                        broker_id,
                        broker_epoch,
                        "metadata: registration change for an unknown broker epoch"
                    ),
                }
            }
            MetadataRecord::UnregisterBroker { broker_id, broker_epoch } => {
                if self.brokers.get(broker_id).is_some_and(|b| b.epoch == *broker_epoch) {
                    self.brokers.remove(broker_id);
                }
            }
        }
    }
}

impl MetadataImage {
    /// The records that rebuild this image from nothing: what a snapshot of the metadata log
    /// holds (KRaft's snapshots are records too).
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                broker_id: b.id,
                incarnation_id: b.incarnation_id,
                broker_epoch: b.epoch,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
            });
            if !b.offline_replicas.is_empty() {
                out.push(MetadataRecord::ReplicasOffline {
                    broker_id: b.id,
                    broker_epoch: b.epoch,
                    partitions: b.offline_replicas.iter().copied().collect(),
                });
            }
        }
        for (key, value) in &self.cluster_configs {
            out.push(MetadataRecord::BrokerConfig { broker_id: None, key: key.clone(), value: Some(value.clone()) });
        }
        for (id, configs) in &self.broker_configs {
            for (key, value) in configs {
                out.push(MetadataRecord::BrokerConfig {
                    broker_id: Some(*id),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic { name: t.name.clone(), topic_id: t.topic_id });
            for (key, value) in &t.configs {
                out.push(MetadataRecord::Config {
                    topic: t.name.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
            for p in t.partitions.values() {
                out.push(MetadataRecord::Partition {
                    topic_id: t.topic_id,
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    adding_replicas: p.adding_replicas.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                });
            }
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds { next_producer_id: self.next_producer_id });
        }
        out
    }

    /// Encodes a snapshot: one JSON record per line.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        encode_records(&self.to_records())
    }

    /// Rebuilds an image from [`Self::encode_snapshot`]'s bytes.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<MetadataImage, String> {
        let mut image = MetadataImage::default();
        for record in decode_records(bytes)? {
            image.apply(&record);
        }
        Ok(image)
    }
}

/// Metadata records as JSON lines: the payload of a quorum entry and of a snapshot.
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        // Serialising these plain enums cannot fail.
        serde_json::to_writer(&mut out, r).expect("metadata records serialise");
        out.push(b'\n');
    }
    out
}

/// The inverse of [`encode_records`]; a line that does not parse is an error.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, String> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, line)| serde_json::from_slice(line).map_err(|e| format!("record {}: {e}", n + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_rebuilds_the_same_image() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::default();
        for r in [
            MetadataRecord::Topic { name: "t".into(), topic_id: id },
            MetadataRecord::Config { topic: "t".into(), key: "retention.ms".into(), value: Some("5".into()) },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1, 2],
                isr: vec![1],
                leader: 1,
                leader_epoch: 3,
                partition_epoch: 4,
                adding_replicas: vec![2],
                removing_replicas: vec![],
            },
            MetadataRecord::ProducerIds { next_producer_id: 2000 },
            MetadataRecord::BrokerConfig { broker_id: None, key: "log.retention.ms".into(), value: Some("9".into()) },
            MetadataRecord::BrokerConfig {
                broker_id: Some(1),
                key: "message.max.bytes".into(),
                value: Some("7".into()),
            },
        ] {
            image.apply(&r);
        }
        let back = MetadataImage::decode_snapshot(&image.encode_snapshot()).expect("decode");
        assert_eq!(back.topics, image.topics);
        assert_eq!(back.next_producer_id, 2000);
        assert_eq!(back.cluster_configs.get("log.retention.ms").map(String::as_str), Some("9"));
        assert_eq!(back.broker_configs[&1].get("message.max.bytes").map(String::as_str), Some("7"));
        assert!(MetadataImage::decode_snapshot(b"{\"type\":\"Nope\"}\n").is_err());
    }
}
