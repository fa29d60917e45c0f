//! Observers: nodes that follow the metadata log without voting (KRaft's observers; a
//! `process.roles=broker` node). An observer asks a voter, preferably the leader, for the
//! committed entries after the last one it applied ([`ObserverFetch`]); the voter answers with
//! them, or with its snapshot when it no longer holds them ([`ObserverChunk`]). Only committed
//! entries ever reach an observer, so it never truncates and never affects what is committed.
//!
//! [`ObserverCore`] is the observer's side as a state machine without I/O, emitting the same
//! commands as a voter's [`super::QuorumCore`] (persist, then restore or apply), so the adapter and
//! the durable log are shared with voters: a data directory can change from one role to the other.

use super::core::{Committed, PersistBatch, QuorumCommand, QuorumStatus};
use super::storage::PersistentState;
use raft::eraftpb::{Entry, HardState, Snapshot};

/// An observer's request: the committed entries from `from_index` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObserverFetch {
    pub observer_id: i32,
    pub from_index: u64,
    /// The answer holds at least one entry (when there is one), and no more entries after this
    /// many bytes.
    pub max_bytes: u32,
    /// How long the voter may wait for a new commit when it has nothing to send.
    pub max_wait_ms: u32,
}

/// What the answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserverContent {
    /// Committed entries from the requested index on (empty: nothing new).
    Entries(Vec<Committed>),
    /// The voter's snapshot: the requested index was compacted away.
    Snapshot { index: u64, term: u64, data: bytes::Bytes },
}

/// A voter's answer to an [`ObserverFetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserverChunk {
    /// The leader as the answering voter knows it.
    pub leader: Option<u64>,
    pub term: u64,
    /// The voter's commit index.
    pub commit: u64,
    pub content: ObserverContent,
}

/// The observer's side.
#[derive(Debug)]
pub struct ObserverCore {
    node_id: u64,
    applied: u64,
    applied_term: u64,
    snapshot_index: u64,
    /// The highest commit index a voter reported.
    commit: u64,
    leader: Option<u64>,
    term: u64,
}

impl ObserverCore {
    /// Restarts from what was persisted. Returns the commands that rebuild the state machine: the
    /// snapshot, then the committed entries after it (an observer persists nothing else; entries
    /// past the commit index are left by a former voter's log and are ignored).
    pub fn restore(node_id: u64, state: PersistentState) -> (ObserverCore, Vec<QuorumCommand>) {
        let meta = state.snapshot.get_metadata();
        let (snapshot_index, snapshot_term) = (meta.index, meta.term);
        let mut commands = Vec::new();
        if snapshot_index > 0 {
            commands.push(QuorumCommand::RestoreSnapshot {
                index: snapshot_index,
                term: snapshot_term,
                data: state.snapshot.data.clone(),
            });
        }
        let mut applied = snapshot_index;
        let mut applied_term = snapshot_term;
        let mut entries = Vec::new();
        for e in state.entries.into_iter().filter(|e| e.index > snapshot_index) {
            if e.index != applied + 1 || e.index > state.hard_state.commit {
                break;
            }
            applied = e.index;
            applied_term = e.term;
            entries.push(Committed { index: e.index, term: e.term, data: e.data });
        }
        if !entries.is_empty() {
            commands.push(QuorumCommand::Apply(entries));
        }
        let core = ObserverCore {
            node_id,
            applied,
            applied_term,
            snapshot_index,
            commit: applied,
            leader: None,
            term: state.hard_state.term,
        };
        (core, commands)
    }

    /// The index the next fetch asks from.
    pub fn next_index(&self) -> u64 {
        self.applied + 1
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    pub fn leader(&self) -> Option<u64> {
        self.leader
    }

    /// Forgets the leader (it stopped answering); the next answer names the new one.
    pub fn leader_unreachable(&mut self) {
        self.leader = None;
    }

    /// Takes a voter's answer. Returns the commands that make it durable and apply it, or why the
    /// answer was refused (it does not continue this observer's log: it answered an older request).
    pub fn receive(&mut self, chunk: ObserverChunk) -> Result<Vec<QuorumCommand>, String> {
        if chunk.term >= self.term {
            self.term = chunk.term;
            self.leader = chunk.leader;
        }
        self.commit = self.commit.max(chunk.commit);
        match chunk.content {
            ObserverContent::Snapshot { index, term, data } => {
                if index <= self.applied {
                    return Ok(Vec::new());
                }
                let mut snapshot = Snapshot { data: data.clone(), ..Default::default() };
                snapshot.mut_metadata().index = index;
                snapshot.mut_metadata().term = term;
                let persist = PersistBatch {
                    snapshot: Some(snapshot),
                    snapshot_replaces_log: true,
                    entries: Vec::new(),
                    hard_state: Some(self.hard_state(index)),
                };
                self.applied = index;
                self.applied_term = term;
                self.snapshot_index = index;
                Ok(vec![QuorumCommand::Persist(persist), QuorumCommand::RestoreSnapshot { index, term, data }])
            }
            ObserverContent::Entries(entries) => {
                let fresh: Vec<Committed> = entries.into_iter().filter(|e| e.index > self.applied).collect();
                let Some(first) = fresh.first() else { return Ok(Vec::new()) };
                if first.index != self.applied + 1 {
                    return Err(format!("entries start at {}, after {} applied", first.index, self.applied));
                }
                let mut expected = (self.applied + 1, self.applied_term);
                for e in &fresh {
                    if e.index != expected.0 || e.term < expected.1 || e.index > chunk.commit {
                        return Err(format!("entry {} (term {}) does not continue the committed log", e.index, e.term));
                    }
                    expected = (e.index + 1, e.term);
                }
                let last = fresh.last().expect("not empty");
                self.applied = last.index;
                self.applied_term = last.term;
                let persist = PersistBatch {
                    snapshot: None,
                    snapshot_replaces_log: false,
                    entries: fresh
                        .iter()
                        .map(|c| Entry { index: c.index, term: c.term, data: c.data.clone(), ..Default::default() })
                        .collect(),
                    hard_state: Some(self.hard_state(self.applied)),
                };
                Ok(vec![QuorumCommand::Persist(persist), QuorumCommand::Apply(fresh)])
            }
        }
    }

    /// Replaces the persisted entries up to the applied index with a snapshot of the state
    /// machine there.
    pub fn compact(&mut self, data: bytes::Bytes) -> QuorumCommand {
        let mut snapshot = Snapshot { data, ..Default::default() };
        snapshot.mut_metadata().index = self.applied;
        snapshot.mut_metadata().term = self.applied_term;
        self.snapshot_index = self.applied;
        QuorumCommand::Persist(PersistBatch { snapshot: Some(snapshot), ..Default::default() })
    }

    pub fn status(&self) -> QuorumStatus {
        QuorumStatus {
            node_id: self.node_id,
            leader: self.leader,
            term: self.term,
            is_leader: false,
            commit_index: self.commit,
            last_index: self.applied,
            applied_index: self.applied,
            committed_in_current_term: false,
            voter_match_index: Vec::new(),
        }
    }

    fn hard_state(&self, commit: u64) -> HardState {
        HardState { term: self.term, vote: 0, commit, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(index: u64, term: u64) -> Committed {
        Committed { index, term, data: bytes::Bytes::from(format!("e{index}")) }
    }

    fn chunk(commit: u64, content: ObserverContent) -> ObserverChunk {
        ObserverChunk { leader: Some(1), term: 2, commit, content }
    }

    /// Runs the persist commands against a state, as the durable log would.
    fn persist_all(state: &mut PersistentState, commands: &[QuorumCommand]) {
        for c in commands {
            if let QuorumCommand::Persist(batch) = c {
                state.apply(batch);
            }
        }
    }

    #[test]
    fn an_observer_applies_committed_entries_in_order_and_restarts_where_it_was() {
        let (mut core, start) = ObserverCore::restore(4, PersistentState::default());
        assert!(start.is_empty());
        assert_eq!(core.next_index(), 1);
        let mut disk = PersistentState::default();
        let commands =
            core.receive(chunk(3, ObserverContent::Entries(vec![committed(1, 1), committed(2, 2)]))).unwrap();
        persist_all(&mut disk, &commands);
        assert!(matches!(&commands[1], QuorumCommand::Apply(e) if e.len() == 2));
        assert_eq!((core.next_index(), core.leader()), (3, Some(1)));
        // A repeated answer to an older request applies nothing twice.
        let again = core.receive(chunk(3, ObserverContent::Entries(vec![committed(2, 2)]))).unwrap();
        assert!(again.is_empty());
        // A gap is refused.
        assert!(core.receive(chunk(9, ObserverContent::Entries(vec![committed(5, 2)]))).is_err());
        // An entry the voter does not call committed is refused.
        assert!(core.receive(chunk(2, ObserverContent::Entries(vec![committed(3, 2)]))).is_err());

        let (restarted, replay) = ObserverCore::restore(4, disk);
        assert_eq!(restarted.next_index(), 3);
        assert!(matches!(&replay[..], [QuorumCommand::Apply(e)] if e == &vec![committed(1, 1), committed(2, 2)]));
    }

    #[test]
    fn a_snapshot_replaces_the_log_and_compaction_keeps_the_position() {
        let (mut core, _) = ObserverCore::restore(4, PersistentState::default());
        let mut disk = PersistentState::default();
        let snapshot = ObserverContent::Snapshot { index: 10, term: 3, data: bytes::Bytes::from_static(b"image") };
        let commands = core.receive(chunk(12, snapshot)).unwrap();
        persist_all(&mut disk, &commands);
        assert!(matches!(&commands[1], QuorumCommand::RestoreSnapshot { index: 10, .. }));
        let commands = core.receive(chunk(12, ObserverContent::Entries(vec![committed(11, 3)]))).unwrap();
        persist_all(&mut disk, &commands);
        // An older snapshot (a late answer) changes nothing.
        let old = ObserverContent::Snapshot { index: 5, term: 2, data: bytes::Bytes::new() };
        assert!(core.receive(chunk(12, old)).unwrap().is_empty());
        let compacted = core.compact(bytes::Bytes::from_static(b"image at 11"));
        persist_all(&mut disk, &[compacted]);
        assert_eq!(disk.snapshot.get_metadata().index, 11);
        assert!(disk.entries.is_empty());
        let (restarted, replay) = ObserverCore::restore(4, disk);
        assert_eq!(restarted.next_index(), 12);
        assert!(matches!(&replay[..], [QuorumCommand::RestoreSnapshot { index: 11, term: 3, .. }]));
    }

    #[test]
    fn a_voter_with_an_older_term_does_not_override_the_leader_hint() {
        let (mut core, _) = ObserverCore::restore(4, PersistentState::default());
        core.receive(ObserverChunk { leader: Some(2), term: 5, commit: 0, content: ObserverContent::Entries(vec![]) })
            .unwrap();
        core.receive(ObserverChunk { leader: Some(1), term: 4, commit: 0, content: ObserverContent::Entries(vec![]) })
            .unwrap();
        assert_eq!(core.leader(), Some(2));
        assert_eq!(core.status().term, 5);
    }
}
