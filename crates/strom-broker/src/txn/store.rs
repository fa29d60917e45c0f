//! Reading and writing `__transaction_state`: the topic is created on the first FindCoordinator
//! for a transactional id (as Kafka does), each change is one uncompressed single-record batch
//! written with acks=all, and a new coordinator reads its partition to the log end.

use super::coordinator::Write;
use super::records::{self, TxnLogRecord};
use crate::errors::KafkaError;
use crate::replica::{Partition, ReadLimit};
use crate::server::{now_ms, Broker};
use std::sync::Arc;
use std::time::Duration;
use strom_protocol::batch::{BatchIter, BatchSpec, Compression, RecordIter, BATCH_HEADER_LEN};
use strom_protocol::ResponseError;
use tokio::time::Instant;

/// Kafka's internal topic for transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// Creates `__transaction_state` if it does not exist yet, with Kafka's forced configs.
pub async fn ensure_txn_topic(broker: &Broker) -> Result<(), KafkaError> {
    let c = &broker.config.transactions;
    let configs = |replication_factor: i16| {
        vec![
            ("cleanup.policy".into(), "compact".into()),
            ("compression.type".into(), "uncompressed".into()),
            ("unclean.leader.election.enable".into(), "false".into()),
            ("min.insync.replicas".into(), c.log_min_isr.min(i32::from(replication_factor)).to_string()),
            ("segment.bytes".into(), c.log_segment_bytes.to_string()),
        ]
    };
    let rf = c.log_replication_factor;
    crate::handlers::topics::ensure_internal_topic(broker, TXN_TOPIC, c.log_num_partitions, rf, configs).await
}

/// The broker leading the partition of `transactional_id` (its coordinator), if the topic exists.
pub fn coordinator_of(broker: &Broker, transactional_id: &str) -> Option<i32> {
    let image = broker.metadata.image();
    let topic = image.topic(TXN_TOPIC)?;
    let partition = crate::group::records::partition_for_group(transactional_id, topic.partitions.len() as i32);
    topic.partitions.get(&partition).map(|p| p.leader)
}

/// Every record of a `__transaction_state` partition up to its log end, and that end; an error
/// when the log cannot be read whole (a partial state is never used: it could accept a fenced
/// producer or forget an id's epoch).
pub fn read_all(partition: &Partition) -> Result<(Vec<TxnLogRecord>, i64), String> {
    let mut out = Vec::new();
    let (mut position, end) = partition.log_bounds().map_err(|e| e.to_string())?;
    while position < end {
        let read = partition
            .read(position, 1 << 20, ReadLimit::LogEnd)
            .map_err(|e| format!("reading {TXN_TOPIC}-{} at offset {position}: {e}", partition.index))?;
        let before = position;
        for item in BatchIter::new(&read.records) {
            let Ok((header, bytes)) = item else { break };
            position = position.max(header.next_offset());
            if header.compression() != Compression::None || header.is_control() {
                continue;
            }
            for record in RecordIter::new(&bytes[BATCH_HEADER_LEN..]) {
                let Ok(record) = record else { break };
                let Some(key) = record.key else { continue };
                match records::decode(key, record.value) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        tracing::warn!(partition = partition.index, "skipping undecodable {TXN_TOPIC} record: {e}")
                    }
                }
            }
        }
        if position == before {
            return Err(format!("no whole batch at offset {position} of {TXN_TOPIC}-{}", partition.index));
        }
    }
    Ok((out, end))
}

/// Makes `w` durable: appended to its partition under its coordinator epoch and replicated to
/// the ISR, within the transaction's timeout (Kafka's append timeout for these records).
pub async fn write(broker: &Broker, w: &Write) -> Result<(), ResponseError> {
    let partition: Arc<Partition> = broker.replicas.get(TXN_TOPIC, w.partition).ok_or(ResponseError::NotCoordinator)?;
    if partition.leader_epoch() != w.coordinator_epoch || !partition.is_leader() {
        return Err(ResponseError::NotCoordinator);
    }
    let key = records::encode_key(&w.transactional_id);
    let value = w.transit.state.is_persisted().then(|| records::encode_value(&w.transit.log_value()));
    let recs = [(Some(key.as_slice()), value.as_deref())];
    let now = now_ms();
    let batch = BatchSpec { records: &recs, timestamps: &[now], ..Default::default() }.encode();
    // The topic's min.insync.replicas (capped at its replication factor when it was created).
    let image = broker.metadata.image();
    let no_overrides = std::collections::BTreeMap::new();
    let configs = image.topic(TXN_TOPIC).map_or(&no_overrides, |t| &t.configs);
    let isr_needed = crate::replica::log_config::min_insync_replicas(&broker.dynamic.current(), configs);
    let (outcome, commands) = partition.append(&batch, now, Some(isr_needed)).map_err(|e| e.code)?;
    crate::replica::isr::apply(broker, &partition, commands);
    let end = outcome.info().last_offset + 1;
    if partition.flush_if_requested(Some(end)).await.is_err() {
        return Err(ResponseError::NotCoordinator);
    }
    let timeout = Duration::from_millis(u64::try_from(w.transit.timeout_ms).unwrap_or(0).max(1_000));
    match partition.wait_for_high_watermark(end, w.coordinator_epoch, Instant::now() + timeout).await {
        Ok(isr) if isr >= isr_needed => Ok(()),
        Ok(_) => Err(ResponseError::NotEnoughReplicasAfterAppend),
        Err(e) => Err(e),
    }
}
