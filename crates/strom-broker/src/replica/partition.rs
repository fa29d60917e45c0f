//! One hosted partition: its log behind its own lock (appends to one partition are serialised,
//! different partitions never contend) and its leadership state.

use bytes::Bytes;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use strom_storage::{AppendOutcome, FileRegion, LoadSummary, Log, LogConfig, StorageError};
use uuid::Uuid;

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    leader_epoch: AtomicI32,
    log: Mutex<Option<Log>>,
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
    pub log_start_offset: i64,
}

impl Partition {
    pub fn new(topic: String, topic_id: Uuid, index: i32, leader_epoch: i32, log: Log) -> Partition {
        Partition { topic, topic_id, index, leader_epoch: AtomicI32::new(leader_epoch), log: Mutex::new(Some(log)) }
    }

    fn log(&self) -> Result<MutexGuard<'_, Option<Log>>, StorageError> {
        Ok(self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut guard = self.log()?;
        match guard.as_mut() {
            Some(log) => f(log),
            None => Err(StorageError::Io {
                context: format!("partition {}-{} is closed", self.topic, self.index),
                source: std::io::Error::other("partition closed"),
            }),
        }
    }

    /// What opening the log found (clean or recovered, bytes scanned and truncated).
    pub fn load_summary(&self) -> Option<LoadSummary> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.load_summary().clone())
    }

    /// A new leadership of this partition (a later leader epoch from the metadata).
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.fetch_max(epoch, Ordering::AcqRel);
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn append(&self, batches: &[u8], now_ms: i64) -> Result<AppendOutcome, StorageError> {
        let epoch = self.leader_epoch();
        self.with_log(|log| log.append(batches, epoch, now_ms))
    }

    /// Reads committed data (below the high watermark) from `offset`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<PartitionRead, StorageError> {
        self.with_log(|log| {
            let hw = log.log_end_offset();
            let out = log.read(offset, max_bytes, hw)?;
            Ok(PartitionRead { records: out.records, high_watermark: hw, log_start_offset: log.log_start_offset() })
        })
    }

    /// Where the committed data (below the high watermark) from `offset` lies; reads only
    /// batch headers under the lock.
    pub fn read_region(&self, offset: i64, max_bytes: usize) -> Result<PartitionRegion, StorageError> {
        self.with_log(|log| {
            let hw = log.log_end_offset();
            let out = log.read_region(offset, max_bytes, hw)?;
            Ok(PartitionRegion { regions: out.regions, high_watermark: hw, log_start_offset: log.log_start_offset() })
        })
    }

    /// (log start offset, high watermark); the same as the log end offset on a single node.
    pub fn offsets(&self) -> Result<(i64, i64), StorageError> {
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
        self.with_log(|log| {
            log.set_config(config);
            Ok(())
        })
    }

    /// Periodic housekeeping: time-based roll, time-based flush, retention and producer expiry
    /// (both every `log.retention.check.interval.ms`).
    pub fn housekeeping(&self, now_ms: i64, retention_due: bool) -> Result<(), StorageError> {
        self.with_log(|log| {
            log.roll_if_due(now_ms)?;
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
        let Some(pending) = self.with_log(|log| Ok(log.take_flush_after_roll()))? else {
            return Ok(());
        };
        pending.sync()?;
        self.with_log(|log| {
            log.mark_flushed(&pending);
            Ok(())
        })
    }

    /// (recovery point, log start offset) for the checkpoint files.
    pub fn checkpoint_offsets(&self) -> Option<(i64, i64)> {
        let guard = self.log().ok()?;
        guard.as_ref().map(|l| (l.recovery_point(), l.log_start_offset()))
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        self.with_log(|log| log.flush())
    }

    /// Closes the log cleanly (flush, producer-state snapshot); later calls fail as closed.
    pub fn close(&self) -> Result<(), StorageError> {
        match self.log()?.take() {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }

    /// Removes the partition's data (topic deleted).
    pub fn delete(&self) -> Result<(), StorageError> {
        match self.log()?.take() {
            Some(log) => log.delete(),
            None => Ok(()),
        }
    }
}
