//! Fetching: one Fetch request per partition leader for the partitions being consumed, records
//! decoded (and decompressed) from the returned batches, positions moved past them.

use super::config::ConsumerConfig;
use super::decode::decode;
use crate::conn::Cluster;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use strom_protocol::fetch_session::FetchSessionClient;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;

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

/// Fetches from every leader at once for `positions`; waits up to fetch.max.wait.ms. Each
/// leader is fetched through an incremental fetch session (KIP-227) kept in `sessions`, as
/// Java's consumer does: after the first fetch only changed positions travel, and the answer
/// names only partitions with news (the others simply have none).
pub async fn fetch(
    cluster: &Cluster,
    cfg: &ConsumerConfig,
    positions: &BTreeMap<TopicPartition, i64>,
    sessions: &mut HashMap<i32, FetchSessionClient>,
) -> Result<Vec<(TopicPartition, FetchOutcome)>> {
    let snapshot = cluster.snapshot();
    let mut by_leader: HashMap<i32, Vec<(&TopicPartition, i64, i32)>> = HashMap::new();
    let mut out = Vec::new();
    for (tp, pos) in positions {
        match snapshot.topics.get(&tp.topic).and_then(|t| t.leader_and_epoch(tp.partition)) {
            Some((leader, epoch)) => by_leader.entry(leader).or_default().push((tp, *pos, epoch)),
            None => {
                out.push((tp.clone(), FetchOutcome::Retry(ClientError::kafka(5, Some(format!("no leader for {tp}"))))))
            }
        }
    }
    // Each request works on a copy of its session, put back when answered: a fetch given up
    // halfway (a wakeup) leaves the old state, whose stale epoch the broker refuses, and the
    // next fetch then closes that session and opens another.
    let requests = by_leader.into_iter().map(|(leader, parts)| {
        let mut session = sessions.get(&leader).cloned().unwrap_or_default();
        async move {
            let req = session.prepare(fetch_request(cfg, &parts));
            let asked: Vec<(TopicPartition, i64)> = parts.iter().map(|(tp, p, _)| ((*tp).clone(), *p)).collect();
            let result = cluster.send_to::<_, FetchResponse>(leader, ApiKey::Fetch, &req).await;
            match &result {
                Ok((_, resp)) if resp.error_code == 0 => session.answered(resp),
                _ => session.reset(),
            }
            (leader, session, asked, result)
        }
    });
    for (leader, session, asked, result) in futures_join_all(requests).await {
        sessions.insert(leader, session);
        match result {
            Err(e) if e.is_retriable() => {
                out.extend(asked.into_iter().map(|(tp, _)| (tp, FetchOutcome::Retry(e.clone()))))
            }
            Err(e) => return Err(e),
            Ok((_, resp)) if resp.error_code != 0 => {
                // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH and friends: the next
                // fetch is a full one.
                let e = ClientError::kafka(resp.error_code, Some("fetching".to_string()));
                out.extend(asked.into_iter().map(|(tp, _)| (tp, FetchOutcome::Retry(e.clone()))))
            }
            Ok((_, resp)) => {
                let position_of: HashMap<TopicPartition, i64> = asked.into_iter().collect();
                for t in resp.responses {
                    let topic = t.topic.0.to_string();
                    for p in t.partitions {
                        let tp = TopicPartition::new(topic.clone(), p.partition_index);
                        let Some(position) = position_of.get(&tp).copied() else { continue };
                        let outcome = match p.error_code {
                            0 => {
                                // read_committed: drop the batches of the aborted transactions.
                                let aborted: Vec<(i64, i64)> = match (cfg.isolation_level, &p.aborted_transactions) {
                                    (1, Some(list)) => list.iter().map(|a| (a.producer_id.0, a.first_offset)).collect(),
                                    _ => Vec::new(),
                                };
                                let data = p.records.unwrap_or_default();
                                let (records, next_position) = decode(&tp, position, data, aborted)?;
                                FetchOutcome::Records { records, next_position, high_watermark: p.high_watermark }
                            }
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

/// The request for `parts` (partition, position, leader epoch from the metadata): with the epoch
/// a deposed leader that has not heard of its successor refuses with UNKNOWN_LEADER_EPOCH
/// instead of answering from its old log (KIP-320), and a client that is behind is told
/// FENCED_LEADER_EPOCH; both refresh metadata and retry.
fn fetch_request(cfg: &ConsumerConfig, parts: &[(&TopicPartition, i64, i32)]) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (tp, pos, epoch) in parts {
        let mut p = FetchPartition::default();
        p.partition = tp.partition;
        p.fetch_offset = *pos;
        p.current_leader_epoch = *epoch;
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
