//! AlterConfigs (legacy): the given set replaces every override of the topic, or every dynamic
//! config of the broker resource (KIP-226, `broker_configs.rs`).

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_metadata::ControllerOp;
use strom_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use strom_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let changes =
            res.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
        let result = apply_changes(broker, res.resource_type, &name, changes, true, req.validate_only).await;
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        if let Err(e) = result {
            r.error_code = e.code();
            r.error_message = e.message.map(StrBytes::from_string);
        }
        resp.responses.push(r);
    }
    resp
}

/// Shared by AlterConfigs and IncrementalAlterConfigs: validates the resource, applies the
/// changes through the controller; the publisher pushes the new settings down to the logs (and
/// to the dynamic broker config).
pub async fn apply_changes(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    changes: Vec<(String, Option<String>)>,
    replace_all: bool,
    validate_only: bool,
) -> Result<(), KafkaError> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return super::broker_configs::alter(broker, name, changes, replace_all, validate_only).await
        }
        other => {
            return Err(KafkaError::new(ResponseError::InvalidRequest, format!("Unsupported resource type {other}")))
        }
    }
    let op = ControllerOp::AlterTopicConfigs { name: name.to_string(), changes, replace_all, validate_only };
    broker.metadata.write(op).await.map(|_| ())
}
