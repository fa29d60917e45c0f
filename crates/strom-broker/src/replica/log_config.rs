//! The effective storage settings of one topic: its overrides on top of the broker's defaults.

use crate::config::BrokerConfig;
use std::collections::BTreeMap;
use strom_storage::LogConfig;

/// Builds a topic's `LogConfig` from broker defaults and the topic's overrides (validated by the
/// controller before they were stored, so a parse failure here keeps the default).
pub fn log_config_for(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let get = |key: &str| overrides.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    // A compact-only topic keeps its data until compaction removes superseded records: retention
    // by time or size would silently drop the only copy of a key (e.g. a committed offset).
    let deletes = cleanup_policy_has(broker, overrides, "delete");
    let mut config = LogConfig {
        segment_bytes: get("segment.bytes").map(|v| v as u64).unwrap_or(broker.log_segment_bytes),
        segment_ms: get("segment.ms").unwrap_or(broker.log_roll_ms),
        retention_ms: get("retention.ms").unwrap_or(broker.log_retention_ms),
        retention_bytes: get("retention.bytes").unwrap_or(broker.log_retention_bytes),
        index_interval_bytes: get("index.interval.bytes").map(|v| v as u32).unwrap_or(broker.log_index_interval_bytes),
        max_message_bytes: get("max.message.bytes").map(|v| v as u32).unwrap_or(broker.message_max_bytes),
        flush_interval_messages: get("flush.messages").map(|v| v as u64).unwrap_or(broker.log_flush_interval_messages),
        flush_interval_ms: get("flush.ms").unwrap_or(broker.log_flush_interval_ms),
        log_append_time: uses_log_append_time(broker, overrides),
        producer_id_expiration_ms: broker.producer_id_expiration_ms,
    };
    if !deletes {
        config.retention_ms = -1;
        config.retention_bytes = -1;
    }
    config
}

/// Whether a topic's `message.timestamp.type` (or the broker's `log.message.timestamp.type`) is
/// LogAppendTime.
pub fn uses_log_append_time(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get("message.timestamp.type")
        .or_else(|| broker.raw.get("log.message.timestamp.type"))
        .is_some_and(|t| t.trim() == "LogAppendTime")
}

/// Whether a topic's `cleanup.policy` (or the broker's `log.cleanup.policy`; default `delete`)
/// includes `policy` (`delete` or `compact`).
pub fn cleanup_policy_has(broker: &BrokerConfig, overrides: &BTreeMap<String, String>, policy: &str) -> bool {
    let value = overrides.get("cleanup.policy").or_else(|| broker.raw.get("log.cleanup.policy"));
    value.map_or(policy == "delete", |v| v.split(',').any(|s| s.trim() == policy))
}

/// A topic's `message.timestamp.before.max.ms` and `after.max.ms` (topic override, then the
/// broker's `log.message.timestamp.*`, then Kafka 4.0's defaults: unbounded before, one hour
/// after).
pub fn timestamp_max_ms(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> (i64, i64) {
    let get = |topic_key: &str, broker_key: &str, default: i64| {
        overrides
            .get(topic_key)
            .or_else(|| broker.raw.get(broker_key))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    };
    (
        get("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", i64::MAX),
        get("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", 3_600_000),
    )
}

/// A topic's `min.insync.replicas` (topic override, then the broker's).
pub fn min_insync_replicas(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> usize {
    overrides
        .get("min.insync.replicas")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(broker.cluster.min_insync_replicas.max(1) as usize)
}

/// A topic config's effective value: the topic's override, else the broker's synonym, else
/// Kafka's default.
pub fn topic_setting(broker: &BrokerConfig, overrides: &BTreeMap<String, String>, key: &str) -> Option<String> {
    overrides
        .get(key)
        .cloned()
        .or_else(|| broker_value_for(broker, key))
        .or_else(|| Some(strom_metadata::topic_config::find(key)?.default.to_string()))
}

/// The broker-level value of a topic config key, as a string, where the broker config sets it.
pub fn broker_value_for(broker: &BrokerConfig, topic_key: &str) -> Option<String> {
    let v = match topic_key {
        "segment.bytes" => broker.log_segment_bytes.to_string(),
        "segment.ms" => broker.log_roll_ms.to_string(),
        "retention.ms" => broker.log_retention_ms.to_string(),
        "retention.bytes" => broker.log_retention_bytes.to_string(),
        "index.interval.bytes" => broker.log_index_interval_bytes.to_string(),
        "max.message.bytes" => broker.message_max_bytes.to_string(),
        "flush.messages" => broker.log_flush_interval_messages.to_string(),
        "flush.ms" => broker.log_flush_interval_ms.to_string(),
        _ => {
            let synonym = strom_metadata::topic_config::find(topic_key)?.broker_synonym?;
            return broker.raw.get(synonym).cloned();
        }
    };
    Some(v)
}
