//! Producer settings with Kafka's names and defaults (Kafka 3.x/4.x client defaults).

use crate::config::Properties;
use crate::conn::ClusterConfig;
use crate::error::{ClientError, Result};
use std::time::Duration;
use strom_protocol::batch::Compression;

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub cluster: ClusterConfig,
    /// 0, 1 or -1 (all).
    pub acks: i16,
    pub linger: Duration,
    pub batch_size: usize,
    pub buffer_memory: usize,
    pub compression: Compression,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub delivery_timeout: Duration,
    pub max_in_flight: usize,
    pub idempotence: bool,
    pub max_request_size: usize,
    pub max_block: Duration,
    pub partitioner: String,
}

impl ProducerConfig {
    pub fn from_properties(p: &Properties) -> Result<ProducerConfig> {
        let bad = |key: &str, message: String| ClientError::Config { key: key.into(), message };
        let acks = match p.string("acks", "all").as_str() {
            "all" | "-1" => -1,
            "1" => 1,
            "0" => 0,
            other => return Err(bad("acks", format!("'{other}' is not one of all, -1, 0, 1"))),
        };
        let compression = match p.string("compression.type", "none").as_str() {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => {
                return Err(bad("compression.type", format!("'{other}' is not one of none, gzip, snappy, lz4, zstd")))
            }
        };
        let explicit_idempotence = p.get("enable.idempotence").is_some();
        let mut idempotence = p.boolean("enable.idempotence", true)?;
        let max_in_flight: usize = p.parsed("max.in.flight.requests.per.connection", 5)?;
        if idempotence && acks != -1 {
            // Kafka: an explicit request is a configuration error; the default quietly turns off.
            if explicit_idempotence {
                return Err(bad("enable.idempotence", "idempotence requires acks=all".into()));
            }
            idempotence = false;
        }
        if idempotence && max_in_flight > 5 {
            return Err(bad("max.in.flight.requests.per.connection", "must be at most 5 with idempotence".into()));
        }
        let batch_size: usize = p.parsed("batch.size", 16_384)?;
        let linger = p.millis("linger.ms", 5)?;
        let delivery_timeout = p.millis("delivery.timeout.ms", 120_000)?;
        let cluster = ClusterConfig::from_properties(p, "strom-producer")?;
        if delivery_timeout < linger + cluster.request_timeout {
            return Err(bad("delivery.timeout.ms", "must be at least linger.ms + request.timeout.ms".into()));
        }
        Ok(ProducerConfig {
            cluster,
            acks,
            linger,
            batch_size: batch_size.max(1),
            buffer_memory: p.parsed("buffer.memory", 33_554_432)?,
            compression,
            retries: p.parsed("retries", i32::MAX as u32)?,
            retry_backoff: p.millis("retry.backoff.ms", 100)?,
            delivery_timeout,
            max_in_flight: max_in_flight.max(1),
            idempotence,
            max_request_size: p.parsed("max.request.size", 1_048_576)?,
            max_block: p.millis("max.block.ms", 60_000)?,
            partitioner: p.string("partitioner.class", "default"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Properties {
        Properties::new().set("bootstrap.servers", "localhost:9092")
    }

    #[test]
    fn defaults_follow_kafka() {
        let c = ProducerConfig::from_properties(&base()).expect("config");
        assert_eq!((c.acks, c.idempotence, c.batch_size, c.max_in_flight), (-1, true, 16_384, 5));
        let acks1 = ProducerConfig::from_properties(&base().set("acks", "1")).expect("config");
        assert!(!acks1.idempotence, "the default idempotence yields to acks=1");
        let err = ProducerConfig::from_properties(&base().set("acks", "1").set("enable.idempotence", "true"));
        assert!(err.is_err());
        assert!(ProducerConfig::from_properties(&base().set("compression.type", "brotli")).is_err());
    }
}
