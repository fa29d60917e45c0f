//! CreateTopics: counts or an explicit replica assignment, per-topic configs, validate_only.
//! From v5 the response also carries the partition count, replication factor and the topic's
//! configs, as Kafka returns them.

use super::describe_configs::topic_config_entries;
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use std::collections::HashMap;
use strom_metadata::{ControllerOp, CreateTopicSpec};
use strom_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use strom_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = t.name.clone();
        result.num_partitions = -1;
        result.replication_factor = -1;
        let outcome = if counts.get(&name).copied().unwrap_or(0) > 1 {
            Err(KafkaError::new(
                ResponseError::InvalidRequest,
                format!("Create topics request contains multiple entries for the topic {name}"),
            ))
        } else {
            let mut configs = Vec::new();
            let mut null_value = None;
            for c in &t.configs {
                match &c.value {
                    Some(v) => configs.push((c.name.to_string(), v.to_string())),
                    None => null_value = Some(c.name.to_string()),
                }
            }
            match null_value {
                Some(key) => Err(KafkaError::new(
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for topic configs: {key}"),
                )),
                None => {
                    let spec = CreateTopicSpec {
                        name: name.clone(),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        assignments: t
                            .assignments
                            .iter()
                            .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                            .collect(),
                        configs,
                    };
                    broker
                        .metadata
                        .write(ControllerOp::CreateTopic { spec, validate_only: req.validate_only })
                        .await
                        .and_then(|a| a.into_topic().map_err(KafkaError::from))
                }
            }
        };
        match outcome {
            Ok(_) if ctx.api_version < 5 => {}
            Ok(topic) => {
                if ctx.api_version >= 7 {
                    result.topic_id = topic.topic_id;
                }
                result.num_partitions = topic.partitions.len() as i32;
                result.replication_factor =
                    topic.partitions.values().next().map(|p| p.replicas.len() as i16).unwrap_or(0);
                result.configs = Some(
                    topic_config_entries(broker, &topic.configs)
                        .into_iter()
                        .map(|e| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = StrBytes::from_string(e.name.to_string());
                            c.value = e.value.map(StrBytes::from_string);
                            c.read_only = false;
                            c.config_source = e.source;
                            c.is_sensitive = false;
                            c
                        })
                        .collect(),
                );
            }
            Err(e) => {
                result.error_code = e.code();
                result.error_message = e.message.map(StrBytes::from_string);
            }
        }
        resp.topics.push(result);
    }
    resp
}
