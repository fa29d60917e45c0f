//! The Raft log as the Raft library reads it: the entries after the last snapshot, the hard state
//! (term, vote, commit) and the snapshot itself, all in memory.
//!
//! It is only ever changed by [`super::QuorumCore`], which emits a `Persist` command for every
//! change, so that the durable copy (a file on a node, a simulated disk in tests) always holds
//! what this log held when the command was issued. After a restart the log is rebuilt from that
//! durable copy ([`PersistentState`]).

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// What must survive a restart: the state the core was last told to persist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistentState {
    pub hard_state: HardState,
    /// The latest snapshot (index 0 and no data when none was taken yet).
    pub snapshot: Snapshot,
    /// Entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl PersistentState {
    /// Applies one `Persist` command the way a durable store must: the snapshot replaces the log
    /// prefix it covers (and, when it came from the leader, the whole log), then the entries
    /// overwrite any suffix from their first index on, then the hard state is replaced.
    pub fn apply(&mut self, batch: &super::PersistBatch) {
        if let Some(snapshot) = &batch.snapshot {
            let index = snapshot.get_metadata().index;
            if batch.snapshot_replaces_log {
                self.entries.clear();
            } else {
                self.entries.retain(|e| e.index > index);
            }
            self.snapshot = snapshot.clone();
        }
        if let Some(first) = batch.entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend_from_slice(&batch.entries);
        }
        if let Some(hs) = &batch.hard_state {
            self.hard_state = hs.clone();
        }
    }

    /// Index of the last entry (or of the snapshot when the log after it is empty).
    pub fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.get_metadata().index, |e| e.index)
    }
}

/// The in-memory Raft log the library reads.
pub struct MemoryLog {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// `entries[i].index == snapshot index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemoryLog {
    /// Rebuilds the log from its durable copy. `voters` is the static quorum; a fresh log starts
    /// with it as its configuration.
    pub fn restore(state: PersistentState, voters: Vec<u64>) -> MemoryLog {
        let snapshot_index = state.snapshot.get_metadata().index;
        let mut entries = state.entries;
        // A crash between writing a snapshot and trimming the log may leave entries it covers.
        entries.retain(|e| e.index > snapshot_index);
        let contiguous = entries.iter().enumerate().all(|(i, e)| e.index == snapshot_index + 1 + i as u64);
        assert!(contiguous, "persisted Raft entries after snapshot {snapshot_index} are not contiguous");
        let mut hard_state = state.hard_state;
        let last = entries.last().map_or(snapshot_index, |e| e.index);
        if hard_state.commit > last {
            // Only a log damaged on disk loses entries below the commit index; Raft refuses to
            // start with a commit index past its log, so the rest is learnt from the leader.
            tracing::warn!(commit = hard_state.commit, last, "metadata quorum log ends before its commit index");
        }
        hard_state.commit = hard_state.commit.clamp(snapshot_index, last);
        let conf_state = ConfState { voters, ..Default::default() };
        MemoryLog { hard_state, conf_state, snapshot: state.snapshot, entries }
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn first(&self) -> u64 {
        self.snapshot_index() + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_index(), |e| e.index)
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        assert!(hs.term >= self.hard_state.term, "Raft term went back from {} to {}", self.hard_state.term, hs.term);
        self.hard_state = hs;
    }

    pub fn set_commit(&mut self, commit: u64) {
        assert!(commit >= self.hard_state.commit, "commit index went back");
        self.hard_state.commit = commit;
    }

    /// Appends entries, replacing any existing suffix from the first new index on.
    pub fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        assert!(first.index >= self.first(), "append of compacted index {} (first {})", first.index, self.first());
        assert!(first.index <= self.last() + 1, "gap before Raft entry {} (last {})", first.index, self.last());
        assert!(first.index > self.hard_state.commit, "append overwrites committed entry {}", first.index);
        self.entries.truncate((first.index - self.first()) as usize);
        self.entries.extend_from_slice(new);
    }

    /// Installs a snapshot received from the leader: it replaces the whole log.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// Takes a snapshot of the state machine at `index` (already applied) and drops the entries
    /// it covers. Returns the snapshot.
    pub fn compact(&mut self, index: u64, data: bytes::Bytes) -> Snapshot {
        assert!(index <= self.hard_state.commit, "snapshot at {index} beyond the commit index");
        assert!(index > self.snapshot_index(), "snapshot at {index} is not newer than {}", self.snapshot_index());
        let term = self.term(index).expect("term of an entry in the log");
        let mut snapshot = Snapshot { data, ..Default::default() };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        self.entries.drain(..(index - self.snapshot_index()) as usize);
        self.snapshot = snapshot.clone();
        snapshot
    }
}

impl Storage for MemoryLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let base = self.first();
        let mut out = self.entries[(low - base) as usize..(high - base) as usize].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot_index() {
            return Ok(self.snapshot.get_metadata().term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot_index() < request_index || self.snapshot_index() == 0 {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}
