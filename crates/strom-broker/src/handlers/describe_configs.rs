//! DescribeConfigs for topics (every Kafka topic config, with its source: set on the topic, set
//! in the broker config, statically or dynamically, or Kafka's default) and for brokers
//! (`broker_configs.rs`).

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
pub use crate::config::dynamic::{SOURCE_DEFAULT, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT, SOURCE_STATIC_BROKER};

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

pub(super) fn type_code(ty: ConfigType) -> i8 {
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
        "retention.ms" => super::broker_configs::RETENTION_KEYS.to_vec(),
        "segment.ms" => super::broker_configs::ROLL_KEYS.to_vec(),
        _ => strom_metadata::topic_config::find(topic_key).and_then(|d| d.broker_synonym).into_iter().collect(),
    }
}

/// Every topic config with its effective value and source.
pub fn topic_config_entries(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let current = &broker.dynamic.current();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            // The broker key that feeds the value and its layer: dynamic for this broker, then
            // the cluster-wide dynamic default, then the static config (Kafka's precedence).
            let broker_set =
                broker.dynamic.layered(&broker_keys_for(def.name)).into_iter().next().map(|(k, _, s)| (k, s));
            let fallback = match broker_set {
                Some((k, source)) => {
                    let v = broker_value_for(current, def.name).unwrap_or_else(|| def.default.to_string());
                    (k.to_string(), v, source)
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
            RESOURCE_BROKER => {
                if let Err(e) = super::broker_configs::describe(
                    broker,
                    &name,
                    &wanted,
                    req.include_synonyms,
                    ctx.api_version,
                    &mut out.configs,
                ) {
                    out.error_code = e.code();
                    out.error_message = e.message.map(StrBytes::from_string);
                }
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
