//! The topic-level configs Kafka knows, their types, their broker-level synonyms and their
//! static defaults. Used to validate CreateTopics / AlterConfigs input and to answer
//! DescribeConfigs with every key a Kafka tool expects to see.

use crate::error::MetadataError;

/// The value type of a config, as Kafka's ConfigDef declares it.
#[derive(Debug, Clone, Copy)]
pub enum ConfigType {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    Double,
    Boolean,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A comma-separated list of the listed values.
    List(&'static [&'static str]),
    /// Free text (e.g. throttled replica lists).
    Text,
}

/// One topic config definition.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// The broker-wide key whose value is this topic config's default, if any.
    pub broker_synonym: Option<&'static str>,
    /// Kafka's default when neither the topic nor the broker sets it.
    pub default: &'static str,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    broker_synonym: Option<&'static str>,
    default: &'static str,
) -> TopicConfigDef {
    TopicConfigDef { name, ty, broker_synonym, default }
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
use ConfigType::*;

/// Every topic config of Kafka 4.0, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", List(&["delete", "compact"]), Some("log.cleanup.policy"), "delete"),
    def("compression.gzip.level", Int { min: -1 }, None, "-1"),
    def("compression.lz4.level", Int { min: 1 }, None, "9"),
    def("compression.type", Enum(COMPRESSION), Some("compression.type"), "producer"),
    def("compression.zstd.level", Int { min: -131072 }, None, "3"),
    def("delete.retention.ms", Long { min: 0 }, Some("log.cleaner.delete.retention.ms"), "86400000"),
    def("file.delete.delay.ms", Long { min: 0 }, Some("log.segment.delete.delay.ms"), "60000"),
    def("flush.messages", Long { min: 1 }, Some("log.flush.interval.messages"), "9223372036854775807"),
    def("flush.ms", Long { min: 0 }, Some("log.flush.interval.ms"), "9223372036854775807"),
    def("follower.replication.throttled.replicas", Text, None, ""),
    def("index.interval.bytes", Int { min: 0 }, Some("log.index.interval.bytes"), "4096"),
    def("leader.replication.throttled.replicas", Text, None, ""),
    def("local.retention.bytes", Long { min: -2 }, Some("log.local.retention.bytes"), "-2"),
    def("local.retention.ms", Long { min: -2 }, Some("log.local.retention.ms"), "-2"),
    def("max.compaction.lag.ms", Long { min: 1 }, Some("log.cleaner.max.compaction.lag.ms"), "9223372036854775807"),
    def("max.message.bytes", Int { min: 0 }, Some("message.max.bytes"), "1048588"),
    def("message.timestamp.after.max.ms", Long { min: 0 }, Some("log.message.timestamp.after.max.ms"), "3600000"),
    def(
        "message.timestamp.before.max.ms",
        Long { min: 0 },
        Some("log.message.timestamp.before.max.ms"),
        "9223372036854775807",
    ),
    def(
        "message.timestamp.type",
        Enum(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
        "CreateTime",
    ),
    def("min.cleanable.dirty.ratio", Double, Some("log.cleaner.min.cleanable.ratio"), "0.5"),
    def("min.compaction.lag.ms", Long { min: 0 }, Some("log.cleaner.min.compaction.lag.ms"), "0"),
    def("min.insync.replicas", Int { min: 1 }, Some("min.insync.replicas"), "1"),
    def("preallocate", Boolean, Some("log.preallocate"), "false"),
    def("remote.storage.enable", Boolean, None, "false"),
    def("retention.bytes", Long { min: -1 }, Some("log.retention.bytes"), "-1"),
    def("retention.ms", Long { min: -1 }, Some("log.retention.ms"), "604800000"),
    def("segment.bytes", Int { min: 14 }, Some("log.segment.bytes"), "1073741824"),
    def("segment.index.bytes", Int { min: 4 }, Some("log.index.size.max.bytes"), "10485760"),
    def("segment.jitter.ms", Long { min: 0 }, Some("log.roll.jitter.ms"), "0"),
    def("segment.ms", Long { min: 1 }, Some("log.roll.ms"), "604800000"),
    def("unclean.leader.election.enable", Boolean, Some("unclean.leader.election.enable"), "false"),
];

/// Looks up a topic config by name.
pub fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a topic config key and value the way Kafka's LogConfig.validate does, with Kafka's
/// wording for the common mistakes.
pub fn validate(name: &str, value: &str) -> Result<(), MetadataError> {
    let def = find(name).ok_or_else(|| MetadataError::InvalidConfig(format!("Unknown topic config name: {name}")))?;
    validate_value(name, def.ty, value)
}

/// Checks a value against a config type (topic and dynamic broker configs share the rules).
pub fn validate_value(name: &str, ty: ConfigType, value: &str) -> Result<(), MetadataError> {
    let bad = |why: String| {
        Err(MetadataError::InvalidConfig(format!("Invalid value {value} for configuration {name}: {why}")))
    };
    match ty {
        Long { min } | Int { min } => match value.trim().parse::<i64>() {
            Ok(v) if v < min => bad(format!("Value must be at least {min}")),
            Ok(v) if matches!(ty, Int { .. }) && v > i32::MAX as i64 => bad("Value is out of range for an int".into()),
            Ok(_) => Ok(()),
            Err(_) if matches!(ty, Int { .. }) => bad("Not a number of type INT".into()),
            Err(_) => bad("Not a number of type LONG".into()),
        },
        Double => match value.trim().parse::<f64>() {
            Ok(v) if !v.is_finite() => bad("Value must be a finite number".into()),
            // Kafka's ranges for the two ratios and the cleaner's rate.
            Ok(v) if name.ends_with("cleanable.ratio") || name == "min.cleanable.dirty.ratio" => {
                if (0.0..=1.0).contains(&v) {
                    Ok(())
                } else {
                    bad("Value must be between 0 and 1".into())
                }
            }
            Ok(v) if name == "log.cleaner.io.max.bytes.per.second" && v <= 0.0 => bad("Value must be positive".into()),
            Ok(_) => Ok(()),
            Err(_) => bad("Not a number of type DOUBLE".into()),
        },
        Boolean => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("Expected value to be either true or false".into()),
        },
        Enum(allowed) => {
            if allowed.contains(&value.trim()) {
                Ok(())
            } else {
                bad(format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        List(allowed) => {
            for item in value.split(',').map(str::trim) {
                if !allowed.contains(&item) {
                    return bad(format!("Invalid value {item}; must be one of {}", allowed.join(", ")));
                }
            }
            Ok(())
        }
        Text => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_values_and_rejects_bad_ones() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-5").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("no.such.key", "1").is_err());
        assert!(validate("segment.bytes", "99999999999").is_err());
    }

    #[test]
    fn table_is_sorted_for_describe_output() {
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
    }
}
