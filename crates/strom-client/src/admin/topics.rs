//! Topic administration: create, delete, list, describe, add partitions, configs, records.

use super::Admin;
use crate::conn::TopicInfo;
use crate::error::{check, ClientError, Result};
use crate::TopicPartition;
use std::collections::{BTreeMap, HashMap};
use strom_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use strom_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use strom_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use strom_protocol::messages::describe_configs_request::DescribeConfigsResource;
use strom_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use strom_protocol::messages::*;
use strom_protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A topic to create. `replication_factor` -1 and `partitions` -1 take the broker's defaults.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
    /// Explicit replica assignment: partition → broker ids (then partitions/replication are -1).
    pub assignment: Vec<(i32, Vec<i32>)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic { name: name.into(), partitions, replication_factor, configs: Vec::new(), assignment: Vec::new() }
    }

    pub fn config(mut self, key: &str, value: &str) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
    /// The cluster-wide broker defaults (Kafka's resource name "").
    BrokerDefault,
}

impl ConfigResource {
    fn kind_and_name(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(b) => (4, b.to_string()),
            ConfigResource::BrokerDefault => (4, String::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub sensitive: bool,
    /// Where the value comes from (Kafka's ConfigSource).
    pub source: ConfigSource,
    /// The values it overrides, most specific first (as kafka-configs prints them).
    pub synonyms: Vec<ConfigSynonym>,
}

impl ConfigEntry {
    /// Whether nothing set this config: Kafka's built-in default applies.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::DefaultConfig
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Kafka's ConfigEntry.ConfigSource, by its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    DynamicTopicConfig,
    DynamicBrokerConfig,
    DynamicDefaultBrokerConfig,
    StaticBrokerConfig,
    DefaultConfig,
    DynamicBrokerLoggerConfig,
    ClientMetricsConfig,
    GroupConfig,
}

impl ConfigSource {
    pub fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            _ => ConfigSource::Unknown,
        }
    }
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfigSource::Unknown => "UNKNOWN",
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
            ConfigSource::GroupConfig => "GROUP_CONFIG",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl Admin {
    /// Creates topics; one result per topic, in order.
    pub async fn create_topics(&self, topics: &[NewTopic], validate_only: bool) -> Result<Vec<(String, Result<()>)>> {
        let mut req = CreateTopicsRequest::default();
        req.timeout_ms = self.cluster.config.request_timeout.as_millis() as i32;
        req.validate_only = validate_only;
        req.topics = topics
            .iter()
            .map(|t| {
                let mut c = CreatableTopic::default();
                c.name = TopicName(s(&t.name));
                c.num_partitions = if t.assignment.is_empty() { t.partitions } else { -1 };
                c.replication_factor = if t.assignment.is_empty() { t.replication_factor } else { -1 };
                c.assignments = t
                    .assignment
                    .iter()
                    .map(|(p, brokers)| {
                        let mut a = CreatableReplicaAssignment::default();
                        a.partition_index = *p;
                        a.broker_ids = brokers.iter().map(|b| BrokerId(*b)).collect();
                        a
                    })
                    .collect();
                c.configs = t
                    .configs
                    .iter()
                    .map(|(k, v)| {
                        let mut cfg = CreatableTopicConfig::default();
                        cfg.name = s(k);
                        cfg.value = Some(s(v));
                        cfg
                    })
                    .collect();
                c
            })
            .collect();
        let resp: CreateTopicsResponse = self.send_to_controller(ApiKey::CreateTopics, &req).await?;
        let mut results: HashMap<String, Result<()>> = resp
            .topics
            .into_iter()
            .map(|t| {
                let r = if t.error_code == 0 {
                    Ok(())
                } else {
                    Err(ClientError::kafka(t.error_code, t.error_message.map(|m| m.to_string())))
                };
                (t.name.0.to_string(), r)
            })
            .collect();
        Ok(topics
            .iter()
            .map(|t| {
                let r = results
                    .remove(&t.name)
                    .unwrap_or_else(|| Err(ClientError::Protocol(format!("no answer for {}", t.name))));
                (t.name.clone(), r)
            })
            .collect())
    }

    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let conn_version = {
            let controller = self.cluster.snapshot().controller_id;
            let conn = if controller >= 0 { self.cluster.broker(controller).await } else { Err(ClientError::Closed) };
            match conn {
                Ok(c) => c.versions().pick(ApiKey::DeleteTopics)?,
                Err(_) => 5,
            }
        };
        let mut req = DeleteTopicsRequest::default();
        req.timeout_ms = self.cluster.config.request_timeout.as_millis() as i32;
        if conn_version >= 6 {
            req.topics = names
                .iter()
                .map(|n| {
                    let mut t = delete_topics_request::DeleteTopicState::default();
                    t.name = Some(TopicName(s(n)));
                    t
                })
                .collect();
        } else {
            req.topic_names = names.iter().map(|n| TopicName(s(n))).collect();
        }
        let resp: DeleteTopicsResponse = self.send_to_controller(ApiKey::DeleteTopics, &req).await?;
        Ok(resp
            .responses
            .into_iter()
            .map(|r| {
                let name = r.name.map(|n| n.0.to_string()).unwrap_or_default();
                let result = if r.error_code == 0 {
                    Ok(())
                } else {
                    Err(ClientError::kafka(r.error_code, r.error_message.map(|m| m.to_string())))
                };
                (name, result)
            })
            .collect())
    }

    /// Topic names, sorted; internal topics (`__consumer_offsets`) only if asked.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let snap = self.cluster.fetch_metadata(None).await?;
        let mut names: Vec<String> =
            snap.topics.values().filter(|t| include_internal || !t.is_internal).map(|t| t.name.clone()).collect();
        names.sort();
        Ok(names)
    }

    /// Partition layout of topics; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicInfo>> {
        let wanted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let snap = self.cluster.fetch_metadata(Some(&wanted)).await?;
        names
            .iter()
            .map(|n| match snap.topics.get(*n) {
                Some(t) => Ok(t.clone()),
                None => {
                    Err(ClientError::kafka(snap.topic_errors.get(*n).copied().unwrap_or(3), Some(format!("topic {n}"))))
                }
            })
            .collect()
    }

    /// Grows `topic` to `total` partitions.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(s(topic));
        t.count = total;
        t.assignments = None;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = self.cluster.config.request_timeout.as_millis() as i32;
        let resp: CreatePartitionsResponse = self.send_to_controller(ApiKey::CreatePartitions, &req).await?;
        for r in resp.results {
            if r.error_code != 0 {
                return Err(ClientError::kafka(r.error_code, r.error_message.map(|m| m.to_string())));
            }
        }
        Ok(())
    }

    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let (kind, name) = resource.kind_and_name();
        let mut r = DescribeConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = s(&name);
        r.configuration_keys = None;
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![r];
        req.include_synonyms = true;
        // As Java's admin client: one broker's configs are asked of that broker (only it knows
        // its static config), everything else of any broker.
        let resp: DescribeConfigsResponse = match resource {
            ConfigResource::Broker(id) => self.cluster.send_to(*id, ApiKey::DescribeConfigs, &req).await?.1,
            _ => self.cluster.send_any(ApiKey::DescribeConfigs, &req).await?,
        };
        let result = resp
            .results
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("empty DescribeConfigs answer".into()))?;
        if result.error_code != 0 {
            return Err(ClientError::kafka(result.error_code, result.error_message.map(|m| m.to_string())));
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
                source: ConfigSource::from_code(c.config_source),
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|s| ConfigSynonym {
                        name: s.name.to_string(),
                        value: s.value.map(|v| v.to_string()),
                        source: ConfigSource::from_code(s.source),
                    })
                    .collect(),
            })
            .collect())
    }

    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[(String, AlterConfigOp)],
    ) -> Result<()> {
        let (kind, name) = resource.kind_and_name();
        let mut r = AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = s(&name);
        r.configs = ops
            .iter()
            .map(|(k, op)| {
                let mut c = AlterableConfig::default();
                c.name = s(k);
                let (code, value) = match op {
                    AlterConfigOp::Set(v) => (0, Some(v)),
                    AlterConfigOp::Delete => (1, None),
                    AlterConfigOp::Append(v) => (2, Some(v)),
                    AlterConfigOp::Subtract(v) => (3, Some(v)),
                };
                c.config_operation = code;
                c.value = value.map(|v| s(v));
                c
            })
            .collect();
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        // A broker's own configs are validated by that broker before it forwards them.
        let resp: IncrementalAlterConfigsResponse = match resource {
            ConfigResource::Broker(id) => self.cluster.send_to(*id, ApiKey::IncrementalAlterConfigs, &req).await?.1,
            _ => self.send_to_controller(ApiKey::IncrementalAlterConfigs, &req).await?,
        };
        for r in resp.responses {
            if r.error_code != 0 {
                return Err(ClientError::kafka(r.error_code, r.error_message.map(|m| m.to_string())));
            }
        }
        Ok(())
    }

    /// Offsets by time (or -2 earliest, -1 latest) for each partition: (offset, timestamp).
    pub async fn list_offsets(
        &self,
        query: &BTreeMap<TopicPartition, i64>,
    ) -> Result<HashMap<TopicPartition, (i64, i64)>> {
        let topics: Vec<String> = query.keys().map(|tp| tp.topic.clone()).collect();
        self.cluster.add_topics(topics.iter().map(String::as_str));
        self.cluster.refresh().await?;
        crate::consumer::offsets::list_offsets(&self.cluster, query, 0).await
    }

    /// Deletes records before the given offsets (-1: the high watermark); returns the new low
    /// watermarks.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let topics: Vec<String> = before.keys().map(|tp| tp.topic.clone()).collect();
        self.cluster.add_topics(topics.iter().map(String::as_str));
        let snap = self.cluster.refresh().await?;
        let mut by_leader: HashMap<i32, BTreeMap<&str, Vec<DeleteRecordsPartition>>> = HashMap::new();
        for (tp, offset) in before {
            let leader = snap
                .topics
                .get(&tp.topic)
                .and_then(|t| t.leader(tp.partition))
                .ok_or_else(|| ClientError::kafka(3, Some(format!("{tp}"))))?;
            let mut p = DeleteRecordsPartition::default();
            p.partition_index = tp.partition;
            p.offset = *offset;
            by_leader.entry(leader).or_default().entry(&tp.topic).or_default().push(p);
        }
        let mut out = BTreeMap::new();
        for (leader, topics) in by_leader {
            let mut req = DeleteRecordsRequest::default();
            req.timeout_ms = self.cluster.config.request_timeout.as_millis() as i32;
            req.topics = topics
                .into_iter()
                .map(|(name, partitions)| {
                    let mut t = DeleteRecordsTopic::default();
                    t.name = TopicName(s(name));
                    t.partitions = partitions;
                    t
                })
                .collect();
            let (_, resp): (i16, DeleteRecordsResponse) =
                self.cluster.send_to(leader, ApiKey::DeleteRecords, &req).await?;
            for t in resp.topics {
                for p in t.partitions {
                    check(p.error_code)?;
                    out.insert(TopicPartition::new(t.name.0.to_string(), p.partition_index), p.low_watermark);
                }
            }
        }
        Ok(out)
    }
}
