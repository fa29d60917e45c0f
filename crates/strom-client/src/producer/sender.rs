//! The sender task: takes ready batches from the accumulator, groups them by partition leader,
//! sends one Produce request per broker (up to max.in.flight.requests.per.connection at once),
//! and completes, retries or fails each batch from the answer.

use super::batch::ProducerBatch;
use super::Inner;
use crate::error::ClientError;
use crate::TopicPartition;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strom_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use strom_protocol::StrBytes;

/// Error codes after which a retry with the same sequence numbers may succeed.
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

pub async fn run(inner: Arc<Inner>) {
    loop {
        if inner.reset_needed.load(Ordering::SeqCst) {
            // No new batch goes out under the old id; the reset waits for what is in flight.
            if inner.total_in_flight() == 0 && !inner.resetting.swap(true, Ordering::SeqCst) {
                tokio::spawn(Arc::clone(&inner).reset_producer_id());
            }
            tokio::select! {
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            continue;
        }
        let wakeup = {
            let now = Instant::now();
            let snapshot = inner.cluster.snapshot();
            let mut acc = inner.lock_acc();
            if acc.closed && acc.is_empty() {
                return;
            }
            let ready = acc.ready(inner.config.linger, inner.config.batch_size, now);
            let mut by_node: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
            let mut leaderless = false;
            for tp in ready {
                match snapshot.topics.get(&tp.topic).and_then(|t| t.leader(tp.partition)) {
                    Some(node) => by_node.entry(node).or_default().push(tp),
                    None => {
                        leaderless = true;
                        if let Some(b) = acc.queues.get_mut(&tp).and_then(|q| q.batches.front_mut()) {
                            b.retry_at = Some(now + inner.config.retry_backoff);
                        }
                    }
                }
            }
            if leaderless {
                let cluster = Arc::clone(&inner.cluster);
                tokio::spawn(async move {
                    let _ = cluster.refresh().await;
                });
            }
            for (node, tps) in by_node {
                if inner.in_flight(node) >= inner.config.max_in_flight {
                    continue;
                }
                let mut batches = Vec::new();
                let mut bytes = 0;
                for tp in tps {
                    let Some(q) = acc.queues.get_mut(&tp) else { continue };
                    let Some(front) = q.batches.front() else { continue };
                    if !batches.is_empty() && bytes + front.size() > inner.config.max_request_size {
                        break;
                    }
                    let mut batch = q.batches.pop_front().expect("front exists");
                    q.in_flight = true;
                    if inner.config.idempotence && batch.base_sequence < 0 {
                        batch.base_sequence = q.next_sequence;
                        q.next_sequence = q.next_sequence.wrapping_add(batch.record_count() as i32);
                    }
                    bytes += batch.size();
                    batches.push(batch);
                }
                if !batches.is_empty() {
                    inner.add_in_flight(node, 1);
                    tokio::spawn(send_batches(Arc::clone(&inner), node, batches));
                }
            }
            acc.next_wakeup(inner.config.linger)
        };
        let sleep = wakeup.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep.max(Duration::from_micros(200))) => {}
        }
    }
}

async fn send_batches(inner: Arc<Inner>, node: i32, mut batches: Vec<ProducerBatch>) {
    let cfg = &inner.config;
    let (pid, epoch) = inner.producer_id();
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut encode_failures = Vec::new();
    let mut kept = Vec::new();
    for mut b in batches.drain(..) {
        if b.encoded.is_none() {
            b.producer_id = pid;
        }
        match b.encode(pid, epoch, cfg.compression) {
            Ok(records) => {
                let mut p = PartitionProduceData::default();
                p.index = b.tp.partition;
                p.records = Some(records);
                match topics.iter_mut().find(|t| t.name.0.as_str() == b.tp.topic) {
                    Some(t) => t.partition_data.push(p),
                    None => {
                        let mut t = TopicProduceData::default();
                        t.name = TopicName(StrBytes::from_string(b.tp.topic.clone()));
                        t.partition_data = vec![p];
                        topics.push(t);
                    }
                }
                kept.push(b);
            }
            Err(e) => encode_failures.push((b, e)),
        }
    }
    for (b, e) in encode_failures {
        inner.finish(b, Err(e));
    }
    let mut req = ProduceRequest::default();
    req.acks = cfg.acks;
    req.timeout_ms = cfg.cluster.request_timeout.as_millis().min(i32::MAX as u128) as i32;
    req.topic_data = topics;
    if cfg.acks == 0 {
        let sent = match inner.cluster.broker(node).await {
            Ok(conn) => conn.send_no_response(ApiKey::Produce, &req).await.map(|_| ()),
            Err(e) => Err(e),
        };
        for b in kept {
            match &sent {
                Ok(()) => inner.finish(b, Ok((-1, -1))),
                Err(e) => inner.retry_or_fail(b, e.clone()),
            }
        }
    } else {
        match inner.cluster.send_to::<_, ProduceResponse>(node, ApiKey::Produce, &req).await {
            Err(e) => {
                for b in kept {
                    inner.retry_or_fail(b, e.clone());
                }
            }
            Ok((_, resp)) => {
                let mut answers = HashMap::new();
                for t in &resp.responses {
                    for p in &t.partition_responses {
                        answers.insert((t.name.0.to_string(), p.index), p.clone());
                    }
                }
                for b in kept {
                    match answers.remove(&(b.tp.topic.clone(), b.tp.partition)) {
                        None => {
                            let e = ClientError::Protocol(format!("no answer for {} in the Produce response", b.tp));
                            inner.retry_or_fail(b, e);
                        }
                        Some(p) if p.error_code == 0 || p.error_code == DUPLICATE_SEQUENCE_NUMBER => {
                            inner.finish(b, Ok((p.base_offset, p.log_append_time_ms)));
                        }
                        Some(p) => {
                            let e = ClientError::kafka(p.error_code, p.error_message.map(|m| m.to_string()));
                            inner.retry_or_fail(b, e);
                        }
                    }
                }
            }
        }
    }
    inner.add_in_flight(node, -1);
    inner.wake.notify_one();
}
