//! WriteTxnMarkers: a transaction coordinator (or Kafka's `Admin.abortTransaction`, which
//! `kafka-transactions abort` uses) asks this partition leader to end a producer's transaction
//! with a COMMIT or ABORT control batch. As Kafka's `handleWriteTxnMarkersRequest`: each marker
//! is appended as with acks=all (NOT_ENOUGH_REPLICAS below `min.insync.replicas`) and answered
//! once the high watermark passes it; the log refuses a marker for an older producer epoch
//! (INVALID_PRODUCER_EPOCH) or from an older coordinator (TRANSACTION_COORDINATOR_FENCED). The
//! answer is keyed by producer id, markers of the same producer merged.

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::replica::log_config::min_insync_replicas;
use crate::replica::Partition;
use crate::server::{now_ms, Broker};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strom_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use strom_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strom_protocol::ResponseError;
use strom_storage::transactions::EndTxnMarker;
use tokio::time::Instant;

/// How long a marker waits for the ISR (Kafka uses its `request.timeout.ms`, 30 s).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// An appended marker waiting for the high watermark: where its answer goes.
struct Waiting {
    at: (usize, usize, usize),
    partition: Arc<Partition>,
    end_offset: i64,
    leader_epoch: i32,
    min_isr: usize,
}

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    apply(broker, req).await
}

/// Writes the markers of `req` on this broker's partitions (also this broker's own transaction
/// coordinator's path to the partitions it leads).
pub async fn apply(broker: &Broker, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let deadline = Instant::now() + MARKER_TIMEOUT;
    let mut resp = WriteTxnMarkersResponse::default();
    let mut waits = Vec::new();
    let image = broker.metadata.image();
    let defaults = broker.dynamic.current();
    let no_overrides = BTreeMap::new();
    for m in req.markers {
        let marker = EndTxnMarker { commit: m.transaction_result, coordinator_epoch: m.coordinator_epoch };
        let mi = match resp.markers.iter().position(|r| r.producer_id == m.producer_id) {
            Some(i) => i,
            None => {
                let mut r = WritableTxnMarkerResult::default();
                r.producer_id = m.producer_id;
                resp.markers.push(r);
                resp.markers.len() - 1
            }
        };
        for t in m.topics {
            let topics = &mut resp.markers[mi].topics;
            let ti = match topics.iter().position(|r| r.name == t.name) {
                Some(i) => i,
                None => {
                    let mut r = WritableTxnMarkerTopicResult::default();
                    r.name = t.name.clone();
                    topics.push(r);
                    topics.len() - 1
                }
            };
            let configs = image.topic(t.name.0.as_str()).map_or(&no_overrides, |topic| &topic.configs);
            let min_isr = min_insync_replicas(&defaults, configs);
            for index in t.partition_indexes {
                let appended: Result<_, KafkaError> = (|| {
                    let partition = super::cluster_view::led_partition(broker, t.name.0.as_str(), index)?;
                    let (info, commands) =
                        partition.append_marker(m.producer_id.0, m.producer_epoch, marker, now_ms(), min_isr)?;
                    crate::replica::isr::apply(broker, &partition, commands);
                    Ok((partition, info.last_offset + 1))
                })();
                let mut result = WritableTxnMarkerPartitionResult::default();
                result.partition_index = index;
                match appended {
                    Ok((partition, end_offset)) => {
                        let partitions = &resp.markers[mi].topics[ti].partitions;
                        waits.push(Waiting {
                            at: (mi, ti, partitions.len()),
                            leader_epoch: partition.leader_epoch(),
                            partition,
                            end_offset,
                            min_isr,
                        });
                    }
                    Err(e) => {
                        tracing::debug!(topic = %t.name.0, partition = index, "transaction marker refused: {:?}", e.message);
                        result.error_code = e.code();
                    }
                }
                resp.markers[mi].topics[ti].partitions.push(result);
            }
        }
    }
    if !waits.is_empty() {
        broker.fetch_purgatory.notify_append();
    }
    for w in waits {
        let error = match w.partition.flush_if_requested(Some(w.end_offset)).await {
            Err(_) => Some(ResponseError::KafkaStorageError),
            Ok(()) => match w.partition.wait_for_high_watermark(w.end_offset, w.leader_epoch, deadline).await {
                Ok(isr) if isr >= w.min_isr => None,
                Ok(_) => Some(ResponseError::NotEnoughReplicasAfterAppend),
                Err(e) => Some(e),
            },
        };
        if let Some(e) = error {
            let (mi, ti, pi) = w.at;
            resp.markers[mi].topics[ti].partitions[pi].error_code = e.code();
        }
    }
    resp
}
