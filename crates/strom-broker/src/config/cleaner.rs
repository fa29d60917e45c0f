//! The log cleaner's broker keys, Kafka's names and defaults. The per-topic settings
//! (`min.cleanable.dirty.ratio`, `delete.retention.ms`, `min/max.compaction.lag.ms`) are topic
//! configs with their `log.cleaner.*` broker synonyms (see `strom_metadata::topic_config`).

use super::{invalid, parse, parse_bool, positive, ConfigError};
use std::collections::BTreeMap;

/// Keys read here (so that the general parser does not call them unknown). The topic-config
/// synonyms are listed too: the topic configs read them from the raw properties.
pub const KEYS: &[&str] = &[
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
];

#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: compacted topics are cleaned (Kafka's default: yes).
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: the key maps of all cleaner threads together.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: bytes read and written by all threads together.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

impl CleanerConfig {
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<CleanerConfig, ConfigError> {
        let mut c = CleanerConfig::default();
        for (key, value) in props {
            let k = key.as_str();
            match k {
                "log.cleaner.enable" => c.enable = parse_bool(k, value)?,
                "log.cleaner.threads" => c.threads = positive(k, value)?,
                "log.cleaner.dedupe.buffer.size" => c.dedupe_buffer_size = positive(k, value)?,
                "log.cleaner.io.max.bytes.per.second" => {
                    c.io_max_bytes_per_second = parse(k, value)?;
                    if c.io_max_bytes_per_second.is_nan() || c.io_max_bytes_per_second <= 0.0 {
                        return Err(invalid(k, value, "must be positive"));
                    }
                }
                "log.cleaner.backoff.ms" => c.backoff_ms = parse(k, value)?,
                _ => {}
            }
        }
        // Kafka's rule: each thread's share of the buffer must hold a useful map.
        if c.dedupe_buffer_size / c.threads < 1 << 20 {
            return Err(invalid(
                "log.cleaner.dedupe.buffer.size",
                &c.dedupe_buffer_size.to_string(),
                &format!("must be at least 1 MiB per cleaner thread ({} threads)", c.threads),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_properties, BrokerConfig};

    #[test]
    fn cleaner_keys_are_read_and_checked() {
        let c = BrokerConfig::from_properties(parse_properties("log.cleaner.threads=2\nlog.cleaner.backoff.ms=100"))
            .expect("valid");
        assert_eq!((c.cleaner.threads, c.cleaner.backoff_ms, c.cleaner.enable), (2, 100, true));
        let err = BrokerConfig::from_properties(parse_properties("log.cleaner.dedupe.buffer.size=1000"))
            .expect_err("too small")
            .to_string();
        assert!(err.contains("log.cleaner.dedupe.buffer.size"), "{err}");
    }
}
