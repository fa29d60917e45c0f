//! OffsetDelete (KIP-496): removes committed offsets of a group for partitions it is not
//! consuming; partitions of topics that active members subscribe to get GROUP_SUBSCRIBED_TO_TOPIC.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use strom_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let requested: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let mut resp = OffsetDeleteResponse::default();
    match broker.groups.delete_offsets(broker, req.group_id.as_str(), &requested) {
        Err(code) => resp.error_code = code,
        Ok(codes) => {
            let mut codes = codes.into_iter();
            for t in req.topics {
                let mut topic = OffsetDeleteResponseTopic::default();
                topic.name = t.name;
                for p in t.partitions {
                    let mut part = OffsetDeleteResponsePartition::default();
                    part.partition_index = p.partition_index;
                    part.error_code = codes.next().unwrap_or_default();
                    topic.partitions.push(part);
                }
                resp.topics.push(topic);
            }
        }
    }
    resp
}
