//! Kafka's crash-safe replacement of cleaned segments:
//!
//! ```text
//!  <base>.log.cleaned   written and fsynced by the build; a crash here: deleted at open
//!  <base>.<end>.log.swap  renamed from .cleaned, directory fsynced: the commit point (its
//!                       name says which offsets it replaces)
//!  old segments         deleted (their .log, .index, .timeindex, .txnindex)
//!  <base>.log           renamed from .swap (replacing the first old segment), directory fsynced
//!  indexes              rebuilt from the new .log; the old segments' aborted transactions
//!                       go to its .txnindex
//! ```
//! (A crash between deleting the old `.txnindex` files and writing the new one loses their
//! entries: the cleaner does not yet know transactions, see docs/transactions-reference.md.)
//! A crash at any point leaves either the old segments (no .swap yet) or a .swap that the next
//! open completes: every segment whose base offset lies in [base, end) is deleted, then the
//! .swap takes its name. Never a mix, never a loss.

use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, Result};
use crate::recovery::delete_segment_files;
use crate::segment::{segment_path, Segment, LOG_SUFFIX};
use crate::txn_index::{TxnIndex, TXN_INDEX_SUFFIX};

use super::{CleanedGroup, CleanedLog};

const CLEANED_SUFFIX: &str = ".log.cleaned";
const SWAP_SUFFIX: &str = ".log.swap";

pub(super) fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}{CLEANED_SUFFIX}", crate::segment::file_stem(base)))
}

/// `<base>.<end>.log.swap`: the offsets it replaces are in its name.
fn swap_path(dir: &Path, base: i64, end: i64) -> PathBuf {
    dir.join(format!("{}.{}{SWAP_SUFFIX}", crate::segment::file_stem(base), crate::segment::file_stem(end)))
}

/// Removes the cleaned copies of a clean that will not be installed.
pub(super) fn discard(cleaned: &CleanedLog) -> Result<()> {
    for g in &cleaned.groups {
        let path = cleaned_path(&cleaned.dir, g.base);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::error::StorageError::Io { context: format!("delete {}", path.display()), source: e })
            }
        }
    }
    Ok(())
}

/// The commit point of a group: its cleaned file renamed to the swap name, the directory fsynced.
pub(super) fn commit(dir: &Path, group: &CleanedGroup) -> Result<()> {
    let cleaned = cleaned_path(dir, group.base);
    let swap = swap_path(dir, group.base, group.end);
    fs::rename(&cleaned, &swap).ctx(|| format!("rename {} to {}", cleaned.display(), swap.display()))?;
    sync_dir(dir)
}

/// After [`commit`]: replaces `replaced` (the group's old segments, already out of the log's
/// map) by the swap file; returns the new segment, its indexes rebuilt.
pub(super) fn finish_group(
    dir: &Path,
    group: &CleanedGroup,
    replaced: Vec<Segment>,
    index_interval: u32,
) -> Result<Segment> {
    let old = replaced.into_iter().map(|s| s.base_offset()).collect();
    finish_swap(dir, &swap_path(dir, group.base, group.end), group.base, old, index_interval)
}

/// From the commit point on: deletes the old segments, gives the swap file the group's name,
/// rebuilds its indexes.
fn finish_swap(dir: &Path, swap: &Path, base: i64, old: Vec<i64>, index_interval: u32) -> Result<Segment> {
    let mut aborted = Vec::new();
    for &b in &old {
        let size = fs::metadata(segment_path(dir, b, LOG_SUFFIX)).map_or(0, |m| m.len());
        let (index, _) = TxnIndex::open(segment_path(dir, b, TXN_INDEX_SUFFIX), b, size)?;
        aborted.extend_from_slice(index.entries());
    }
    for b in old {
        delete_segment_files(dir, b)?;
    }
    let log = segment_path(dir, base, LOG_SUFFIX);
    fs::rename(swap, &log).ctx(|| format!("rename {} to {}", swap.display(), log.display()))?;
    sync_dir(dir)?;
    let (mut segment, _) = Segment::open(dir, base)?;
    segment.recover(index_interval)?;
    segment.on_become_inactive()?;
    if !aborted.is_empty() {
        for entry in aborted {
            segment.txn_index_mut().ensure(entry)?;
        }
        segment.txn_index().sync()?;
        sync_dir(dir)?;
    }
    Ok(segment)
}

/// At open: completes the swaps a crash interrupted (see the module docs). Each `.swap` file's
/// offset range is read from its batches; the segments whose base offsets fall in it are the
/// ones it replaces.
pub(crate) fn complete_interrupted_swaps(dir: &Path, index_interval: u32) -> Result<()> {
    // (base, end, path): `end` from the name, or (a name with the base only) from the swap
    // file's last batch.
    let mut swaps: Vec<(i64, Option<i64>, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SWAP_SUFFIX)) else { continue };
        let mut parts = stem.split('.');
        let Some(Ok(base)) = parts.next().map(str::parse::<i64>) else { continue };
        let end = parts.next().and_then(|e| e.parse::<i64>().ok());
        swaps.push((base, end, entry.path()));
    }
    swaps.sort_unstable_by_key(|s| s.0);
    for (base, end, swap) in swaps {
        let end = match end {
            Some(end) => end,
            None => {
                let file = fs::File::open(&swap).ctx(|| format!("open {}", swap.display()))?;
                let size = file.metadata().ctx(|| format!("stat {}", swap.display()))?.len();
                let mut end = base;
                super::for_each_batch(&file, &swap, size, &mut |_| {}, |h, _| {
                    end = h.next_offset();
                    Ok(true)
                })?;
                end
            }
        };
        let mut old = Vec::new();
        for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
            let entry = entry.ctx(|| format!("list {}", dir.display()))?;
            let parsed = entry.file_name().to_str().and_then(|n| n.strip_suffix(LOG_SUFFIX)?.parse::<i64>().ok());
            if let Some(b) = parsed.filter(|b| *b >= base && *b < end.max(base + 1)) {
                old.push(b);
            }
        }
        tracing::info!(swap = %swap.display(), replaces = ?old, "completing a cleaned segment swap interrupted by a crash");
        drop(finish_swap(dir, &swap, base, old, index_interval)?);
    }
    Ok(())
}
