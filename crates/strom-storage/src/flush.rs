//! Flushing a rolled segment in the background, as Kafka does on every roll (UnifiedLog.roll
//! schedules `flushUptoOffsetExclusive(newSegment.baseOffset)`): the segments before the new
//! active one are fsynced without holding the log, then the recovery point moves to the new
//! segment's base offset. So after a crash only the segments written since the last roll (and
//! the last checkpoint) are scanned, and the kernel writes dirty pages back a segment at a time
//! instead of in one burst when its dirty limit is reached.
//!
//! The same shape serves `flush.messages` / `flush.ms` on the append path
//! ([`Log::take_requested_flush`]): an append only asks for the flush, and the broker runs it on a
//! blocking thread before it answers the produce, so that no fsync runs on an async worker.
//!
//! The caller takes the work under the log's lock, runs [`PendingFlush::sync`] without it, and
//! reports back with [`Log::mark_flushed`].

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
    /// Small files rewritten without an fsync on the append path (the leader-epoch checkpoint,
    /// producer snapshots at a roll), synced here before the data they describe.
    rewritten: Vec<PathBuf>,
    /// The log directory, when files were created or renamed in it since the last full flush.
    dir: Option<PathBuf>,
}

impl PendingFlush {
    /// fsyncs the segment files (log and indexes) and, if needed, the directory.
    pub fn sync(&self) -> Result<()> {
        sync_rewritten(&self.rewritten)?;
        for (file, path) in &self.files {
            crate::fsync::sync_data(file, path)?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// fsyncs small files rewritten without an fsync (see [`PendingFlush::rewritten`]).
pub(crate) fn sync_rewritten(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        match File::open(path) {
            Ok(file) => crate::fsync::sync_all(&file, path)?,
            // A snapshot removed meanwhile (only the latest few are kept) needs no sync.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(|| format!("open {}", path.display())),
        }
    }
    Ok(())
}

impl Log {
    /// The files of the segments from the one holding the recovery point up to the segment
    /// based at `below` (None: all), with the rewritten files and the directory if needed.
    fn pending_flush(&mut self, up_to: i64, below: Option<i64>) -> PendingFlush {
        let from = self.segments.range(..=self.recovery_point).next_back().map_or(i64::MIN, |(b, _)| *b);
        let files = match below {
            Some(below) => self.segments.range(from..below).flat_map(|(_, s)| s.file_handles()).collect(),
            None => self.segments.range(from..).flat_map(|(_, s)| s.file_handles()).collect(),
        };
        let rewritten = self.take_rewritten();
        let dir = (self.dir_dirty || !rewritten.is_empty()).then(|| self.dir.clone());
        PendingFlush { up_to, truncations: self.truncations, files, rewritten, dir }
    }

    /// After a roll: the files of the segments from the recovery point up to the new active
    /// segment, to be fsynced by the caller without the log's lock. `None` if there was no roll
    /// or everything below it is already flushed.
    pub fn take_flush_after_roll(&mut self) -> Option<PendingFlush> {
        let up_to = self.flush_after_roll.take()?;
        if up_to <= self.recovery_point {
            return None;
        }
        Some(self.pending_flush(up_to, Some(up_to)))
    }

    /// What appends asked for (`flush.messages` or `flush.ms` reached): the files from the
    /// recovery point to the log end, to be fsynced by the caller without the log's lock, on a
    /// blocking thread. `through`: the end of the caller's own append, which must be durable
    /// when the flush is done (None: whatever was asked for). `None` if that is not needed or
    /// already done. The caller serialises its flushes of one log (a flush taken by another
    /// caller may still be syncing the data this one waits for: it must wait for that one first).
    pub fn take_requested_flush(&mut self, through: Option<i64>) -> Option<PendingFlush> {
        if !self.flush_needed(through) {
            return None;
        }
        let pending = self.pending_flush(self.log_end_offset, None);
        self.dir_dirty = false;
        Some(pending)
    }

    /// Whether appends asked for a flush that `through` (None: whatever was asked for) waits for.
    pub fn flush_needed(&self, through: Option<i64>) -> bool {
        let target = through.unwrap_or(self.flush_target);
        self.recovery_point < target && self.flush_target >= target
    }

    /// The files rewritten without an fsync since the last flush.
    pub(crate) fn take_rewritten(&mut self) -> Vec<PathBuf> {
        let mut out = std::mem::take(&mut self.unsynced_snapshots);
        out.extend(self.epochs.take_unsynced());
        out
    }

    /// Runs a flush an append asked for and nobody took (on a blocking thread: housekeeping).
    pub fn flush_if_requested(&mut self, now_ms: i64) -> Result<()> {
        if self.flush_target > self.recovery_point {
            self.flush_at(now_ms)?;
        }
        Ok(())
    }

    /// Counts an append's records toward `flush.messages` and `flush.ms`; asks for a flush
    /// (taken by [`Self::take_requested_flush`]) when one of them is reached.
    pub(crate) fn note_appended(&mut self, record_count: u64, now_ms: i64) {
        self.unflushed_messages = self.unflushed_messages.saturating_add(record_count);
        if self.unflushed_messages >= self.config.flush_interval_messages
            || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_interval_ms
        {
            // Everything up to here is to be flushed; the next interval counts from now.
            self.flush_target = self.log_end_offset;
            self.unflushed_messages = 0;
            self.last_flush_ms = now_ms;
        }
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
