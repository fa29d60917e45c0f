//! The controller: validates admin operations against the current image and turns them into
//! metadata records, which it makes durable in the metadata log before applying them.
//!
//! It is synchronous and holds no locks of its own; the broker serialises calls to it (one
//! mutex), which is also what orders the metadata log.

use crate::error::MetadataError;
use crate::image::{MetadataImage, TopicImage};
use crate::log::MetadataLog;
use crate::records::MetadataRecord;
use crate::topic_config;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// Kafka's limit on topic name length (so that `<topic>-<partition>` fits a file name).
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Producer ids are reserved in blocks so that the metadata log is not written per producer.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// What a CreateTopics entry asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateTopicSpec {
    pub name: String,
    /// -1 means the broker default (num.partitions).
    pub num_partitions: i32,
    /// -1 means the broker default (default.replication.factor).
    pub replication_factor: i16,
    /// Explicit replica assignment: (partition, replicas). Excludes the two counts above.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, String)>,
}

/// Broker-wide settings the controller needs for validation.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub node_id: i32,
    pub default_num_partitions: i32,
    pub default_replication_factor: i16,
    pub delete_topic_enable: bool,
}

pub struct Controller {
    log: MetadataLog,
    image: Arc<MetadataImage>,
    settings: ControllerSettings,
    /// Live brokers; a single node in this mode.
    brokers: Vec<i32>,
    /// Producer ids already reserved by a ProducerIds record and not yet handed out.
    producer_ids_left: std::ops::Range<i64>,
}

impl Controller {
    pub fn open(data_dir: &Path, settings: ControllerSettings) -> Result<Controller, MetadataError> {
        let (log, image) = MetadataLog::open(data_dir)?;
        let brokers = vec![settings.node_id];
        let start = image.next_producer_id;
        Ok(Controller { log, image: Arc::new(image), settings, brokers, producer_ids_left: start..start })
    }

    /// The current image; cheap to clone and never changes under the reader.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image)
    }

    fn commit(&mut self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        self.log.append(&records)?;
        let mut next = (*self.image).clone();
        for r in &records {
            next.apply(r);
        }
        self.image = Arc::new(next);
        Ok(())
    }

    pub fn create_topic(&mut self, spec: CreateTopicSpec, validate_only: bool) -> Result<TopicImage, MetadataError> {
        validate_topic_name(&spec.name)?;
        if self.image.topics.contains_key(&spec.name) {
            return Err(MetadataError::TopicAlreadyExists(spec.name));
        }
        let normalized = spec.name.replace('.', "_");
        if let Some(other) = self.image.topics.keys().find(|t| t.replace('.', "_") == normalized) {
            return Err(MetadataError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                spec.name
            )));
        }
        for (k, v) in &spec.configs {
            topic_config::validate(k, v)?;
        }
        let assignments = self.plan_assignments(&spec)?;
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic { name: spec.name.clone(), topic_id }];
        records.extend(spec.configs.iter().map(|(k, v)| MetadataRecord::Config {
            topic: spec.name.clone(),
            key: k.clone(),
            value: Some(v.clone()),
        }));
        records.extend(
            assignments.into_iter().map(|(partition, replicas)| partition_record(topic_id, partition, replicas)),
        );
        if validate_only {
            let mut preview = MetadataImage::default();
            records.iter().for_each(|r| preview.apply(r));
            return preview.topics.remove(&spec.name).ok_or(MetadataError::UnknownTopic(spec.name));
        }
        self.commit(records)?;
        tracing::info!(topic = %spec.name, %topic_id, "created topic");
        self.image.topic(&spec.name).cloned().ok_or(MetadataError::UnknownTopic(spec.name))
    }

    fn plan_assignments(&self, spec: &CreateTopicSpec) -> Result<Vec<(i32, Vec<i32>)>, MetadataError> {
        if !spec.assignments.is_empty() {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(MetadataError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let mut sorted = spec.assignments.clone();
            sorted.sort_by_key(|(p, _)| *p);
            let rf = sorted[0].1.len();
            for (i, (p, replicas)) in sorted.iter().enumerate() {
                if *p != i as i32 {
                    return Err(MetadataError::InvalidReplicaAssignment(
                        "Partitions should be a consecutive 0-based integer sequence".into(),
                    ));
                }
                self.check_replicas(*p, replicas, rf)?;
            }
            return Ok(sorted);
        }
        let partitions =
            if spec.num_partitions == -1 { self.settings.default_num_partitions } else { spec.num_partitions };
        let rf = if spec.replication_factor == -1 {
            self.settings.default_replication_factor
        } else {
            spec.replication_factor
        };
        if partitions <= 0 {
            return Err(MetadataError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        if rf <= 0 {
            return Err(MetadataError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        self.check_replication_factor(rf as usize)?;
        Ok((0..partitions).map(|p| (p, self.assign_replicas(p, rf as usize))).collect())
    }

    fn check_replication_factor(&self, rf: usize) -> Result<(), MetadataError> {
        if rf > self.brokers.len() {
            return Err(MetadataError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                self.brokers.len()
            )));
        }
        Ok(())
    }

    fn check_replicas(&self, partition: i32, replicas: &[i32], rf: usize) -> Result<(), MetadataError> {
        let invalid = |why: String| Err(MetadataError::InvalidReplicaAssignment(why));
        if replicas.is_empty() {
            return invalid(format!(
                "The manual partition assignment includes a partition ({partition}) with no replicas."
            ));
        }
        if replicas.len() != rf {
            return invalid("All partitions should have the same number of replicas".into());
        }
        let mut seen = replicas.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != replicas.len() {
            return invalid(format!(
                "The manual partition assignment includes the broker twice in partition {partition}."
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !self.brokers.contains(b)) {
            return invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        Ok(())
    }

    /// Round-robin over the live brokers, starting at a partition-dependent broker, as Kafka's
    /// rack-unaware placement does.
    fn assign_replicas(&self, partition: i32, rf: usize) -> Vec<i32> {
        let n = self.brokers.len();
        (0..rf).map(|i| self.brokers[(partition as usize + i) % n]).collect()
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<TopicImage, MetadataError> {
        if !self.settings.delete_topic_enable {
            return Err(MetadataError::TopicDeletionDisabled);
        }
        let topic = self.image.topic(name).cloned().ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        self.commit(vec![MetadataRecord::RemoveTopic { topic_id: topic.topic_id }])?;
        tracing::info!(topic = %name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `new_total` partitions (CreatePartitions). Kafka never shrinks a topic.
    pub fn create_partitions(
        &mut self,
        name: &str,
        new_total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let topic = self.image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if new_total < current {
            return Err(MetadataError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {new_total}."
            )));
        }
        if new_total == current {
            return Err(MetadataError::InvalidPartitions(format!("Topic already has {current} partitions.")));
        }
        let rf = topic.partitions.values().next().map(|p| p.replicas.len()).unwrap_or(1);
        let topic_id = topic.topic_id;
        let mut records = Vec::new();
        for (i, p) in (current..new_total).enumerate() {
            let replicas = match &assignments {
                Some(a) => {
                    let r = a.get(i).cloned().ok_or_else(|| {
                        MetadataError::InvalidReplicaAssignment(format!(
                            "Increasing the number of partitions by {} but {} assignments provided.",
                            new_total - current,
                            a.len()
                        ))
                    })?;
                    self.check_replicas(p, &r, rf)?;
                    r
                }
                None => self.assign_replicas(p, rf),
            };
            records.push(partition_record(topic_id, p, replicas));
        }
        if validate_only {
            return Ok(());
        }
        self.commit(records)?;
        tracing::info!(topic = %name, partitions = new_total, "added partitions");
        Ok(())
    }

    /// Changes topic configs. `replace_all` is the legacy AlterConfigs semantics (the given set
    /// replaces every override); otherwise each entry sets (`Some`) or deletes (`None`) one key.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        changes: Vec<(String, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let topic = self.image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let mut records = Vec::new();
        if replace_all {
            for key in topic.configs.keys() {
                if !changes.iter().any(|(k, _)| k == key) {
                    records.push(MetadataRecord::Config { topic: name.to_string(), key: key.clone(), value: None });
                }
            }
        }
        for (key, value) in changes {
            match &value {
                Some(v) => topic_config::validate(&key, v)?,
                None if topic_config::find(&key).is_none() => {
                    return Err(MetadataError::InvalidConfig(format!("Unknown topic config name: {key}")))
                }
                None => {}
            }
            records.push(MetadataRecord::Config { topic: name.to_string(), key, value });
        }
        if validate_only || records.is_empty() {
            return Ok(());
        }
        self.commit(records)
    }

    /// Hands out a new producer id (InitProducerId), reserving a block in the log when needed.
    pub fn allocate_producer_id(&mut self) -> Result<i64, MetadataError> {
        if self.producer_ids_left.is_empty() {
            let start = self.image.next_producer_id;
            self.commit(vec![MetadataRecord::ProducerIds { next_producer_id: start + PRODUCER_ID_BLOCK }])?;
            self.producer_ids_left = start..start + PRODUCER_ID_BLOCK;
        }
        let id = self.producer_ids_left.start;
        self.producer_ids_left.start += 1;
        Ok(id)
    }
}

fn partition_record(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

/// Kafka's topic name rules (org.apache.kafka.common.internals.Topic.validate).
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |why: String| Err(MetadataError::InvalidTopic(why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(dir: &Path) -> Controller {
        let settings = ControllerSettings {
            node_id: 1,
            default_num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
        };
        Controller::open(dir, settings).expect("open")
    }

    fn spec(name: &str, partitions: i32) -> CreateTopicSpec {
        CreateTopicSpec { name: name.into(), num_partitions: partitions, replication_factor: -1, ..Default::default() }
    }

    #[test]
    fn topics_survive_reopen_with_same_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let id = {
            let mut c = controller(dir.path());
            let t = c.create_topic(spec("orders", 3), false).expect("create");
            c.alter_topic_configs("orders", vec![("retention.ms".into(), Some("1000".into()))], false, false)
                .expect("alter");
            t.topic_id
        };
        let c = controller(dir.path());
        let t = c.image().topic("orders").cloned().expect("exists");
        assert_eq!(t.topic_id, id);
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
    }

    #[test]
    fn rejects_bad_names_counts_and_duplicates() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = controller(dir.path());
        assert!(matches!(c.create_topic(spec("bad name", 1), false), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(c.create_topic(spec("..", 1), false), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(c.create_topic(spec(&"x".repeat(250), 1), false), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(c.create_topic(spec("t", 0), false), Err(MetadataError::InvalidPartitions(_))));
        let mut three = spec("t", 1);
        three.replication_factor = 3;
        assert!(matches!(c.create_topic(three, false), Err(MetadataError::InvalidReplicationFactor(_))));
        c.create_topic(spec("a.b", 1), false).expect("create");
        assert!(matches!(c.create_topic(spec("a.b", 1), false), Err(MetadataError::TopicAlreadyExists(_))));
        assert!(matches!(c.create_topic(spec("a_b", 1), false), Err(MetadataError::InvalidTopic(_))));
    }

    #[test]
    fn validate_only_changes_nothing_and_partitions_only_grow() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = controller(dir.path());
        c.create_topic(spec("v", 2), true).expect("validate");
        assert!(c.image().topic("v").is_none());
        c.create_topic(spec("v", 2), false).expect("create");
        assert!(matches!(c.create_partitions("v", 1, None, false), Err(MetadataError::InvalidPartitions(_))));
        c.create_partitions("v", 4, None, false).expect("grow");
        assert_eq!(c.image().topic("v").map(|t| t.partitions.len()), Some(4));
    }

    #[test]
    fn producer_ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = controller(dir.path()).allocate_producer_id().expect("pid");
        let second = controller(dir.path()).allocate_producer_id().expect("pid");
        assert!(second > first);
    }

    #[test]
    fn torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        controller(dir.path()).create_topic(spec("keep", 1), false).expect("create");
        let file = dir.path().join(crate::log::METADATA_DIR).join("records.jsonl");
        let mut bytes = std::fs::read(&file).expect("read");
        bytes.extend_from_slice(b"{\"type\":\"Topic\",\"na");
        std::fs::write(&file, bytes).expect("write");
        let mut c = controller(dir.path());
        assert!(c.image().topic("keep").is_some());
        c.create_topic(spec("after", 1), false).expect("create after torn tail");
        assert!(controller(dir.path()).image().topic("after").is_some());
    }
}
