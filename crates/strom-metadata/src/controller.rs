//! The controller: validates admin operations against the current image and turns them into
//! metadata records ([`Proposal`]). It does no I/O and never changes the image: the quorum makes
//! the records durable and orders them, and the node's publisher applies them. The caller
//! serialises operations and runs the next one only on an image that includes the records of the
//! previous one, so every proposal is validated against everything committed before it.

use crate::error::MetadataError;
use crate::image::{MetadataImage, TopicImage};
use crate::placement::assign_replicas;
use crate::records::MetadataRecord;
use crate::topic_config;
use uuid::Uuid;

/// Kafka's limit on topic name length (so that `<topic>-<partition>` fits a file name).
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Producer ids are reserved in blocks so that the metadata log is not written per producer.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// What a CreateTopics entry asks for.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
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
    /// `broker.session.timeout.ms`: a broker not heard from this long is fenced.
    pub broker_session_timeout_ms: i64,
    /// `unclean.leader.election.enable`, the default for topics that do not set it.
    pub unclean_leader_election_enable: bool,
}

#[cfg(test)]
impl ControllerSettings {
    /// Node 1's settings in the unit tests: Kafka's 9 s session timeout.
    pub(crate) fn for_tests(partitions: i32, replication_factor: i16, unclean: bool) -> ControllerSettings {
        ControllerSettings {
            node_id: 1,
            default_num_partitions: partitions,
            default_replication_factor: replication_factor,
            delete_topic_enable: true,
            broker_session_timeout_ms: 9_000,
            unclean_leader_election_enable: unclean,
        }
    }
}

/// What an operation decided: the records to commit (none for a validation or a no-op) and the
/// answer to give once they are committed.
#[derive(Debug)]
pub struct Proposal<T> {
    pub records: Vec<MetadataRecord>,
    pub value: T,
}

impl<T> Proposal<T> {
    pub(crate) fn new(records: Vec<MetadataRecord>, value: T) -> Proposal<T> {
        Proposal { records, value }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Proposal<U> {
        Proposal { records: self.records, value: f(self.value) }
    }
}

pub struct Controller {
    pub(crate) settings: ControllerSettings,
    /// Producer ids already reserved by a committed ProducerIds record and not yet handed out.
    producer_ids_left: std::ops::Range<i64>,
    /// Last heartbeat of each broker, by this controller's clock (in memory only).
    pub(crate) sessions: std::collections::HashMap<i32, i64>,
}

impl Controller {
    pub fn new(settings: ControllerSettings) -> Controller {
        Controller { settings, producer_ids_left: 0..0, sessions: std::collections::HashMap::new() }
    }

    pub fn create_topic(
        &self,
        image: &MetadataImage,
        spec: CreateTopicSpec,
        validate_only: bool,
    ) -> Result<Proposal<TopicImage>, MetadataError> {
        validate_topic_name(&spec.name)?;
        if spec.name == "__cluster_metadata" {
            return Err(MetadataError::InvalidRequest(
                "Creation of internal topic __cluster_metadata is prohibited.".into(),
            ));
        }
        if image.topics.contains_key(&spec.name) {
            return Err(MetadataError::TopicAlreadyExists(spec.name));
        }
        let normalized = spec.name.replace('.', "_");
        if let Some(other) = image.topics.keys().find(|t| t.replace('.', "_") == normalized) {
            return Err(MetadataError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                spec.name
            )));
        }
        for (k, v) in &spec.configs {
            topic_config::validate(k, v)?;
        }
        let assignments = self.plan_assignments(image, &self.live_brokers(image), &spec)?;
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
        let mut preview = MetadataImage::default();
        records.iter().for_each(|r| preview.apply(r));
        let topic = preview.topics.remove(&spec.name).ok_or(MetadataError::UnknownTopic(spec.name))?;
        if validate_only {
            records.clear();
        }
        Ok(Proposal::new(records, topic))
    }

    fn plan_assignments(
        &self,
        image: &MetadataImage,
        brokers: &[i32],
        spec: &CreateTopicSpec,
    ) -> Result<Vec<(i32, Vec<i32>)>, MetadataError> {
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
                check_replicas(brokers, *p, replicas, rf)?;
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
        check_replication_factor(brokers, rf as usize)?;
        Ok((0..partitions).map(|p| (p, assign_replicas(image, brokers, p, rf as usize))).collect())
    }
}

fn check_replication_factor(brokers: &[i32], rf: usize) -> Result<(), MetadataError> {
    if rf > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            )));
    }
    Ok(())
}

fn check_replicas(brokers: &[i32], partition: i32, replicas: &[i32], rf: usize) -> Result<(), MetadataError> {
    check_replication_factor(brokers, rf.max(1))?;
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
        return invalid(format!("The manual partition assignment includes the broker twice in partition {partition}."));
    }
    if let Some(b) = replicas.iter().find(|b| !brokers.contains(b)) {
        return invalid(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        ));
    }
    Ok(())
}

impl Controller {
    /// Brokers that can take replicas: the registered, unfenced ones (before this node's own
    /// registration is committed, itself).
    fn live_brokers(&self, image: &MetadataImage) -> Vec<i32> {
        let live: Vec<i32> = image.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
        if live.is_empty() && image.brokers.is_empty() {
            return vec![self.settings.node_id];
        }
        live
    }

    pub fn delete_topic(&self, image: &MetadataImage, name: &str) -> Result<Proposal<TopicImage>, MetadataError> {
        if !self.settings.delete_topic_enable {
            return Err(MetadataError::TopicDeletionDisabled);
        }
        let topic = image.topic(name).cloned().ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        Ok(Proposal::new(vec![MetadataRecord::RemoveTopic { topic_id: topic.topic_id }], topic))
    }

    /// Grows a topic to `new_total` partitions (CreatePartitions). Kafka never shrinks a topic.
    pub fn create_partitions(
        &self,
        image: &MetadataImage,
        name: &str,
        new_total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Proposal<()>, MetadataError> {
        let topic = image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
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
        let brokers = self.live_brokers(image);
        if assignments.is_none() {
            check_replication_factor(&brokers, rf)?;
        }
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
                    check_replicas(&brokers, p, &r, rf)?;
                    r
                }
                None => assign_replicas(image, &brokers, p, rf),
            };
            records.push(partition_record(topic_id, p, replicas));
        }
        if validate_only {
            records.clear();
        }
        Ok(Proposal::new(records, ()))
    }

    /// Changes topic configs. `replace_all` is the legacy AlterConfigs semantics (the given set
    /// replaces every override); otherwise each entry sets (`Some`) or deletes (`None`) one key.
    pub fn alter_topic_configs(
        &self,
        image: &MetadataImage,
        name: &str,
        changes: Vec<(String, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Proposal<()>, MetadataError> {
        let topic = image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
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
        if validate_only {
            records.clear();
        }
        Ok(Proposal::new(records, ()))
    }

    /// Hands out a new producer id (InitProducerId), proposing the reservation of a new block when
    /// the current one is used up. The block counts as reserved only once [`Self::committed`] is
    /// told that the proposal was committed.
    pub fn allocate_producer_id(&mut self, image: &MetadataImage) -> Result<Proposal<i64>, MetadataError> {
        if self.producer_ids_left.is_empty() {
            let start = image.next_producer_id;
            return Ok(Proposal::new(
                vec![MetadataRecord::ProducerIds { next_producer_id: start + PRODUCER_ID_BLOCK }],
                start,
            ));
        }
        let id = self.producer_ids_left.start;
        self.producer_ids_left.start += 1;
        Ok(Proposal::new(Vec::new(), id))
    }

    /// Learns that `records` were committed, for the state the controller keeps beside the image
    /// (the producer-id block it hands out from).
    pub fn committed(&mut self, records: &[MetadataRecord]) {
        for r in records {
            if let MetadataRecord::ProducerIds { next_producer_id } = r {
                // The proposal's own value was the block's first id.
                self.producer_ids_left = next_producer_id - PRODUCER_ID_BLOCK + 1..*next_producer_id;
            }
        }
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
        adding_replicas: vec![],
        removing_replicas: vec![],
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

    /// A controller and the image its committed proposals built, as a node's publisher keeps it.
    struct Harness {
        controller: Controller,
        image: MetadataImage,
    }

    impl Harness {
        fn new() -> Harness {
            let settings = ControllerSettings::for_tests(1, 1, false);
            Harness { controller: Controller::new(settings), image: MetadataImage::default() }
        }

        fn run<T>(
            &mut self,
            op: impl FnOnce(&mut Controller, &MetadataImage) -> Result<Proposal<T>, MetadataError>,
        ) -> Result<T, MetadataError> {
            let proposal = op(&mut self.controller, &self.image)?;
            proposal.records.iter().for_each(|r| self.image.apply(r));
            self.controller.committed(&proposal.records);
            Ok(proposal.value)
        }

        fn create(&mut self, spec: CreateTopicSpec) -> Result<TopicImage, MetadataError> {
            self.run(|c, image| c.create_topic(image, spec, false))
        }
    }

    fn spec(name: &str, partitions: i32) -> CreateTopicSpec {
        CreateTopicSpec { name: name.into(), num_partitions: partitions, replication_factor: -1, ..Default::default() }
    }

    #[test]
    fn rejects_bad_names_counts_and_duplicates() {
        let mut h = Harness::new();
        assert!(matches!(h.create(spec("bad name", 1)), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(h.create(spec("..", 1)), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(h.create(spec("__cluster_metadata", 1)), Err(MetadataError::InvalidRequest(_))));
        assert!(matches!(h.create(spec(&"x".repeat(250), 1)), Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(h.create(spec("t", 0)), Err(MetadataError::InvalidPartitions(_))));
        let mut three = spec("t", 1);
        three.replication_factor = 3;
        assert!(matches!(h.create(three), Err(MetadataError::InvalidReplicationFactor(_))));
        h.create(spec("a.b", 1)).expect("create");
        assert!(matches!(h.create(spec("a.b", 1)), Err(MetadataError::TopicAlreadyExists(_))));
        assert!(matches!(h.create(spec("a_b", 1)), Err(MetadataError::InvalidTopic(_))));
    }

    #[test]
    fn validate_only_proposes_nothing_and_partitions_only_grow() {
        let mut h = Harness::new();
        let preview = h.run(|c, image| c.create_topic(image, spec("v", 2), true)).expect("validate");
        assert_eq!(preview.partitions.len(), 2);
        assert!(h.image.topic("v").is_none());
        h.create(spec("v", 2)).expect("create");
        assert!(matches!(
            h.run(|c, image| c.create_partitions(image, "v", 1, None, false)),
            Err(MetadataError::InvalidPartitions(_))
        ));
        h.run(|c, image| c.create_partitions(image, "v", 4, None, true)).expect("validate grow");
        assert_eq!(h.image.topic("v").map(|t| t.partitions.len()), Some(2));
        h.run(|c, image| c.create_partitions(image, "v", 4, None, false)).expect("grow");
        assert_eq!(h.image.topic("v").map(|t| t.partitions.len()), Some(4));
    }

    #[test]
    fn configs_are_validated_and_replace_all_drops_the_rest() {
        let mut h = Harness::new();
        h.create(spec("c", 1)).expect("create");
        let set = |k: &str, v: &str| vec![(k.to_string(), Some(v.to_string()))];
        assert!(matches!(
            h.run(|c, image| c.alter_topic_configs(image, "c", set("retention.ms", "soon"), false, false)),
            Err(MetadataError::InvalidConfig(_))
        ));
        h.run(|c, image| c.alter_topic_configs(image, "c", set("retention.ms", "1000"), false, false)).expect("set");
        h.run(|c, image| c.alter_topic_configs(image, "c", set("segment.bytes", "1048576"), true, false))
            .expect("replace");
        let configs = &h.image.topic("c").expect("topic").configs;
        assert_eq!(configs.get("segment.bytes").map(String::as_str), Some("1048576"));
        assert!(!configs.contains_key("retention.ms"));
    }

    #[test]
    fn producer_ids_come_from_committed_blocks_and_never_repeat() {
        let mut h = Harness::new();
        let ids: Vec<i64> = (0..2500).map(|_| h.run(|c, image| c.allocate_producer_id(image)).expect("pid")).collect();
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // A proposal that is never committed reserves nothing: the next block starts where the
        // committed ones end.
        let uncommitted =
            Controller::new(h.controller.settings.clone()).allocate_producer_id(&h.image).expect("proposal");
        assert!(uncommitted.value > *ids.last().expect("ids"));
        // A fresh controller (a restart) continues after every committed block.
        let mut restarted =
            Harness { controller: Controller::new(h.controller.settings.clone()), image: h.image.clone() };
        let next = restarted.run(|c, image| c.allocate_producer_id(image)).expect("pid");
        assert!(next > *ids.last().expect("ids"));
    }
}
