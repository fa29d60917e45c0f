//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (the last two for list configs such
//! as cleanup.policy) on single config keys of a topic or a broker resource.

use super::alter_configs::apply_changes;
use super::describe_configs::RESOURCE_BROKER;
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_metadata::topic_config::{self, ConfigType};
use strom_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use strom_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    let image = broker.metadata.image();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let broker_resource = res.resource_type == RESOURCE_BROKER;
        let current = if broker_resource {
            let id = if name.is_empty() { None } else { name.parse().ok() };
            super::broker_configs::dynamic_configs(&image, id)
        } else {
            image.topic(&name).map(|t| t.configs.clone()).unwrap_or_default()
        };
        let list_type = |key: &str| {
            if broker_resource {
                strom_metadata::broker_config::find(key).map(|d| d.ty)
            } else {
                topic_config::find(key).map(|d| d.ty)
            }
        };
        let default_of = |key: &str| {
            if broker_resource {
                super::broker_configs::default_value(key)
            } else {
                topic_config::find(key).map(|d| d.default)
            }
        };
        let mut changes = Vec::new();
        let mut error: Option<KafkaError> = None;
        for c in &res.configs {
            let key = c.name.to_string();
            let value = c.value.as_ref().map(|v| v.to_string());
            let is_list = matches!(list_type(&key), Some(ConfigType::List(_)));
            let existing = || -> Vec<String> {
                current
                    .get(&key)
                    .cloned()
                    .or_else(|| default_of(&key).map(str::to_string))
                    .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default()
            };
            let change = match c.config_operation {
                SET => Ok(value),
                DELETE => Ok(None),
                APPEND | SUBTRACT if !is_list => Err(KafkaError::new(
                    ResponseError::InvalidConfig,
                    format!("Config value append/subtract is not allowed for config key {key}, which is not a list"),
                )),
                APPEND => {
                    let mut items = existing();
                    for v in value.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_string());
                        }
                    }
                    Ok(Some(items.join(",")))
                }
                SUBTRACT => {
                    let remove: Vec<String> =
                        value.unwrap_or_default().split(',').map(|s| s.trim().to_string()).collect();
                    Ok(Some(existing().into_iter().filter(|i| !remove.contains(i)).collect::<Vec<_>>().join(",")))
                }
                other => {
                    Err(KafkaError::new(ResponseError::InvalidRequest, format!("Unknown config operation {other}")))
                }
            };
            match change {
                Ok(v) => changes.push((key, v)),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let result = match error {
            Some(e) => Err(e),
            None => apply_changes(broker, res.resource_type, &name, changes, false, req.validate_only).await,
        };
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
