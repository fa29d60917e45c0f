//! OffsetFetch: committed offsets with their metadata strings, for one group (v1-7) or several
//! (v8+). A partition without a commit answers offset -1. A null topic list means every topic the
//! group has committed for.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use strom_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use strom_protocol::StrBytes;

/// (topic, [(partition, offset, leader epoch, metadata)]) for one group.
type GroupOffsets = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn fetch(broker: &Broker, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> GroupOffsets {
    let committed = broker.groups.committed_offsets(group);
    match topics {
        None => {
            let mut out: GroupOffsets = Vec::new();
            for ((topic, partition), c) in committed {
                if out.last().map(|(t, _)| t != &topic).unwrap_or(true) {
                    out.push((topic.clone(), Vec::new()));
                }
                if let Some((_, parts)) = out.last_mut() {
                    parts.push((partition, c.offset, c.leader_epoch, c.metadata));
                }
            }
            out
        }
        Some(requested) => requested
            .into_iter()
            .map(|(topic, partitions)| {
                let parts = partitions
                    .into_iter()
                    .map(|p| match committed.iter().find(|((t, q), _)| t == &topic && *q == p) {
                        Some((_, c)) => (p, c.offset, c.leader_epoch, c.metadata.clone()),
                        None => (p, -1, -1, String::new()),
                    })
                    .collect();
                (topic, parts)
            })
            .collect(),
    }
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    let mut resp = OffsetFetchResponse::default();
    if v < 8 {
        if let Some(code) = crate::group::store::offsets_unavailable(broker, req.group_id.as_str()) {
            if v >= 2 {
                resp.error_code = code;
            } else {
                // v1 has errors only per partition, as Kafka answers it: each one asked for.
                for t in req.topics.unwrap_or_default() {
                    let mut out = OffsetFetchResponseTopic::default();
                    out.name = t.name;
                    out.partitions = t
                        .partition_indexes
                        .into_iter()
                        .map(|p| {
                            let mut part = OffsetFetchResponsePartition::default();
                            part.partition_index = p;
                            part.committed_offset = -1;
                            part.metadata = Some(StrBytes::from_static_str(""));
                            part.error_code = code;
                            part
                        })
                        .collect();
                    resp.topics.push(out);
                }
            }
            return resp;
        }
        let topics = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
        for (topic, parts) in fetch(broker, req.group_id.as_str(), topics) {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = TopicName(StrBytes::from_string(topic));
            t.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, metadata)| {
                    let mut out = OffsetFetchResponsePartition::default();
                    out.partition_index = p;
                    out.committed_offset = offset;
                    if v >= 5 {
                        out.committed_leader_epoch = epoch;
                    }
                    out.metadata = Some(StrBytes::from_string(metadata));
                    out
                })
                .collect();
            resp.topics.push(t);
        }
        return resp;
    }
    for g in req.groups {
        let topics = g.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
        let mut group = OffsetFetchResponseGroup::default();
        if let Some(code) = crate::group::store::offsets_unavailable(broker, g.group_id.as_str()) {
            group.error_code = code;
            group.group_id = g.group_id;
            resp.groups.push(group);
            continue;
        }
        for (topic, parts) in fetch(broker, g.group_id.as_str(), topics) {
            let mut t = OffsetFetchResponseTopics::default();
            t.name = TopicName(StrBytes::from_string(topic));
            t.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, metadata)| {
                    let mut out = OffsetFetchResponsePartitions::default();
                    out.partition_index = p;
                    out.committed_offset = offset;
                    out.committed_leader_epoch = epoch;
                    out.metadata = Some(StrBytes::from_string(metadata));
                    out
                })
                .collect();
            group.topics.push(t);
        }
        group.group_id = g.group_id;
        resp.groups.push(group);
    }
    resp
}
