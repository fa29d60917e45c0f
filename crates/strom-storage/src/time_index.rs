//! The sparse time index (`.timeindex`): for ListOffsets by timestamp and for time retention.
//!
//! ```text
//!  entry (12 bytes, big-endian): [timestamp: i64][relative offset: u32]
//! ```
//! An entry means "up to this offset, the largest timestamp seen in the segment is this". Entries
//! are added at the same points as offset index entries, and only when the timestamp grew, so
//! timestamps and offsets both increase. When a segment stops being active its final maximum is
//! appended, so the last entry of an inactive segment is its largest timestamp (what time
//! retention compares against) — as in Kafka.

use std::path::Path;

use strom_protocol::batch::NO_TIMESTAMP;

use crate::error::Result;
use crate::index::IndexFile;

/// Size of one time index entry.
pub(crate) const TIME_ENTRY_LEN: usize = 12;

/// The time index of one segment, in memory and on disk.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
    /// (timestamp, relative offset), both increasing.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Loads the index; the second value says why it cannot be trusted, if so.
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<(TimeIndex, Option<String>)> {
        let (file, bytes) = IndexFile::open(path)?;
        let mut index = TimeIndex { base_offset, file, entries: Vec::new() };
        if bytes.len() % TIME_ENTRY_LEN != 0 {
            return Ok((index, Some(format!("size {} is not a multiple of {TIME_ENTRY_LEN}", bytes.len()))));
        }
        let mut entries: Vec<(i64, u32)> = Vec::with_capacity(bytes.len() / TIME_ENTRY_LEN);
        for chunk in bytes.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if let Some(&(last_ts, last_rel)) = entries.last() {
                if ts <= last_ts || rel < last_rel {
                    return Ok((index, Some(format!("entry ({ts}, {rel}) does not follow ({last_ts}, {last_rel})"))));
                }
            }
            entries.push((ts, rel));
        }
        index.entries = entries;
        Ok((index, None))
    }

    /// Records that the segment's largest timestamp up to `offset` is `timestamp`, unless that is
    /// no news.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<()> {
        if timestamp == NO_TIMESTAMP {
            return Ok(());
        }
        if let Some(&(last_ts, last_rel)) = self.entries.last() {
            if timestamp <= last_ts {
                return Ok(());
            }
            assert!(offset - self.base_offset >= i64::from(last_rel), "time index offsets must not go back");
        }
        let Ok(rel) = u32::try_from(offset - self.base_offset) else {
            panic!("time index offset {offset} does not fit segment {}", self.base_offset);
        };
        let mut entry = [0u8; TIME_ENTRY_LEN];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.append(&entry)?;
        self.entries.push((timestamp, rel));
        Ok(())
    }

    /// The offset to start a search for the first record with timestamp ≥ `timestamp`: records
    /// up to the last entry whose timestamp is below it are all older.
    pub(crate) fn lookup(&self, timestamp: i64) -> i64 {
        let i = self.entries.partition_point(|&(ts, _)| ts < timestamp);
        if i == 0 {
            self.base_offset
        } else {
            self.base_offset + i64::from(self.entries[i - 1].1)
        }
    }

    /// The largest timestamp recorded, with its offset.
    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries.last().map(|&(ts, rel)| (ts, self.base_offset + i64::from(rel)))
    }

    /// Checks entries against the segment's offset range, known once the log has been read.
    pub(crate) fn check_offsets(&self, next_offset: i64) -> Option<String> {
        match self.last_entry() {
            Some((_, offset)) if offset >= next_offset => {
                Some(format!("last entry offset {offset} is beyond the segment end {next_offset}"))
            }
            _ => None,
        }
    }

    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file.truncate(0)
    }

    /// Drops entries pointing at offsets ≥ `offset` (log truncation).
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        let keep = self.entries.partition_point(|&(_, rel)| self.base_offset + i64::from(rel) < offset);
        self.entries.truncate(keep);
        self.file.truncate((keep * TIME_ENTRY_LEN) as u64)
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    pub(crate) fn file_handle(&self) -> (std::sync::Arc<std::fs::File>, std::path::PathBuf) {
        self.file.handle()
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growing_timestamps_are_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.timeindex");
        let (mut idx, _) = TimeIndex::open(&path, 0).expect("open");
        idx.maybe_append(100, 5).expect("append");
        idx.maybe_append(90, 8).expect("ignored");
        idx.maybe_append(200, 12).expect("append");
        assert_eq!(idx.last_entry(), Some((200, 12)));
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(100), 0);
        assert_eq!(idx.lookup(101), 5);
        assert_eq!(idx.lookup(1000), 12);
        drop(idx);
        let (idx, problem) = TimeIndex::open(&path, 0).expect("reopen");
        assert!(problem.is_none());
        assert_eq!(idx.last_entry(), Some((200, 12)));
        assert!(idx.check_offsets(12).is_some());
        assert!(idx.check_offsets(13).is_none());
    }
}
