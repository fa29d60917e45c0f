//! The broker configs that can change without a restart (Kafka's KIP-226 dynamic broker
//! configs), for one broker or as the cluster-wide default. Only keys Kafka itself allows to
//! change dynamically are listed (not `log.retention.hours`/`minutes` or `log.roll.hours`: Kafka
//! refuses those too), and of those only the ones Strom reads: a key Kafka would take that changes
//! nothing here is refused with a sentence saying so, rather than stored and ignored. Kafka also
//! stores keys it does not know (for plugins); Strom has no plugins and refuses them.

use crate::controller::{Controller, Proposal};
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::topic_config::{self, ConfigType};

/// One dynamic broker config.
#[derive(Debug, Clone, Copy)]
pub struct DynamicBrokerConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// Kafka's default, shown by DescribeConfigs when nothing sets the key.
    pub default: &'static str,
}

const fn def(name: &'static str, ty: ConfigType, default: &'static str) -> DynamicBrokerConfigDef {
    DynamicBrokerConfigDef { name, ty, default }
}

use ConfigType::*;

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Kafka 4.0's dynamically updatable broker configs that Strom applies, sorted by name.
pub const DYNAMIC_BROKER_CONFIGS: &[DynamicBrokerConfigDef] = &[
    def("compression.type", Enum(COMPRESSION), "producer"),
    def("follower.replication.throttled.rate", Long { min: 0 }, "9223372036854775807"),
    def("leader.replication.throttled.rate", Long { min: 0 }, "9223372036854775807"),
    def("log.cleaner.backoff.ms", Long { min: 0 }, "15000"),
    def("log.cleaner.dedupe.buffer.size", Long { min: 1 }, "134217728"),
    def("log.cleaner.delete.retention.ms", Long { min: 0 }, "86400000"),
    def("log.cleaner.io.max.bytes.per.second", Double, "1.7976931348623157E308"),
    def("log.cleaner.max.compaction.lag.ms", Long { min: 1 }, "9223372036854775807"),
    def("log.cleaner.min.cleanable.ratio", Double, "0.5"),
    def("log.cleaner.min.compaction.lag.ms", Long { min: 0 }, "0"),
    def("log.cleaner.threads", Int { min: 1 }, "1"),
    def("log.cleanup.policy", List(&["delete", "compact"]), "delete"),
    def("log.flush.interval.messages", Long { min: 1 }, "9223372036854775807"),
    def("log.flush.interval.ms", Long { min: 1 }, "9223372036854775807"),
    def("log.index.interval.bytes", Int { min: 0 }, "4096"),
    def("log.message.timestamp.after.max.ms", Long { min: 0 }, "3600000"),
    def("log.message.timestamp.before.max.ms", Long { min: 0 }, "9223372036854775807"),
    def("log.message.timestamp.type", Enum(&["CreateTime", "LogAppendTime"]), "CreateTime"),
    def("log.retention.bytes", Long { min: -1 }, "-1"),
    def("log.retention.ms", Long { min: -1 }, "604800000"),
    def("log.roll.ms", Long { min: 1 }, "604800000"),
    def("log.segment.bytes", Int { min: 14 }, "1073741824"),
    def("max.connections", Int { min: 1 }, "2147483647"),
    def("message.max.bytes", Int { min: 0 }, "1048588"),
    def("min.insync.replicas", Int { min: 1 }, "1"),
    def("producer.id.expiration.ms", Int { min: 1 }, "86400000"),
    // Read by the active controller from the cluster-wide default only (a per-broker value would
    // depend on which node happens to be the controller).
    def("unclean.leader.election.enable", Boolean, "false"),
];

/// Kafka keys that Kafka updates dynamically but that have no effect in Strom (its threads are
/// not configured this way), refused with a sentence rather than stored.
const DYNAMIC_IN_KAFKA_ONLY: &[&str] = &[
    "background.threads",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.index.size.max.bytes",
    "log.local.retention.bytes",
    "log.local.retention.ms",
    "log.message.downconversion.enable",
    "log.preallocate",
    "log.roll.jitter.ms",
    "log.segment.delete.delay.ms",
    "max.connection.creation.rate",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "metric.reporters",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "transaction.partition.verification.enable",
];

/// Looks up a dynamic broker config by name.
pub fn find(name: &str) -> Option<&'static DynamicBrokerConfigDef> {
    DYNAMIC_BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks that `name` may be changed dynamically and that `value` (None: delete) is valid.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), MetadataError> {
    let Some(def) = find(name) else {
        if DYNAMIC_IN_KAFKA_ONLY.contains(&name) {
            return Err(MetadataError::InvalidConfig(format!(
                "Cannot update these configs dynamically: Set({name}): Strom does not use {name}"
            )));
        }
        return Err(MetadataError::InvalidConfig(format!("Cannot update these configs dynamically: Set({name})")));
    };
    match value {
        Some(v) => topic_config::validate_value(name, def.ty, v),
        None => Ok(()),
    }
}

/// Keys only the cluster-wide default may set: the active controller reads them, and a
/// per-broker value would count only while that broker's node happens to be the controller.
pub const CLUSTER_WIDE_ONLY: &[&str] = &["unclean.leader.election.enable"];

impl Controller {
    /// Changes dynamic broker configs of `broker_id` (None: the cluster-wide default).
    /// `replace_all` is the legacy AlterConfigs semantics (the given set replaces every dynamic
    /// config of the resource); otherwise each entry sets (`Some`) or deletes (`None`) one key.
    pub fn alter_broker_configs(
        &self,
        image: &MetadataImage,
        broker_id: Option<i32>,
        changes: Vec<(String, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    ) -> Result<Proposal<()>, MetadataError> {
        if let Some(id) = broker_id.filter(|id| *id < 0) {
            return Err(MetadataError::InvalidRequest(format!("Invalid broker id {id}")));
        }
        if let Some((key, _)) =
            changes.iter().find(|(k, v)| broker_id.is_some() && v.is_some() && CLUSTER_WIDE_ONLY.contains(&k.as_str()))
        {
            return Err(MetadataError::InvalidConfig(format!(
                "{key} is read by the active controller: set it as the cluster-wide default (--entity-default)"
            )));
        }
        let current = match broker_id {
            Some(id) => image.broker_configs.get(&id),
            None => Some(&image.cluster_configs),
        };
        let mut records = Vec::new();
        if replace_all {
            for key in current.into_iter().flat_map(|c| c.keys()) {
                if !changes.iter().any(|(k, _)| k == key) {
                    records.push(MetadataRecord::BrokerConfig { broker_id, key: key.clone(), value: None });
                }
            }
        }
        for (key, value) in changes {
            validate(&key, value.as_deref())?;
            records.push(MetadataRecord::BrokerConfig { broker_id, key, value });
        }
        if broker_id.is_none()
            && records.iter().any(
                |r| matches!(r, MetadataRecord::BrokerConfig { key, .. } if key == "unclean.leader.election.enable"),
            )
        {
            // Turned on for the cluster: partitions without a leader get one now (out of the
            // ISR if need be), not at the next broker event.
            let elections = self.partition_changes_after(image, &records);
            records.extend(elections);
        }
        if validate_only {
            records.clear();
        }
        Ok(Proposal::new(records, ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{ControllerSettings, CreateTopicSpec};
    use crate::records::BrokerEndpoint;
    use uuid::Uuid;

    #[test]
    fn turning_unclean_election_on_for_the_cluster_elects_leaderless_partitions_at_once() {
        let settings = ControllerSettings::for_tests(1, 2, false);
        let mut c = Controller::new(settings);
        let mut image = MetadataImage::default();
        let commit = |image: &mut MetadataImage, records: &[MetadataRecord]| {
            records.iter().for_each(|r| image.apply(r));
            image.offset += 1;
        };
        for id in 1..=2 {
            let endpoints = vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }];
            let p = c.register_broker(&image, id, Uuid::new_v4(), endpoints, None).expect("register");
            commit(&mut image, &p.records);
        }
        let spec = CreateTopicSpec {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 2,
            assignments: vec![],
            configs: vec![],
        };
        let p = c.create_topic(&image, spec, false).expect("create");
        commit(&mut image, &p.records);
        let first = image.topic("t").expect("t").partitions[&0].leader;
        let other = 3 - first;
        // The follower drops out of the ISR, then the leader dies: no clean leader is left.
        let fence = c.fence_broker(&image, other).expect("fence");
        commit(&mut image, &fence.records);
        let p = c
            .register_broker(
                &image,
                other,
                Uuid::new_v4(),
                vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }],
                None,
            )
            .expect("back");
        commit(&mut image, &p.records);
        let fence = c.fence_broker(&image, first).expect("fence");
        commit(&mut image, &fence.records);
        assert_eq!(image.topic("t").expect("t").partitions[&0].leader, -1, "offline: the only ISR member is fenced");
        let on = vec![("unclean.leader.election.enable".to_string(), Some("true".to_string()))];
        let p = c.alter_broker_configs(&image, None, on, false, false).expect("alter");
        commit(&mut image, &p.records);
        assert_eq!(image.topic("t").expect("t").partitions[&0].leader, other, "elected at once, out of the ISR");
    }

    #[test]
    fn table_is_sorted_and_values_are_checked() {
        assert!(DYNAMIC_BROKER_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(validate("log.retention.ms", Some("1000")).is_ok());
        assert!(validate("log.retention.ms", Some("soon")).is_err());
        assert!(validate("log.retention.ms", None).is_ok());
        assert!(validate("log.dirs", Some("/x")).is_err());
        assert!(validate("num.io.threads", Some("8")).unwrap_err().to_string().contains("does not use"));
        assert!(validate("log.cleanup.policy", Some("compact,delete")).is_ok());
    }
}
