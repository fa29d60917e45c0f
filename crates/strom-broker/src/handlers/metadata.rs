//! Metadata: brokers, cluster id, controller, and topics with their partitions, leaders,
//! replicas, ISR and topic ids. Unknown topics are auto-created when both the request and
//! `auto.create.topics.enable` allow it.

use super::cluster_view::{controller_id, live_brokers};
use super::ensure_topic;
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_metadata::{MetadataImage, TopicImage};
use strom_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use strom_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;
use uuid::Uuid;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let v = ctx.api_version;
    let mut resp = MetadataResponse::default();
    resp.brokers = live_brokers(broker)
        .into_iter()
        .map(|l| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(l.id);
            b.host = StrBytes::from_string(l.host);
            b.port = l.port;
            if v >= 1 {
                b.rack = l.rack.map(StrBytes::from_string);
            }
            b
        })
        .collect();
    if v >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    }
    if v >= 1 {
        resp.controller_id = BrokerId(controller_id(broker));
    }

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all_topics = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && v == 0,
    };
    let allow_auto_create = v < 4 || req.allow_auto_topic_creation;
    if all_topics {
        let image = broker.metadata.image();
        resp.topics = image.topics.values().map(|t| topic_response(&image, t, v)).collect();
        return resp;
    }
    for requested in req.topics.unwrap_or_default() {
        let topic = match &requested.name {
            Some(name) => match ensure_topic(broker, name, allow_auto_create).await {
                Ok(image) => match image.topic(name) {
                    Some(t) => topic_response(&image, t, v),
                    None => {
                        error_topic(Some(name.to_string()), Uuid::nil(), ResponseError::UnknownTopicOrPartition.into())
                    }
                },
                Err(e) => error_topic(Some(name.to_string()), Uuid::nil(), e),
            },
            None => {
                let image = broker.metadata.image();
                match image.topic_by_id(&requested.topic_id) {
                    Some(t) => topic_response(&image, t, v),
                    None => error_topic(None, requested.topic_id, ResponseError::UnknownTopicId.into()),
                }
            }
        };
        resp.topics.push(topic);
    }
    resp
}

/// Fields that a version does not have must stay at their defaults, or encoding fails.
fn topic_response(image: &MetadataImage, t: &TopicImage, v: i16) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    if v >= 10 {
        topic.topic_id = t.topic_id;
    }
    topic.is_internal = v >= 1 && t.name.starts_with("__");
    topic.partitions = t
        .partitions
        .values()
        .map(|p| {
            let mut part = MetadataResponsePartition::default();
            part.partition_index = p.partition;
            part.leader_id = BrokerId(p.leader);
            if v >= 7 {
                part.leader_epoch = p.leader_epoch;
            }
            part.replica_nodes = p.replicas.iter().map(|r| BrokerId(*r)).collect();
            part.isr_nodes = p.isr.iter().map(|r| BrokerId(*r)).collect();
            if v >= 5 {
                let offline = |r: &&i32| {
                    image.brokers.get(r).is_none_or(|b| !b.can_serve(&t.topic_id, p.partition))
                        && !image.brokers.is_empty()
                };
                part.offline_replicas = p.replicas.iter().filter(offline).map(|r| BrokerId(*r)).collect();
            }
            if p.leader < 0 {
                part.error_code = ResponseError::LeaderNotAvailable.code();
            }
            part
        })
        .collect();
    topic
}

fn error_topic(name: Option<String>, id: Uuid, e: KafkaError) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    topic.topic_id = id;
    topic.error_code = e.code();
    topic
}
