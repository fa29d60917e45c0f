//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4, the same as
//! earliest without tiered storage), and by timestamp: the first offset whose timestamp is at
//! least the target, or -1 when there is none. Latest is the high watermark for clients and the
//! log end offset for a replica (a follower resetting to its leader); a lookup by timestamp (and
//! max timestamp) finds only offsets below that bound, as Kafka's `fetchOffsetByTimestamp`.

use super::fetch::check_leader_epoch;
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use strom_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strom_protocol::ResponseError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut topic_resp = ListOffsetsTopicResponse::default();
        topic_resp.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            let result: Result<(i64, i64), KafkaError> = (|| {
                let partition = super::cluster_view::led_partition(broker, &name, p.partition_index)?;
                check_leader_epoch(p.current_leader_epoch, partition.leader_epoch())?;
                if ctx.api_version >= 4 {
                    pr.leader_epoch = partition.leader_epoch();
                }
                // A replica (another broker) asking is told the log end, as Kafka does; a
                // read_committed consumer what it may fetch, up to the last stable offset.
                let (start, fetchable) = if req.replica_id.0 >= 0 {
                    partition.log_bounds()?
                } else {
                    let (start, hw, lso) = partition.stable_offsets()?;
                    (start, if req.isolation_level == 1 { lso } else { hw })
                };
                // As Kafka: a lookup by timestamp finds only what a consumer could fetch.
                let below_fetchable =
                    |found: Option<(i64, i64)>| found.filter(|&(offset, _)| offset < fetchable).unwrap_or((-1, -1));
                Ok(match p.timestamp {
                    LATEST => (-1, fetchable),
                    EARLIEST | EARLIEST_LOCAL => (-1, start),
                    MAX_TIMESTAMP => {
                        let (offset, timestamp) = below_fetchable(partition.max_timestamp()?.map(|(t, o)| (o, t)));
                        (timestamp, offset)
                    }
                    ts if ts >= 0 => {
                        let (offset, timestamp) = below_fetchable(partition.offset_for_timestamp(ts)?);
                        (timestamp, offset)
                    }
                    other => {
                        return Err(KafkaError::new(
                            ResponseError::InvalidRequest,
                            format!("unsupported timestamp {other}"),
                        ))
                    }
                })
            })();
            match result {
                Ok((timestamp, offset)) => {
                    pr.timestamp = timestamp;
                    pr.offset = offset;
                }
                Err(e) => pr.error_code = e.code(),
            }
            topic_resp.partitions.push(pr);
        }
        resp.topics.push(topic_resp);
    }
    resp
}
