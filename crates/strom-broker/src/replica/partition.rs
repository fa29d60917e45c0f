//! One hosted partition: its log behind its own lock (appends to one partition are serialised,
//! different partitions never contend) and its replica state (leader or follower, ISR, high
//! watermark: the pure [`ReplicaState`]) behind another. Locks are always taken log first, then
//! replica state, never the other way.
//!
//! The high watermark, leader epoch and leadership are also published on a watch channel, which
//! `acks=all` produces wait on (the delayed-produce purgatory, one per partition).
//! The follower's side (appending what the leader sent, truncating on divergence) is in
//! `follower.rs`.

use super::state::{IsrAnswer, ReplicaCommand, ReplicaError, ReplicaState, RoleChange};
use crate::errors::KafkaError;
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use strom_metadata::PartitionImage;
use strom_protocol::ResponseError;
use strom_storage::transactions::{AbortedTxn, EndTxnMarker};
use strom_storage::{
    AppendInfo, AppendOutcome, CleanOutcome, CleanPlan, CleanSettings, CleanedLog, DirHealth, FileRegion, LoadSummary,
    Log, LogConfig, StorageError,
};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub(super) log: Mutex<Option<Log>>,
    /// The log directory the partition lives in: an I/O error of this partition takes the whole
    /// directory offline, and nothing in an offline directory is touched again.
    pub(super) dir: Arc<DirHealth>,
    /// Held by every flush of this log, on blocking threads only (see `partition_flush.rs`).
    pub(super) flush_lock: Mutex<()>,
    pub(super) replica: Mutex<ReplicaState>,
    pub(super) progress: watch::Sender<Progress>,
}

/// What waiting produces need to know: how far the partition is committed, and under which
/// leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub leading: bool,
}

/// How far a read may go: consumers see only committed data (`read_committed` ones only what
/// no open transaction holds back), followers everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    HighWatermark,
    LastStable,
    LogEnd,
}

/// (end of the readable range, last stable offset) of `log` for `limit` at high watermark `hw`.
fn read_end(log: &mut Log, limit: ReadLimit, hw: i64) -> (i64, i64) {
    log.on_high_watermark(hw);
    let lso = log.last_stable_offset(hw);
    let end = match limit {
        ReadLimit::HighWatermark => hw,
        ReadLimit::LastStable => lso,
        ReadLimit::LogEnd => log.log_end_offset(),
    };
    (end, lso)
}

/// What a fetch read from one partition.
pub struct PartitionRead {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// What a fetch will send from one partition: regions of segment files (one per segment), read
/// after the log's lock is released (by sendfile into the socket).
pub struct PartitionRegion {
    pub regions: Vec<FileRegion>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For a [`ReadLimit::LastStable`] read: the aborted transactions its range overlaps.
    pub aborted: Vec<AbortedTxn>,
}

impl From<ReplicaError> for KafkaError {
    fn from(e: ReplicaError) -> Self {
        match e {
            ReplicaError::NotLeader | ReplicaError::UnknownReplica => ResponseError::NotLeaderOrFollower.into(),
            ReplicaError::OffsetOutOfRange => ResponseError::OffsetOutOfRange.into(),
            ReplicaError::NotEnoughReplicas => KafkaError::new(
                ResponseError::NotEnoughReplicas,
                "The size of the current ISR is below min.insync.replicas",
            ),
        }
    }
}

impl Partition {
    /// A partition whose log was just opened, with the high watermark checkpointed for it; it
    /// neither leads nor follows until the metadata says which ([`Partition::apply_metadata`]).
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        (log, dir): (Option<Log>, Arc<DirHealth>),
        node_id: i32,
        lag_time_max_ms: i64,
        checkpointed_hw: i64,
    ) -> Partition {
        let (start, leo) = log.as_ref().map_or((0, 0), |l| (l.log_start_offset(), l.log_end_offset()));
        let hw = checkpointed_hw.clamp(start, leo);
        let state = ReplicaState::new(node_id, lag_time_max_ms, leo, hw);
        let progress = watch::channel(progress_of(&state)).0;
        Partition {
            topic,
            topic_id,
            index,
            log: Mutex::new(log),
            dir,
            flush_lock: Mutex::new(()),
            replica: Mutex::new(state),
            progress,
        }
    }

    /// The log directory the partition lives in.
    pub fn log_dir(&self) -> &Arc<DirHealth> {
        &self.dir
    }

    /// Bytes of the partition's segments.
    pub fn size_bytes(&self) -> Result<u64, StorageError> {
        self.with_log(|log| Ok(log.size_bytes()))
    }

    /// Whether the partition's log directory failed (every operation answers
    /// KAFKA_STORAGE_ERROR).
    pub fn is_offline(&self) -> bool {
        self.dir.is_offline()
    }

    /// Takes the partition's directory offline if `result` (of an operation under the log's
    /// lock) is a directory failure.
    fn check_locked<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result {
            if strom_storage::is_dir_failure(e) {
                self.dir.fail(e);
            }
        }
        result
    }

    /// The same for an operation run without the log's lock (an fsync of files taken under it):
    /// if the log was closed or deleted meanwhile (topic deleted), its files going missing says
    /// nothing about the directory.
    pub(super) fn check<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() && self.log().is_none() {
            return result;
        }
        self.check_locked(result)
    }

    /// Drops the log of a partition whose directory failed (its files are not touched: no flush,
    /// no snapshot); the replica state stays, so the partition answers with storage errors.
    pub fn drop_offline_log(&self) {
        drop(self.log().take());
    }

    fn log(&self) -> MutexGuard<'_, Option<Log>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn state(&self) -> MutexGuard<'_, ReplicaState> {
        self.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> Result<T, StorageError>) -> Result<T, StorageError> {
        if self.dir.is_offline() {
            return Err(self.dir.offline_error());
        }
        let mut guard = self.log();
        match guard.as_mut() {
            Some(log) => self.check_locked(f(log)),
            None => Err(StorageError::Io {
                context: format!("partition {}-{} is closed", self.topic, self.index),
                source: std::io::Error::other("partition closed"),
            }),
        }
    }

    /// Publishes the state to waiting produces; call with the state lock held.
    pub(super) fn publish(&self, state: &ReplicaState) {
        let next = progress_of(state);
        self.progress.send_if_modified(|p| {
            let changed = *p != next;
            *p = next;
            changed
        });
    }

    /// What opening the log found (clean or recovered, bytes scanned and truncated).
    pub fn load_summary(&self) -> Option<LoadSummary> {
        self.log().as_ref().map(|l| l.load_summary().clone())
    }

    /// Brings the replica state in line with the partition's metadata: leader or follower of a
    /// new leader epoch, or a committed ISR change. Returns the commands the change causes and
    /// whether this broker started or stopped leading.
    pub fn apply_metadata(&self, p: &PartitionImage, now_ms: i64) -> (Vec<ReplicaCommand>, Option<RoleChange>) {
        let mut state = self.state();
        let answer = state.apply_partition(p, now_ms);
        self.publish(&state);
        answer
    }

    /// Whether this broker leads the partition, as its replica state says.
    pub fn is_leader(&self) -> bool {
        self.state().is_leader()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state().leader_epoch
    }

    pub fn high_watermark(&self) -> i64 {
        self.state().high_watermark
    }

    /// Leader: followers a consumer at `fetch_offset` may read from (see `ReplicaState`).
    pub fn read_replica_candidates(&self, fetch_offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        self.state().read_replica_candidates(fetch_offset, now_ms)
    }

    /// The in-sync replicas as this broker knows them.
    pub fn isr(&self) -> Vec<i32> {
        self.state().isr.clone()
    }

    /// Appends a producer's batches as the leader. With `min_insync_replicas` (acks=all) the
    /// append is refused with NOT_ENOUGH_REPLICAS when the ISR is smaller. Returns the outcome
    /// and the commands the longer log causes (a single-replica partition commits at once).
    pub fn append(
        &self,
        batches: &[u8],
        now_ms: i64,
        min_insync_replicas: Option<usize>,
    ) -> Result<(AppendOutcome, Vec<ReplicaCommand>), KafkaError> {
        self.append_with(min_insync_replicas, |log, epoch| log.append(batches, epoch, now_ms))
    }

    /// Appends a transaction marker (WriteTxnMarkers), with the checks of [`Partition::append`]
    /// and the log's marker checks (producer epoch, coordinator epoch).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        now_ms: i64,
        min_insync_replicas: usize,
    ) -> Result<(AppendInfo, Vec<ReplicaCommand>), KafkaError> {
        self.append_with(Some(min_insync_replicas), |log, epoch| {
            log.append_marker(producer_id, producer_epoch, marker, epoch, now_ms).map(|(info, _)| info)
        })
    }

    /// A leader's append under the log's lock: refused unless this replica leads (and, with
    /// `min_insync_replicas`, the ISR is large enough); `append` gets the log and the leader
    /// epoch; the replica state then learns the new log end.
    fn append_with<T>(
        &self,
        min_insync_replicas: Option<usize>,
        append: impl FnOnce(&mut Log, i32) -> Result<T, StorageError>,
    ) -> Result<(T, Vec<ReplicaCommand>), KafkaError> {
        if self.dir.is_offline() {
            return Err(self.dir.offline_error().into());
        }
        let mut guard = self.log();
        let log = guard.as_mut().ok_or(ResponseError::NotLeaderOrFollower)?;
        let (epoch, hw) = {
            let state = self.state();
            match min_insync_replicas {
                Some(min) => state.check_min_isr(min)?,
                None if !state.is_leader() => return Err(ResponseError::NotLeaderOrFollower.into()),
                None => {}
            }
            (state.leader_epoch, state.high_watermark)
        };
        // Ended transactions below the HW are forgotten here as well as at reads, so that a
        // partition nobody reads does not keep them.
        log.on_high_watermark(hw);
        let out = self.check_locked(append(log, epoch))?;
        let mut state = self.state();
        let commands = state.local_append(log.log_end_offset());
        self.publish(&state);
        Ok((out, commands))
    }

    /// Waits until the high watermark reaches `offset` (the end of an appended batch) under the
    /// leadership of `leader_epoch`; REQUEST_TIMED_OUT at `deadline`, NOT_LEADER_OR_FOLLOWER if
    /// the leadership moved meanwhile. Returns the ISR size when it did.
    pub async fn wait_for_high_watermark(
        &self,
        offset: i64,
        leader_epoch: i32,
        deadline: Instant,
    ) -> Result<usize, ResponseError> {
        let mut rx = self.progress.subscribe();
        loop {
            let p = *rx.borrow_and_update();
            if !p.leading || p.leader_epoch != leader_epoch {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            if p.high_watermark >= offset {
                return Ok(self.state().isr.len());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ResponseError::NotLeaderOrFollower),
                Err(_) => return Err(ResponseError::RequestTimedOut),
            }
        }
    }

    /// Leader: follower `replica` fetches from `fetch_offset`. Returns the commands its progress
    /// causes (a higher HW, an ISR expansion).
    pub fn follower_fetched(
        &self,
        replica: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<Vec<ReplicaCommand>, ReplicaError> {
        let mut state = self.state();
        let commands = state.follower_fetch(replica, fetch_offset, now_ms)?;
        state.follower_log_start(replica, log_start_offset);
        self.publish(&state);
        Ok(commands)
    }

    /// Leader: a follower whose last fetched epoch ends before its fetch offset in this log (or
    /// is not in it) has diverged: (the largest epoch ≤ its epoch here, where that epoch ends).
    /// `Err` when the epoch cannot be placed at all (OFFSET_OUT_OF_RANGE, as Kafka answers).
    pub fn diverging_epoch(
        &self,
        last_fetched_epoch: i32,
        fetch_offset: i64,
    ) -> Result<Option<(i32, i64)>, KafkaError> {
        let answer = self.with_log(|log| {
            Ok(super::divergence::diverging_epoch(last_fetched_epoch, fetch_offset, |e| log.end_offset_for_epoch(e)))
        })?;
        answer.map_err(|_| {
            KafkaError::new(
                ResponseError::OffsetOutOfRange,
                format!("Could not determine the end offset of the last fetched epoch {last_fetched_epoch}"),
            )
        })
    }

    /// Leader: time passed; lagging members leave the ISR.
    pub fn tick(&self, now_ms: i64) -> Vec<ReplicaCommand> {
        if self.is_offline() {
            // Its replica state is frozen: a leader whose directory failed must not shrink the
            // ISR to itself before the controller moves the leadership.
            return Vec::new();
        }
        self.state().tick(now_ms)
    }

    /// The controller's answer to this leader's ISR proposal; true: send it again.
    pub fn isr_answered(&self, isr: &[i32], partition_epoch: i32, answer: IsrAnswer) -> bool {
        self.state().isr_answered(isr, partition_epoch, answer)
    }

    /// Reads from `offset`, up to the high watermark or the log end.
    pub fn read(&self, offset: i64, max_bytes: usize, limit: ReadLimit) -> Result<PartitionRead, StorageError> {
        self.with_log(|log| {
            let hw = self.state().high_watermark;
            let (end, _) = read_end(log, limit, hw);
            let out = log.read(offset, max_bytes, end)?;
            Ok(PartitionRead { records: out.records, high_watermark: hw, log_start_offset: log.log_start_offset() })
        })
    }

    /// Where the data from `offset` lies (up to the high watermark or the log end); reads only
    /// batch headers under the lock.
    pub fn read_region(
        &self,
        offset: i64,
        max_bytes: usize,
        limit: ReadLimit,
    ) -> Result<PartitionRegion, StorageError> {
        self.with_log(|log| {
            let hw = self.state().high_watermark;
            let (end, lso) = read_end(log, limit, hw);
            let out = log.read_region(offset, max_bytes, end)?;
            // Those the returned batches overlap, as Kafka bounds them by the end of the read.
            let aborted = if limit == ReadLimit::LastStable && !out.regions.is_empty() {
                log.aborted_transactions(offset, out.next_offset)
            } else {
                Vec::new()
            };
            Ok(PartitionRegion {
                regions: out.regions,
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: log.log_start_offset(),
                aborted,
            })
        })
    }

    /// The log cleaner's plan for this replica, below its high watermark (see
    /// `strom_storage::Log::plan_clean`); taken under the log's lock.
    pub fn plan_clean(
        &self,
        first_dirty: i64,
        now_ms: i64,
        settings: &CleanSettings,
    ) -> Result<Option<CleanPlan>, StorageError> {
        let hw = self.high_watermark();
        self.with_log(|log| Ok(log.plan_clean(first_dirty, hw, now_ms, settings)))
    }

    /// The log's truncation count (see `strom_storage::Log::truncations`).
    pub fn log_truncations(&self) -> Result<u64, StorageError> {
        self.with_log(|log| Ok(log.truncations()))
    }

    /// The dirty share of the cleanable range, and the timestamp of its first dirty batch.
    pub fn dirtiness(&self, first_dirty: i64) -> Result<(f64, Option<i64>), StorageError> {
        let hw = self.high_watermark();
        self.with_log(|log| Ok((log.dirty_ratio(first_dirty, hw), log.first_dirty_timestamp(first_dirty)?)))
    }

    /// Installs a built clean, unless the log changed since it was planned.
    pub fn install_clean(&self, cleaned: CleanedLog) -> Result<CleanOutcome, StorageError> {
        self.with_log(|log| log.install_clean(cleaned))
    }

    /// (log start offset, high watermark).
    pub fn offsets(&self) -> Result<(i64, i64), StorageError> {
        self.with_log(|log| Ok((log.log_start_offset(), self.state().high_watermark)))
    }

    /// (log start offset, high watermark, last stable offset).
    pub fn stable_offsets(&self) -> Result<(i64, i64, i64), StorageError> {
        self.with_log(|log| {
            let hw = self.state().high_watermark;
            let (_, lso) = read_end(log, ReadLimit::HighWatermark, hw);
            Ok((log.log_start_offset(), hw, lso))
        })
    }

    /// (log start offset, log end offset).
    pub fn log_bounds(&self) -> Result<(i64, i64), StorageError> {
        self.with_log(|log| Ok((log.log_start_offset(), log.log_end_offset())))
    }

    /// OffsetForLeaderEpoch: (largest epoch ≤ `epoch` in the log, where the next one starts).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), StorageError> {
        self.with_log(|log| Ok(log.end_offset_for_epoch(epoch)))
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.with_log(|log| log.offset_for_timestamp(ts))
    }

    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        self.with_log(|log| Ok(log.max_timestamp()))
    }

    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.with_log(|log| log.delete_records_before(offset))
    }

    pub fn set_config(&self, config: LogConfig) -> Result<(), StorageError> {
        if self.is_offline() {
            return Ok(());
        }
        self.with_log(|log| {
            log.set_config(config);
            Ok(())
        })
    }

    /// Periodic housekeeping: time-based roll, time-based flush, retention and producer expiry
    /// (both every `log.retention.check.interval.ms`).
    pub fn housekeeping(&self, now_ms: i64, retention_due: bool) -> Result<(), StorageError> {
        let _serial = self.serialise_flushes();
        self.with_log(|log| {
            log.roll_if_due(now_ms)?;
            log.flush_if_requested(now_ms)?;
            log.maybe_flush_by_time(now_ms)?;
            if retention_due {
                log.apply_retention(now_ms)?;
                log.expire_producers(now_ms);
            }
            Ok(())
        })
    }

    /// Kafka's flush after a roll: fsyncs the rolled segments without holding the log (appends and
    /// fetches go on), then moves the recovery point past them.
    pub fn flush_rolled_segments(&self) -> Result<(), StorageError> {
        let _serial = self.serialise_flushes();
        let Some(pending) = self.with_log(|log| Ok(log.take_flush_after_roll()))? else {
            return Ok(());
        };
        self.check(pending.sync())?;
        self.with_log(|log| {
            log.mark_flushed(&pending);
            Ok(())
        })
    }

    /// (recovery point, log start offset, high watermark) for the checkpoint files.
    pub fn checkpoint_offsets(&self) -> Option<(i64, i64, i64)> {
        let guard = self.log();
        let hw = self.state().high_watermark;
        guard.as_ref().map(|l| (l.recovery_point(), l.log_start_offset(), hw))
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        let _serial = self.serialise_flushes();
        self.with_log(|log| log.flush())
    }

    /// Closes the log cleanly (flush, producer-state snapshot); later calls fail as closed.
    pub fn close(&self) -> Result<(), StorageError> {
        let _serial = self.serialise_flushes();
        match self.log().take() {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }

    /// Removes the partition's data (topic deleted).
    pub fn delete(&self) -> Result<(), StorageError> {
        match self.log().take() {
            Some(log) => log.delete(),
            None => Ok(()),
        }
    }
}

fn progress_of(state: &ReplicaState) -> Progress {
    Progress { high_watermark: state.high_watermark, leader_epoch: state.leader_epoch, leading: state.is_leader() }
}
