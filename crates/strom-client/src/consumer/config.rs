//! Consumer settings with Kafka's names and defaults.

use crate::config::Properties;
use crate::conn::ClusterConfig;
use crate::error::{ClientError, Result};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub cluster: ClusterConfig,
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_poll_interval: Duration,
    pub auto_offset_reset: OffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval: Duration,
    pub fetch_min_bytes: i32,
    pub fetch_max_bytes: i32,
    pub fetch_max_wait: Duration,
    pub max_partition_fetch_bytes: i32,
    pub max_poll_records: usize,
    /// 0 read_uncommitted, 1 read_committed.
    pub isolation_level: i8,
    /// Assignor names in preference order (partition.assignment.strategy).
    pub assignors: Vec<String>,
}

impl ConsumerConfig {
    pub fn from_properties(p: &Properties) -> Result<ConsumerConfig> {
        let bad = |key: &str, message: String| ClientError::Config { key: key.into(), message };
        let auto_offset_reset = match p.string("auto.offset.reset", "latest").as_str() {
            "earliest" => OffsetReset::Earliest,
            "latest" => OffsetReset::Latest,
            "none" => OffsetReset::None,
            other => return Err(bad("auto.offset.reset", format!("'{other}' is not earliest, latest or none"))),
        };
        let isolation_level = match p.string("isolation.level", "read_uncommitted").as_str() {
            "read_uncommitted" => 0,
            "read_committed" => 1,
            other => {
                return Err(bad("isolation.level", format!("'{other}' is not read_uncommitted or read_committed")))
            }
        };
        let group_id = p.get("group.id").filter(|g| !g.is_empty()).map(String::from);
        let enable_auto_commit = p.boolean("enable.auto.commit", group_id.is_some())?;
        let assignors: Vec<String> = p
            .string("partition.assignment.strategy", "range,cooperative-sticky")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for a in &assignors {
            if super::assignor::assignor_by_name(a).is_none() {
                return Err(bad("partition.assignment.strategy", format!("unknown assignor '{a}'")));
            }
        }
        let heartbeat_interval = p.millis("heartbeat.interval.ms", 3_000)?;
        let session_timeout = p.millis("session.timeout.ms", 45_000)?;
        if heartbeat_interval >= session_timeout {
            return Err(bad("heartbeat.interval.ms", "must be lower than session.timeout.ms".into()));
        }
        Ok(ConsumerConfig {
            cluster: ClusterConfig::from_properties(p, "strom-consumer")?,
            group_instance_id: p.get("group.instance.id").filter(|g| !g.is_empty()).map(String::from),
            group_id,
            session_timeout,
            heartbeat_interval,
            max_poll_interval: p.millis("max.poll.interval.ms", 300_000)?,
            auto_offset_reset,
            enable_auto_commit,
            auto_commit_interval: p.millis("auto.commit.interval.ms", 5_000)?,
            fetch_min_bytes: p.parsed("fetch.min.bytes", 1)?,
            fetch_max_bytes: p.parsed("fetch.max.bytes", 52_428_800)?,
            fetch_max_wait: p.millis("fetch.max.wait.ms", 500)?,
            max_partition_fetch_bytes: p.parsed("max.partition.fetch.bytes", 1_048_576)?,
            max_poll_records: p.parsed::<usize>("max.poll.records", 500)?.max(1),
            isolation_level,
            assignors,
        })
    }
}
