//! The adapter that runs this node's [`QuorumCore`] on a thread of its own: it ticks the core's
//! clock, hands it proposals, and executes its commands — `Persist` through the quorum's files
//! (fsync, so the thread may block), `Apply` by decoding the entry's records and sending them to
//! the publisher, and answering the proposer with the entry's index once it is committed.
//!
//! Without `controller.quorum.voters` the quorum has one voter, this node (what `strom server`
//! has always been), which elects itself before the broker starts. With voters, messages go to
//! the other controllers through [`RaftTransport`] and arrive through [`QuorumNode::step`]. A data
//! directory written before the quorum existed (`__cluster_metadata/records.jsonl`) is migrated
//! into a first snapshot.

use super::pending_commands::PendingCommands;
use super::transport::RaftTransport;
use super::CommittedRecords;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use strom_metadata::image::{decode_records, encode_records};
use strom_metadata::quorum::{
    Committed, DurableQuorumLog, ObserverChunk, ObserverContent, ObserverFetch, PersistBatch, PersistentState,
    QuorumCommand, QuorumCore, QuorumSettings, QuorumStatus, RaftMessage,
};
use strom_metadata::{MetadataError, MetadataImage, MetadataRecord};
use tokio::sync::{mpsc, oneshot};

/// Length of one tick of the quorum's clock.
const TICK: Duration = Duration::from_millis(50);
/// A snapshot is taken once this many bytes of entries were applied since the last one
/// (Kafka's `metadata.log.max.record.bytes.between.snapshots` default).
pub(super) const SNAPSHOT_AFTER_BYTES: u64 = 20 << 20;

/// Why a proposal did not become a committed entry.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("this node is not the active controller")]
    NotController,
    #[error("the metadata quorum stopped: {0}")]
    Stopped(String),
}

enum Input {
    Propose {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<u64, ProposeError>>,
    },
    Peer(RaftMessage),
    /// An observer's fetch: answered at once with what is committed from `from` on.
    ObserverFetch {
        from: u64,
        max_bytes: u64,
        reply: oneshot::Sender<ObserverChunk>,
    },
    Stop,
}

/// Handle on the quorum thread.
pub struct QuorumNode {
    input: Sender<Input>,
    /// When each peer was last heard from (ms since the epoch), for DescribeQuorum.
    last_heard: std::sync::Arc<std::sync::Mutex<HashMap<u64, i64>>>,
    status: std::sync::Arc<std::sync::Mutex<QuorumStatus>>,
    /// The commit index, for observers waiting for something new.
    commit: tokio::sync::watch::Receiver<u64>,
    /// Each observer's log end (the entries it holds) and when it last fetched (ms).
    observers: std::sync::Mutex<HashMap<u64, (u64, i64)>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The state of the node's quorum when it is ready to serve: the image of everything committed.
pub struct StartedQuorum {
    pub node: QuorumNode,
    pub image: MetadataImage,
}

impl QuorumNode {
    /// Proposes records; answers with their entry's index once committed.
    pub async fn propose(&self, records: &[MetadataRecord]) -> Result<u64, ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.input
            .send(Input::Propose { data: encode_records(records), reply })
            .map_err(|_| ProposeError::Stopped("the quorum thread has exited".into()))?;
        answer.await.map_err(|_| ProposeError::Stopped("the quorum thread has exited".into()))?
    }

    /// Hands a message from another controller to the quorum.
    pub fn step(&self, message: RaftMessage) {
        let _ = self.input.send(Input::Peer(message));
    }

    /// Where this node stands in the quorum (leader, term, commit), as of its last event.
    pub fn status(&self) -> QuorumStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// When each peer was last heard from, by this node's clock.
    pub fn last_heard(&self) -> HashMap<u64, i64> {
        self.last_heard.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves an observer: the committed entries from `fetch.from_index` on, waiting up to
    /// `fetch.max_wait_ms` for a commit when there are none yet.
    pub async fn serve_observer(&self, fetch: ObserverFetch) -> Option<ObserverChunk> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(fetch.max_wait_ms.min(5_000) as u64);
        let mut commit = self.commit.clone();
        let holds = fetch.from_index.saturating_sub(1);
        self.observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fetch.observer_id as u64, (holds, crate::server::now_ms()));
        let max_bytes = fetch.max_bytes.max(1) as u64;
        loop {
            commit.borrow_and_update();
            let (reply, answer) = oneshot::channel();
            self.input.send(Input::ObserverFetch { from: fetch.from_index, max_bytes, reply }).ok()?;
            let chunk = answer.await.ok()?;
            let empty = matches!(&chunk.content, ObserverContent::Entries(e) if e.is_empty());
            if !empty || tokio::time::Instant::now() >= deadline {
                return Some(chunk);
            }
            if tokio::time::timeout_at(deadline, commit.changed()).await.is_err() {
                return Some(chunk);
            }
        }
    }

    /// Each observer that fetched from this node: (id, log end, last fetch ms).
    pub fn observer_progress(&self) -> Vec<(u64, u64, i64)> {
        let map = self.observers.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map.iter().map(|(id, (end, at))| (*id, *end, *at)).collect();
        out.sort_unstable();
        out
    }

    /// Stops the thread after the work in hand.
    pub fn stop(&self) {
        let _ = self.input.send(Input::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// What the thread owns.
struct Driver {
    core: QuorumCore,
    durable: DurableQuorumLog,
    image: MetadataImage,
    bytes_since_snapshot: u64,
    /// Proposals waiting for their entry: index → (term proposed in, reply).
    pending: HashMap<u64, (u64, oneshot::Sender<Result<u64, ProposeError>>)>,
    publisher: Option<mpsc::UnboundedSender<CommittedRecords>>,
    transport: RaftTransport,
    status: std::sync::Arc<std::sync::Mutex<QuorumStatus>>,
    commit: tokio::sync::watch::Sender<u64>,
    last_heard: std::sync::Arc<std::sync::Mutex<HashMap<u64, i64>>>,
    /// The core's commands not executed yet (a full disk holds them).
    unfinished: PendingCommands,
}

/// Opens the quorum's files (migrating a pre-quorum log), applies what this node knows to be
/// committed, and starts the thread. A sole voter first elects itself and commits everything in
/// its log; with other voters the node catches up once a leader reaches it.
pub fn start(
    data_dir: &Path,
    node_id: i32,
    voters: Vec<u64>,
    transport: RaftTransport,
    publisher: mpsc::UnboundedSender<CommittedRecords>,
) -> Result<StartedQuorum, MetadataError> {
    let (mut durable, mut state) = DurableQuorumLog::open(data_dir)?;
    if migrate_legacy_log(data_dir, &mut durable, &state)? {
        (durable, state) = DurableQuorumLog::open(data_dir)?;
    }
    let snapshot_index = state.snapshot.get_metadata().index;
    let mut image = if snapshot_index == 0 {
        MetadataImage::default()
    } else {
        MetadataImage::decode_snapshot(&state.snapshot.data).map_err(|reason| corrupt(data_dir, reason))?
    };
    image.offset = snapshot_index;
    let settings = QuorumSettings {
        node_id: node_id as u64,
        voters: voters.clone(),
        election_ticks: 10,
        heartbeat_ticks: 2,
        max_append_bytes: 1 << 20,
        seed: uuid::Uuid::new_v4().as_u64_pair().0,
    };
    let core = QuorumCore::restore(settings, state).map_err(|e| corrupt(data_dir, e.to_string()))?;
    let status = std::sync::Arc::new(std::sync::Mutex::new(core.status()));
    let (commit, commit_rx) = tokio::sync::watch::channel(core.status().commit_index);
    let mut driver = Driver {
        core,
        durable,
        image,
        bytes_since_snapshot: 0,
        pending: HashMap::new(),
        publisher: None,
        transport,
        status: std::sync::Arc::clone(&status),
        commit,
        last_heard: std::sync::Arc::default(),
        unfinished: PendingCommands::default(),
    };
    let last_heard = std::sync::Arc::clone(&driver.last_heard);
    if voters == [node_id as u64] {
        // A sole voter elects itself at once; its first entry commits everything before it, so
        // the image below holds every record this node ever acknowledged.
        driver.core.campaign().map_err(|e| corrupt(data_dir, e.to_string()))?;
        for _ in 0..1000 {
            driver.drain()?;
            if driver.core.is_leader() && driver.image.offset == driver.core.last_index() {
                break;
            }
        }
        if !(driver.core.is_leader() && driver.image.offset == driver.core.last_index()) {
            return Err(corrupt(data_dir, "the metadata quorum of one did not elect itself".into()));
        }
    } else {
        driver.drain()?;
    }
    tracing::info!(
        offset = driver.image.offset,
        term = driver.core.term(),
        voters = ?voters,
        "metadata quorum started"
    );
    let image = driver.image.clone();
    driver.publisher = Some(publisher);
    let (input, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("strom-quorum".into())
        .spawn(move || driver.run(rx))
        .map_err(|source| MetadataError::Io { path: data_dir.to_path_buf(), source })?;
    Ok(StartedQuorum {
        node: QuorumNode {
            input,
            last_heard,
            status,
            commit: commit_rx,
            observers: Default::default(),
            thread: std::sync::Mutex::new(Some(thread)),
        },
        image,
    })
}

pub(super) fn corrupt(dir: &Path, reason: String) -> MetadataError {
    MetadataError::Corrupt { path: dir.to_path_buf(), line: 0, reason }
}

/// Applies one committed entry to the image and hands its records to the publisher (voters and
/// observers alike).
pub(super) fn apply_entry(
    image: &mut MetadataImage,
    entry: &Committed,
    publisher: Option<&mpsc::UnboundedSender<CommittedRecords>>,
) -> Result<(), MetadataError> {
    let records = decode_records(&entry.data)
        .map_err(|r| corrupt(Path::new("metadata quorum entry"), format!("entry {}: {r}", entry.index)))?;
    for r in &records {
        image.apply(r);
    }
    assert!(entry.index > image.offset, "metadata entries are applied in order");
    image.offset = entry.index;
    if let Some(publisher) = publisher {
        let _ = publisher.send(CommittedRecords { offset: entry.index, records, snapshot: None });
    }
    Ok(())
}

/// The image of a snapshot received from a voter; the publisher starts over from it.
pub(super) fn restore_snapshot(
    index: u64,
    data: &[u8],
    publisher: Option<&mpsc::UnboundedSender<CommittedRecords>>,
) -> Result<MetadataImage, MetadataError> {
    let mut image =
        MetadataImage::decode_snapshot(data).map_err(|r| corrupt(Path::new("snapshot from the quorum"), r))?;
    image.offset = index;
    if let Some(publisher) = publisher {
        let snapshot = Some(std::sync::Arc::new(image.clone()));
        let _ = publisher.send(CommittedRecords { offset: index, records: Vec::new(), snapshot });
    }
    Ok(image)
}

impl Driver {
    fn run(mut self, input: Receiver<Input>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let event = input.recv_timeout(next_tick.saturating_duration_since(Instant::now()));
            // A full disk holds this node's commands: it takes no input, as if cut off (peers
            // resend, proposals go to another leader), and tries the write again each tick.
            let stalled = self.unfinished.is_stalled();
            match event {
                Ok(Input::Propose { reply, .. }) if stalled => {
                    let _ = reply.send(Err(ProposeError::NotController));
                }
                Ok(Input::Peer(_) | Input::ObserverFetch { .. }) if stalled => continue,
                Ok(Input::Propose { data, reply }) => self.propose(data, reply),
                Ok(Input::Peer(message)) => {
                    self.last_heard
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(message.from, crate::server::now_ms());
                    if let Err(e) = self.core.step(message) {
                        tracing::warn!("metadata quorum refused a peer message: {e}");
                    }
                }
                Ok(Input::ObserverFetch { from, max_bytes, reply }) => {
                    let _ = reply.send(self.core.serve_observer(from, max_bytes));
                }
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if !stalled {
                        self.core.tick();
                    }
                    next_tick += TICK;
                }
            }
            if !stalled {
                for peer in self.transport.gone_peers() {
                    if self.core.leader() == Some(peer) {
                        tracing::info!(
                            leader = peer,
                            "the metadata quorum leader's process is gone: electing a new one now"
                        );
                    }
                    self.core.leader_gone(peer);
                }
            }
            if stalled && !self.unfinished.retry_due() {
                continue;
            }
            match self.drain() {
                Ok(()) => {}
                Err(e) if e.is_disk_full() => {
                    if !stalled {
                        self.step_aside();
                    }
                }
                Err(e) => {
                    tracing::error!("the metadata quorum cannot write its log and stops: {e}");
                    for (_, (_, reply)) in self.pending.drain() {
                        let _ = reply.send(Err(ProposeError::Stopped(e.to_string())));
                    }
                    // Further proposals fail when the channel closes with this thread.
                    return;
                }
            }
        }
    }

    /// A full disk paused this node: it says so (no leader known here, so writes are forwarded
    /// or retried instead of waiting on it) and answers its waiting proposals NOT_CONTROLLER.
    /// Once the write goes through, the next drain publishes the core's status again.
    fn step_aside(&mut self) {
        let mut shared = self.status.lock().unwrap_or_else(|p| p.into_inner());
        shared.is_leader = false;
        shared.leader = None;
        shared.committed_in_current_term = false;
        for (_, (_, reply)) in self.pending.drain() {
            let _ = reply.send(Err(ProposeError::NotController));
        }
    }

    fn propose(&mut self, data: Vec<u8>, reply: oneshot::Sender<Result<u64, ProposeError>>) {
        let term = self.core.term();
        match self.core.propose(data) {
            Ok(()) => {
                self.pending.insert(self.core.last_index(), (term, reply));
            }
            Err(_) => {
                let _ = reply.send(Err(ProposeError::NotController));
            }
        }
    }

    /// Executes commands until the core has none left. A full disk leaves the rest of them
    /// (and an error that `is_disk_full`) for the next call.
    fn drain(&mut self) -> Result<(), MetadataError> {
        loop {
            let mut unfinished = std::mem::take(&mut self.unfinished);
            let done = unfinished.run(|command| self.execute(command));
            self.unfinished = unfinished;
            done?;
            if let Some(persist) = self.snapshot_due() {
                self.unfinished.push([persist]);
                continue;
            }
            let commands = self.core.poll();
            if commands.is_empty() {
                let status = self.core.status();
                let mut shared = self.status.lock().unwrap_or_else(|p| p.into_inner());
                if shared.leader != status.leader && status.leader.is_some() {
                    tracing::info!(leader = ?status.leader, term = status.term, "metadata quorum leader");
                }
                if !status.is_leader {
                    // Proposals of a former leadership cannot be answered by this node any more.
                    for (_, (_, reply)) in self.pending.drain() {
                        let _ = reply.send(Err(ProposeError::NotController));
                    }
                }
                self.commit.send_if_modified(|c| std::mem::replace(c, status.commit_index) != status.commit_index);
                *shared = status;
                return Ok(());
            }
            self.unfinished.push(commands);
        }
    }

    fn execute(&mut self, command: &QuorumCommand) -> Result<(), MetadataError> {
        match command {
            QuorumCommand::Persist(batch) => self.durable.persist(batch)?,
            QuorumCommand::Send(messages) => messages.iter().for_each(|m| self.transport.send(m)),
            QuorumCommand::RestoreSnapshot { index, data, .. } => {
                self.image = restore_snapshot(*index, data, self.publisher.as_ref())?;
            }
            QuorumCommand::Apply(entries) => {
                for entry in entries {
                    self.apply(entry)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, entry: &Committed) -> Result<(), MetadataError> {
        apply_entry(&mut self.image, entry, self.publisher.as_ref())?;
        self.bytes_since_snapshot += entry.data.len() as u64;
        if let Some((term, reply)) = self.pending.remove(&entry.index) {
            let outcome = if term == entry.term { Ok(entry.index) } else { Err(ProposeError::NotController) };
            let _ = reply.send(outcome);
        }
        Ok(())
    }

    /// A snapshot of the image once enough was applied since the last one: the core compacts
    /// its log at once, and the returned command writes the snapshot.
    fn snapshot_due(&mut self) -> Option<QuorumCommand> {
        if self.bytes_since_snapshot < SNAPSHOT_AFTER_BYTES || self.image.offset <= self.core.snapshot_index() {
            return None;
        }
        let data = bytes::Bytes::from(self.image.encode_snapshot());
        let command = self.core.compact(self.image.offset, data);
        self.bytes_since_snapshot = 0;
        tracing::info!(offset = self.image.offset, "took a metadata snapshot");
        matches!(command, QuorumCommand::Persist(_)).then_some(command)
    }
}

/// Moves a pre-quorum single-node log (`__cluster_metadata/records.jsonl`) into the quorum as its
/// first snapshot, and renames the old file so that it is never read again. Returns whether it did.
fn migrate_legacy_log(
    data_dir: &Path,
    durable: &mut DurableQuorumLog,
    state: &PersistentState,
) -> Result<bool, MetadataError> {
    let legacy = data_dir.join(strom_metadata::log::METADATA_DIR).join(strom_metadata::log::RECORDS_FILE);
    let fresh = state.entries.is_empty() && state.snapshot.get_metadata().index == 0 && state.hard_state.term == 0;
    if !legacy.exists() || !fresh {
        return Ok(false);
    }
    let (_, image) = strom_metadata::log::MetadataLog::open(data_dir)?;
    let mut snapshot = strom_metadata::quorum::Snapshot { data: image.encode_snapshot().into(), ..Default::default() };
    snapshot.mut_metadata().index = 1;
    snapshot.mut_metadata().term = 1;
    let hard_state = strom_metadata::quorum::HardState { term: 1, vote: 0, commit: 1, ..Default::default() };
    durable.persist(&PersistBatch {
        snapshot: Some(snapshot),
        snapshot_replaces_log: true,
        entries: Vec::new(),
        hard_state: Some(hard_state),
    })?;
    let migrated = legacy.with_extension("jsonl.migrated");
    std::fs::rename(&legacy, &migrated).map_err(|source| MetadataError::Io { path: legacy.clone(), source })?;
    tracing::info!(
        topics = image.topics.len(),
        from = %legacy.display(),
        "moved the single-node metadata log into the metadata quorum (old file kept as {})",
        migrated.display()
    );
    Ok(true)
}
