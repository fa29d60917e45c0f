//! Per-log settings and the partition name type.

use std::fmt;

/// Settings of one partition log: the broker's `log.*` defaults overridden by the topic's configs.
/// The broker rebuilds it when a topic config changes and hands it to [`crate::Log::set_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes`: roll to a new segment before one grows past this.
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms`: roll a segment this long after its first append, so that
    /// time retention can delete data even on quiet partitions.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete old segments while the log is larger than this; -1 = no limit.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: log bytes between two sparse index entries (fetch scan length vs
    /// index size).
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: the largest batch accepted, protecting consumers' fetch sizes.
    pub max_message_bytes: u32,
    /// `flush.messages`: fsync after this many appended records; `u64::MAX` leaves it to the OS
    /// (Kafka's default, durability comes from replication).
    pub flush_interval_messages: u64,
    /// `flush.ms`: fsync when the last flush is older than this; `i64::MAX` = never.
    pub flush_interval_ms: i64,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps each batch with the time of
    /// its append instead of keeping the producer's timestamps.
    pub log_append_time: bool,
    /// `producer.id.expiration.ms`: idempotent producers whose last batch is older than this are
    /// forgotten (a producer with no state may then start at any sequence).
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            flush_interval_messages: i64::MAX as u64,
            flush_interval_ms: i64::MAX,
            log_append_time: false,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

/// A partition of a topic; its `Display` form `topic-partition` is also its directory name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name (Kafka's legal characters: letters, digits, `.`, `_`, `-`).
    pub topic: String,
    /// Partition index within the topic.
    pub partition: i32,
}

impl TopicPartition {
    /// Convenience constructor.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    /// Parses a directory name `topic-partition`. Topic names may contain `-`, so the partition
    /// is what follows the last one. Names like `t-0.abc-delete` (Kafka's pending deletions) are
    /// rejected because their suffix is not a number.
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        Some(TopicPartition { topic: topic.to_string(), partition })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic", 12);
        assert_eq!(tp.to_string(), "my-topic-12");
        assert_eq!(TopicPartition::from_dir_name("my-topic-12"), Some(tp));
        assert_eq!(TopicPartition::from_dir_name("t-0.abc-delete"), None);
        assert_eq!(TopicPartition::from_dir_name("nodash"), None);
        assert_eq!(TopicPartition::from_dir_name("-3"), None);
    }
}
