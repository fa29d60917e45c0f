//! What the log's operations report back to the broker.

use crate::error::Result;
use bytes::Bytes;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Offsets and timestamps of an append, as the Produce response needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (the produce response's `base_offset`).
    pub base_offset: i64,
    /// Offset of the last record appended; the leader's LEO is `last_offset + 1`.
    pub last_offset: i64,
    /// Largest batch max timestamp appended.
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The broker time stamped on LogAppendTime topics, -1 for CreateTime (always -1 for now).
    pub log_append_time_ms: i64,
    /// Log start offset after the append (the produce response reports it).
    pub log_start_offset: i64,
    /// Records appended (0 for a duplicate), for metrics and flush accounting.
    pub record_count: u64,
}

/// Result of [`crate::Log::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The batches were written.
    Appended(AppendInfo),
    /// An idempotent producer retried a batch that is already in the log; nothing was written and
    /// the info describes the original batch, so the producer gets the offsets it missed.
    Duplicate(AppendInfo),
}

impl AppendOutcome {
    /// The info, whichever way the append went.
    pub fn info(&self) -> &AppendInfo {
        match self {
            AppendOutcome::Appended(info) | AppendOutcome::Duplicate(info) => info,
        }
    }
}

/// A byte range of a segment file, read after the log's lock is released: by `sendfile` straight
/// into a socket, or into memory with [`FileRegion::read`]. The file stays readable even if
/// retention deletes the segment meanwhile (the open handle keeps it); a truncation meanwhile
/// makes the read come up short, which is reported as an error.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    pub path: Arc<Path>,
}

impl FileRegion {
    /// The region's bytes, read into memory.
    pub fn read(&self) -> Result<Bytes> {
        let mut buf = vec![0u8; self.len];
        self.read_into(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Reads the region into `buf`, which must be `len` bytes long.
    pub fn read_into(&self, buf: &mut [u8]) -> Result<()> {
        crate::segment::read_exact_at(&self.file, buf, self.position, &self.path)
    }
}

/// Result of [`crate::Log::read_region`]: where the batches are, not yet read.
#[derive(Debug, Clone)]
pub struct RegionRead {
    /// Complete batches, a region per segment in offset order; empty when there is nothing to read.
    pub regions: Vec<FileRegion>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// The offset after the last batch in the regions (the read's offset when there are none).
    pub next_offset: i64,
}

impl RegionRead {
    /// Bytes in all regions.
    pub fn len(&self) -> usize {
        self.regions.iter().map(|r| r.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// Result of [`crate::Log::read`]: whole stored batches, byte for byte as they are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Zero or more complete batches; the first holds the requested offset (and may start before it).
    pub records: Bytes,
    /// For the Fetch response's `log_start_offset`.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// Result of [`crate::Log::apply_retention`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments removed.
    pub deleted_segments: usize,
    /// Bytes of log removed.
    pub deleted_bytes: u64,
    /// The log start offset afterwards (to be checkpointed).
    pub log_start_offset: i64,
}

/// What opening a log found and did; logged by the broker and checked by tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Whether the previous shutdown was clean.
    pub clean_shutdown: bool,
    /// Segments found.
    pub segments: usize,
    /// Segments whose batches were validated and indexes rebuilt.
    pub segments_recovered: usize,
    /// Bytes of log validated during recovery.
    pub bytes_scanned: u64,
    /// Bytes cut off torn or corrupt tails.
    pub bytes_truncated: u64,
    /// Segments removed because they followed a corrupt one.
    pub segments_deleted: usize,
    /// Offset of the producer snapshot the state was loaded from, if any.
    pub producer_snapshot_offset: Option<i64>,
    /// Batches replayed into the producer state after the snapshot.
    pub producer_batches_replayed: u64,
}
