//! The transaction coordinator's broker keys, Kafka's names and defaults
//! (`TransactionLogConfig`, `TransactionStateManagerConfig`).

use super::{positive, ConfigError};
use std::collections::BTreeMap;

/// Keys read here (so that the general parser does not call them unknown).
pub const KEYS: &[&str] = &[
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "transaction.state.log.load.buffer.size",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionConfig {
    /// `transaction.state.log.num.partitions` (should not change after deployment).
    pub log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`, capped at the live brokers when the topic
    /// is created.
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr`: the topic's `min.insync.replicas` (capped at its
    /// replication factor when the topic is created: a single node with Kafka's example
    /// `transaction.state.log.replication.factor=1` must still work).
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an id idle this long is forgotten.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: u64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            log_num_partitions: 50,
            log_replication_factor: 3,
            log_min_isr: 2,
            log_segment_bytes: 100 * 1024 * 1024,
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
        }
    }
}

impl TransactionConfig {
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<TransactionConfig, ConfigError> {
        let mut c = TransactionConfig::default();
        for (key, value) in props {
            let k = key.as_str();
            match k {
                "transaction.state.log.num.partitions" => c.log_num_partitions = positive(k, value)?,
                "transaction.state.log.replication.factor" => c.log_replication_factor = positive(k, value)?,
                "transaction.state.log.min.isr" => c.log_min_isr = positive(k, value)?,
                "transaction.state.log.segment.bytes" => c.log_segment_bytes = positive(k, value)?,
                // Kafka's loading buffer: Strom reads the log in its own steps.
                "transaction.state.log.load.buffer.size" => {
                    let _: u64 = positive(k, value)?;
                }
                "transaction.max.timeout.ms" => c.max_timeout_ms = positive(k, value)?,
                "transactional.id.expiration.ms" => c.id_expiration_ms = positive(k, value)?,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    c.abort_timed_out_interval_ms = positive(k, value)?
                }
                "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                    c.remove_expired_interval_ms = positive(k, value)?
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// The coordinator core's settings.
    pub fn coordinator_settings(&self) -> crate::txn::coordinator::TxnSettings {
        crate::txn::coordinator::TxnSettings {
            log_partitions: self.log_num_partitions,
            max_timeout_ms: self.max_timeout_ms,
            id_expiration_ms: self.id_expiration_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_properties, BrokerConfig};

    #[test]
    fn transaction_keys_are_read_with_kafkas_defaults_and_checked() {
        let c = BrokerConfig::from_properties(parse_properties("")).expect("defaults");
        assert_eq!((c.transactions.log_num_partitions, c.transactions.max_timeout_ms), (50, 900_000));
        let c = BrokerConfig::from_properties(parse_properties(
            "transaction.max.timeout.ms=60000\ntransaction.state.log.num.partitions=5\ntransaction.state.log.min.isr=1",
        ))
        .expect("valid");
        assert_eq!((c.transactions.max_timeout_ms, c.transactions.log_num_partitions), (60_000, 5));
        assert_eq!(c.transactions.coordinator_settings().log_partitions, 5);
        for bad in
            ["transaction.max.timeout.ms=0", "transaction.state.log.min.isr=0", "transactional.id.expiration.ms=x"]
        {
            let err = BrokerConfig::from_properties(parse_properties(bad)).expect_err(bad).to_string();
            assert!(err.contains(bad.split('=').next().expect("key")), "{bad}: {err}");
        }
    }
}
