//! Fetching: one Fetch request per partition leader for the partitions being consumed, records
//! decoded (and decompressed) from the returned batches, positions moved past them.

use super::config::ConsumerConfig;
use crate::conn::Cluster;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use std::collections::{BTreeMap, HashMap};

/// A record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// Whether `timestamp` is the producer's (CreateTime) or the broker's (LogAppendTime).
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Kafka's names for who set a record's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl std::fmt::Display for TimestampType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        })
    }
}

/// What one partition's fetch produced.
pub enum FetchOutcome {
    /// Records at or after the position, and the position after them.
    Records { records: Vec<ConsumerRecord>, next_position: i64, high_watermark: i64 },
    /// The position is outside the log: reset it (auto.offset.reset).
    OutOfRange,
    /// The leader moved or is unknown: refresh metadata and retry.
    Retry(ClientError),
}

/// Fetches from every leader at once for `positions`; waits up to fetch.max.wait.ms.
pub async fn fetch(
    cluster: &Cluster,
    cfg: &ConsumerConfig,
    positions: &BTreeMap<TopicPartition, i64>,
) -> Result<Vec<(TopicPartition, FetchOutcome)>> {
    let snapshot = cluster.snapshot();
    let mut by_leader: HashMap<i32, Vec<(&TopicPartition, i64)>> = HashMap::new();
    let mut out = Vec::new();
    for (tp, pos) in positions {
        match snapshot.topics.get(&tp.topic).and_then(|t| t.leader(tp.partition)) {
            Some(leader) => by_leader.entry(leader).or_default().push((tp, *pos)),
            None => {
                out.push((tp.clone(), FetchOutcome::Retry(ClientError::kafka(5, Some(format!("no leader for {tp}"))))))
            }
        }
    }
    let requests = by_leader.into_iter().map(|(leader, parts)| async move {
        let req = fetch_request(cfg, &parts);
        let asked: Vec<(TopicPartition, i64)> = parts.iter().map(|(tp, p)| ((*tp).clone(), *p)).collect();
        (asked, cluster.send_to::<_, FetchResponse>(leader, ApiKey::Fetch, &req).await)
    });
    for (asked, result) in futures_join_all(requests).await {
        match result {
            Err(e) if e.is_retriable() => {
                out.extend(asked.into_iter().map(|(tp, _)| (tp, FetchOutcome::Retry(e.clone()))))
            }
            Err(e) => return Err(e),
            Ok((_, resp)) => {
                let position_of: HashMap<TopicPartition, i64> = asked.into_iter().collect();
                for t in resp.responses {
                    let topic = t.topic.0.to_string();
                    for p in t.partitions {
                        let tp = TopicPartition::new(topic.clone(), p.partition_index);
                        let Some(position) = position_of.get(&tp).copied() else { continue };
                        let outcome = match p.error_code {
                            0 => decode(&tp, position, p.records.unwrap_or_default(), p.high_watermark)?,
                            1 => FetchOutcome::OutOfRange,
                            code => {
                                let e = ClientError::kafka(code, Some(format!("fetching {tp}")));
                                if !e.is_retriable() {
                                    return Err(e);
                                }
                                FetchOutcome::Retry(e)
                            }
                        };
                        out.push((tp, outcome));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn fetch_request(cfg: &ConsumerConfig, parts: &[(&TopicPartition, i64)]) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, pos) in parts {
        let mut p = FetchPartition::default();
        p.partition = tp.partition;
        p.fetch_offset = *pos;
        p.current_leader_epoch = -1;
        p.log_start_offset = -1;
        p.partition_max_bytes = cfg.max_partition_fetch_bytes;
        topics.entry(&tp.topic).or_default().push(p);
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = cfg.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32;
    req.min_bytes = cfg.fetch_min_bytes;
    req.max_bytes = cfg.fetch_max_bytes;
    req.isolation_level = cfg.isolation_level;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(name.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    req
}

/// Decodes the complete batches of a partition's record set (a fetch may end in a partial batch)
/// into records at or after `position`, skipping control records.
fn decode(tp: &TopicPartition, position: i64, mut data: Bytes, high_watermark: i64) -> Result<FetchOutcome> {
    let complete = complete_batches_len(&data);
    data.truncate(complete);
    let mut records = Vec::new();
    let mut next_position = position;
    while data.has_remaining() {
        let set = RecordBatchDecoder::decode(&mut data)
            .map_err(|e| ClientError::Protocol(format!("corrupt record batch from {tp}: {e}")))?;
        for r in set.records {
            next_position = next_position.max(r.offset + 1);
            if r.control || r.offset < position {
                continue;
            }
            records.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: match r.timestamp_type {
                    kafka_protocol::records::TimestampType::LogAppend => TimestampType::LogAppendTime,
                    kafka_protocol::records::TimestampType::Creation => TimestampType::CreateTime,
                },
                key: r.key,
                value: r.value,
                headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            });
        }
    }
    Ok(FetchOutcome::Records { records, next_position, high_watermark })
}

/// The length of the prefix of `data` made of whole batches (baseOffset:8, batchLength:4, ...).
fn complete_batches_len(data: &[u8]) -> usize {
    let mut at = 0;
    while data.len() >= at + 12 {
        let len = i32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        if len < 0 {
            break;
        }
        let end = at + 12 + len as usize;
        if end > data.len() {
            break;
        }
        at = end;
    }
    at
}

/// Runs futures concurrently on the current task (no extra dependency for one join_all).
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_trailing_batch_is_left_out() {
        let mut data = vec![0u8; 12];
        data[11] = 4;
        data.extend_from_slice(&[1, 2, 3, 4]);
        let whole = data.len();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 1]);
        assert_eq!(complete_batches_len(&data), whole);
    }
}
