//! Producer-state snapshots: `<20-digit offset>.snapshot` in the partition directory, holding the
//! producer state as of that offset (the log end offset when it was taken). After a restart the
//! latest snapshot not beyond the log end is loaded and only the batches after it are replayed.
//! Snapshots are taken at each segment roll and at clean close; the newest
//! [`SNAPSHOTS_TO_KEEP`] are kept.
//!
//! Strom's own format (Kafka's differs), big-endian:
//! ```text
//!  magic "STPS" | version u16 = 2 | crc u32 (CRC-32C of all bytes after this field)
//!  offset i64 | producer count u32
//!  per producer: producer_id i64 | epoch i16 | last_timestamp i64
//!     | coordinator_epoch i32 | current_txn_first_offset i64 (-1: none)   (version 2 only)
//!     | batch count u8
//!     per batch: first_seq i32 | last_seq i32 | first_offset i64 | last_offset i64 | timestamp i64
//! ```
//! Version 1 (before transactions) is still read: its producers have no open transaction.
//! A file that fails its CRC or does not parse is ignored (and deleted): the state is then
//! rebuilt from an older snapshot or from the start of the log.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, StorageError};
use crate::producer_state::{BatchMetadata, ProducerEntry, ProducerStateManager, MAX_CACHED_BATCHES};
use crate::segment::file_stem;

/// Suffix of snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// How many snapshots survive a new one: older ones only help after a deep truncation.
pub const SNAPSHOTS_TO_KEEP: usize = 3;

const MAGIC: &[u8; 4] = b"STPS";
const VERSION: u16 = 2;
const PREFIX_LEN: usize = 4 + 2 + 4;

/// Path of the snapshot at `offset`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}{SNAPSHOT_SUFFIX}", file_stem(offset)))
}

/// Offsets of the snapshots in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if let Ok(offset) = stem.parse::<i64>() {
                offsets.push(offset);
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Encodes the state as of `offset`.
pub(crate) fn encode(state: &ProducerStateManager, offset: i64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&offset.to_be_bytes());
    let mut entries: Vec<&ProducerEntry> = state.entries().collect();
    entries.sort_by_key(|e| e.producer_id);
    body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let slice = self.bytes.get(self.at..self.at + N).ok_or("unexpected end of snapshot")?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(slice);
        Ok(a)
    }
    fn i64(&mut self) -> std::result::Result<i64, String> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i16(&mut self) -> std::result::Result<i16, String> {
        self.take::<2>().map(i16::from_be_bytes)
    }
}

/// Decodes a snapshot; returns its offset and state, or why it is unusable.
pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<(i64, ProducerStateManager), String> {
    if bytes.len() < PREFIX_LEN || &bytes[..4] != MAGIC {
        return Err("not a Strom producer snapshot".into());
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("unsupported snapshot version {version}"));
    }
    let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[PREFIX_LEN..];
    let actual = crc32c::crc32c(body);
    if crc != actual {
        return Err(format!("CRC mismatch: stored {crc:#010x}, computed {actual:#010x}"));
    }
    let mut r = Reader { bytes: body, at: 0 };
    let offset = r.i64()?;
    let count = u32::from_be_bytes(r.take::<4>()?);
    let mut state = ProducerStateManager::new();
    for _ in 0..count {
        let producer_id = r.i64()?;
        let epoch = r.i16()?;
        let last_timestamp = r.i64()?;
        let (coordinator_epoch, current_txn_first_offset) = match version {
            1 => (-1, None),
            _ => (r.i32()?, Some(r.i64()?).filter(|o| *o >= 0)),
        };
        let [n] = r.take::<1>()?;
        if usize::from(n) > MAX_CACHED_BATCHES {
            return Err(format!("{n} cached batches for producer {producer_id}"));
        }
        let mut batches = VecDeque::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
                timestamp: r.i64()?,
            });
        }
        state.insert(ProducerEntry {
            producer_id,
            epoch,
            batches,
            last_timestamp,
            coordinator_epoch,
            current_txn_first_offset,
        })?;
    }
    if r.at != body.len() {
        return Err("trailing bytes after snapshot".into());
    }
    Ok((offset, state))
}

/// Writes the snapshot at `offset` whole (copy and rename) but without an fsync, and prunes old
/// ones; returns its path, to be synced by the log's next flush (a roll is on the append path).
pub(crate) fn write_unsynced(dir: &Path, state: &ProducerStateManager, offset: i64) -> Result<PathBuf> {
    let path = snapshot_path(dir, offset);
    crate::checkpoint::write_replacing(&path, &encode(state, offset))?;
    prune(dir)?;
    Ok(path)
}

/// Writes the snapshot atomically (temporary file, fsync, rename) and prunes old ones.
pub(crate) fn write(dir: &Path, state: &ProducerStateManager, offset: i64) -> Result<()> {
    let path = snapshot_path(dir, offset);
    crate::checkpoint::write_atomically(&path, &encode(state, offset))?;
    prune(dir)
}

/// Keeps the newest `SNAPSHOTS_TO_KEEP` snapshots.
fn prune(dir: &Path) -> Result<()> {
    let offsets = list_snapshots(dir)?;
    if offsets.len() > SNAPSHOTS_TO_KEEP {
        for old in &offsets[..offsets.len() - SNAPSHOTS_TO_KEEP] {
            remove(dir, *old)?;
        }
    }
    Ok(())
}

/// Deletes the snapshot at `offset` if it exists.
pub(crate) fn remove(dir: &Path, offset: i64) -> Result<()> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::Io { context: format!("delete {}", path.display()), source: e }),
    }
}

/// Loads the newest usable snapshot at or below `max_offset`, deleting snapshots beyond it (they
/// describe records that are no longer in the log) and unusable ones.
pub(crate) fn load_latest(dir: &Path, max_offset: i64) -> Result<Option<(i64, ProducerStateManager)>> {
    let offsets = list_snapshots(dir)?;
    for &offset in offsets.iter().rev() {
        if offset > max_offset {
            remove(dir, offset)?;
            continue;
        }
        let path = snapshot_path(dir, offset);
        let bytes = fs::read(&path).ctx(|| format!("read {}", path.display()))?;
        match decode(&bytes) {
            Ok((at, state)) if at == offset => return Ok(Some((offset, state))),
            Ok((at, _)) => {
                tracing::warn!(path = %path.display(), at, "snapshot offset does not match its name; ignoring")
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "unusable producer snapshot; ignoring")
            }
        }
        remove(dir, offset)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::batch::testing::encode_test_batch;
    use strom_protocol::batch::BatchHeader;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = ProducerStateManager::new();
        for (pid, seq, off) in [(1, 0, 0), (1, 1, 1), (9, 0, 2)] {
            let bytes = encode_test_batch(off, pid, 3, seq, &[77], &[(None, Some(b"v"))]);
            state.apply(&BatchHeader::parse(&bytes).expect("valid"), None);
        }
        write(dir.path(), &state, 3).expect("write");
        let (offset, loaded) = load_latest(dir.path(), 10).expect("load").expect("present");
        assert_eq!(offset, 3);
        assert_eq!(loaded, state);

        let path = snapshot_path(dir.path(), 3);
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).expect("write");
        assert!(load_latest(dir.path(), 10).expect("load").is_none());
        assert!(!path.exists(), "corrupt snapshot is removed");
    }

    #[test]
    fn an_open_transaction_survives_a_snapshot_and_version_1_files_still_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = ProducerStateManager::new();
        let mut bytes = encode_test_batch(40, 5, 2, 0, &[77], &[(None, Some(b"v"))]);
        bytes[22] |= 0x10; // transactional: the attributes' low byte (the CRC is not checked here)
        let header = BatchHeader::parse(&bytes).expect("valid");
        assert!(header.is_transactional());
        state.apply(&header, None);
        assert_eq!(state.transactions().last_stable_offset(100), 40);
        write(dir.path(), &state, 41).expect("write");
        let (_, loaded) = load_latest(dir.path(), 41).expect("load").expect("present");
        assert_eq!(loaded.get(5).and_then(|e| e.current_txn_first_offset), Some(40));
        assert_eq!(loaded.transactions().last_stable_offset(100), 40, "the LSO holds after a restart");
        assert_eq!(loaded, state);

        // Version 1: the same fields but the transaction's.
        let mut body = 41i64.to_be_bytes().to_vec();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&77i64.to_be_bytes());
        body.push(0);
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        v1.extend_from_slice(&body);
        let (offset, old) = decode(&v1).expect("version 1 reads");
        assert_eq!(offset, 41);
        let e = old.get(5).expect("producer 5");
        assert_eq!((e.epoch, e.coordinator_epoch, e.current_txn_first_offset), (2, -1, None));
    }

    #[test]
    fn snapshots_beyond_the_log_end_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = ProducerStateManager::new();
        write(dir.path(), &state, 5).expect("write");
        write(dir.path(), &state, 50).expect("write");
        let (offset, _) = load_latest(dir.path(), 20).expect("load").expect("present");
        assert_eq!(offset, 5);
        assert_eq!(list_snapshots(dir.path()).expect("list"), vec![5]);
    }
}
