//! DescribeConfigs for topics (every Kafka topic config, with its source: set on the topic, set
//! in the broker config, or Kafka's default) and for this broker (the keys it reads).

use crate::config::BrokerConfig;
use crate::dispatch::RequestContext;
use crate::replica::log_config::broker_value_for;
use crate::server::Broker;
use std::collections::BTreeMap;
use strom_metadata::topic_config::{ConfigType, TOPIC_CONFIGS};
use strom_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use strom_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigSource codes.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// One config as DescribeConfigs and CreateTopics report it.
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: i8,
    /// Kafka's ConfigType code (v3+).
    pub config_type: i8,
    /// Where the value would come from without the topic override (for synonyms).
    pub fallback: Option<(String, String, i8)>,
}

fn type_code(ty: ConfigType) -> i8 {
    match ty {
        ConfigType::Boolean => 1,
        ConfigType::Enum(_) | ConfigType::Text => 2,
        ConfigType::Int { .. } => 3,
        ConfigType::Long { .. } => 5,
        ConfigType::Double => 6,
        ConfigType::List(_) => 7,
    }
}

/// The broker keys that feed a topic config (retention.ms is fed by log.retention.hours etc.).
fn broker_keys_for(topic_key: &str) -> Vec<&'static str> {
    match topic_key {
        "retention.ms" => vec!["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "segment.ms" => vec!["log.roll.ms", "log.roll.hours"],
        _ => strom_metadata::topic_config::find(topic_key).and_then(|d| d.broker_synonym).into_iter().collect(),
    }
}

/// Every topic config with its effective value and source.
pub fn topic_config_entries(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let broker_set = broker_keys_for(def.name).into_iter().find(|k| broker.config.raw.contains_key(*k));
            let fallback = match broker_set {
                Some(k) => {
                    let v = broker_value_for(&broker.config, def.name).unwrap_or_else(|| def.default.to_string());
                    (k.to_string(), v, SOURCE_STATIC_BROKER)
                }
                // Kafka names the default by its broker-level key (log.cleanup.policy, ...).
                None => (def.broker_synonym.unwrap_or(def.name).to_string(), def.default.to_string(), SOURCE_DEFAULT),
            };
            let (value, source) = match overrides.get(def.name) {
                Some(v) => (v.clone(), SOURCE_TOPIC),
                None => (fallback.1.clone(), fallback.2),
            };
            ConfigEntry {
                name: def.name,
                value: Some(value),
                source,
                config_type: type_code(def.ty),
                fallback: Some(fallback),
            }
        })
        .collect()
}

/// The broker configs Strom reads, with their effective values.
fn broker_config_entries(c: &BrokerConfig) -> Vec<(&'static str, String, i8)> {
    let listener = |l: &crate::config::Listener| format!("{}://{}:{}", l.name, l.host, l.port);
    let entries: Vec<(&'static str, String)> = vec![
        ("node.id", c.node_id.to_string()),
        ("listeners", listener(&c.listener)),
        ("advertised.listeners", c.advertised_listener.as_ref().map(listener).unwrap_or_else(|| listener(&c.listener))),
        ("log.dirs", c.log_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",")),
        ("num.partitions", c.num_partitions.to_string()),
        ("default.replication.factor", c.default_replication_factor.to_string()),
        ("auto.create.topics.enable", c.auto_create_topics_enable.to_string()),
        ("delete.topic.enable", c.delete_topic_enable.to_string()),
        ("message.max.bytes", c.message_max_bytes.to_string()),
        ("log.segment.bytes", c.log_segment_bytes.to_string()),
        ("log.roll.ms", c.log_roll_ms.to_string()),
        ("log.retention.ms", c.log_retention_ms.to_string()),
        ("log.retention.bytes", c.log_retention_bytes.to_string()),
        ("log.retention.check.interval.ms", c.log_retention_check_interval_ms.to_string()),
        ("log.index.interval.bytes", c.log_index_interval_bytes.to_string()),
        ("log.flush.interval.messages", c.log_flush_interval_messages.to_string()),
        ("log.flush.interval.ms", c.log_flush_interval_ms.to_string()),
        ("socket.request.max.bytes", c.socket_request_max_bytes.to_string()),
    ];
    entries
        .into_iter()
        .map(|(k, v)| {
            let source = if c.raw.contains_key(k) { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
            (k, v, source)
        })
        .collect()
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    let image = broker.metadata.image();
    for res in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
        };
        let name = res.resource_name.to_string();
        match res.resource_type {
            RESOURCE_TOPIC => match image.topic(&name) {
                Some(topic) => {
                    for e in topic_config_entries(broker, &topic.configs).into_iter().filter(|e| wanted(e.name)) {
                        let mut c = DescribeConfigsResourceResult::default();
                        c.name = StrBytes::from_static_str(e.name);
                        c.value = e.value.map(StrBytes::from_string);
                        c.config_source = e.source;
                        if ctx.api_version >= 3 {
                            c.config_type = e.config_type;
                        }
                        if req.include_synonyms {
                            let mut synonyms = Vec::new();
                            if e.source == SOURCE_TOPIC {
                                let mut s = DescribeConfigsSynonym::default();
                                s.name = StrBytes::from_static_str(e.name);
                                s.value = topic.configs.get(e.name).cloned().map(StrBytes::from_string);
                                s.source = SOURCE_TOPIC;
                                synonyms.push(s);
                            }
                            if let Some((k, v, src)) = e.fallback {
                                let mut s = DescribeConfigsSynonym::default();
                                s.name = StrBytes::from_string(k);
                                s.value = Some(StrBytes::from_string(v));
                                s.source = src;
                                synonyms.push(s);
                            }
                            c.synonyms = synonyms;
                        }
                        out.configs.push(c);
                    }
                }
                None => {
                    out.error_code = ResponseError::UnknownTopicOrPartition.code();
                    out.error_message = Some(StrBytes::from_string(format!("Topic {name} does not exist")));
                }
            },
            RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                for (k, v, src) in broker_config_entries(&broker.config).into_iter().filter(|(k, _, _)| wanted(k)) {
                    let mut c = DescribeConfigsResourceResult::default();
                    c.name = StrBytes::from_static_str(k);
                    c.value = Some(StrBytes::from_string(v));
                    c.config_source = src;
                    c.read_only = true;
                    if ctx.api_version >= 3 {
                        c.config_type = 2;
                    }
                    out.configs.push(c);
                }
            }
            RESOURCE_BROKER => {
                out.error_code = ResponseError::InvalidRequest.code();
                out.error_message = Some(StrBytes::from_string(format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    broker.config.node_id
                )));
            }
            other => {
                out.error_code = ResponseError::InvalidRequest.code();
                out.error_message = Some(StrBytes::from_string(format!("Unsupported resource type {other}")));
            }
        }
        resp.results.push(out);
    }
    resp
}
