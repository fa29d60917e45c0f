//! Topic lookup shared by Metadata and Produce, including auto-creation
//! (`auto.create.topics.enable`) with the broker's default partition count and replication.

use crate::errors::KafkaError;
use crate::server::Broker;
use std::sync::Arc;
use strom_metadata::controller::validate_topic_name;
use strom_metadata::{ControllerOp, CreateTopicSpec, MetadataError, MetadataImage};
use strom_protocol::ResponseError;

/// The image in which the topic was found (or created), or why not.
pub type TopicLookup = Result<Arc<MetadataImage>, KafkaError>;

/// Finds `name`, creating it when auto-creation is allowed both by the request and the broker.
pub async fn ensure_topic(broker: &Broker, name: &str, allow_auto_create: bool) -> TopicLookup {
    let image = broker.metadata.image();
    if image.topic(name).is_some() {
        return Ok(image);
    }
    if let Err(e) = validate_topic_name(name) {
        return Err(e.into());
    }
    if !(allow_auto_create && broker.config.auto_create_topics_enable) {
        return Err(KafkaError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("This server does not host this topic: {name}"),
        ));
    }
    let spec =
        CreateTopicSpec { name: name.to_string(), num_partitions: -1, replication_factor: -1, ..Default::default() };
    match broker.metadata.write(ControllerOp::CreateTopic { spec, validate_only: false }).await {
        Ok(_) => {
            tracing::info!(topic = %name, "auto-created topic");
            Ok(broker.metadata.image())
        }
        // Another request created it first.
        Err(e) if e.code == ResponseError::TopicAlreadyExists => Ok(broker.metadata.image()),
        Err(e) => Err(e),
    }
}

/// Shorthand for the common "no such topic" error.
pub fn unknown_topic(name: &str) -> KafkaError {
    MetadataError::UnknownTopic(name.to_string()).into()
}

/// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) on its first use, as
/// Kafka does: `replication_factor` capped at the live brokers (a single node: 1), the configs
/// from `configs(replication factor used)`. Another broker creating it first is success.
pub async fn ensure_internal_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: impl FnOnce(i16) -> Vec<(String, String)>,
) -> Result<(), KafkaError> {
    if broker.metadata.image().topic(name).is_some() {
        return Ok(());
    }
    let live = broker.metadata.image().brokers.values().filter(|b| !b.fenced).count().max(1);
    let replication_factor = replication_factor.min(live as i16);
    let spec = CreateTopicSpec {
        name: name.to_string(),
        num_partitions: partitions,
        replication_factor,
        assignments: Vec::new(),
        configs: configs(replication_factor),
    };
    match broker.metadata.write(ControllerOp::CreateTopic { spec, validate_only: false }).await {
        Ok(_) => {
            tracing::info!(partitions, replication_factor, "created {name}");
            Ok(())
        }
        Err(e) if e.code == ResponseError::TopicAlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
