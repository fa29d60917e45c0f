//! Log compaction (`cleanup.policy=compact`), Kafka's LogCleaner, in three steps so that the
//! partition's lock is held only to look and to swap, never while data is read or written:
//!
//! ```text
//!  plan (lock)     the cleanable range, from the first segment to the first uncleanable
//!                  offset (the active segment, the high watermark, min.compaction.lag.ms);
//!                  handles on its segments' files; each producer's last batch
//!  build (no lock) offset map: the latest offset of each key in the dirty part, from the first
//!                  dirty offset on (as far as log.cleaner.dedupe.buffer.size allows); then
//!                  every segment of the range is rewritten, in groups no bigger than
//!                  segment.bytes, keeping a record only if it is its key's latest (a tombstone
//!                  until its delete horizon) → <base>.log.cleaned
//!  install (lock)  if the segments are still the planned ones: .cleaned → .swap (the commit
//!                  point) → old segments deleted → .swap → <base>.log, indexes rebuilt
//! ```
//!
//! Offsets are never changed: compaction leaves holes. Records without a key are removed (Kafka
//! refuses them on produce to a compacted topic). Control batches and transactional batches are
//! kept whole and their keys left out of the map until transactions exist (an aborted value must
//! never hide an older committed one). A batch that is the last of a producer still known to the
//! producer state is kept, even with no record left, so that its sequence survives.

mod filter;
mod offset_map;
mod swap;

pub(crate) use swap::complete_interrupted_swaps;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_protocol::batch::BatchHeader;

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::segment::read_exact_at;
use offset_map::OffsetMap;

/// The cleaner settings of one clean.
#[derive(Debug, Clone, Copy)]
pub struct CleanSettings {
    /// `log.cleaner.dedupe.buffer.size` (per cleaner thread).
    pub dedupe_buffer_bytes: usize,
    /// `delete.retention.ms`: how long a tombstone outlives the clean that first kept it.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// The largest a batch may inflate to when its records are read.
    pub max_batch_inflated_bytes: usize,
}

impl Default for CleanSettings {
    /// Kafka's defaults (a 128 MiB dedupe buffer, tombstones kept a day).
    fn default() -> Self {
        CleanSettings {
            dedupe_buffer_bytes: 128 << 20,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_batch_inflated_bytes: 64 << 20,
        }
    }
}

/// A segment of the planned range, readable without the log.
#[derive(Debug, Clone)]
pub(crate) struct PlannedSegment {
    pub base: i64,
    pub next_offset: i64,
    pub size: u64,
    pub file: Arc<File>,
    pub path: PathBuf,
}

/// What a clean will work on, taken under the log's lock.
#[derive(Debug)]
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) segments: Vec<PlannedSegment>,
    /// Where the dirty part starts (the previous clean's end).
    pub(crate) first_dirty: i64,
    /// The first offset not to be cleaned: a segment boundary.
    pub(crate) end: i64,
    pub(crate) segment_bytes: u64,
    /// Producer id → the last offset of its last batch.
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    /// The log's truncation count when planned: a truncation meanwhile outdates the clean.
    pub(crate) truncations: u64,
}

/// How much a clean did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_kept: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// Tombstones kept (inside their delete horizon): a later clean is due to remove them.
    pub tombstones_kept: u64,
    pub keys_mapped: u64,
}

/// One rewritten group of segments, waiting in `<base>.log.cleaned`.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    pub base: i64,
    /// The offset after the last planned segment it replaces: every segment based in
    /// [base, end) is replaced (the swap file's name carries it, for recovery after a crash).
    pub end: i64,
    /// The planned segments it replaces: (base, size when planned).
    pub replaces: Vec<(i64, u64)>,
}

/// A built clean, to be installed with [`Log::install_clean`].
#[derive(Debug)]
pub struct CleanedLog {
    pub(crate) dir: PathBuf,
    pub(crate) truncations: u64,
    pub(crate) groups: Vec<CleanedGroup>,
    /// The first dirty offset of the next clean.
    pub next_dirty: i64,
    pub stats: CleanStats,
}

/// What installing a clean did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// The cleaned segments replaced the old ones; the next clean starts at `next_dirty`.
    Installed { next_dirty: i64, stats: CleanStats },
    /// The log changed meanwhile (retention, truncation): nothing was replaced.
    Outdated,
}

impl Log {
    /// The part of the log a clean would work on, if it has anything dirty. `first_dirty` is
    /// where the previous clean ended (the log start for the first one), `upper_bound` the
    /// first offset that may not be cleaned yet (the high watermark).
    pub fn plan_clean(
        &self,
        first_dirty: i64,
        upper_bound: i64,
        now_ms: i64,
        settings: &CleanSettings,
    ) -> Option<CleanPlan> {
        let active_base = self.active().base_offset();
        let lag_cutoff = now_ms.saturating_sub(settings.min_compaction_lag_ms);
        let mut segments = Vec::new();
        for s in self.segments.values().filter(|s| s.base_offset() < active_base) {
            let too_new = settings.min_compaction_lag_ms > 0 && s.largest_timestamp() > lag_cutoff;
            if s.next_offset() > upper_bound || too_new {
                break;
            }
            let (file, path) = s.file_handles().into_iter().next()?;
            segments.push(PlannedSegment {
                base: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                file,
                path,
            });
        }
        let end = self
            .segments
            .keys()
            .copied()
            .find(|b| segments.last().is_some_and(|last| *b > last.base))
            .unwrap_or(active_base);
        let first_dirty = first_dirty.max(self.log_start_offset);
        if segments.is_empty() || first_dirty >= end {
            return None;
        }
        let producer_last_offsets =
            self.producers.entries().filter_map(|p| p.batches.back().map(|b| (p.producer_id, b.last_offset))).collect();
        Some(CleanPlan {
            dir: self.dir.clone(),
            segments,
            first_dirty,
            end,
            segment_bytes: self.config.segment_bytes,
            producer_last_offsets,
            truncations: self.truncations,
        })
    }

    /// The share of the cleanable range (below `upper_bound`) that is dirty, by bytes: what
    /// `min.cleanable.dirty.ratio` is compared with.
    pub fn dirty_ratio(&self, first_dirty: i64, upper_bound: i64) -> f64 {
        let active_base = self.active().base_offset();
        let (mut clean, mut dirty) = (0u64, 0u64);
        for s in self.segments.values().filter(|s| s.base_offset() < active_base && s.next_offset() <= upper_bound) {
            if s.base_offset() >= first_dirty {
                dirty += s.size();
            } else {
                clean += s.size();
            }
        }
        if clean + dirty == 0 {
            0.0
        } else {
            dirty as f64 / (clean + dirty) as f64
        }
    }

    /// The timestamp of the first batch at or after `first_dirty` below the active segment (for
    /// `max.compaction.lag.ms`: how long the oldest dirty record has waited), if any.
    pub fn first_dirty_timestamp(&self, first_dirty: i64) -> Result<Option<i64>> {
        let active_base = self.active().base_offset();
        for s in self.segments.values().filter(|s| s.base_offset() < active_base && s.next_offset() > first_dirty) {
            let mut pos = s.lookup_position(first_dirty);
            while let Some(h) = s.header_at(pos)? {
                if h.last_offset() >= first_dirty {
                    return Ok(Some(h.max_timestamp));
                }
                pos += h.total_size() as u64;
            }
        }
        Ok(None)
    }

    /// Replaces the planned segments by their cleaned copies, if they are still what was planned;
    /// otherwise removes the copies and answers [`CleanOutcome::Outdated`].
    pub fn install_clean(&mut self, cleaned: CleanedLog) -> Result<CleanOutcome> {
        // Still the planned segments: none truncated, deleted (retention) or grown, none active.
        // A log start inside the first one (DeleteRecords, a follower's) does not matter: reads
        // never go below it.
        let active_base = self.active().base_offset();
        let unchanged =
            cleaned.truncations == self.truncations
                && cleaned.groups.iter().flat_map(|g| &g.replaces).all(|(base, size)| {
                    *base < active_base && self.segments.get(base).is_some_and(|s| s.size() == *size)
                });
        if !unchanged || cleaned.dir != self.dir {
            swap::discard(&cleaned)?;
            return Ok(CleanOutcome::Outdated);
        }
        for (i, group) in cleaned.groups.iter().enumerate() {
            // The commit point first, while the old segments are still in place: a failure here
            // leaves the log as it was (and the remaining copies are dropped).
            if let Err(e) = swap::commit(&self.dir, group) {
                let rest = CleanedLog {
                    dir: cleaned.dir.clone(),
                    truncations: cleaned.truncations,
                    groups: cleaned.groups.iter().skip(i).map(CleanedGroup::clone_plan).collect(),
                    next_dirty: cleaned.next_dirty,
                    stats: cleaned.stats,
                };
                let _ = swap::discard(&rest);
                return Err(e);
            }
            let replaced: Vec<_> = group.replaces.iter().filter_map(|(b, _)| self.segments.remove(b)).collect();
            let segment = swap::finish_group(&self.dir, group, replaced, self.config.index_interval_bytes)?;
            self.segments.insert(group.base, segment);
        }
        self.dir_dirty = true;
        Ok(CleanOutcome::Installed { next_dirty: cleaned.next_dirty, stats: cleaned.stats })
    }
}

impl CleanedGroup {
    fn clone_plan(&self) -> CleanedGroup {
        CleanedGroup { base: self.base, end: self.end, replaces: self.replaces.clone() }
    }
}

impl CleanPlan {
    /// Builds the cleaned copies of the planned segments (reads and writes files only; the log
    /// is not needed). `throttle` is told of every chunk of bytes read or written, to pace the
    /// cleaner (`log.cleaner.io.max.bytes.per.second`).
    pub fn build(self, settings: &CleanSettings, now_ms: i64, throttle: &mut dyn FnMut(u64)) -> Result<CleanedLog> {
        let mut stats = CleanStats::default();
        let mut map = OffsetMap::with_buffer(settings.dedupe_buffer_bytes);
        let map_end = filter::build_offset_map(&self, &mut map, settings, &mut stats, throttle)?;
        if map_end <= self.first_dirty {
            return Err(StorageError::Corrupt {
                path: self.dir.clone(),
                reason: format!(
                    "log.cleaner.dedupe.buffer.size ({} bytes) cannot hold the keys of one batch at offset {}",
                    settings.dedupe_buffer_bytes, self.first_dirty
                ),
            });
        }
        stats.keys_mapped = map.len() as u64;
        let rules = filter::Rules { map: &map, map_end, now_ms, settings, producers: &self.producer_last_offsets };
        let mut groups = Vec::new();
        for group in group_segments(&self.segments, self.segment_bytes) {
            let base = group[0].base;
            let path = swap::cleaned_path(&self.dir, base);
            match filter::write_group(&path, group, &rules, &mut stats, throttle) {
                Ok(()) => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    let _ = swap::discard(&CleanedLog {
                        dir: self.dir.clone(),
                        truncations: self.truncations,
                        groups,
                        next_dirty: map_end,
                        stats,
                    });
                    return Err(e);
                }
            }
            let end = group.last().map_or(base, |s| s.next_offset).max(base + 1);
            groups.push(CleanedGroup { base, end, replaces: group.iter().map(|s| (s.base, s.size)).collect() });
        }
        Ok(CleanedLog { dir: self.dir, truncations: self.truncations, groups, next_dirty: map_end, stats })
    }
}

/// Consecutive segments whose sizes add up to at most `max_bytes` (one segment at least), and
/// whose offsets fit one segment's 32-bit relative offsets, as Kafka's `groupSegmentsBySize`.
fn group_segments(segments: &[PlannedSegment], max_bytes: u64) -> Vec<&[PlannedSegment]> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        let mut size = segments[start].size;
        while end < segments.len()
            && size + segments[end].size <= max_bytes
            && segments[end].next_offset - segments[start].base <= i64::from(i32::MAX)
        {
            size += segments[end].size;
            end += 1;
        }
        groups.push(&segments[start..end]);
        start = end;
    }
    groups
}

/// Reads the whole batches of a segment file in order, a chunk at a time, and hands each to `f`.
pub(crate) fn for_each_batch(
    file: &File,
    path: &Path,
    size: u64,
    throttle: &mut dyn FnMut(u64),
    mut f: impl FnMut(BatchHeader, &[u8]) -> Result<bool>,
) -> Result<u64> {
    const CHUNK: usize = 1 << 20;
    let corrupt = |pos: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("at position {pos}: {reason}"),
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = 0u64; // file position of buf[0]
    let mut pos = 0u64;
    let mut read = 0u64;
    while pos < size {
        let at = (pos - buf_pos) as usize;
        let header = if buf.len() >= at + strom_protocol::batch::BATCH_HEADER_LEN {
            Some(BatchHeader::parse(&buf[at..]).map_err(|e| corrupt(pos, e.to_string()))?)
        } else {
            None
        };
        let needed = header.map_or(strom_protocol::batch::BATCH_HEADER_LEN, |h| h.total_size());
        if needed as u64 > size - pos {
            return Err(corrupt(pos, format!("a batch of {needed} bytes runs past the end ({size})")));
        }
        if buf.len() < at + needed {
            // Refill from `pos`: a chunk, or the whole batch when it is larger.
            let want = CHUNK.max(needed).min((size - pos) as usize);
            buf.clear();
            buf.resize(want, 0);
            read_exact_at(file, &mut buf, pos, path)?;
            buf_pos = pos;
            read += want as u64;
            throttle(want as u64);
            continue;
        }
        let header = header.ok_or_else(|| corrupt(pos, "no header".into()))?;
        if !f(header, &buf[at..at + needed])? {
            break;
        }
        pos += needed as u64;
    }
    Ok(read)
}
