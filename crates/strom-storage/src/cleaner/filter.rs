//! What the cleaner keeps: the offset map over the dirty part, and each batch filtered against it.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use bytes::Bytes;
use strom_protocol::batch::{rewrite_batch, BatchHeader, KeptRecord, RecordIter, BATCH_HEADER_LEN};
use strom_protocol::compression::decompress;

use super::offset_map::OffsetMap;
use super::{for_each_batch, CleanPlan, CleanSettings, CleanStats, PlannedSegment};
use crate::error::{IoContext, Result, StorageError};

/// Everything the filter decides by.
pub(super) struct Rules<'a> {
    pub map: &'a OffsetMap,
    /// Records at or after this offset were not mapped: they are kept.
    pub map_end: i64,
    pub now_ms: i64,
    pub settings: &'a CleanSettings,
    pub producers: &'a HashMap<i64, i64>,
}

/// Whether the cleaner looks inside a batch (control and transactional batches are kept whole).
fn is_compactable(h: &BatchHeader) -> bool {
    !h.is_control() && !h.is_transactional()
}

fn records_of(h: &BatchHeader, batch: &[u8], path: &Path, settings: &CleanSettings) -> Result<Bytes> {
    let body = Bytes::copy_from_slice(&batch[BATCH_HEADER_LEN..]);
    decompress(h.compression(), body, settings.max_batch_inflated_bytes).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("batch at offset {}: {e}", h.base_offset),
    })
}

fn corrupt_record(path: &Path, h: &BatchHeader, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { path: path.to_path_buf(), reason: format!("batch at offset {}: {e}", h.base_offset) }
}

/// Maps the latest offset of every key from the plan's first dirty offset on, until the plan's
/// end or until the map is full (at a batch boundary). Returns the first offset not mapped.
pub(super) fn build_offset_map(
    plan: &CleanPlan,
    map: &mut OffsetMap,
    settings: &CleanSettings,
    stats: &mut CleanStats,
    throttle: &mut dyn FnMut(u64),
) -> Result<i64> {
    let mut mapped_to = plan.first_dirty;
    let mut full = false;
    for s in plan.segments.iter().filter(|s| s.next_offset > plan.first_dirty) {
        stats.bytes_read += for_each_batch(&s.file, &s.path, s.size, throttle, |h, batch| {
            if h.last_offset() < plan.first_dirty {
                return Ok(true);
            }
            if !is_compactable(&h) {
                mapped_to = h.next_offset();
                return Ok(true);
            }
            let records = records_of(&h, batch, &s.path, settings)?;
            let mut keys = Vec::new();
            for r in RecordIter::new(&records) {
                let r = r.map_err(|e| corrupt_record(&s.path, &h, e))?;
                if let Some(key) = r.key {
                    keys.push((key, h.base_offset + i64::from(r.offset_delta)));
                }
            }
            if !map.has_room_for(keys.len()) {
                full = true;
                return Ok(false);
            }
            for (key, offset) in keys {
                map.put(key, offset);
            }
            mapped_to = h.next_offset();
            Ok(true)
        })?;
        if full {
            return Ok(mapped_to);
        }
    }
    Ok(plan.end)
}

/// Writes the kept batches of `group` into `path` (created afresh) and fsyncs it.
pub(super) fn write_group(
    path: &Path,
    group: &[PlannedSegment],
    rules: &Rules<'_>,
    stats: &mut CleanStats,
    throttle: &mut dyn FnMut(u64),
) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let file =
        OpenOptions::new().write(true).create_new(true).open(path).ctx(|| format!("create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    for s in group {
        let mut written = 0u64;
        stats.bytes_read += for_each_batch(&s.file, &s.path, s.size, throttle, |h, batch| {
            let kept = filter_batch(&h, batch, &s.path, rules, stats)?;
            if let Some(bytes) = kept {
                out.write_all(bytes.as_ref()).ctx(|| format!("write {}", path.display()))?;
                written += bytes.as_ref().len() as u64;
            }
            Ok(true)
        })?;
        stats.bytes_written += written;
        throttle(written);
    }
    out.flush().ctx(|| format!("write {}", path.display()))?;
    drop(out);
    crate::fsync::sync_data(&file, path)
}

/// A batch as the cleaner keeps it: the same bytes, a rewritten batch, or nothing.
enum Kept<'a> {
    Same(&'a [u8]),
    Rewritten(Bytes),
}

impl AsRef<[u8]> for Kept<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Kept::Same(b) => b,
            Kept::Rewritten(b) => b,
        }
    }
}

fn filter_batch<'a>(
    h: &BatchHeader,
    batch: &'a [u8],
    path: &Path,
    rules: &Rules<'_>,
    stats: &mut CleanStats,
) -> Result<Option<Kept<'a>>> {
    if !is_compactable(h) || h.base_offset >= rules.map_end {
        stats.records_kept += h.records_count.max(0) as u64;
        return Ok(Some(Kept::Same(batch)));
    }
    let records = records_of(h, batch, path, rules.settings)?;
    let horizon = h.delete_horizon_ms();
    let tombstones_expire = horizon.is_some_and(|at| rules.now_ms >= at);
    let mut kept = Vec::new();
    let mut removed = 0u64;
    let mut tombstone_kept = false;
    for r in RecordIter::new(&records) {
        let r = r.map_err(|e| corrupt_record(path, h, e))?;
        let offset = h.base_offset + i64::from(r.offset_delta);
        let latest = match r.key {
            None => false,
            Some(_) if offset >= rules.map_end => true,
            Some(key) => rules.map.get(key).is_none_or(|at| offset >= at),
        };
        let keep = latest && (r.value.is_some() || !tombstones_expire);
        if !keep {
            removed += 1;
            if latest {
                stats.tombstones_removed += 1;
            }
            continue;
        }
        tombstone_kept |= r.value.is_none();
        stats.tombstones_kept += u64::from(r.value.is_none());
        kept.push(KeptRecord {
            offset_delta: r.offset_delta,
            timestamp: h.base_timestamp.wrapping_add(r.timestamp_delta),
            key: r.key,
            value: r.value,
            headers: r.headers,
        });
    }
    stats.records_removed += removed;
    stats.records_kept += kept.len() as u64;
    // KIP-534: a tombstone kept for the first time starts its delete horizon now.
    let new_horizon =
        (tombstone_kept && horizon.is_none()).then(|| rules.now_ms.saturating_add(rules.settings.delete_retention_ms));
    if removed == 0 && new_horizon.is_none() {
        return Ok(Some(Kept::Same(batch)));
    }
    let producers_last = h.has_producer_id() && rules.producers.get(&h.producer_id) == Some(&h.last_offset());
    if kept.is_empty() && !producers_last {
        return Ok(None);
    }
    let horizon = new_horizon.or(horizon.filter(|_| !kept.is_empty()));
    let rewritten = rewrite_batch(h, &kept, horizon).map_err(|e| corrupt_record(path, h, e))?;
    Ok(Some(Kept::Rewritten(rewritten)))
}
