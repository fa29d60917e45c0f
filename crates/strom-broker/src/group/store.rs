//! Reading and writing `__consumer_offsets`: the topic is created on first use (as Kafka does),
//! commits and group metadata are appended as uncompressed batches keyed so that a later
//! compaction keeps the latest value per key, and at start-up the whole topic is replayed.

use super::offsets::OffsetStore;
use super::records::{self, OffsetsRecord, StoredGroup};
use crate::errors::KafkaError;
use crate::replica::Partition;
use crate::server::Broker;
use std::collections::HashMap;
use std::sync::Arc;
use strom_protocol::batch::{BatchIter, BatchSpec, Compression, RecordIter, BATCH_HEADER_LEN};
use strom_protocol::ResponseError;

/// Kafka's internal topic for committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Creates `__consumer_offsets` if it does not exist yet.
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<(), KafkaError> {
    let c = &broker.config;
    let configs = |_| {
        vec![
            ("cleanup.policy".into(), "compact".into()),
            ("compression.type".into(), "producer".into()),
            ("segment.bytes".into(), c.offsets_topic_segment_bytes.to_string()),
        ]
    };
    let rf = c.cluster.offsets_topic_replication_factor;
    crate::handlers::topics::ensure_internal_topic(broker, OFFSETS_TOPIC, c.offsets_topic_num_partitions, rf, configs)
        .await
}

/// NOT_COORDINATOR when another broker leads the group's `__consumer_offsets` partition: the
/// client finds the coordinator again (FindCoordinator) and goes there.
pub fn not_coordinator(broker: &Broker, group: &str) -> Option<i16> {
    let image = broker.metadata.image();
    let topic = image.topic(OFFSETS_TOPIC)?;
    let partition = records::partition_for_group(group, topic.partitions.len() as i32);
    let leader = topic.partitions.get(&partition)?.leader;
    (leader != broker.config.node_id).then_some(ResponseError::NotCoordinator.code())
}

/// What OffsetFetch answers instead of the group's offsets: NOT_COORDINATOR (above), or
/// COORDINATOR_LOAD_IN_PROGRESS while this new coordinator's load waits for commits above the
/// high watermark (the client retries, as it does while Kafka's coordinator loads).
pub fn offsets_unavailable(broker: &Broker, group: &str) -> Option<i16> {
    not_coordinator(broker, group).or_else(|| {
        broker.groups.settling(partition_of(broker, group)).then_some(ResponseError::CoordinatorLoadInProgress.code())
    })
}

/// The broker leading the group's `__consumer_offsets` partition (its coordinator), if the topic
/// exists.
pub fn coordinator_of(broker: &Broker, group: &str) -> Option<i32> {
    let image = broker.metadata.image();
    let topic = image.topic(OFFSETS_TOPIC)?;
    let partition = records::partition_for_group(group, topic.partitions.len() as i32);
    topic.partitions.get(&partition).map(|p| p.leader)
}

/// The `__consumer_offsets` partition that holds a group's records.
pub fn partition_of(broker: &Broker, group: &str) -> i32 {
    let partitions = broker
        .metadata
        .image()
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
        .unwrap_or(broker.config.offsets_topic_num_partitions);
    records::partition_for_group(group, partitions)
}

/// Where an append to `__consumer_offsets` ended, to wait for its replication.
pub struct Appended {
    pub partition: Arc<Partition>,
    pub end_offset: i64,
    pub leader_epoch: i32,
}

impl Appended {
    /// Waits until the appended records are flushed as far as the log's flush settings ask
    /// (Kafka flushes inside the append) and the ISR has them (Kafka writes offsets with
    /// acks=all), with Kafka's mapping of produce errors to coordinator errors.
    pub async fn replicated(&self, deadline: tokio::time::Instant) -> Result<(), ResponseError> {
        if self.partition.flush_if_requested(Some(self.end_offset)).await.is_err() {
            // Kafka's GroupMetadataManager answers a storage error with NOT_COORDINATOR.
            return Err(ResponseError::NotCoordinator);
        }
        match self.partition.wait_for_high_watermark(self.end_offset, self.leader_epoch, deadline).await {
            Ok(_) => Ok(()),
            Err(ResponseError::NotLeaderOrFollower) => Err(ResponseError::NotCoordinator),
            Err(e) => Err(e),
        }
    }
}

/// Appends key/value records (a `None` value is a tombstone) to the group's partition, durably as
/// far as the log's flush settings go. All of them land in one batch, so they stand or fall together.
pub fn append(
    broker: &Broker,
    group: &str,
    entries: &[(Vec<u8>, Option<Vec<u8>>)],
    now_ms: i64,
) -> Result<Option<Appended>, KafkaError> {
    if entries.is_empty() {
        return Ok(None);
    }
    // The topic is created by FindCoordinator, which every client sends before committing.
    let partition = partition_of(broker, group);
    let log = broker.replicas.get(OFFSETS_TOPIC, partition).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let recs: Vec<_> = entries.iter().map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
    let batch = BatchSpec { records: &recs, timestamps: &[now_ms], ..Default::default() }.encode();
    let (outcome, commands) = log.append(&batch, now_ms, None)?;
    crate::replica::isr::apply(broker, &log, commands);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        // flush.messages on __consumer_offsets, off the async workers, for the writes nobody
        // waits on (a commit waits for its own flush in `Appended::replicated`).
        let part = Arc::clone(&log);
        runtime.spawn(async move {
            if let Err(e) = part.flush_if_requested(None).await {
                tracing::warn!(partition = part.index, "flushing __consumer_offsets failed: {e}");
            }
        });
    }
    let leader_epoch = log.leader_epoch();
    Ok(Some(Appended { partition: log, end_offset: outcome.info().last_offset + 1, leader_epoch }))
}

/// Commits a load found above a partition's high watermark: the log may still lose them (this
/// leader fails before its followers have them), so they are staged, and visible once the high
/// watermark passes `end_offset` under `leader_epoch`, as Kafka's coordinator runtime exposes
/// its state only up to the last committed offset.
pub struct HeldOffsets {
    pub partition: Arc<Partition>,
    pub end_offset: i64,
    pub leader_epoch: i32,
    /// (group, topic, partition, value, record offset), in log order.
    pub values: Vec<(String, String, i32, records::CommittedOffset, i64)>,
}

/// Waits, per partition, until the high watermark passes what a load held back, then makes it
/// visible (on a task: loads run on blocking threads).
pub(super) fn release_when_replicated(broker: &Arc<Broker>, held: Vec<HeldOffsets>) {
    for h in held {
        let b = Arc::clone(broker);
        tokio::runtime::Handle::current().spawn(async move {
            let replicated = loop {
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
                match h.partition.wait_for_high_watermark(h.end_offset, h.leader_epoch, deadline).await {
                    Ok(_) => break true,
                    Err(ResponseError::RequestTimedOut) => continue,
                    Err(_) => break false,
                }
            };
            b.groups.loaded_offsets_replicated(h, replicated);
        });
    }
}

/// What a load rebuilt.
pub type Loaded = (OffsetStore, HashMap<String, StoredGroup>, Vec<HeldOffsets>);

/// Replays the `__consumer_offsets` partitions `partitions` this broker hosts (all when `None`):
/// the latest committed offsets and the latest metadata of each group. Records that cannot be
/// decoded are skipped with a warning.
pub fn load(broker: &Broker, partitions: Option<&[i32]>) -> Loaded {
    let mut offsets = OffsetStore::default();
    let mut groups: HashMap<String, StoredGroup> = HashMap::new();
    let mut held_all = Vec::new();
    let Some(topic) = broker.metadata.image().topic(OFFSETS_TOPIC).cloned() else {
        return (offsets, groups, held_all);
    };
    let mut records_read = 0u64;
    let count = topic.partitions.len() as i32;
    let wanted: Vec<i32> = match partitions {
        Some(ps) => ps.to_vec(),
        None => topic.partitions.keys().copied().collect(),
    };
    for p in &wanted {
        let Some(partition) = broker.replicas.get(OFFSETS_TOPIC, *p) else { continue };
        // As Kafka's group loading: up to the log end, not only what is replicated yet.
        let Ok((mut position, end)) = partition.log_bounds() else { continue };
        let high_watermark = partition.high_watermark();
        let mut held = HeldOffsets {
            partition: Arc::clone(&partition),
            end_offset: end,
            leader_epoch: partition.leader_epoch(),
            values: Vec::new(),
        };
        while position < end {
            let read = match partition.read(position, 1 << 20, crate::replica::ReadLimit::LogEnd) {
                Ok(r) if !r.records.is_empty() => r,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(partition = p, "reading {OFFSETS_TOPIC} failed at offset {position}: {e}");
                    break;
                }
            };
            for item in BatchIter::new(&read.records) {
                let Ok((header, bytes)) = item else { break };
                position = position.max(header.next_offset());
                if header.compression() != Compression::None {
                    tracing::warn!(
                        partition = p,
                        offset = header.base_offset,
                        "skipping compressed batch in {OFFSETS_TOPIC}"
                    );
                    continue;
                }
                for record in RecordIter::new(&bytes[BATCH_HEADER_LEN..]) {
                    let Ok(record) = record else { break };
                    let Some(key) = record.key else { continue };
                    records_read += 1;
                    let decoded = records::decode(key, record.value);
                    // A group lives in one partition; a record elsewhere is from before the
                    // mapping was Kafka's (Strom masked the sign bit of negative hashes): taking
                    // it could bring back old offsets or a deleted group.
                    if let Ok(OffsetsRecord::Offset { group, .. } | OffsetsRecord::Group { group, .. }) = &decoded {
                        if records::partition_for_group(group, count) != *p {
                            continue;
                        }
                    }
                    match decoded {
                        Ok(OffsetsRecord::Offset { group, topic, partition, value: Some(value) })
                            if header.last_offset() >= high_watermark =>
                        {
                            offsets.stage(&group, &topic, partition, header.last_offset());
                            held.values.push((group, topic, partition, value, header.last_offset()));
                        }
                        Ok(OffsetsRecord::Offset { group, topic, partition, value }) => {
                            offsets.apply(&group, &topic, partition, value, header.last_offset())
                        }
                        Ok(OffsetsRecord::Group { group, value: Some(g) }) => {
                            groups.insert(group, g);
                        }
                        Ok(OffsetsRecord::Group { group, value: None }) => {
                            groups.remove(&group);
                        }
                        Err(e) => tracing::warn!(partition = p, "skipping undecodable {OFFSETS_TOPIC} record: {e}"),
                    }
                }
            }
        }
        if !held.values.is_empty() {
            held_all.push(held);
        }
    }
    tracing::info!(
        partitions = ?wanted, records = records_read, groups = groups.len(),
        held = held_all.iter().map(|h| h.values.len()).sum::<usize>(), "loaded consumer groups and offsets"
    );
    (offsets, groups, held_all)
}
