//! The in-memory picture of the cluster built by applying metadata records in order. Readers get
//! an immutable `Arc<MetadataImage>`; a change builds a new image and swaps it in.

use crate::records::MetadataRecord;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One partition's replica set and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped on each leader change; fences stale leaders and lets clients detect truncation.
    pub leader_epoch: i32,
    /// Bumped on each change of the partition's state.
    pub partition_epoch: i32,
}

/// A topic with its partitions and its topic-level config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Only the keys set on this topic; broker defaults fill in the rest.
    pub configs: BTreeMap<String, String>,
}

/// The whole cluster metadata at one point of the metadata log.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, TopicImage>,
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Number of records applied; the image's position in the metadata log.
    pub applied_records: u64,
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
            MetadataRecord::Partition { topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch } => {
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
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                assert!(*next_producer_id >= self.next_producer_id, "producer id blocks never go back");
                self.next_producer_id = *next_producer_id;
            }
        }
    }
}
