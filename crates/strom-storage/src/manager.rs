//! The log directory root (`log.dirs`): which partitions it holds, their checkpoints, and whether
//! the last shutdown was clean.
//!
//! ```text
//!  <root>/recovery-point-offset-checkpoint   read at open, written periodically and at shutdown
//!  <root>/log-start-offset-checkpoint        idem
//!  <root>/replication-offset-checkpoint      high watermarks (the broker's replica state), idem
//!  <root>/.strom_cleanshutdown               written after all logs closed; removed at open
//!  <root>/<topic>-<partition>/               one Log each
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::{
    read_checkpoint, sync_dir, write_checkpoint, HIGH_WATERMARK_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
};
use crate::config::{LogConfig, TopicPartition};
use crate::error::{IoContext, Result, StorageError};
use crate::log::Log;

/// Marker file whose presence at start-up means every log was closed cleanly (Kafka's is
/// `.kafka_cleanshutdown`).
pub const CLEAN_SHUTDOWN_FILE: &str = ".strom_cleanshutdown";

/// Kafka's metadata partition: it lives in the log directory but is not a data log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Owns one log directory root. Logs themselves are owned by the broker's partition objects;
/// the manager only knows how to open them and where their checkpoints go.
#[derive(Debug)]
pub struct LogManager {
    root: PathBuf,
    clean_shutdown: bool,
    recovery_points: HashMap<TopicPartition, i64>,
    log_start_offsets: HashMap<TopicPartition, i64>,
    high_watermarks: HashMap<TopicPartition, i64>,
}

/// Reads a checkpoint, treating a corrupt one as empty: for recovery points that only means a
/// longer scan; for log start offsets, that retention recomputes them from the segments.
fn read_checkpoint_lenient(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    match read_checkpoint(path) {
        Err(StorageError::Corrupt { path, reason }) => {
            tracing::error!(path = %path.display(), %reason, "ignoring corrupt checkpoint file");
            Ok(HashMap::new())
        }
        other => other,
    }
}

impl LogManager {
    /// Opens the root (creating it if needed), reads the checkpoints, consumes the clean-shutdown
    /// marker and lists the partition directories present, sorted.
    pub fn open(root: PathBuf) -> Result<(LogManager, Vec<(TopicPartition, PathBuf)>)> {
        fs::create_dir_all(&root).ctx(|| format!("create log directory {}", root.display()))?;
        let recovery_points = read_checkpoint_lenient(&root.join(RECOVERY_POINT_CHECKPOINT))?;
        let log_start_offsets = read_checkpoint_lenient(&root.join(LOG_START_OFFSET_CHECKPOINT))?;
        let high_watermarks = read_checkpoint_lenient(&root.join(HIGH_WATERMARK_CHECKPOINT))?;
        let marker = root.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = marker.exists();
        if clean_shutdown {
            fs::remove_file(&marker).ctx(|| format!("remove {}", marker.display()))?;
            sync_dir(&root)?;
        }
        let mut partitions = Vec::new();
        for entry in fs::read_dir(&root).ctx(|| format!("list {}", root.display()))? {
            let entry = entry.ctx(|| format!("list {}", root.display()))?;
            if !entry.file_type().ctx(|| format!("stat {}", entry.path().display()))?.is_dir() {
                continue;
            }
            if let Some(tp) = entry.file_name().to_str().and_then(TopicPartition::from_dir_name) {
                // The metadata quorum keeps its own files in Kafka's `__cluster_metadata-0`.
                if tp.topic != METADATA_TOPIC {
                    partitions.push((tp, entry.path()));
                }
            }
        }
        partitions.sort();
        tracing::info!(root = %root.display(), clean_shutdown, partitions = partitions.len(), "opened log directory");
        Ok((LogManager { root, clean_shutdown, recovery_points, log_start_offsets, high_watermarks }, partitions))
    }

    /// Opens (creating if needed) the log of `tp`, with its checkpointed recovery point and log
    /// start offset. Runs recovery if the last shutdown was not clean: call it off the async
    /// workers.
    pub fn open_log(&self, tp: TopicPartition, config: LogConfig) -> Result<Log> {
        let dir = self.root.join(tp.to_string());
        // The checkpoints describe the directory found at start-up: a log created since (a
        // replica that came back after its data was deleted) starts from nothing.
        let existed = dir.is_dir();
        let recovery_point = self.recovery_points.get(&tp).copied().filter(|_| existed).unwrap_or(0);
        let log_start = self.log_start_offsets.get(&tp).copied().filter(|_| existed).unwrap_or(0);
        Log::open(dir, tp, config, recovery_point, log_start, self.clean_shutdown)
    }

    /// Writes both checkpoint files from (partition, recovery point, log start offset) triples.
    pub fn write_checkpoints(&self, logs: impl Iterator<Item = (TopicPartition, i64, i64)>) -> Result<()> {
        let mut recovery_points = HashMap::new();
        let mut log_starts = HashMap::new();
        for (tp, recovery_point, log_start) in logs {
            recovery_points.insert(tp.clone(), recovery_point);
            log_starts.insert(tp, log_start);
        }
        write_checkpoint(&self.root.join(RECOVERY_POINT_CHECKPOINT), &recovery_points)?;
        write_checkpoint(&self.root.join(LOG_START_OFFSET_CHECKPOINT), &log_starts)
    }

    /// The high watermark checkpointed for `tp` (0 when none was).
    pub fn checkpointed_high_watermark(&self, tp: &TopicPartition) -> i64 {
        self.high_watermarks.get(tp).copied().unwrap_or(0)
    }

    /// Writes the high watermark checkpoint from (partition, high watermark) pairs.
    pub fn write_high_watermarks(&self, entries: impl Iterator<Item = (TopicPartition, i64)>) -> Result<()> {
        write_checkpoint(&self.root.join(HIGH_WATERMARK_CHECKPOINT), &entries.collect())
    }

    /// Records that every log was closed cleanly; call last, after `Log::close` for all logs and
    /// `write_checkpoints`.
    pub fn mark_clean_shutdown(&self) -> Result<()> {
        let marker = self.root.join(CLEAN_SHUTDOWN_FILE);
        fs::write(&marker, b"").ctx(|| format!("create {}", marker.display()))?;
        let f = fs::File::open(&marker).ctx(|| format!("open {}", marker.display()))?;
        crate::fsync::sync_all(&f, &marker)?;
        sync_dir(&self.root)
    }

    /// Whether the previous shutdown was clean (logs then open without recovery).
    pub fn had_clean_shutdown(&self) -> bool {
        self.clean_shutdown
    }

    /// The log directory root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
