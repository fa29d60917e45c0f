//! The aborted-transaction index of one segment (`<base>.txnindex`, Kafka's file): one 34-byte
//! [`AbortedTxn`] per abort marker the segment holds, in marker order. A `read_committed` fetch
//! names the aborted transactions its data overlaps from it, so that the consumer can drop their
//! records.
//!
//! The file exists only once the segment has an abort (as Kafka creates it lazily). Entries are
//! appended as markers are; truncation cuts the file back to a prefix; a flush of the segment
//! fsyncs it, so below the recovery point it is whole. Above it (after a crash) the entries are
//! made whole again by the producer-state replay, which re-ensures every abort it meets.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, Result, StorageError};
use crate::transactions::{aborted_in_range, AbortedTxn};

/// Suffix of the aborted-transaction index files.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";

/// The smallest batch that can carry a marker (a 61-byte batch header and a record): an index
/// with more entries than its segment has room for markers is not believed.
const MIN_MARKER_BATCH: u64 = 61 + 8;

#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    /// Sorted by `last_offset` (the marker's offset), which is unique.
    entries: Vec<AbortedTxn>,
    /// Open once the file exists.
    file: Option<Arc<File>>,
}

impl TxnIndex {
    /// An index without a file yet (a new segment).
    pub(crate) fn empty(path: PathBuf) -> TxnIndex {
        TxnIndex { path, entries: Vec::new(), file: None }
    }

    /// Loads the index at `path` (none: empty) of the segment at `base_offset`, `segment_size`
    /// bytes long. The second value says why the file cannot be trusted; the entries are then
    /// the ones before the problem, and the caller has them rebuilt.
    pub(crate) fn open(path: PathBuf, base_offset: i64, segment_size: u64) -> Result<(TxnIndex, Option<String>)> {
        let mut index = TxnIndex::empty(path);
        let len = match fs::metadata(&index.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((index, None)),
            Err(e) => return Err(StorageError::Io { context: format!("stat {}", index.path.display()), source: e }),
        };
        let count = len / AbortedTxn::SIZE as u64;
        if count.saturating_mul(MIN_MARKER_BATCH) > segment_size {
            let why = format!("{}: {count} entries for a segment of {segment_size} bytes", index.path.display());
            index.rewrite()?;
            return Ok((index, Some(why)));
        }
        let bytes = fs::read(&index.path).ctx(|| format!("read {}", index.path.display()))?;
        let mut problem = (len % AbortedTxn::SIZE as u64 != 0)
            .then(|| format!("{}: {len} bytes is not a whole number of entries", index.path.display()));
        for chunk in bytes.chunks_exact(AbortedTxn::SIZE) {
            let entry = match AbortedTxn::decode(chunk) {
                Ok(e) => e,
                Err(e) => {
                    problem = Some(format!("{}: {e}", index.path.display()));
                    break;
                }
            };
            let in_order = index.entries.last().is_none_or(|l| entry.last_offset > l.last_offset);
            if entry.last_offset < base_offset || entry.first_offset > entry.last_offset || !in_order {
                problem = Some(format!("{}: entry {entry:?} out of order or place", index.path.display()));
                break;
            }
            index.entries.push(entry);
        }
        index.open_file()?;
        if problem.is_some() {
            index.rewrite()?;
        }
        Ok((index, problem))
    }

    fn open_file(&mut self) -> Result<&File> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)
                .ctx(|| format!("open {}", self.path.display()))?;
            self.file = Some(Arc::new(file));
        }
        Ok(self.file.as_deref().expect("just opened"))
    }

    /// Records an abort whose marker follows every entry so far (an entry at or past it is
    /// from a file that cannot be believed: refused, never a panic).
    pub(crate) fn append(&mut self, entry: AbortedTxn) -> Result<()> {
        if let Some(last) = self.entries.last().filter(|l| entry.last_offset <= l.last_offset) {
            return Err(StorageError::Corrupt {
                path: self.path.clone(),
                reason: format!("an abort at offset {} after one at {}", entry.last_offset, last.last_offset),
            });
        }
        let mut bytes = Vec::with_capacity(AbortedTxn::SIZE);
        entry.encode(&mut bytes);
        let whole = (self.entries.len() * AbortedTxn::SIZE) as u64;
        let path = self.path.clone();
        let mut file = self.open_file()?;
        if let Err(e) = file.write_all(&bytes) {
            // Nothing half-written may stay: the file is cut back to the entries there are.
            let _ = file.set_len(whole);
            return Err(StorageError::Io { context: format!("append to {}", path.display()), source: e });
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Makes sure `entry` is in the index (the producer-state replay meets aborts that may or
    /// may not have reached the file before a crash).
    pub(crate) fn ensure(&mut self, entry: AbortedTxn) -> Result<()> {
        match self.entries.binary_search_by_key(&entry.last_offset, |e| e.last_offset) {
            Ok(at) if self.entries[at] == entry => Ok(()),
            Err(at) if at == self.entries.len() => self.append(entry),
            found => {
                // A different or missing entry amid the others: the file is written anew.
                tracing::warn!(file = %self.path.display(), ?entry, "repairing the aborted-transaction index");
                match found {
                    Ok(at) => self.entries[at] = entry,
                    Err(at) => self.entries.insert(at, entry),
                }
                self.rewrite()
            }
        }
    }

    /// Drops the entries of markers at or after `offset` (the segment is cut there); says
    /// whether there were any.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<bool> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(false);
        }
        self.entries.truncate(keep);
        if let Some(file) = &self.file {
            let len = (keep * AbortedTxn::SIZE) as u64;
            file.set_len(len).ctx(|| format!("truncate {}", self.path.display()))?;
        }
        Ok(true)
    }

    /// Drops every entry (a segment being recovered: the producer-state replay indexes its
    /// aborts again), and a file left from an earlier segment at this offset.
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file = None;
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io { context: format!("delete {}", self.path.display()), source: e }),
        }
    }

    /// Writes the file from the entries in memory (after a problem or a repair).
    fn rewrite(&mut self) -> Result<()> {
        let mut bytes = Vec::with_capacity(self.entries.len() * AbortedTxn::SIZE);
        for e in &self.entries {
            e.encode(&mut bytes);
        }
        self.file = None;
        crate::checkpoint::write_atomically(&self.path, &bytes)?;
        self.open_file()?;
        Ok(())
    }

    /// The aborts a fetch of `[fetch_offset, upper_bound)` must name from this segment, and
    /// whether later segments need not be searched (see [`aborted_in_range`]).
    pub(crate) fn collect(&self, fetch_offset: i64, upper_bound: i64) -> (Vec<AbortedTxn>, bool) {
        aborted_in_range(&self.entries, fetch_offset, upper_bound)
    }

    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file to fsync with the segment, once it exists.
    pub(crate) fn file_handle(&self) -> Option<(Arc<File>, PathBuf)> {
        self.file.as_ref().map(|f| (Arc::clone(f), self.path.clone()))
    }

    pub(crate) fn sync(&self) -> Result<()> {
        match &self.file {
            Some(f) => crate::fsync::sync_data(f, &self.path),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first: i64, last: i64) -> AbortedTxn {
        AbortedTxn { producer_id: first, first_offset: first, last_offset: last, last_stable_offset: last + 1 }
    }

    #[test]
    fn entries_survive_a_reopen_and_truncation_cuts_the_file_to_a_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TxnIndex::empty(path.clone());
        assert!(!path.exists(), "created on the first abort only");
        for (first, last) in [(0, 4), (2, 9), (10, 12)] {
            index.append(entry(first, last)).expect("append");
        }
        assert_eq!(fs::metadata(&path).expect("file").len(), 3 * AbortedTxn::SIZE as u64);
        let (reopened, problem) = TxnIndex::open(path.clone(), 0, 1 << 20).expect("open");
        assert_eq!((reopened.entries(), problem), (index.entries(), None));
        index.truncate_to(9).expect("truncate");
        assert_eq!(index.entries(), &[entry(0, 4)]);
        let (reopened, _) = TxnIndex::open(path, 0, 1 << 20).expect("open");
        assert_eq!(reopened.entries(), &[entry(0, 4)]);
    }

    #[test]
    fn a_torn_or_bad_file_keeps_its_good_prefix_and_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000100.txnindex");
        let mut bytes = Vec::new();
        entry(100, 105).encode(&mut bytes);
        entry(106, 110).encode(&mut bytes);
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(&path, &bytes).expect("write");
        let (index, problem) = TxnIndex::open(path.clone(), 100, 1 << 20).expect("open");
        assert_eq!(index.entries(), &[entry(100, 105), entry(106, 110)]);
        assert!(problem.expect("a problem").contains("not a whole number"));
        assert_eq!(fs::metadata(&path).expect("file").len(), 2 * AbortedTxn::SIZE as u64, "rewritten whole");

        let mut bytes = Vec::new();
        entry(100, 105).encode(&mut bytes);
        entry(0, 50).encode(&mut bytes);
        fs::write(&path, &bytes).expect("write");
        let (index, problem) = TxnIndex::open(path.clone(), 100, 1 << 20).expect("open");
        assert_eq!(index.entries(), &[entry(100, 105)]);
        assert!(problem.is_some(), "an entry below the segment's base");

        fs::write(&path, vec![0u8; 34 * 100]).expect("write");
        let (index, problem) = TxnIndex::open(path, 100, 1_000).expect("open");
        assert!(index.entries().is_empty() && problem.is_some(), "more entries than the segment has room for");
    }

    #[test]
    fn ensure_adds_what_is_missing_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TxnIndex::empty(path.clone());
        index.append(entry(0, 4)).expect("append");
        index.ensure(entry(0, 4)).expect("present");
        index.ensure(entry(10, 12)).expect("appended");
        index.ensure(entry(5, 7)).expect("inserted");
        assert_eq!(index.entries(), &[entry(0, 4), entry(5, 7), entry(10, 12)]);
        let (reopened, problem) = TxnIndex::open(path, 0, 1 << 20).expect("open");
        assert_eq!((reopened.entries(), problem), (index.entries(), None));
    }
}
