//! The adapter of a node that observes the metadata quorum (`process.roles=broker`): it fetches
//! committed entries from the voters (`controller.quorum.voters`), preferring the leader they
//! name, and executes [`ObserverCore`]'s commands: persist in the same quorum files a voter uses,
//! then apply to the image and hand the records to the publisher. A voter waits up to
//! [`FETCH_MAX_WAIT`] for a commit before answering an empty fetch, so a change reaches
//! observers one round trip after it is committed.
//!
//! Each fetch travels with Strom's private API key [`STROM_OBSERVER_FETCH_API_KEY`] on the voter's
//! controller listener, over one kept-open connection: a request frame (header v1, null client
//! id, then the fetch) and a response frame (correlation id, then the chunk).

use super::pending_commands::PendingCommands;
use super::quorum::{apply_entry, corrupt, restore_snapshot, SNAPSHOT_AFTER_BYTES};
use super::transport::{
    private_answer_frame, private_request_body, private_request_frame, read_private_answer, MAX_RAFT_MESSAGE_BYTES,
};
use super::CommittedRecords;
use bytes::BytesMut;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strom_metadata::quorum::{
    decode_observer_chunk, encode_observer_chunk, encode_observer_fetch, DurableQuorumLog, ObserverChunk, ObserverCore,
    ObserverFetch, QuorumCommand, QuorumStatus,
};
use strom_metadata::{MetadataError, MetadataImage};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Strom's private API key for observers' fetches of the metadata log.
pub const STROM_OBSERVER_FETCH_API_KEY: i16 = 0x7F02;
/// How long a voter holds an empty fetch waiting for a commit.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
/// Entries per answer, in bytes (one entry at least).
const FETCH_MAX_BYTES: u32 = 1 << 20;
/// A voter that answers nothing within this (the wait included) is taken to be unreachable.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a voter could not be reached, before the next one is tried.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Handle on the observer.
pub struct ObserverNode {
    driver: Arc<Mutex<Driver>>,
    /// The core's status after each answer, kept apart from the driver, whose lock is held
    /// while the quorum files are written (status is read on every metadata write).
    status: Arc<Mutex<QuorumStatus>>,
    stop: watch::Sender<bool>,
}

struct Driver {
    core: ObserverCore,
    durable: DurableQuorumLog,
    image: MetadataImage,
    bytes_since_snapshot: u64,
    publisher: Option<mpsc::UnboundedSender<CommittedRecords>>,
    status: Arc<Mutex<QuorumStatus>>,
    /// The core's commands not executed yet (a full disk holds them).
    unfinished: PendingCommands,
    /// Set when the quorum files could not be written (other than for want of space): the
    /// observer stops following.
    failed: bool,
}

/// Opens the quorum files and rebuilds the image from them, then follows the voters from where
/// this node's log ends. Must run within the Tokio runtime (it spawns the fetch task).
pub fn start(
    data_dir: &Path,
    node_id: i32,
    voters: Vec<(u64, String)>,
    publisher: mpsc::UnboundedSender<CommittedRecords>,
) -> Result<(ObserverNode, MetadataImage), MetadataError> {
    let (durable, state) = DurableQuorumLog::open(data_dir)?;
    let (core, commands) = ObserverCore::restore(node_id as u64, state);
    let status = Arc::new(Mutex::new(core.status()));
    let mut driver = Driver {
        core,
        durable,
        image: MetadataImage::default(),
        bytes_since_snapshot: 0,
        publisher: None,
        status: Arc::clone(&status),
        unfinished: PendingCommands::default(),
        failed: false,
    };
    driver.execute(commands).map_err(|e| if e.is_disk_full() { e } else { corrupt(data_dir, e.to_string()) })?;
    tracing::info!(offset = driver.image.offset, voters = ?voters.iter().map(|v| v.0).collect::<Vec<_>>(),
        "following the metadata quorum as an observer");
    let image = driver.image.clone();
    driver.publisher = Some(publisher);
    let driver = Arc::new(Mutex::new(driver));
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(fetch_loop(Arc::clone(&driver), node_id, voters, stop_rx));
    Ok((ObserverNode { driver, status, stop }, image))
}

impl ObserverNode {
    pub fn status(&self) -> QuorumStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops following; returns once no write to the quorum files is in progress.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        drop(self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Driver> {
        self.driver.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Driver {
    /// Executes the core's commands in order; a full disk leaves the rest for the next call.
    fn execute(&mut self, commands: Vec<QuorumCommand>) -> Result<(), MetadataError> {
        self.unfinished.push(commands);
        loop {
            let mut unfinished = std::mem::take(&mut self.unfinished);
            let done = unfinished.run(|command| self.execute_one(command));
            self.unfinished = unfinished;
            done?;
            if self.bytes_since_snapshot < SNAPSHOT_AFTER_BYTES || self.image.offset <= self.core.snapshot_index() {
                return Ok(());
            }
            let compacted = self.core.compact(bytes::Bytes::from(self.image.encode_snapshot()));
            self.bytes_since_snapshot = 0;
            tracing::info!(offset = self.image.offset, "took a metadata snapshot");
            if let QuorumCommand::Persist(_) = compacted {
                self.unfinished.push([compacted]);
            }
        }
    }

    fn execute_one(&mut self, command: &QuorumCommand) -> Result<(), MetadataError> {
        match command {
            QuorumCommand::Persist(batch) => self.durable.persist(batch)?,
            QuorumCommand::RestoreSnapshot { index, data, .. } => {
                self.image = restore_snapshot(*index, data, self.publisher.as_ref())?;
                self.bytes_since_snapshot = 0;
            }
            QuorumCommand::Apply(entries) => {
                for entry in entries {
                    apply_entry(&mut self.image, entry, self.publisher.as_ref())?;
                    self.bytes_since_snapshot += entry.data.len() as u64;
                }
            }
            QuorumCommand::Send(_) => {}
        }
        Ok(())
    }

    /// Takes a voter's answer (on a blocking thread: it writes the quorum files). While a full
    /// disk holds earlier commands the answer is dropped (the core fetches it again) and the
    /// held write is tried again.
    fn receive(&mut self, chunk: ObserverChunk) {
        let leader_before = self.core.leader();
        let commands = if self.unfinished.is_stalled() {
            if !self.unfinished.retry_due() {
                return;
            }
            Ok(Vec::new())
        } else {
            self.core.receive(chunk).map_err(|why| tracing::debug!("metadata observer ignored an answer: {why}"))
        };
        if let Ok(commands) = commands {
            match self.execute(commands) {
                Ok(()) => {}
                Err(e) if e.is_disk_full() => {}
                Err(e) => {
                    tracing::error!("the metadata observer cannot write its log and stops following: {e}");
                    self.failed = true;
                }
            }
        }
        self.publish_status(leader_before);
    }

    /// The voter named as leader could not be reached: the next fetch goes to another one.
    fn leader_unreachable(&mut self) {
        let leader_before = self.core.leader();
        self.core.leader_unreachable();
        self.publish_status(leader_before);
    }

    /// Shares the core's status; logs a change of leader.
    fn publish_status(&self, leader_before: Option<u64>) {
        let status = self.core.status();
        if status.leader != leader_before && status.leader.is_some() {
            tracing::info!(leader = ?status.leader, term = status.term, "metadata quorum leader");
        }
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

async fn fetch_loop(
    driver: Arc<Mutex<Driver>>,
    node_id: i32,
    voters: Vec<(u64, String)>,
    mut stop: watch::Receiver<bool>,
) {
    let lock = || driver.lock().unwrap_or_else(|p| p.into_inner());
    let mut connection: Option<(u64, TcpStream)> = None;
    let mut next_voter = 0usize;
    let mut correlation_id = 0i32;
    loop {
        if *stop.borrow() {
            return;
        }
        let (from, leader) = {
            let d = lock();
            if d.failed {
                return;
            }
            (d.core.next_index(), d.core.leader())
        };
        let target = match leader.and_then(|l| voters.iter().find(|v| v.0 == l)) {
            Some(v) => v,
            None => {
                next_voter = (next_voter + 1) % voters.len();
                &voters[next_voter]
            }
        };
        if connection.as_ref().map(|c| c.0) != Some(target.0) {
            match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&target.1)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    connection = Some((target.0, stream));
                }
                _ => {
                    tracing::debug!(voter = target.0, address = %target.1, "cannot reach metadata quorum voter");
                    lock().leader_unreachable();
                    connection = None;
                    pause(&mut stop).await;
                    continue;
                }
            }
        }
        let Some((_, stream)) = connection.as_mut() else { continue };
        correlation_id = correlation_id.wrapping_add(1);
        let fetch = ObserverFetch {
            observer_id: node_id,
            from_index: from,
            max_bytes: FETCH_MAX_BYTES,
            max_wait_ms: FETCH_MAX_WAIT.as_millis() as u32,
        };
        let answer = tokio::select! {
            _ = stop.changed() => return,
            a = tokio::time::timeout(FETCH_TIMEOUT, exchange(stream, correlation_id, &fetch)) => a,
        };
        match answer {
            Ok(Ok(chunk)) => {
                let d = Arc::clone(&driver);
                let _ = tokio::task::spawn_blocking(move || d.lock().unwrap_or_else(|p| p.into_inner()).receive(chunk))
                    .await;
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e,
                    _ => format!("no answer within {FETCH_TIMEOUT:?}"),
                };
                tracing::debug!(voter = target.0, "metadata fetch failed: {why}");
                lock().leader_unreachable();
                connection = None;
                pause(&mut stop).await;
            }
        }
    }
}

async fn pause(stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = tokio::time::sleep(RETRY_PAUSE) => {}
    }
}

async fn exchange(stream: &mut TcpStream, correlation_id: i32, fetch: &ObserverFetch) -> Result<ObserverChunk, String> {
    let mut body = Vec::with_capacity(20);
    encode_observer_fetch(fetch, &mut body);
    let frame = private_request_frame(STROM_OBSERVER_FETCH_API_KEY, correlation_id, &body);
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    decode_observer_chunk(&read_private_answer(stream, correlation_id, MAX_RAFT_MESSAGE_BYTES).await?)
}

/// Decodes an observer's fetch (the frame after its length prefix): correlation id and fetch.
pub fn decode_observer_fetch_frame(frame: &[u8]) -> Result<(i32, ObserverFetch), String> {
    let (correlation_id, body) = private_request_body(frame)?;
    Ok((correlation_id, strom_metadata::quorum::decode_observer_fetch(body)?))
}

/// The answer frame: length, correlation id, chunk.
pub fn encode_observer_answer(correlation_id: i32, chunk: &ObserverChunk) -> BytesMut {
    let mut body = Vec::new();
    encode_observer_chunk(chunk, &mut body);
    private_answer_frame(correlation_id, &body)
}
