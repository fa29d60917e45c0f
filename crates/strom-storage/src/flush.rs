//! Flushing a rolled segment in the background, as Kafka does on every roll (UnifiedLog.roll
//! schedules `flushUptoOffsetExclusive(newSegment.baseOffset)`): the segments before the new
//! active one are fsynced without holding the log, then the recovery point moves to the new
//! segment's base offset. So after a crash only the segments written since the last roll (and
//! the last checkpoint) are scanned, and the kernel writes dirty pages back a segment at a time
//! instead of in one burst when its dirty limit is reached.
//!
//! The caller takes the work under the log's lock ([`Log::take_flush_after_roll`]), runs
//! [`PendingFlush::sync`] without it, and reports back with [`Log::mark_flushed`].

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, Result};
use crate::log::Log;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// Files to fsync so that everything below `up_to` is durable.
#[derive(Debug)]
pub struct PendingFlush {
    pub up_to: i64,
    /// The log's truncation count when this was taken.
    truncations: u64,
    files: Vec<(Arc<File>, PathBuf)>,
    /// The log directory, when files were created in it since the last full flush.
    dir: Option<PathBuf>,
}

impl PendingFlush {
    /// fsyncs the segment files (log and indexes) and, if needed, the directory.
    pub fn sync(&self) -> Result<()> {
        for (file, path) in &self.files {
            file.sync_data().ctx(|| format!("fsync {}", path.display()))?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Log {
    /// After a roll: the files of the segments from the recovery point up to the new active
    /// segment, to be fsynced by the caller without the log's lock. `None` if there was no roll
    /// or everything below it is already flushed.
    pub fn take_flush_after_roll(&mut self) -> Option<PendingFlush> {
        let up_to = self.flush_after_roll.take()?;
        if up_to <= self.recovery_point {
            return None;
        }
        let from = self.segments.range(..=self.recovery_point).next_back().map_or(i64::MIN, |(b, _)| *b);
        let files = self.segments.range(from..up_to).flat_map(|(_, s)| s.file_handles()).collect();
        Some(PendingFlush {
            up_to,
            truncations: self.truncations,
            files,
            dir: self.dir_dirty.then(|| self.dir.clone()),
        })
    }

    /// `flushed` was synced: everything below its `up_to` is on disk, so the recovery point moves
    /// there — never backwards, and not at all if the log was truncated since it was taken.
    pub fn mark_flushed(&mut self, flushed: &PendingFlush) {
        if flushed.truncations == self.truncations
            && flushed.up_to > self.recovery_point
            && flushed.up_to <= self.log_end_offset
        {
            self.recovery_point = flushed.up_to;
        }
    }
}
