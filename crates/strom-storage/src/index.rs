//! The sparse offset index (`.index`): which file position holds which offset, one entry every
//! `index.interval.bytes` of log, so that a fetch seeks close to its offset and scans at most that
//! many bytes.
//!
//! ```text
//!  entry (8 bytes, big-endian): [relative offset: u32][file position: u32]
//!  relative offset = offset of the last record of the indexed batch − segment base offset
//!  position        = where that batch starts in the .log file
//! ```
//! Kafka's layout exactly, except that the file is not preallocated (it only ever holds real
//! entries, so nothing needs trimming at close). The entries live in memory as well; the file is
//! there to avoid a scan at start-up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, Result};

/// An append-only file of fixed-size index entries, shared by the offset and time indexes.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    /// Shared with a background flush (see `Segment::file_handles`).
    file: Arc<File>,
}

impl IndexFile {
    /// Opens (creating if missing) and returns the file's bytes.
    pub(crate) fn open(path: &Path) -> Result<(IndexFile, Vec<u8>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .ctx(|| format!("open index {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ctx(|| format!("read index {}", path.display()))?;
        Ok((IndexFile { path: path.to_path_buf(), file: Arc::new(file) }, bytes))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn append(&mut self, entry: &[u8]) -> Result<()> {
        (&*self.file).write_all(entry).ctx(|| format!("append to index {}", self.path.display()))
    }

    /// Cuts the file to `len` bytes (appends continue at the new end: the file is in append mode).
    pub(crate) fn truncate(&mut self, len: u64) -> Result<()> {
        self.file.set_len(len).ctx(|| format!("truncate index {}", self.path.display()))
    }

    pub(crate) fn sync(&self) -> Result<()> {
        crate::fsync::sync_data(&self.file, &self.path)
    }

    pub(crate) fn handle(&self) -> (Arc<File>, PathBuf) {
        (Arc::clone(&self.file), self.path.clone())
    }
}

/// Size of one offset index entry.
pub(crate) const OFFSET_ENTRY_LEN: usize = 8;

/// The offset index of one segment, in memory and on disk.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: IndexFile,
    /// (relative offset, file position), both strictly increasing.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Loads the index. A second value describes why the content cannot be trusted (then the
    /// caller rebuilds it from the log); `log_size` bounds the positions.
    pub(crate) fn open(path: &Path, base_offset: i64, log_size: u64) -> Result<(OffsetIndex, Option<String>)> {
        let (file, bytes) = IndexFile::open(path)?;
        let mut index = OffsetIndex { base_offset, file, entries: Vec::new() };
        if bytes.len() % OFFSET_ENTRY_LEN != 0 {
            return Ok((index, Some(format!("size {} is not a multiple of {OFFSET_ENTRY_LEN}", bytes.len()))));
        }
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_LEN);
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_LEN) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if let Some(&(last_rel, last_pos)) = entries.last() {
                if rel <= last_rel || pos <= last_pos {
                    return Ok((index, Some(format!("entry ({rel}, {pos}) does not follow ({last_rel}, {last_pos})"))));
                }
            }
            if u64::from(pos) >= log_size {
                return Ok((index, Some(format!("position {pos} is beyond the log size {log_size}"))));
            }
            entries.push((rel, pos));
        }
        index.entries = entries;
        Ok((index, None))
    }

    /// The entry to start a scan for `offset` from: the last indexed batch at or before it, or the
    /// segment start.
    pub(crate) fn lookup(&self, offset: i64) -> (i64, u64) {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return (self.base_offset, 0);
        }
        let i = self.entries.partition_point(|&(r, _)| i64::from(r) <= rel);
        if i == 0 {
            (self.base_offset, 0)
        } else {
            let (r, p) = self.entries[i - 1];
            (self.base_offset + i64::from(r), u64::from(p))
        }
    }

    /// Indexes the batch whose last offset is `last_offset` and which starts at `position`.
    pub(crate) fn append(&mut self, last_offset: i64, position: u64) -> Result<()> {
        let rel = u32::try_from(last_offset - self.base_offset);
        let pos = u32::try_from(position);
        let (Ok(rel), Ok(pos)) = (rel, pos) else {
            panic!("index entry ({last_offset}, {position}) does not fit segment {}", self.base_offset);
        };
        if let Some(&(last_rel, last_pos)) = self.entries.last() {
            assert!(rel > last_rel && pos > last_pos, "offset index entries must increase");
        }
        let mut entry = [0u8; OFFSET_ENTRY_LEN];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&pos.to_be_bytes());
        self.file.append(&entry)?;
        self.entries.push((rel, pos));
        Ok(())
    }

    /// Forgets all entries (before a rebuild).
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file.truncate(0)
    }

    /// Drops entries for batches that start at or after `position` (log truncation).
    pub(crate) fn truncate_to_position(&mut self, position: u64) -> Result<()> {
        let keep = self.entries.partition_point(|&(_, p)| u64::from(p) < position);
        self.entries.truncate(keep);
        self.file.truncate((keep * OFFSET_ENTRY_LEN) as u64)
    }

    /// Position of the last indexed batch, where a scan for the segment's end can start.
    pub(crate) fn last_position(&self) -> u64 {
        self.entries.last().map_or(0, |&(_, p)| u64::from(p))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    pub(crate) fn file_handle(&self) -> (Arc<File>, PathBuf) {
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
    fn lookup_finds_floor_entry_and_survives_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000100.index");
        let (mut idx, problem) = OffsetIndex::open(&path, 100, 0).expect("open");
        assert!(problem.is_none());
        idx.append(110, 4200).expect("append");
        idx.append(125, 9000).expect("append");
        assert_eq!(idx.lookup(90), (100, 0));
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4200));
        assert_eq!(idx.lookup(124), (110, 4200));
        assert_eq!(idx.lookup(500), (125, 9000));
        drop(idx);
        let (idx, problem) = OffsetIndex::open(&path, 100, 10_000).expect("reopen");
        assert!(problem.is_none());
        assert_eq!(idx.len(), 2);
        let (_, problem) = OffsetIndex::open(&path, 100, 5000).expect("reopen");
        assert!(problem.is_some(), "position beyond log size is detected");
        std::fs::write(&path, [0u8; 5]).expect("write");
        let (_, problem) = OffsetIndex::open(&path, 100, 10_000).expect("reopen");
        assert!(problem.is_some(), "partial entry is detected");
    }
}
