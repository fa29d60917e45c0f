//! The quorum core: one node of the metadata quorum as a synchronous state machine around the
//! Raft library's `RawNode`. It does no I/O. Events go in (a tick of the clock, a message from a
//! peer, a proposal); [`QuorumCore::poll`] returns the commands that carry them out, in the order
//! they must be executed: make state durable, then send, then apply. A node's adapter (files and
//! TCP) and the deterministic simulation in the tests execute the very same commands.

use super::logger::raft_logger;
use super::observer::{ObserverChunk, ObserverContent};
use super::storage::{MemoryLog, PersistentState};
use raft::eraftpb::{Entry, EntryType, HardState, Message, MessageType, Snapshot};
use raft::{RawNode, StateRole, Storage as _};

/// Settings of one quorum member.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: u64,
    /// The static voter set (`controller.quorum.voters`), the same on every node.
    pub voters: Vec<u64>,
    /// Ticks without hearing from a leader before a follower campaigns (randomised up to twice).
    pub election_ticks: usize,
    /// Ticks between the leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Largest append message, in bytes of entries.
    pub max_append_bytes: u64,
    /// Seed of the election-timeout randomisation (deterministic in simulation).
    pub seed: u64,
}

/// Everything a `Persist` command asks to make durable, applied in this order.
#[derive(Debug, Clone, Default)]
pub struct PersistBatch {
    pub snapshot: Option<Snapshot>,
    /// True for a snapshot received from the leader (the log is replaced); false for a local
    /// compaction (only the covered prefix goes).
    pub snapshot_replaces_log: bool,
    /// Entries from `entries[0].index` on replace whatever the log held there.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// A committed entry, ready for the state machine. Entries without data (a new leader's marker)
/// are still delivered so that the applied index moves past them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub data: bytes::Bytes,
}

/// One thing the adapter must do. Execute in order; a later command may rely on an earlier
/// `Persist` being durable.
#[derive(Debug, Clone)]
pub enum QuorumCommand {
    Persist(PersistBatch),
    Send(Vec<Message>),
    /// Replace the state machine with this snapshot's (it came from the leader).
    RestoreSnapshot {
        index: u64,
        term: u64,
        data: bytes::Bytes,
    },
    Apply(Vec<Committed>),
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("node {0} is not a voter of the metadata quorum")]
    NotAVoter(u64),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// Where the node stands, for DescribeQuorum and the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub is_leader: bool,
    pub commit_index: u64,
    pub last_index: u64,
    pub applied_index: u64,
    /// True once an entry of the current term is committed: a new leader's log then holds every
    /// committed entry, and its controller may act once it has applied up to `commit_index`.
    pub committed_in_current_term: bool,
    /// On the leader: each voter's match index (the last entry it is known to hold).
    pub voter_match_index: Vec<(u64, u64)>,
}

pub struct QuorumCore {
    raw: RawNode<MemoryLog>,
    settings: QuorumSettings,
    rng: u64,
    applied: u64,
    /// The highest commit index seen; asserted never to go back.
    commit_seen: u64,
    /// The leader last reported gone, while this node campaigns to replace it.
    gone_leader: Option<u64>,
}

impl QuorumCore {
    /// Starts (or restarts) a node from what it had persisted.
    pub fn restore(settings: QuorumSettings, state: PersistentState) -> Result<QuorumCore, QuorumError> {
        if !settings.voters.contains(&settings.node_id) {
            return Err(QuorumError::NotAVoter(settings.node_id));
        }
        let applied = state.snapshot.get_metadata().index;
        let log = MemoryLog::restore(state, settings.voters.clone());
        let commit_seen = log.hard_state().commit;
        let config = raft::Config {
            id: settings.node_id,
            election_tick: settings.election_ticks,
            heartbeat_tick: settings.heartbeat_ticks,
            applied,
            max_size_per_msg: settings.max_append_bytes,
            max_inflight_msgs: 256,
            // A leader that cannot reach a majority steps down, so a partitioned controller stops
            // acting as one; pre-vote keeps a rejoining node from deposing a healthy leader.
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate()?;
        let raw = RawNode::new(&config, log, &raft_logger(settings.node_id))?;
        let rng = settings.seed ^ settings.node_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut core = QuorumCore { raw, settings, rng, applied, commit_seen, gone_leader: None };
        core.rerandomise_election_timeout();
        Ok(core)
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
        self.after_event();
    }

    /// Hands a message from a peer to Raft. Messages addressed to another node are dropped.
    pub fn step(&mut self, message: Message) -> Result<(), QuorumError> {
        if message.to != self.settings.node_id || !self.settings.voters.contains(&message.from) {
            return Ok(());
        }
        let result = self.raw.step(message);
        self.after_event();
        match result {
            // A message about a peer we no longer track, or one arriving late: harmless.
            Err(raft::Error::StepPeerNotFound) | Err(raft::Error::StepLocalMsg) => Ok(()),
            other => other.map_err(QuorumError::from),
        }
    }

    /// Proposes `data` as a new log entry. Only the leader accepts; the entry is committed once
    /// a majority has it, and then appears in an `Apply` command on every node.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), QuorumError> {
        if self.raw.raft.state != StateRole::Leader {
            return Err(QuorumError::NotLeader { leader: self.leader() });
        }
        self.raw.propose(Vec::new(), data).map_err(|e| match e {
            raft::Error::ProposalDropped => QuorumError::NotLeader { leader: self.leader() },
            other => QuorumError::Raft(other),
        })
    }

    /// Starts an election now instead of waiting for the election timeout (a sole voter at start).
    pub fn campaign(&mut self) -> Result<(), QuorumError> {
        self.raw.campaign()?;
        self.after_event();
        Ok(())
    }

    /// This node has evidence that the leader `peer` is gone (its process refuses connections):
    /// its leader lease ends now, so it grants votes at once. The lowest-id other voter, the
    /// successor every follower agrees on without talking, campaigns at once (pre-vote first);
    /// the others after the random part of their election timeout, so that they do not split
    /// the vote. Only the lease is shortened, so a wrong report cannot unseat a live leader: the
    /// followers that still hear from it keep theirs and refuse to vote. Ignored unless `peer`
    /// is the leader this node follows.
    ///
    /// Reports keep coming while the peer stays gone: a successor still pre-campaigning then
    /// asks again, since a voter that had not yet seen the leader go ignored its first request.
    pub fn leader_gone(&mut self, peer: u64) {
        let following = self.leader() == Some(peer);
        let still_campaigning = self.gone_leader == Some(peer) && self.raw.raft.state == StateRole::PreCandidate;
        if self.is_leader() || !(following || still_campaigning) {
            return;
        }
        if following {
            let lease = self.settings.election_ticks;
            while self.raw.raft.election_elapsed < lease && self.leader() == Some(peer) {
                self.raw.tick();
            }
            self.gone_leader = Some(peer);
        }
        let successor = self.settings.voters.iter().copied().filter(|&v| v != peer).min();
        let may_campaign = self.leader() == Some(peer) || self.raw.raft.state == StateRole::PreCandidate;
        if successor == Some(self.settings.node_id) && may_campaign {
            let _ = self.raw.campaign();
        }
        self.after_event();
    }

    /// Asks this node's leadership to move to `to` (a controller shutting down hands over first).
    pub fn transfer_leadership(&mut self, to: u64) {
        self.raw.transfer_leader(to);
        self.after_event();
    }

    /// The index of the last entry this node's log holds (the leader's next proposal is after it).
    pub fn last_index(&self) -> u64 {
        self.raw.raft.raft_log.last_index()
    }

    /// The current Raft term (the controller epoch).
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn leader(&self) -> Option<u64> {
        match self.raw.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    pub fn status(&self) -> QuorumStatus {
        QuorumStatus {
            node_id: self.settings.node_id,
            leader: self.leader(),
            term: self.term(),
            is_leader: self.is_leader(),
            commit_index: self.raw.raft.raft_log.committed,
            last_index: self.last_index(),
            applied_index: self.applied,
            committed_in_current_term: self.raw.raft.raft_log.term(self.raw.raft.raft_log.committed).ok()
                == Some(self.raw.raft.term),
            voter_match_index: self.replication_progress().unwrap_or_default(),
        }
    }

    /// Each voter's match index as the leader sees it (None on a follower), for DescribeQuorum.
    pub fn replication_progress(&self) -> Option<Vec<(u64, u64)>> {
        if !self.is_leader() {
            return None;
        }
        let mut out: Vec<(u64, u64)> = self.raw.raft.prs().iter().map(|(id, p)| (*id, p.matched)).collect();
        out.sort_unstable();
        Some(out)
    }

    /// Replaces the log up to `index` (applied) with a snapshot of the state machine there.
    pub fn compact(&mut self, index: u64, data: bytes::Bytes) -> QuorumCommand {
        assert!(index <= self.applied, "snapshot at {index} beyond the applied index {}", self.applied);
        let snapshot = self.raw.mut_store().compact(index, data);
        QuorumCommand::Persist(PersistBatch { snapshot: Some(snapshot), ..Default::default() })
    }

    /// Answers an observer: the committed entries from `from` on (at most `max_bytes` of them, at
    /// least one), or the snapshot when `from` was compacted away. Only what this node knows to
    /// be committed is sent, so a follower voter may answer as well as the leader.
    pub fn serve_observer(&self, from: u64, max_bytes: u64) -> ObserverChunk {
        let store = self.raw.store();
        let commit = self.raw.raft.raft_log.committed.min(store.last_index().unwrap_or(0));
        let snapshot_index = store.snapshot_index();
        let content = if from <= snapshot_index && snapshot_index > 0 {
            let snapshot = store.snapshot(snapshot_index, 0).expect("the log's own snapshot");
            let meta = snapshot.get_metadata();
            ObserverContent::Snapshot { index: meta.index, term: meta.term, data: snapshot.data.clone() }
        } else if from > commit {
            ObserverContent::Entries(Vec::new())
        } else {
            let entries = store
                .entries(from.max(1), commit + 1, max_bytes, raft::GetEntriesContext::empty(false))
                .expect("committed entries after the snapshot are in the log");
            ObserverContent::Entries(
                entries.into_iter().map(|e| Committed { index: e.index, term: e.term, data: e.data }).collect(),
            )
        };
        ObserverChunk { leader: self.leader(), term: self.term(), commit, content }
    }

    /// The snapshot index of the in-memory log (0 when none was taken).
    pub fn snapshot_index(&self) -> u64 {
        self.raw.store().snapshot_index()
    }

    /// Collects the work produced by the events so far.
    pub fn poll(&mut self) -> Vec<QuorumCommand> {
        let mut commands = Vec::new();
        if !self.raw.has_ready() {
            return commands;
        }
        let mut ready = self.raw.ready();
        let mut persist = PersistBatch::default();
        let mut sends = ready.take_messages();
        let mut restore = None;
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.raw.mut_store().install_snapshot(snapshot.clone());
            let meta = snapshot.get_metadata();
            restore = Some(QuorumCommand::RestoreSnapshot {
                index: meta.index,
                term: meta.term,
                data: snapshot.data.clone(),
            });
            persist.snapshot = Some(snapshot);
            persist.snapshot_replaces_log = true;
        }
        let mut committed = ready.take_committed_entries();
        if !ready.entries().is_empty() {
            let entries = ready.take_entries();
            self.raw.mut_store().append(&entries);
            persist.entries = entries;
        }
        let mut hard_state_changed = false;
        if let Some(hs) = ready.hs() {
            self.raw.mut_store().set_hard_state(hs.clone());
            hard_state_changed = true;
        }
        sends.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
            hard_state_changed = true;
        }
        sends.extend(light.take_messages());
        committed.extend(light.take_committed_entries());
        if persist.snapshot.is_some() || !persist.entries.is_empty() || hard_state_changed {
            persist.hard_state = Some(self.raw.store().hard_state().clone());
            commands.push(QuorumCommand::Persist(persist));
        }
        let send_at = commands.len();
        if let Some(r) = restore {
            if let QuorumCommand::RestoreSnapshot { index, .. } = &r {
                assert!(*index >= self.applied, "snapshot at {index} behind the applied index {}", self.applied);
                self.applied = *index;
            }
            commands.push(r);
        }
        if !committed.is_empty() {
            commands.push(QuorumCommand::Apply(self.take_committed(committed)));
        }
        self.raw.advance_apply_to(self.applied);
        // A snapshot handed to the network counts as sent: the follower's progress goes back to
        // probing, so a snapshot lost on the way is sent again rather than waited for forever.
        let snapshot_targets: Vec<u64> =
            sends.iter().filter(|m| m.get_msg_type() == MessageType::MsgSnapshot).map(|m| m.to).collect();
        for to in snapshot_targets {
            self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
        }
        let commit = self.raw.raft.raft_log.committed;
        assert!(commit >= self.commit_seen, "commit index went back from {} to {commit}", self.commit_seen);
        self.commit_seen = commit;
        if !sends.is_empty() {
            commands.insert(send_at, QuorumCommand::Send(sends));
        }
        commands
    }

    fn take_committed(&mut self, entries: Vec<Entry>) -> Vec<Committed> {
        entries
            .into_iter()
            .map(|e| {
                assert_eq!(e.index, self.applied + 1, "committed entries must be applied in order, without gaps");
                self.applied = e.index;
                debug_assert!(matches!(e.get_entry_type(), EntryType::EntryNormal), "static quorum: no conf changes");
                Committed { index: e.index, term: e.term, data: e.data }
            })
            .collect()
    }

    /// raft-rs draws election timeouts from the thread's RNG; a node re-draws them from its own
    /// seeded generator whenever the library may have reset them, so a simulation seed replays
    /// exactly. A reset always leaves `election_elapsed` at 0, and the decision to re-draw
    /// depends only on that.
    fn after_event(&mut self) {
        if self.raw.raft.election_elapsed == 0 {
            self.rerandomise_election_timeout();
        }
    }

    fn rerandomise_election_timeout(&mut self) {
        // xorshift64*: small, fast, good enough for timeouts.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let min = self.settings.election_ticks as u64;
        self.raw.raft.set_randomized_election_timeout((min + r % min) as usize);
    }
}
