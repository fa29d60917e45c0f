//! Broker resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs (KIP-226): this
//! broker's configs with where each value comes from, and changes to the dynamic ones, for this
//! broker (resource name = its id) or as the cluster-wide default (resource name ""). Changes are
//! validated here first, as Kafka's broker does (ConfigAdminManager), then go to the controller
//! as metadata records; every broker applies them when its publisher sees them.

use crate::config::dynamic::{SOURCE_DEFAULT, SOURCE_DYNAMIC_DEFAULT};
use crate::config::BrokerConfig;
use crate::errors::KafkaError;
use crate::server::Broker;
use std::collections::BTreeMap;
use strom_metadata::broker_config::{self as dynamic_defs, DYNAMIC_BROKER_CONFIGS};
use strom_metadata::{ControllerOp, MetadataImage};
use strom_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsSynonym};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

/// The broker a config resource names: `None` for the cluster-wide default (""). Kafka's
/// broker-side checks and wording: only this broker's own id or "" are accepted.
pub fn resource_broker(broker: &Broker, name: &str) -> Result<Option<i32>, KafkaError> {
    if name.is_empty() {
        return Ok(None);
    }
    let id: i32 = name.parse().map_err(|_| {
        KafkaError::new(ResponseError::InvalidRequest, format!("Node id must be an integer, but it is: {name}"))
    })?;
    if id != broker.config.node_id {
        return Err(KafkaError::new(
            ResponseError::InvalidRequest,
            format!("Unexpected broker id, expected {}, but received {name}", broker.config.node_id),
        ));
    }
    Ok(Some(id))
}

/// The dynamic configs set now on `broker_id` (None: the cluster-wide default).
pub fn dynamic_configs(image: &MetadataImage, broker_id: Option<i32>) -> BTreeMap<String, String> {
    match broker_id {
        Some(id) => image.broker_configs.get(&id).cloned().unwrap_or_default(),
        None => image.cluster_configs.clone(),
    }
}

/// Kafka's default of a dynamic broker config, for list operations on a key never set.
pub fn default_value(key: &str) -> Option<&'static str> {
    dynamic_defs::find(key).map(|d| d.default)
}

/// Validates and applies changes to the dynamic configs of the broker resource `name`.
pub async fn alter(
    broker: &Broker,
    name: &str,
    changes: Vec<(String, Option<String>)>,
    replace_all: bool,
    validate_only: bool,
) -> Result<(), KafkaError> {
    let broker_id = resource_broker(broker, name)?;
    let invalid = |message: String| KafkaError::new(ResponseError::InvalidRequest, message);
    for (key, value) in &changes {
        dynamic_defs::validate(key, value.as_deref()).map_err(|e| invalid(e.to_string()))?;
    }
    broker
        .dynamic
        .check(broker_id, &changes, replace_all)
        .map_err(|e| invalid(format!("Invalid dynamic configuration: {e}")))?;
    let op = ControllerOp::AlterBrokerConfigs { broker_id, changes, replace_all, validate_only };
    broker.metadata.write(op).await.map(|_| ())
}

/// The keys read together with `key`, most specific first (Kafka's synonyms).
fn synonyms_of(key: &str) -> Vec<&str> {
    match key {
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => RETENTION_KEYS.to_vec(),
        "log.roll.ms" | "log.roll.hours" => ROLL_KEYS.to_vec(),
        _ => vec![key],
    }
}

/// The broker keys of retention and roll time, most specific first (Kafka's synonyms).
pub(super) const RETENTION_KEYS: &[&str] = &["log.retention.ms", "log.retention.minutes", "log.retention.hours"];
pub(super) const ROLL_KEYS: &[&str] = &["log.roll.ms", "log.roll.hours"];

/// Kafka's default of a broker key where Strom knows it (the synonym that carries it).
fn kafka_default(key: &str) -> Option<(&'static str, String)> {
    match key {
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => {
            Some(("log.retention.hours", "168".into()))
        }
        "log.roll.ms" | "log.roll.hours" => Some(("log.roll.hours", "168".into())),
        _ => {
            let d = dynamic_defs::find(key)?;
            Some((d.name, d.default.to_string()))
        }
    }
}

/// The value in force of a broker key: what the parsed config holds for the keys it types,
/// else the raw value, else Kafka's default.
fn value_in_force(c: &BrokerConfig, key: &str) -> Option<String> {
    let listener = |l: &crate::config::Listener| format!("{}://{}:{}", l.name, l.host, l.port);
    let typed = match key {
        "node.id" => c.node_id.to_string(),
        "listeners" => listener(&c.listener),
        "advertised.listeners" => c.advertised_listener.as_ref().map(listener).unwrap_or_else(|| listener(&c.listener)),
        "log.dirs" => c.log_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
        "num.partitions" => c.num_partitions.to_string(),
        "default.replication.factor" => c.default_replication_factor.to_string(),
        "auto.create.topics.enable" => c.auto_create_topics_enable.to_string(),
        "delete.topic.enable" => c.delete_topic_enable.to_string(),
        "message.max.bytes" => c.message_max_bytes.to_string(),
        "log.segment.bytes" => c.log_segment_bytes.to_string(),
        "log.roll.ms" => c.log_roll_ms.to_string(),
        "log.retention.ms" => c.log_retention_ms.to_string(),
        "log.retention.bytes" => c.log_retention_bytes.to_string(),
        "log.retention.check.interval.ms" => c.log_retention_check_interval_ms.to_string(),
        "log.index.interval.bytes" => c.log_index_interval_bytes.to_string(),
        "log.flush.interval.messages" => c.log_flush_interval_messages.to_string(),
        "log.flush.interval.ms" => c.log_flush_interval_ms.to_string(),
        "socket.request.max.bytes" => c.socket_request_max_bytes.to_string(),
        "max.connections" => c.max_connections.to_string(),
        "producer.id.expiration.ms" => c.producer_id_expiration_ms.to_string(),
        "min.insync.replicas" => c.cluster.min_insync_replicas.to_string(),
        "log.cleaner.threads" => c.cleaner.threads.to_string(),
        "log.cleaner.dedupe.buffer.size" => c.cleaner.dedupe_buffer_size.to_string(),
        "log.cleaner.backoff.ms" => c.cleaner.backoff_ms.to_string(),
        _ => return c.raw.get(key).cloned().or_else(|| kafka_default(key).map(|(_, v)| v)),
    };
    Some(typed)
}

/// The static keys DescribeConfigs shows for a broker besides the dynamic ones.
const STATIC_KEYS: &[&str] = &[
    "advertised.listeners",
    "auto.create.topics.enable",
    "default.replication.factor",
    "delete.topic.enable",
    "listeners",
    "log.dirs",
    "log.retention.check.interval.ms",
    "node.id",
    "num.partitions",
    "socket.request.max.bytes",
];

/// One broker config entry: its value in force, its source, its synonyms (Kafka's
/// ConfigHelper: grouped by source, most specific first, from the first synonym named `key` on).
struct Entry {
    name: &'static str,
    value: Option<String>,
    source: i8,
    read_only: bool,
    config_type: i8,
    synonyms: Vec<(String, String, i8)>,
}

fn entry(broker: &Broker, current: &BrokerConfig, name: &'static str) -> Entry {
    let mut synonyms = broker.dynamic.layered(&synonyms_of(name));
    if let Some((n, v)) = kafka_default(name) {
        synonyms.push((n.to_string(), v, SOURCE_DEFAULT));
    }
    let first = synonyms.iter().position(|(n, _, _)| n == name).unwrap_or(synonyms.len());
    synonyms.drain(..first);
    let def = dynamic_defs::find(name);
    Entry {
        name,
        value: value_in_force(current, name),
        source: synonyms.first().map_or(SOURCE_DEFAULT, |s| s.2),
        read_only: def.is_none(),
        config_type: def.map_or(2, |d| super::describe_configs::type_code(d.ty)),
        synonyms,
    }
}

/// DescribeConfigs of the broker resource `name` into `out`.
pub fn describe(
    broker: &Broker,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    include_synonyms: bool,
    api_version: i16,
    out: &mut Vec<DescribeConfigsResourceResult>,
) -> Result<(), KafkaError> {
    let broker_id = resource_broker(broker, name).map_err(|_| {
        KafkaError::new(
            ResponseError::InvalidRequest,
            format!("Unexpected broker id, expected {} or empty string, but received {name}", broker.config.node_id),
        )
    })?;
    let entries: Vec<Entry> = match broker_id {
        Some(_) => {
            let current = broker.dynamic.current();
            let mut names: Vec<&'static str> =
                STATIC_KEYS.iter().copied().chain(DYNAMIC_BROKER_CONFIGS.iter().map(|d| d.name)).collect();
            names.sort_unstable();
            names.into_iter().map(|n| entry(broker, &current, n)).collect()
        }
        // The cluster-wide default shows only what is set there (Kafka's rule).
        None => broker
            .dynamic
            .cluster_defaults()
            .into_iter()
            .filter_map(|(k, v)| {
                let def = dynamic_defs::find(&k)?;
                Some(Entry {
                    name: def.name,
                    value: Some(v.clone()),
                    source: SOURCE_DYNAMIC_DEFAULT,
                    read_only: false,
                    config_type: super::describe_configs::type_code(def.ty),
                    synonyms: vec![(k, v, SOURCE_DYNAMIC_DEFAULT)],
                })
            })
            .collect(),
    };
    for e in entries.into_iter().filter(|e| wanted(e.name)) {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = StrBytes::from_static_str(e.name);
        c.value = e.value.map(StrBytes::from_string);
        c.config_source = e.source;
        c.read_only = e.read_only;
        if api_version >= 3 {
            c.config_type = e.config_type;
        }
        if include_synonyms {
            c.synonyms = e
                .synonyms
                .into_iter()
                .map(|(n, v, source)| {
                    let mut s = DescribeConfigsSynonym::default();
                    s.name = StrBytes::from_string(n);
                    s.value = Some(StrBytes::from_string(v));
                    s.source = source;
                    s
                })
                .collect();
        }
        out.push(c);
    }
    Ok(())
}
