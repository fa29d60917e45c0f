//! The leader epoch cache of one partition (Kafka's LeaderEpochFileCache and its
//! `leader-epoch-checkpoint` file): for each leader epoch, the first offset written in it. A new
//! leader's followers ask for the end of their last epoch (OffsetForLeaderEpoch) and truncate to
//! it, so that no replica keeps a suffix the leader does not have (KIP-101, KIP-279).
//!
//! File format (Kafka's): a version line `0`, a count line, then `epoch startOffset` per line.

use crate::error::{Result, StorageError};
use std::path::{Path, PathBuf};

/// File name in the partition directory, as Kafka names it.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's "no epoch" and "no offset" answers.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;
/// More entries than this in a file is corruption, not history.
const MAX_ENTRIES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// Ascending in both epoch and start offset.
    entries: Vec<EpochEntry>,
    /// The file was rewritten without an fsync (a new epoch on the append path) and is to be
    /// synced with the log's next flush.
    unsynced: bool,
}

impl LeaderEpochCache {
    /// Loads the partition's cache (empty when the file does not exist).
    pub fn load(dir: &Path) -> Result<LeaderEpochCache> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|reason| StorageError::Corrupt { path: path.clone(), reason })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::Io { context: format!("read {}", path.display()), source: e }),
        };
        Ok(LeaderEpochCache { path, entries, unsynced: false })
    }

    /// A cache without a file (a placeholder before the log's directory is known, or a model
    /// log in a simulation): changes are kept in memory only.
    pub fn in_memory() -> LeaderEpochCache {
        LeaderEpochCache { path: PathBuf::new(), entries: Vec::new(), unsynced: false }
    }

    /// An empty cache for `dir` (its file is rewritten on the next change).
    pub(crate) fn empty_at(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache { path: dir.join(LEADER_EPOCH_CHECKPOINT), entries: Vec::new(), unsynced: false }
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` (the first batch of a new epoch was
    /// appended). Entries that the new one contradicts (a later or equal epoch, or a start at or
    /// after it) are dropped first, as Kafka does. Written to the file when it changes.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        assert!(epoch >= 0 && start_offset >= 0, "invalid leader epoch entry {epoch}@{start_offset}");
        let needed = self.entries.last().is_none_or(|l| l.epoch != epoch || start_offset < l.start_offset);
        if !needed {
            return Ok(());
        }
        while self.entries.last().is_some_and(|l| l.epoch >= epoch || l.start_offset >= start_offset) {
            self.entries.pop();
        }
        self.entries.push(EpochEntry { epoch, start_offset });
        // On the append path (an async worker): written now, so that it is in the file before the
        // batches are, but fsynced with the log's next flush (Kafka 3.7's KAFKA-15046), which
        // syncs it before the data it describes. Recovery records epochs from the batches it
        // scans, for a crash that kept the data but not this file.
        self.write_unsynced()
    }

    /// The file's path if it was rewritten without an fsync since the last [`Self::take_unsynced`].
    pub(crate) fn take_unsynced(&mut self) -> Option<PathBuf> {
        std::mem::take(&mut self.unsynced).then(|| self.path.clone())
    }

    /// The log was truncated to `end_offset`: epochs starting at or after it are gone.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        if end_offset < 0 || self.entries.last().is_none_or(|l| l.start_offset < end_offset) {
            return Ok(());
        }
        while self.entries.last().is_some_and(|l| l.start_offset >= end_offset) {
            self.entries.pop();
        }
        // A follower truncates on its fetch path: no fsync here either. An entry the file keeps
        // past the log end after a crash is trimmed when the log is loaded.
        self.write_unsynced()
    }

    /// The log now starts at `start_offset`: earlier epochs are gone, and the epoch holding it
    /// starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let removed = self.entries.iter().take_while(|e| e.start_offset <= start_offset).count();
        if removed == 0 {
            return Ok(());
        }
        let first = EpochEntry { epoch: self.entries[removed - 1].epoch, start_offset };
        if removed == 1 && self.entries[0] == first {
            return Ok(());
        }
        self.entries.drain(..removed);
        self.entries.insert(0, first);
        // Entries the file keeps below the log start after a crash are trimmed at load.
        self.write_unsynced()
    }

    /// OffsetForLeaderEpoch: the largest epoch ≤ `requested` this log knows and the offset where
    /// the next epoch starts (the log end for the latest epoch), exactly as Kafka's endOffsetFor.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            // Older than anything kept: the follower restarts from the first known epoch.
            None => (requested, higher.start_offset),
            Some(floor) => (floor.epoch, higher.start_offset),
        }
    }

    fn text(&self) -> String {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        text
    }

    fn write_unsynced(&mut self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        crate::checkpoint::write_replacing(&self.path, self.text().as_bytes())?;
        self.unsynced = true;
        Ok(())
    }
}

fn parse(text: &str) -> std::result::Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err("unknown leader-epoch-checkpoint version".into());
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).ok_or("missing entry count")?;
    if count > MAX_ENTRIES {
        return Err(format!("{count} entries announced"));
    }
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than announced")?;
        let mut parts = line.split_whitespace();
        let epoch: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| format!("bad entry '{line}'"))?;
        let start_offset: i64 =
            parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| format!("bad entry '{line}'"))?;
        if epoch < 0 || start_offset < 0 || parts.next().is_some() {
            return Err(format!("bad entry '{line}'"));
        }
        if entries.last().is_some_and(|l| l.epoch >= epoch || l.start_offset > start_offset) {
            return Err(format!("entries out of order at '{line}'"));
        }
        entries.push(EpochEntry { epoch, start_offset });
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more entries than announced".into());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = LeaderEpochCache::load(dir.path()).expect("load");
        for (e, o) in entries {
            c.assign(*e, *o).expect("assign");
        }
        (dir, c)
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    #[test]
    fn end_offset_for_answers_as_kafka_does() {
        let (_d, c) = cache(&[(2, 6), (3, 8), (5, 10)]);
        assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, 20), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
        assert_eq!(c.end_offset_for(5, 20), (5, 20), "the latest epoch ends at the log end");
        assert_eq!(c.end_offset_for(4, 20), (3, 10), "an unknown epoch: the floor epoch, the next start");
        assert_eq!(c.end_offset_for(3, 20), (3, 10));
        assert_eq!(c.end_offset_for(1, 20), (1, 6), "older than any kept epoch");
        assert_eq!(c.end_offset_for(7, 20), (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET));
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_monotonic() {
        let (_d, mut c) = cache(&[(1, 0), (2, 5), (4, 9)]);
        c.assign(4, 12).expect("same epoch later: nothing");
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5), (4, 9)]);
        c.assign(3, 7).expect("a conflicting entry");
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5), (3, 7)]);
        c.assign(5, 7).expect("same start, new epoch");
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5), (5, 7)]);
    }

    #[test]
    fn truncation_from_both_ends_and_the_file_round_trips() {
        let (dir, mut c) = cache(&[(1, 0), (2, 5), (3, 9), (4, 15)]);
        c.truncate_from_end(9).expect("end");
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5)]);
        c.truncate_from_start(7).expect("start");
        assert_eq!(pairs(&c), vec![(2, 7)]);
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).expect("file");
        assert_eq!(text, "0\n1\n2 7\n");
        assert_eq!(pairs(&LeaderEpochCache::load(dir.path()).expect("reload")), vec![(2, 7)]);
        for bad in ["1\n0\n", "0\n2\n1 0\n", "0\n1\n-1 0\n", "0\n2\n3 5\n2 9\n", "0\n99999999999\n"] {
            std::fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), bad).expect("write");
            assert!(matches!(LeaderEpochCache::load(dir.path()), Err(StorageError::Corrupt { .. })), "{bad:?}");
        }
    }
}
