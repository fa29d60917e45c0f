//! Opening a log directory, recovering it after a crash, and truncating a log.
//!
//! ```text
//!  clean shutdown:   every segment: load indexes, sanity-check, read the short tail after the
//!                    last index entry ─▶ rebuild a segment only if its indexes look wrong
//!  unclean shutdown: segments before the one holding the recovery point: as above
//!                    from it to the end: validate every batch (header, CRC, offsets), rebuild
//!                    indexes, cut a torn tail; a corrupt segment that is not the last one drops
//!                    all later segments (they would follow a hole)
//!  then:             producer state = latest snapshot ≤ LEO + replay of the batches after it;
//!                    the replay starts no later than the first recovered segment (or one whose
//!                    `.txnindex` was not believed), so every abort there is indexed again
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{LogConfig, TopicPartition};
use crate::error::{IoContext, Result, StorageError};
use crate::leader_epoch::LeaderEpochCache;
use crate::log::{wall_clock_ms, Log};
use crate::outcome::LoadSummary;
use crate::producer_state::ProducerStateManager;
use crate::segment::{segment_path, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::snapshot;
use crate::transactions::{AbortedTxn, CompletedTxn};
use crate::txn_index::TXN_INDEX_SUFFIX;

/// Leftovers of interrupted operations that are removed at open.
/// (A `.log.swap` file is not one: it is a committed clean, completed at open first.)
const STALE_SUFFIXES: [&str; 4] = [".tmp", ".deleted", ".cleaned", ".swap"];

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::Io { context: format!("delete {}", path.display()), source: e }),
    }
}

/// Removes the files of the segment at `base` without opening it.
pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        remove_if_exists(&segment_path(dir, base, suffix))?;
    }
    Ok(())
}

/// Lists segment base offsets (ascending) and removes stale files and orphaned indexes.
fn scan_dir(dir: &Path) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if STALE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            tracing::info!(file = %entry.path().display(), "removing leftover file");
            remove_if_exists(&entry.path())?;
            continue;
        }
        let parsed = |suffix: &str| name.strip_suffix(suffix).and_then(|stem| stem.parse::<i64>().ok());
        if let Some(base) = parsed(LOG_SUFFIX) {
            logs.push((base, entry.path()));
        } else if let Some(base) =
            parsed(INDEX_SUFFIX).or_else(|| parsed(TIME_INDEX_SUFFIX)).or_else(|| parsed(TXN_INDEX_SUFFIX))
        {
            indexes.push((base, entry.path()));
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search_by_key(&base, |(b, _)| *b).is_err() {
            tracing::warn!(file = %path.display(), "removing index without a log segment");
            remove_if_exists(&path)?;
        }
    }
    Ok(logs.into_iter().map(|(b, _)| b).collect())
}

/// Builds a [`Log`] from its directory; see the module docs.
pub(crate) fn load(
    dir: PathBuf,
    tp: TopicPartition,
    config: LogConfig,
    recovery_point: i64,
    log_start_offset: i64,
    clean_shutdown: bool,
) -> Result<Log> {
    fs::create_dir_all(&dir).ctx(|| format!("create log directory {}", dir.display()))?;
    crate::cleaner::complete_interrupted_swaps(&dir, config.index_interval_bytes)?;
    let bases = scan_dir(&dir)?;
    let mut summary = LoadSummary { clean_shutdown, segments: bases.len(), ..LoadSummary::default() };
    let recover_from = if clean_shutdown {
        None
    } else {
        Some(bases.iter().copied().rfind(|b| *b <= recovery_point).unwrap_or(i64::MIN))
    };
    let mut segments = BTreeMap::new();
    let mut corrupt_at: Option<i64> = None;
    // The first segment whose aborts the producer-state replay must index again.
    let mut replay_from = i64::MAX;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(bad) = corrupt_at {
            tracing::warn!(partition = %tp, segment = base, after = bad, "deleting segment that follows a corrupt one");
            delete_segment_files(&dir, base)?;
            summary.segments_deleted += 1;
            continue;
        }
        let (mut segment, problem) = Segment::open(&dir, base)?;
        let must_recover = recover_from.is_some_and(|from| base >= from);
        if let Some(why) = segment.take_txn_index_problem() {
            tracing::warn!(partition = %tp, segment = base, %why, "rebuilding the aborted-transaction index");
            replay_from = replay_from.min(base);
        }
        let reason = if must_recover {
            Some("unclean shutdown".to_string())
        } else if problem.is_some() {
            problem
        } else {
            segment.load_tail()?
        };
        // Entries past the segment's end are from a file that cannot be believed.
        let end = segment.next_offset();
        if reason.is_none() && segment.txn_index_mut().truncate_to(end)? {
            tracing::warn!(partition = %tp, segment = base, "aborted-transaction index past its segment; rebuilding");
            segment.txn_index_mut().reset()?;
            replay_from = replay_from.min(base);
        }
        if let Some(reason) = reason {
            if !must_recover {
                tracing::warn!(partition = %tp, segment = base, %reason, "rebuilding segment indexes");
            }
            let result = segment.recover(config.index_interval_bytes)?;
            replay_from = replay_from.min(base);
            summary.segments_recovered += 1;
            summary.bytes_scanned += result.scanned_bytes;
            summary.bytes_truncated += result.truncated_bytes;
            if result.truncated_bytes > 0 && i + 1 < bases.len() {
                corrupt_at = Some(base);
            }
            if i + 1 < bases.len() {
                // Not the active segment: record its final max timestamp, as a roll does.
                segment.on_become_inactive()?;
            }
        }
        segments.insert(base, segment);
    }

    let mut dir_dirty = false;
    if segments.is_empty() {
        let base = log_start_offset.max(0);
        segments.insert(base, Segment::create(&dir, base)?);
        dir_dirty = true;
    }
    let mut log = Log {
        dir,
        tp,
        config,
        segments,
        log_start_offset: 0,
        log_end_offset: 0,
        recovery_point: 0,
        producers: ProducerStateManager::new(),
        unflushed_messages: 0,
        last_flush_ms: wall_clock_ms(),
        dir_dirty,
        flush_after_roll: None,
        flush_target: -1,
        unsynced_snapshots: Vec::new(),
        truncations: 0,
        load_summary: summary,
        epochs: LeaderEpochCache::in_memory(),
    };
    log.log_end_offset = log.active().next_offset();
    let first_base = log.segments.keys().next().copied().unwrap_or(0);
    log.log_start_offset = log_start_offset.max(first_base);
    if log.log_start_offset > log.log_end_offset {
        tracing::warn!(partition = %log.tp, log_start = log.log_start_offset, log_end = log.log_end_offset,
            "log start offset beyond the log end; starting an empty log there");
        let start = log.log_start_offset;
        log.replace_all_segments(start)?;
    }
    log.recovery_point = if clean_shutdown { log.log_end_offset } else { recovery_point.min(log.log_end_offset) };
    log.active_mut().load_rolling_base()?;
    let replay_from = replay_from.min(log.log_end_offset);
    log.reload_producer_state_from(replay_from)?;
    // The checkpoint is rewritten without an fsync (synced by the next flush): after a crash it
    // may be missing or torn. Then every epoch is recorded again from the batches.
    let had_checkpoint = log.dir.join(crate::leader_epoch::LEADER_EPOCH_CHECKPOINT).exists();
    let (epochs, trusted) = match LeaderEpochCache::load(&log.dir) {
        Ok(c) => (c, had_checkpoint || log.log_end_offset == log.log_start_offset),
        Err(e) => {
            tracing::warn!(partition = %log.tp, "ignoring a corrupt leader-epoch-checkpoint ({e}); epochs are recorded anew");
            (LeaderEpochCache::empty_at(&log.dir), false)
        }
    };
    log.epochs = epochs;
    // The cache may be ahead of a log cut short by the crash, or behind its start.
    let (start, end) = (log.log_start_offset, log.log_end_offset);
    log.epochs.truncate_from_end(end)?;
    log.epochs.truncate_from_start(start)?;
    if !trusted {
        let from = log.log_start_offset;
        log.record_epochs_from(from)?;
    } else if !clean_shutdown {
        let from = log.recovery_point;
        log.record_epochs_from(from)?;
    }
    tracing::debug!(partition = %log.tp, log_start = log.log_start_offset, log_end = log.log_end_offset,
        summary = ?log.load_summary, "loaded log");
    Ok(log)
}

impl Log {
    /// Deletes every segment and starts an empty one at `offset` (which becomes the log start).
    pub(crate) fn replace_all_segments(&mut self, offset: i64) -> Result<()> {
        let old = std::mem::take(&mut self.segments);
        for (_, segment) in old {
            segment.delete()?;
        }
        self.segments.insert(offset, Segment::create(&self.dir, offset)?);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = self.recovery_point.min(offset);
        self.epochs.truncate_from_end(offset)?;
        self.epochs.truncate_from_start(offset)?;
        // The producers' state described the records that are gone (Kafka's
        // `truncateFullyAndStartAt` deletes its snapshots): a reload must not bring back their
        // open transactions, which would hold the last stable offset below the log start.
        for snapshot_offset in snapshot::list_snapshots(&self.dir)? {
            snapshot::remove(&self.dir, snapshot_offset)?;
        }
        self.producers = ProducerStateManager::new();
        Ok(())
    }

    /// Records the epochs of the batches from `from` on that the cache lacks: a new epoch's entry
    /// is fsynced with the next flush, so a crash may keep batches of an epoch the file never
    /// got (Kafka's segment recovery assigns epochs from the batches the same way).
    fn record_epochs_from(&mut self, from: i64) -> Result<()> {
        let first_base = self.segments.range(..=from).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut found = Vec::new();
        for segment in self.segments.range(first_base..).map(|(_, s)| s) {
            let mut pos = segment.lookup_position(from);
            while let Some(header) = segment.header_at(pos)? {
                pos += header.total_size() as u64;
                let latest = found.last().map(|(e, _)| *e).or(self.epochs.latest_epoch());
                if header.base_offset >= from
                    && header.partition_leader_epoch >= 0
                    && latest.is_none_or(|l| header.partition_leader_epoch > l)
                {
                    found.push((header.partition_leader_epoch, header.base_offset));
                }
            }
        }
        for (epoch, offset) in found {
            tracing::info!(partition = %self.tp, epoch, offset, "recorded a leader epoch found in the log");
            self.epochs.assign(epoch, offset)?;
        }
        Ok(())
    }

    /// Restores producer state: the latest snapshot at or below the LEO, then every batch after it.
    pub(crate) fn reload_producer_state(&mut self) -> Result<()> {
        let end = self.log_end_offset;
        self.reload_producer_state_from(end)
    }

    /// Restores producer state from the latest snapshot at or below `at_most`, replaying every
    /// batch after it; the aborts the replay meets are made sure of in the segments' indexes.
    pub(crate) fn reload_producer_state_from(&mut self, at_most: i64) -> Result<()> {
        let (from, state) = match snapshot::load_latest(&self.dir, at_most.min(self.log_end_offset))? {
            Some((offset, state)) => (offset, state),
            None => (i64::MIN, ProducerStateManager::new()),
        };
        self.producers = state;
        self.load_summary.producer_snapshot_offset = (from != i64::MIN).then_some(from);
        let first_base = self.segments.range(..=from).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut replayed = 0u64;
        for segment in self.segments.range_mut(first_base..).map(|(_, s)| s) {
            let mut pos = if from == i64::MIN { 0 } else { segment.lookup_position(from) };
            while let Some(header) = segment.header_at(pos)? {
                pos += header.total_size() as u64;
                if header.base_offset < from {
                    continue;
                }
                let marker = segment.marker_at(pos - header.total_size() as u64, &header)?;
                if let Some(done) = self.producers.apply(&header, marker).filter(|c| c.aborted) {
                    let entry = aborted_entry(&done, self.producers.transactions().stable_offset_after(&done));
                    let new_file = segment.txn_index().file_handle().is_none();
                    segment.txn_index_mut().ensure(entry)?;
                    self.dir_dirty |= new_file;
                }
                replayed += 1;
            }
        }
        self.load_summary.producer_batches_replayed = replayed;
        Ok(())
    }

    /// Removes everything from `offset` on, so that the log ends at `offset` (a follower whose
    /// log diverged from the new leader's). Below the log start offset the log is emptied and
    /// restarted at `offset`. Offsets should be batch boundaries (as a leader's epoch end offsets
    /// are); a batch containing `offset` is removed whole. Producer state is rebuilt for the
    /// shorter log.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset < self.log_start_offset {
            self.replace_all_segments(offset)?;
        } else {
            let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
            for base in doomed {
                if let Some(segment) = self.segments.remove(&base) {
                    segment.delete()?;
                }
            }
            self.active_mut().truncate_to(offset)?;
            self.log_end_offset = self.active().next_offset();
            self.active_mut().load_rolling_base()?;
            if self.log_end_offset < self.log_start_offset {
                // `offset` was inside the batch holding the log start: nothing visible is left.
                let start = self.log_start_offset;
                self.replace_all_segments(start)?;
            }
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        self.epochs.truncate_from_end(self.log_end_offset)?;
        self.truncations += 1;
        self.reload_producer_state()?;
        tracing::info!(partition = %self.tp, log_end = self.log_end_offset, "truncated log");
        Ok(())
    }
}

/// The index entry of an abort, with the last stable offset right after its marker.
pub(crate) fn aborted_entry(done: &CompletedTxn, last_stable_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset,
    }
}
