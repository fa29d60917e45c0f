//! Produce: validate each partition's record batches as Kafka's LogValidator does (v2 only,
//! CRC-32C, sizes; keys on compacted topics and record timestamps, with KIP-467 record errors),
//! recompress them if the topic's compression.type asks for another codec, then append them to
//! the partition leader's log, which assigns offsets by rewriting the batch header in place.
//! acks=0 gets no response; acks=1 is answered once the append is done; acks=-1 is refused with
//! NOT_ENOUGH_REPLICAS before the append when the ISR is below `min.insync.replicas`, and answered
//! once the high watermark passes the batch (every ISR member has it): the delayed produce,
//! waiting on each partition's progress up to the request's `timeout_ms` (REQUEST_TIMED_OUT),
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below the minimum meanwhile. On a single
//! node the leader is the whole ISR, so the high watermark moves with the append. From v10 a
//! NOT_LEADER_OR_FOLLOWER names the current leader and its endpoint (KIP-951).

use super::ensure_topic;
use super::record_checks::{
    keyless_records, recompressed, rejection_message, timestamp_errors, topic_codec, RecordError, TimestampBounds,
};
use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::replica::log_config::{cleanup_policy_has, min_insync_replicas, timestamp_max_ms, uses_log_append_time};
use crate::replica::Partition;
use crate::server::{now_ms, Broker};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strom_protocol::batch::{validate_produce_batches, Compression};
use strom_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use strom_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;
use strom_storage::AppendOutcome;
use tokio::time::Instant;

/// Returns `None` for acks=0 (Kafka sends no response then).
pub async fn handle(broker: &Broker, ctx: &RequestContext, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks = req.acks;
    // Kafka lets its own admin client (`__admin_client`) write internal topics, no one else.
    let internal_topics_allowed = ctx.header.client_id.as_deref() == Some("__admin_client");
    let v = ctx.api_version;
    let mut resp = ProduceResponse::default();
    let mut appended = false;
    let deadline = Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut waits: Vec<DelayedPartition> = Vec::new();
    // Partitions appended to, for the flushes their appends asked for.
    let mut flushes: Vec<((usize, usize), Arc<Partition>, i64)> = Vec::new();
    for topic_data in req.topic_data {
        let name = topic_data.name.0.to_string();
        let mut topic_resp = TopicProduceResponse::default();
        topic_resp.name = topic_data.name.clone();
        let topic = if !matches!(acks, -1..=1) {
            Err(KafkaError::new(ResponseError::InvalidRequiredAcks, format!("acks must be -1, 0 or 1, got {acks}")))
        } else if is_internal(&name) && !internal_topics_allowed {
            // As Kafka: only the coordinators write their own topics (a forged record there
            // would become a group's or a transaction's state at the next load).
            Err(KafkaError::new(
                ResponseError::InvalidTopicException,
                format!("Cannot append to internal topic {name}"),
            ))
        } else {
            ensure_topic(broker, &name, true).await
        };
        let no_overrides = BTreeMap::new();
        let configs = topic.as_ref().ok().and_then(|image| image.topic(&name)).map_or(&no_overrides, |t| &t.configs);
        let defaults = broker.dynamic.current();
        let compacted = cleanup_policy_has(&defaults, configs, "compact");
        let log_append_time = uses_log_append_time(&defaults, configs);
        let (before_max_ms, after_max_ms) = timestamp_max_ms(&defaults, configs);
        let codec = configs.get("compression.type").or_else(|| defaults.raw.get("compression.type"));
        let codec = codec.and_then(|c| topic_codec(c));
        let min_isr = (acks == -1).then(|| min_insync_replicas(&defaults, configs));
        for part in topic_data.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = part.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            let mut record_errors: Vec<RecordError> = Vec::new();
            let result = topic.clone().and_then(|_| {
                let partition = super::cluster_view::led_partition(broker, &name, part.index)?;
                let records = part.records.filter(|r| !r.is_empty()).ok_or_else(|| {
                    KafkaError::new(ResponseError::CorruptMessage, "produce request has no record batches")
                })?;
                let validated = validate_produce_batches(&records)?;
                if v < 7 && validated.iter().any(|b| b.header.compression() == Compression::Zstd) {
                    return Err(KafkaError::new(
                        ResponseError::UnsupportedCompressionType,
                        format!("Produce requests with version {v} are not allowed to use ZStandard compression"),
                    ));
                }
                if compacted {
                    record_errors = keyless_records(&records, &name, part.index)?;
                    if !record_errors.is_empty() {
                        return Err(KafkaError::new(ResponseError::InvalidRecord, rejection_message(&record_errors)));
                    }
                }
                let now = now_ms();
                let bounds = TimestampBounds { now_ms: now, before_max_ms, after_max_ms };
                record_errors = timestamp_errors(&records, &validated, bounds, log_append_time)?;
                if !record_errors.is_empty() {
                    return Err(KafkaError::new(
                        ResponseError::InvalidTimestamp,
                        "One or more records have been rejected due to invalid timestamp",
                    ));
                }
                let records = match codec {
                    Some(codec) => recompressed(records, &validated, codec)?,
                    None => records,
                };
                let (outcome, commands) = partition.append(&records, now, min_isr)?;
                crate::replica::isr::apply(broker, &partition, commands);
                let (start, _) = partition.offsets()?;
                Ok((outcome, start, partition))
            });
            match result {
                Ok((outcome, start, partition)) => {
                    let info = *outcome.info();
                    appended |= matches!(outcome, AppendOutcome::Appended(_));
                    p.base_offset = info.base_offset;
                    p.log_append_time_ms = info.log_append_time_ms;
                    p.log_start_offset = if v >= 5 { start } else { -1 };
                    let at = (resp.responses.len(), topic_resp.partition_responses.len());
                    flushes.push((at, Arc::clone(&partition), info.last_offset + 1));
                    if let Some(min_isr) = min_isr {
                        waits.push(DelayedPartition {
                            topic_index: resp.responses.len(),
                            partition_index: topic_resp.partition_responses.len(),
                            leader_epoch: partition.leader_epoch(),
                            end_offset: info.last_offset + 1,
                            partition,
                            min_isr,
                        });
                    }
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = part.index, "produce rejected: {:?}", e.message);
                    p.error_code = e.code();
                    if v >= 8 {
                        p.error_message = e.message.map(StrBytes::from_string);
                        p.record_errors = record_errors
                            .into_iter()
                            .map(|r| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(r.batch_index)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(r.message)))
                            })
                            .collect();
                    }
                }
            }
            topic_resp.partition_responses.push(p);
        }
        resp.responses.push(topic_resp);
    }
    if appended {
        broker.fetch_purgatory.notify_append();
    }
    flush_requested(&mut resp, flushes).await;
    for w in waits {
        if crate::fault_injection::ack_before_high_watermark() {
            continue;
        }
        let outcome = w.partition.wait_for_high_watermark(w.end_offset, w.leader_epoch, deadline).await;
        let error = match outcome {
            Ok(isr) if isr >= w.min_isr => continue,
            Ok(_) => ResponseError::NotEnoughReplicasAfterAppend,
            Err(e) => e,
        };
        let p = &mut resp.responses[w.topic_index].partition_responses[w.partition_index];
        tracing::debug!(topic = %w.partition.topic, partition = w.partition.index, "acks=all produce failed: {error:?}");
        p.error_code = error.code();
        p.base_offset = -1;
        p.log_append_time_ms = -1;
    }
    if v >= 10 {
        add_leader_hints(broker, &mut resp);
    }
    (acks != 0).then_some(resp)
}

/// Kafka's internal topics, written by their coordinators only.
fn is_internal(topic: &str) -> bool {
    topic == crate::group::store::OFFSETS_TOPIC || topic == crate::txn::store::TXN_TOPIC
}

/// Runs the flushes the appends asked for (`flush.messages`, `flush.ms`), all on one blocking
/// thread, before the produce is answered (Kafka flushes inside the append): each partition's
/// records up to the end of this request's append are durable, whoever's flush synced them. A
/// failed flush answers KAFKA_STORAGE_ERROR for its partition.
async fn flush_requested(resp: &mut ProduceResponse, flushes: Vec<((usize, usize), Arc<Partition>, i64)>) {
    let needed: Vec<_> = flushes.into_iter().filter(|(_, p, end)| p.flush_needed(Some(*end)).unwrap_or(true)).collect();
    if needed.is_empty() {
        return;
    }
    let places: Vec<(usize, usize)> = needed.iter().map(|(at, _, _)| *at).collect();
    let flushed = tokio::task::spawn_blocking(move || {
        needed.into_iter().map(|(_, p, end)| p.flush_through(Some(end)).is_ok()).collect::<Vec<bool>>()
    })
    .await
    .unwrap_or_default();
    for (i, (t, at)) in places.into_iter().enumerate() {
        // A flush task that did not finish is a failed flush, never a success.
        if !flushed.get(i).copied().unwrap_or(false) {
            let p = &mut resp.responses[t].partition_responses[at];
            p.error_code = ResponseError::KafkaStorageError.code();
            p.base_offset = -1;
        }
    }
}

/// KIP-951: a partition answered NOT_LEADER_OR_FOLLOWER names its current leader and epoch, and
/// the response carries that leader's endpoint, so the client can go there without a metadata
/// round trip.
fn add_leader_hints(broker: &Broker, resp: &mut ProduceResponse) {
    let mut endpoints: BTreeMap<i32, NodeEndpoint> = BTreeMap::new();
    for topic in &mut resp.responses {
        for p in &mut topic.partition_responses {
            if p.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            let Some((leader, epoch, node)) = super::cluster_view::current_leader(broker, &topic.name.0, p.index)
            else {
                continue;
            };
            p.current_leader.leader_id = BrokerId(leader);
            p.current_leader.leader_epoch = epoch;
            endpoints.entry(leader).or_insert_with(|| super::cluster_view::node_endpoint!(NodeEndpoint, node));
        }
    }
    resp.node_endpoints = endpoints.into_values().collect();
}

/// An acks=all append waiting for the high watermark to pass it.
struct DelayedPartition {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    leader_epoch: i32,
    end_offset: i64,
    min_isr: usize,
}
