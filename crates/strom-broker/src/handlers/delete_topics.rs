//! DeleteTopics: by name (v0-5) or by name or topic id (v6). The topic's metadata goes first,
//! then its partitions' data.

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_metadata::ControllerOp;
use strom_protocol::messages::delete_topics_response::DeletableTopicResult;
use strom_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;
use uuid::Uuid;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, Uuid)> = Vec::new();
    if ctx.api_version >= 6 {
        targets.extend(req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)));
    } else {
        targets.extend(req.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())));
    }
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        r.topic_id = id;
        let image = broker.metadata.image();
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => Some(n.clone()),
            (None, false) => image.topic_by_id(&id).map(|t| t.name.clone()),
            (None, true) => None,
        };
        r.name = resolved.clone().or(name.clone()).map(|n| TopicName(StrBytes::from_string(n)));
        let Some(topic) = resolved else {
            r.error_code = ResponseError::UnknownTopicId.code();
            resp.responses.push(r);
            continue;
        };
        let answer = broker.metadata.write(ControllerOp::DeleteTopic { name: topic.clone() }).await;
        match answer.and_then(|a| a.into_topic().map_err(KafkaError::from)) {
            Ok(deleted) => {
                if ctx.api_version >= 6 {
                    r.topic_id = deleted.topic_id;
                }
            }
            Err(e) => {
                r.error_code = e.code();
                if ctx.api_version >= 5 {
                    r.error_message = e.message.map(StrBytes::from_string);
                }
            }
        }
        resp.responses.push(r);
    }
    resp
}
