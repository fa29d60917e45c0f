//! Broker configuration with Kafka's keys, read from a `server.properties` file and `--override`s.
//!
//! A Kafka user's `server.properties` should start Strom: keys that do not apply here (ZooKeeper,
//! JVM or SSL-only settings) and unknown keys get a one-line warning each; an invalid value stops
//! start-up with a message naming the key.

pub mod cleaner;
pub mod cluster;
pub mod dynamic;
pub mod transactions;

pub use cleaner::CleanerConfig;
pub use cluster::{ClusterConfig, Roles, Voter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use transactions::TransactionConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid value '{value}' for {key}: {why}")]
    Invalid { key: String, value: String, why: String },
    #[error("--override expects key=value, got '{0}'")]
    BadOverride(String),
}

/// One listener to accept clients on, e.g. `PLAINTEXT://127.0.0.1:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface.
    pub host: String,
    pub port: u16,
}

/// Every setting the broker reads, with Kafka's names (dots become underscores; units last).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The client listener (the first listener that is not a controller listener).
    pub listener: Listener,
    /// Every listener of `listeners`, by name.
    pub listeners: Vec<Listener>,
    /// Roles, quorum, replication: see [`ClusterConfig`].
    pub cluster: ClusterConfig,
    /// The log cleaner: see [`CleanerConfig`].
    pub cleaner: CleanerConfig,
    /// The transaction coordinator: see [`TransactionConfig`].
    pub transactions: TransactionConfig,
    pub advertised_listener: Option<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub message_max_bytes: u32,
    pub log_segment_bytes: u64,
    pub log_roll_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: u64,
    pub log_index_interval_bytes: u32,
    pub log_flush_interval_messages: u64,
    pub log_flush_interval_ms: i64,
    pub log_flush_scheduler_interval_ms: u64,
    pub log_flush_offset_checkpoint_interval_ms: u64,
    pub socket_request_max_bytes: usize,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_max_size: usize,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: u64,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offsets_commit_timeout_ms: i32,
    pub offset_metadata_max_bytes: usize,
    /// Replication throttles in bytes per second (dynamic, set by reassignments): what a leader
    /// sends to, and what a follower fetches for, the replicas named throttled by their topics.
    pub leader_replication_throttled_rate: u64,
    pub follower_replication_throttled_rate: u64,
    /// Requests of one connection processed at once before reading more (pipelining bound).
    pub max_inflight_requests_per_connection: usize,
    pub max_connections: usize,
    /// `connections.max.idle.ms`: a connection that completes no request for this long is
    /// closed (Kafka's default, 10 minutes), so clients that stall mid-frame do not hold it.
    pub connections_max_idle_ms: u64,
    /// `producer.id.expiration.ms`: idempotent producer state kept this long after its last batch.
    pub producer_id_expiration_ms: i64,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions (KIP-227) kept at once.
    pub fetch_session_cache_slots: usize,
    /// Strom's own `fetch.zero.copy`: how Fetch sends record data (see [`ZeroCopy`]).
    pub fetch_zero_copy: ZeroCopy,
    /// The raw key/value pairs as given, for DescribeConfigs on the broker.
    pub raw: BTreeMap<String, String>,
}

/// How Fetch sends record data. With sendfile the broker never copies records (Kafka always does
/// this on plaintext listeners); but when the consumer is on the same host, the kernel pays for
/// both ends, and the consumer's receive from page-backed socket buffers costs more than the
/// broker's saved copy (measured in docs/decisions.md), so `auto` copies for loopback peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// sendfile unless the peer is a loopback address (the default).
    Auto,
    Always,
    Never,
}

impl ZeroCopy {
    pub fn applies_to(self, peer: std::net::IpAddr) -> bool {
        match self {
            ZeroCopy::Auto => !peer.to_canonical().is_loopback(),
            ZeroCopy::Always => true,
            ZeroCopy::Never => false,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            listener: Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 },
            listeners: Vec::new(),
            cluster: ClusterConfig::default(),
            cleaner: CleanerConfig::default(),
            transactions: TransactionConfig::default(),
            advertised_listener: None,
            log_dirs: vec![PathBuf::from("./strom-data")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 168 * 3_600_000,
            log_retention_ms: 168 * 3_600_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_index_interval_bytes: 4096,
            log_flush_interval_messages: i64::MAX as u64,
            log_flush_interval_ms: i64::MAX,
            log_flush_scheduler_interval_ms: 1000,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            socket_request_max_bytes: 104_857_600,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: i32::MAX as usize,
            offsets_topic_num_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            offsets_commit_timeout_ms: 5_000,
            offset_metadata_max_bytes: 4096,
            leader_replication_throttled_rate: i64::MAX as u64,
            follower_replication_throttled_rate: i64::MAX as u64,
            max_inflight_requests_per_connection: 64,
            max_connections: 10_000,
            connections_max_idle_ms: 600_000,
            producer_id_expiration_ms: 86_400_000,
            fetch_session_cache_slots: 1000,
            fetch_zero_copy: ZeroCopy::Auto,
            raw: BTreeMap::new(),
        }
    }
}

/// Keys that belong to Kafka deployments but have no meaning in Strom (accepted with a warning).
const NOT_APPLICABLE: &[&str] = &[
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "zookeeper.session.timeout.ms",
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

impl BrokerConfig {
    /// Reads `server.properties` (if given) and applies `overrides` on top, Kafka's order.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut props = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
            props.extend(parse_properties(&text));
        }
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        BrokerConfig::from_properties(props)
    }

    pub fn from_properties(props: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig::default();
        let mut retention: Option<i64> = None;
        let mut roll: Option<i64> = None;
        let mut controller_names = vec!["CONTROLLER".to_string()];
        if let Some(v) = props.get("controller.listener.names") {
            controller_names = v.split(',').map(|s| s.trim().to_string()).collect();
        }
        // Most specific unit wins, as in Kafka: ms over minutes over hours.
        for (suffix, mult) in [("hours", 3_600_000i64), ("minutes", 60_000), ("ms", 1)] {
            if let Some(v) = props.get(&format!("log.retention.{suffix}")) {
                let n: i64 = parse(&format!("log.retention.{suffix}"), v)?;
                retention = Some(if n < 0 { -1 } else { n.saturating_mul(mult) });
            }
        }
        for (suffix, mult) in [("hours", 3_600_000i64), ("ms", 1)] {
            if let Some(v) = props.get(&format!("log.roll.{suffix}")) {
                let n: i64 = parse(&format!("log.roll.{suffix}"), v)?;
                if n <= 0 {
                    return Err(invalid(&format!("log.roll.{suffix}"), v, "must be positive"));
                }
                roll = Some(n.saturating_mul(mult));
            }
        }
        // Set when `listeners` is given: the client listener it names, if any.
        let mut client_listener: Option<Option<Listener>> = None;
        for (key, value) in &props {
            let k = key.as_str();
            match k {
                "node.id" | "broker.id" => c.node_id = parse(k, value)?,
                "listeners" => {
                    c.listeners = parse_listeners(k, value)?;
                    client_listener = Some(pick_listener(c.listeners.clone(), &controller_names));
                }
                "advertised.listeners" => {
                    let parsed = parse_listeners(k, value)?;
                    c.advertised_listener = pick_listener(parsed, &controller_names);
                    if c.advertised_listener.is_none() {
                        return Err(invalid(k, value, "no client listener"));
                    }
                }
                "log.dirs" | "log.dir" => {
                    c.log_dirs = value.split(',').map(|d| PathBuf::from(d.trim())).collect();
                }
                "num.partitions" => c.num_partitions = positive(k, value)?,
                "default.replication.factor" => c.default_replication_factor = positive(k, value)?,
                "auto.create.topics.enable" => c.auto_create_topics_enable = parse_bool(k, value)?,
                "delete.topic.enable" => c.delete_topic_enable = parse_bool(k, value)?,
                "message.max.bytes" => c.message_max_bytes = parse(k, value)?,
                "log.segment.bytes" => {
                    c.log_segment_bytes = parse(k, value)?;
                    if c.log_segment_bytes < 14 {
                        return Err(invalid(k, value, "must be at least 14"));
                    }
                }
                "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {}
                "log.roll.ms" | "log.roll.hours" => {}
                "log.retention.bytes" => c.log_retention_bytes = parse(k, value)?,
                "log.retention.check.interval.ms" => c.log_retention_check_interval_ms = positive(k, value)?,
                "log.index.interval.bytes" => c.log_index_interval_bytes = parse(k, value)?,
                "log.flush.interval.messages" => c.log_flush_interval_messages = positive(k, value)?,
                "log.flush.interval.ms" => c.log_flush_interval_ms = positive(k, value)?,
                "log.flush.scheduler.interval.ms" => c.log_flush_scheduler_interval_ms = positive(k, value)?,
                "log.flush.offset.checkpoint.interval.ms" => {
                    c.log_flush_offset_checkpoint_interval_ms = positive(k, value)?
                }
                "socket.request.max.bytes" => c.socket_request_max_bytes = positive(k, value)?,
                "max.connections" => c.max_connections = positive(k, value)?,
                "connections.max.idle.ms" => c.connections_max_idle_ms = positive(k, value)?,
                "producer.id.expiration.ms" => c.producer_id_expiration_ms = positive(k, value)?,
                "max.incremental.fetch.session.cache.slots" => c.fetch_session_cache_slots = parse(k, value)?,
                "fetch.zero.copy" => {
                    c.fetch_zero_copy = match value.as_str() {
                        "auto" => ZeroCopy::Auto,
                        "true" => ZeroCopy::Always,
                        "false" => ZeroCopy::Never,
                        _ => return Err(invalid(k, value, "expected auto, true or false")),
                    }
                }
                "group.min.session.timeout.ms" => c.group_min_session_timeout_ms = positive(k, value)?,
                "group.max.session.timeout.ms" => c.group_max_session_timeout_ms = positive(k, value)?,
                "group.initial.rebalance.delay.ms" => {
                    c.group_initial_rebalance_delay_ms = parse(k, value)?;
                    if c.group_initial_rebalance_delay_ms < 0 {
                        return Err(invalid(k, value, "must not be negative"));
                    }
                }
                "group.max.size" => c.group_max_size = positive(k, value)?,
                "offsets.topic.num.partitions" => c.offsets_topic_num_partitions = positive(k, value)?,
                "offsets.topic.segment.bytes" => c.offsets_topic_segment_bytes = positive(k, value)?,
                "offsets.retention.minutes" => c.offsets_retention_minutes = positive(k, value)?,
                "offsets.retention.check.interval.ms" => c.offsets_retention_check_interval_ms = positive(k, value)?,
                "offsets.commit.timeout.ms" => c.offsets_commit_timeout_ms = positive(k, value)?,
                "offset.metadata.max.bytes" => c.offset_metadata_max_bytes = positive(k, value)?,
                "leader.replication.throttled.rate" => c.leader_replication_throttled_rate = parse(k, value)?,
                "follower.replication.throttled.rate" => c.follower_replication_throttled_rate = parse(k, value)?,
                _ if cluster::KEYS.contains(&k) || cleaner::KEYS.contains(&k) || transactions::KEYS.contains(&k) => {}
                _ if NOT_APPLICABLE.contains(&k) || k.starts_with("zookeeper.") => {
                    tracing::warn!("config {k} does not apply to Strom and is ignored");
                }
                _ => tracing::warn!("unknown config {k} is ignored"),
            }
        }
        if let Some(r) = retention {
            c.log_retention_ms = r;
        }
        if let Some(r) = roll {
            c.log_roll_ms = r;
        }
        c.cluster = ClusterConfig::from_properties(&props, c.node_id, &c.listeners)?;
        c.cleaner = CleanerConfig::from_properties(&props)?;
        c.transactions = TransactionConfig::from_properties(&props)?;
        let listeners_value = props.get("listeners").cloned().unwrap_or_default();
        match (c.cluster.roles.broker, client_listener) {
            (true, Some(Some(l))) => c.listener = l,
            (true, Some(None)) => return Err(invalid("listeners", &listeners_value, "no client listener")),
            (true, None) => {}
            (false, client) => {
                // Kafka's rule: a controller-only node listens on its controller listener only.
                if let Some(Some(l)) = client {
                    return Err(invalid(
                        "listeners",
                        &listeners_value,
                        &format!(
                            "a controller-only node (process.roles=controller) has no client listener; {} is one",
                            l.name
                        ),
                    ));
                }
                if c.advertised_listener.is_some() {
                    return Err(invalid(
                        "advertised.listeners",
                        props.get("advertised.listeners").map(String::as_str).unwrap_or_default(),
                        "a controller-only node (process.roles=controller) advertises no client listener",
                    ));
                }
                // Validated by ClusterConfig: a controller has its controller listener.
                if let Some(l) = &c.cluster.controller_listener {
                    c.listener = l.clone();
                }
            }
        }
        c.raw = props;
        Ok(c)
    }

    /// The first log directory; Strom keeps every partition there for now.
    pub fn data_dir(&self) -> &Path {
        &self.log_dirs[0]
    }
}

/// Parses Java properties text: `key=value` or `key: value`, `#`/`!` comments, trimmed.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

fn invalid(key: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid { key: key.into(), value: value.into(), why: why.into() }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| invalid(key, value, "not a valid number"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(key: &str, value: &str) -> Result<T, ConfigError> {
    let v: T = parse(key, value)?;
    if v <= T::default() {
        return Err(invalid(key, value, "must be positive"));
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// Parses `NAME://host:port,...`.
fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let port = port.parse::<u16>().map_err(|_| invalid(key, value, "port is not a number 0-65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if listeners.iter().any(|l| l.name == name) {
            return Err(invalid(key, value, &format!("listener name {name} appears twice")));
        }
        listeners.push(Listener { name: name.to_string(), host, port });
    }
    Ok(listeners)
}

/// Picks the client listener from a list, skipping controller listeners (a combined Kafka node
/// lists both); none when the list has only controller listeners.
fn pick_listener(listeners: Vec<Listener>, controller_names: &[String]) -> Option<Listener> {
    let mut clients = listeners.into_iter().filter(|l| !controller_names.contains(&l.name));
    let first = clients.next()?;
    if first.name != "PLAINTEXT" {
        tracing::warn!("listener {} is served as PLAINTEXT (TLS and SASL come later)", first.name);
    }
    for extra in clients {
        tracing::warn!("only one client listener is served for now; ignoring {}", extra.name);
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_properties(parse_properties(text))
    }

    #[test]
    fn reads_a_kafka_kraft_server_properties() {
        let c = load(
            "process.roles=broker,controller\nnode.id=3\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             advertised.listeners=PLAINTEXT://localhost:9092\n\
             log.dirs=/tmp/kraft-combined-logs\nnum.partitions=6\nlog.retention.hours=24\n\
             log.segment.bytes=1073741824\n",
        )
        .expect("valid");
        assert_eq!(c.node_id, 3);
        assert_eq!(c.listener, Listener { name: "PLAINTEXT".into(), host: "".into(), port: 9092 });
        assert_eq!(c.advertised_listener.as_ref().map(|l| l.host.as_str()), Some("localhost"));
        assert_eq!(c.num_partitions, 6);
        assert_eq!(c.log_retention_ms, 24 * 3_600_000);
    }

    #[test]
    fn most_specific_retention_unit_wins() {
        let c = load("log.retention.hours=1\nlog.retention.ms=500\nlog.retention.minutes=2").expect("valid");
        assert_eq!(c.log_retention_ms, 500);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = load("num.partitions=zero").expect_err("invalid").to_string();
        assert!(err.contains("num.partitions"), "{err}");
        assert!(load("auto.create.topics.enable=maybe").is_err());
        assert!(load("listeners=localhost:9092").is_err());
        assert!(BrokerConfig::load(None, &["novalue".into()]).is_err());
        assert!(load("fetch.zero.copy=sometimes").expect_err("invalid").to_string().contains("fetch.zero.copy"));
    }

    #[test]
    fn zero_copy_is_for_remote_peers_unless_told() {
        let loopback: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        let remote: std::net::IpAddr = "10.1.2.3".parse().expect("ip");
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        let auto = BrokerConfig::default().fetch_zero_copy;
        assert!(!auto.applies_to(loopback) && !auto.applies_to(mapped) && auto.applies_to(remote));
        assert!(load("fetch.zero.copy=true").expect("valid").fetch_zero_copy.applies_to(loopback));
        assert!(!load("fetch.zero.copy=false").expect("valid").fetch_zero_copy.applies_to(remote));
    }
}
