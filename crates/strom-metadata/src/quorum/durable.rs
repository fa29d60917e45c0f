//! The metadata quorum's files, in `<log.dirs>/__cluster_metadata-0/` (Kafka's directory name):
//!
//! ```text
//! quorum-state                               term and vote (JSON), replaced atomically when they change
//! raft.log                                   entries after the snapshot: [len u32][crc32c u32][Entry]
//! 00000000000000000120-0000000003.checkpoint the latest snapshot of the image: [crc32c u32][data]
//! ```
//!
//! Only the term and vote must never go back (a node that forgot its vote could vote twice in a
//! term); they are written with a rename and fsync before any message that depends on them is
//! sent. Entries are appended and fsynced per batch. The commit index is written lazily: after a
//! restart a node re-applies up to the commit index it stored and learns the rest from the
//! leader (or, as the only voter, by committing again in its next term), so anything that acts
//! on the whole image (removing stray partitions) waits until the node has caught up.
//! A torn or corrupt tail of `raft.log` is cut at the first bad record, as a data log's would be.

use super::core::PersistBatch;
use super::storage::PersistentState;
use crate::error::MetadataError;
use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState, Snapshot};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Directory of the quorum's files under a log dir, named as Kafka names its metadata partition.
pub const QUORUM_DIR: &str = "__cluster_metadata-0";
const STATE_FILE: &str = "quorum-state";
const LOG_FILE: &str = "raft.log";
/// No single metadata entry comes near this; a larger length is a torn or corrupt record.
const MAX_ENTRY_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct QuorumStateFile {
    term: u64,
    vote: u64,
    commit: u64,
}

/// The open files of one node's quorum log.
pub struct DurableQuorumLog {
    dir: PathBuf,
    log: File,
    /// File position of each entry in `raft.log`, by index: `(index, position)`, contiguous.
    positions: Vec<(u64, u64)>,
    log_len: u64,
    state_on_disk: QuorumStateFile,
    snapshot_index: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetadataError + '_ {
    move |source| MetadataError::Io { path: path.to_path_buf(), source }
}

fn corrupt(path: &Path, reason: String) -> MetadataError {
    MetadataError::Corrupt { path: path.to_path_buf(), line: 0, reason }
}

impl DurableQuorumLog {
    /// Opens (or creates) the files under `data_dir` and returns what they hold.
    pub fn open(data_dir: &Path) -> Result<(DurableQuorumLog, PersistentState), MetadataError> {
        let dir = data_dir.join(QUORUM_DIR);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let state_path = dir.join(STATE_FILE);
        let state_on_disk = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice::<QuorumStateFile>(&bytes)
                .map_err(|e| corrupt(&state_path, format!("unreadable quorum state: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QuorumStateFile::default(),
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let snapshot = load_latest_snapshot(&dir)?;
        let snapshot_index = snapshot.get_metadata().index;
        let log_path = dir.join(LOG_FILE);
        let (entries, positions, valid_len) = read_log(&log_path)?;
        // After a crash between a snapshot and the log's rewrite the log may still start at or
        // before the snapshot; it must never start after it (a gap nothing can fill).
        let first_after = entries.iter().find(|e| e.index > snapshot_index).map(|e| e.index);
        if first_after.is_some_and(|i| i != snapshot_index + 1) {
            return Err(corrupt(
                &log_path,
                format!("the log resumes at entry {} after a snapshot at {snapshot_index}", first_after.unwrap_or(0)),
            ));
        }
        let log = OpenOptions::new().create(true).read(true).append(true).open(&log_path).map_err(io_err(&log_path))?;
        let file_len = log.metadata().map_err(io_err(&log_path))?.len();
        if file_len > valid_len {
            tracing::warn!(path = %log_path.display(), bytes = file_len - valid_len, "cutting a torn or corrupt tail off the metadata quorum log");
            log.set_len(valid_len).map_err(io_err(&log_path))?;
            log.sync_data().map_err(io_err(&log_path))?;
        }
        let hard_state = HardState {
            term: state_on_disk.term,
            vote: state_on_disk.vote,
            commit: state_on_disk.commit,
            ..Default::default()
        };
        let durable = DurableQuorumLog { dir, log, positions, log_len: valid_len, state_on_disk, snapshot_index };
        let state = PersistentState { hard_state, snapshot, entries };
        Ok((durable, state))
    }

    /// Makes one batch durable: snapshot, then entries, then term and vote.
    pub fn persist(&mut self, batch: &PersistBatch) -> Result<(), MetadataError> {
        if let Some(snapshot) = &batch.snapshot {
            self.write_snapshot(snapshot, batch.snapshot_replaces_log)?;
        }
        if !batch.entries.is_empty() {
            self.append(&batch.entries)?;
        }
        if let Some(hs) = &batch.hard_state {
            let next = QuorumStateFile { term: hs.term, vote: hs.vote, commit: hs.commit };
            if (next.term, next.vote) != (self.state_on_disk.term, self.state_on_disk.vote) {
                self.write_state(next)?;
            } else {
                // Kept in memory so that the next rename carries a recent commit index.
                self.state_on_disk.commit = next.commit;
            }
        }
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), MetadataError> {
        let path = self.dir.join(LOG_FILE);
        let first = entries[0].index;
        if let Some(at) = self.positions.iter().position(|&(i, _)| i >= first) {
            let cut = self.positions[at].1;
            self.positions.truncate(at);
            self.log.set_len(cut).map_err(io_err(&path))?;
            self.log_len = cut;
        }
        let expected = self.positions.last().map_or(self.snapshot_index + 1, |&(i, _)| i + 1);
        assert_eq!(first, expected, "quorum log append must be contiguous");
        let mut buf = Vec::new();
        for e in entries {
            self.positions.push((e.index, self.log_len + buf.len() as u64));
            frame_into(&mut buf, &e.write_to_bytes().map_err(|e| corrupt(&path, format!("cannot encode entry: {e}")))?);
        }
        self.log.write_all(&buf).map_err(io_err(&path))?;
        self.log.sync_data().map_err(io_err(&path))?;
        self.log_len += buf.len() as u64;
        Ok(())
    }

    fn write_state(&mut self, state: QuorumStateFile) -> Result<(), MetadataError> {
        let bytes = serde_json::to_vec(&state).map_err(|e| corrupt(&self.dir, e.to_string()))?;
        write_atomically(&self.dir, STATE_FILE, &bytes)?;
        self.state_on_disk = state;
        Ok(())
    }

    fn write_snapshot(&mut self, snapshot: &Snapshot, replaces_log: bool) -> Result<(), MetadataError> {
        let meta = snapshot.get_metadata();
        let name = format!("{:020}-{:010}.checkpoint", meta.index, meta.term);
        let mut bytes = crc32c::crc32c(&snapshot.data).to_be_bytes().to_vec();
        bytes.extend_from_slice(&snapshot.data);
        write_atomically(&self.dir, &name, &bytes)?;
        self.snapshot_index = meta.index;
        for old in list_snapshots(&self.dir)? {
            if old.0 < meta.index {
                let _ = std::fs::remove_file(self.dir.join(&old.2));
            }
        }
        // Rewrite the log without what the snapshot covers.
        let path = self.dir.join(LOG_FILE);
        let (entries, _, _) = read_log(&path)?;
        let keep: Vec<Entry> =
            if replaces_log { Vec::new() } else { entries.into_iter().filter(|e| e.index > meta.index).collect() };
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(keep.len());
        for e in &keep {
            positions.push((e.index, buf.len() as u64));
            frame_into(&mut buf, &e.write_to_bytes().map_err(|e| corrupt(&path, format!("cannot encode entry: {e}")))?);
        }
        write_atomically(&self.dir, LOG_FILE, &buf)?;
        self.log = OpenOptions::new().read(true).append(true).open(&path).map_err(io_err(&path))?;
        self.positions = positions;
        self.log_len = buf.len() as u64;
        Ok(())
    }
}

fn frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    buf.extend_from_slice(payload);
}

/// What `raft.log` holds: the entries, their `(index, position)`s and the length of the valid part.
type LogContents = (Vec<Entry>, Vec<(u64, u64)>, u64);

/// Reads every whole, valid record.
fn read_log(path: &Path) -> Result<LogContents, MetadataError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io_err(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new(), 0)),
        Err(e) => return Err(io_err(path)(e)),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut positions = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_ENTRY_BYTES || bytes.len() - pos - 8 < len {
            break;
        }
        let payload = &bytes[pos + 8..pos + 8 + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(entry) = Entry::parse_from_bytes(payload) else { break };
        if let Some(last) = entries.last() {
            if entry.index != last.index + 1 {
                return Err(corrupt(path, format!("entry {} follows entry {}", entry.index, last.index)));
            }
        }
        positions.push((entry.index, pos as u64));
        entries.push(entry);
        pos += 8 + len;
    }
    Ok((entries, positions, pos as u64))
}

/// `(index, term, file name)` of every snapshot file, oldest first.
fn list_snapshots(dir: &Path) -> Result<Vec<(u64, u64, String)>, MetadataError> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let name = item.map_err(io_err(dir))?.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".checkpoint") else { continue };
        let Some((index, term)) = stem.split_once('-') else { continue };
        if let (Ok(index), Ok(term)) = (index.parse(), term.parse()) {
            out.push((index, term, name));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest snapshot whose checksum holds (an older one is kept until a newer one is whole).
fn load_latest_snapshot(dir: &Path) -> Result<Snapshot, MetadataError> {
    for (index, term, name) in list_snapshots(dir)?.into_iter().rev() {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        if bytes.len() < 4 || crc32c::crc32c(&bytes[4..]) != u32::from_be_bytes(bytes[..4].try_into().expect("4")) {
            tracing::warn!(path = %path.display(), "ignoring a metadata snapshot whose checksum does not match");
            continue;
        }
        let mut snapshot = Snapshot { data: bytes::Bytes::copy_from_slice(&bytes[4..]), ..Default::default() };
        snapshot.mut_metadata().index = index;
        snapshot.mut_metadata().term = term;
        return Ok(snapshot);
    }
    Ok(Snapshot::default())
}

/// Writes `name` in `dir` so that a crash leaves either the old or the new content.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), MetadataError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let written = File::create(&tmp).and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        // A half-written file would keep the space a full disk needs for the next try.
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry { index, term, data: bytes::Bytes::copy_from_slice(data.as_bytes()), ..Default::default() }
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit, ..Default::default() }
    }

    #[test]
    fn batches_survive_reopen_like_the_in_memory_model() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut model = PersistentState::default();
        let batches = vec![
            PersistBatch {
                entries: vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")],
                hard_state: Some(hs(1, 1, 2)),
                ..Default::default()
            },
            // A new leader overwrites the uncommitted suffix.
            PersistBatch {
                entries: vec![entry(3, 2, "c2"), entry(4, 2, "d")],
                hard_state: Some(hs(2, 2, 3)),
                ..Default::default()
            },
        ];
        {
            let (mut log, _) = DurableQuorumLog::open(dir.path()).expect("open");
            for b in &batches {
                log.persist(b).expect("persist");
                model.apply(b);
            }
        }
        let (_, state) = DurableQuorumLog::open(dir.path()).expect("reopen");
        assert_eq!(state.entries, model.entries);
        assert_eq!((state.hard_state.term, state.hard_state.vote), (2, 2));
    }

    #[test]
    fn snapshots_trim_the_log_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let (mut log, _) = DurableQuorumLog::open(dir.path()).expect("open");
            let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1, "x")).collect();
            log.persist(&PersistBatch { entries, hard_state: Some(hs(1, 1, 5)), ..Default::default() })
                .expect("persist");
            let mut snapshot = Snapshot { data: bytes::Bytes::from_static(b"image at 3"), ..Default::default() };
            snapshot.mut_metadata().index = 3;
            snapshot.mut_metadata().term = 1;
            log.persist(&PersistBatch { snapshot: Some(snapshot), ..Default::default() }).expect("snapshot");
        }
        let log_path = dir.path().join(QUORUM_DIR).join(LOG_FILE);
        let mut bytes = std::fs::read(&log_path).expect("read");
        bytes.extend_from_slice(&[0, 0, 0, 40, 1, 2]);
        std::fs::write(&log_path, &bytes).expect("write");
        let (mut log, state) = DurableQuorumLog::open(dir.path()).expect("reopen");
        assert_eq!(state.snapshot.get_metadata().index, 3);
        assert_eq!(&state.snapshot.data[..], b"image at 3");
        assert_eq!(state.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
        log.persist(&PersistBatch { entries: vec![entry(6, 1, "y")], ..Default::default() }).expect("append after cut");
        drop(log);
        let (_, state) = DurableQuorumLog::open(dir.path()).expect("reopen again");
        assert_eq!(state.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5, 6]);
    }

    #[test]
    fn a_corrupt_snapshot_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut log, _) = DurableQuorumLog::open(dir.path()).expect("open");
        let entries: Vec<Entry> = (1..=4).map(|i| entry(i, 1, "x")).collect();
        log.persist(&PersistBatch { entries, hard_state: Some(hs(1, 1, 4)), ..Default::default() }).expect("persist");
        let mut snapshot = Snapshot { data: bytes::Bytes::from_static(b"two"), ..Default::default() };
        snapshot.mut_metadata().index = 2;
        snapshot.mut_metadata().term = 1;
        log.persist(&PersistBatch { snapshot: Some(snapshot), ..Default::default() }).expect("snapshot");
        drop(log);
        // A half-written newer snapshot (bad checksum) must not win.
        std::fs::write(dir.path().join(QUORUM_DIR).join(format!("{:020}-{:010}.checkpoint", 4, 1)), b"\0\0\0\0junk")
            .expect("write");
        let (_, state) = DurableQuorumLog::open(dir.path()).expect("reopen");
        assert_eq!(state.snapshot.get_metadata().index, 2);
        assert_eq!(state.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4]);
    }
}
