//! Strom's storage engine: one append-only, segmented log per partition, in Kafka's on-disk
//! layout, with sparse indexes, crash recovery, retention and idempotent-producer state.
//!
//! It owns everything under `log.dirs`; it knows nothing of the network or of replication (the
//! broker decides what the high watermark is and when to call retention or flush). All code is
//! synchronous: the broker runs the slow parts (open/recovery, flush, retention) on blocking
//! threads.
//!
//! ```text
//!  LogDirs (log.dirs: placement, directory health)
//!  └─ LogManager (one root: checkpoints, clean-shutdown marker)
//!     └─ Log "orders-0"  (log start, LEO, recovery point, producer state)
//!          ├─ Segment 00000000000000000000  .log  .index  .timeindex
//!          ├─ Segment 00000000000000004212  .log  .index  .timeindex
//!          ├─ 00000000000000004212.snapshot  (producer state at a roll / clean close)
//!          └─ Segment 00000000000000009034  ← active: appends go here
//!
//!  append(batches) → producer checks → offsets written into the batches → active segment
//!  read(offset)    → segment by base offset → sparse index → scan headers → whole batches
//! ```
//!
//! ```
//! use strom_storage::{Log, LogConfig, TopicPartition};
//! use strom_protocol::batch::testing::simple_batch;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut log = Log::open(dir.path().join("orders-0"), TopicPartition::new("orders", 0),
//!                         LogConfig::default(), 0, 0, true).unwrap();
//! let mut batch = simple_batch(3, 1_000);
//! let info = *log.append(&batch, 0, 1_000).unwrap().info();
//! assert_eq!((info.base_offset, info.last_offset), (0, 2));
//! let read = log.read(1, 1 << 20, log.log_end_offset()).unwrap();
//! assert_eq!(read.records.len(), batch.len());
//! ```

mod checkpoint;
mod cleaner;
mod config;
mod error;
mod flush;
mod follower;
mod fsync;
mod index;
mod leader_epoch;
mod log;
mod log_dirs;
mod lookup;
mod manager;
mod outcome;
mod producer_state;
mod recovery;
mod retention;
mod segment;
mod snapshot;
mod time_index;
pub mod transactions;
mod txn_index;

#[cfg(test)]
mod tests;

pub use checkpoint::{
    format_checkpoint, parse_checkpoint, read_checkpoint, write_checkpoint, HIGH_WATERMARK_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
pub use cleaner::{CleanOutcome, CleanPlan, CleanSettings, CleanStats, CleanedLog};
pub use config::{LogConfig, TopicPartition};
pub use error::{Result, StorageError};
pub use flush::PendingFlush;
pub use fsync::mark_async_worker;
pub use leader_epoch::{
    EpochEntry, LeaderEpochCache, LEADER_EPOCH_CHECKPOINT, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET,
};
pub use log::Log;
pub use log_dirs::{is_dir_failure, DirHealth, LogDirs};
pub use manager::{LogManager, CLEAN_SHUTDOWN_FILE};
pub use outcome::{AppendInfo, AppendOutcome, FileRegion, LoadSummary, ReadOutcome, RegionRead, RetentionOutcome};
pub use producer_state::{BatchMetadata, ProducerEntry, ProducerStateManager, MAX_CACHED_BATCHES};
pub use segment::{file_stem, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
pub use snapshot::{SNAPSHOTS_TO_KEEP, SNAPSHOT_SUFFIX};
pub use txn_index::TXN_INDEX_SUFFIX;
