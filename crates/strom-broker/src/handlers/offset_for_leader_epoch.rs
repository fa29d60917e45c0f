//! OffsetForLeaderEpoch (KIP-101/KIP-279/KIP-320): for each partition this broker leads, the
//! largest epoch ≤ the one asked for that its log holds and the offset where the next epoch
//! begins (the log end for the current epoch). Consumers check their position with it after a
//! leader change (a position past the end means truncation); followers truncate to it.

use super::cluster_view::led_partition;
use super::fetch::check_leader_epoch;
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use strom_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub async fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let mut topic = OffsetForLeaderTopicResult::default();
        topic.topic = t.topic.clone();
        for p in t.partitions {
            let mut out = EpochEndOffset::default();
            out.partition = p.partition;
            out.leader_epoch = -1;
            out.end_offset = -1;
            let result: Result<(i32, i64), KafkaError> = (|| {
                let partition = led_partition(broker, t.topic.as_str(), p.partition)?;
                check_leader_epoch(p.current_leader_epoch, partition.leader_epoch())?;
                Ok(partition.end_offset_for_epoch(p.leader_epoch)?)
            })();
            match result {
                Ok((epoch, end)) => {
                    out.leader_epoch = epoch;
                    out.end_offset = end;
                }
                Err(e) => out.error_code = e.code(),
            }
            topic.partitions.push(out);
        }
        resp.topics.push(topic);
    }
    resp
}
