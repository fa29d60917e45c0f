//! The broker's handle on cluster metadata.
//!
//! ```text
//!  handler ─▶ MetadataStore::write(op) ─▶ Controller (image → Proposal: records + answer)
//!                   │ records
//!                   ▼
//!             quorum (Raft; today one voter, this node: quorum::QuorumNode)
//!                   │ committed records, in order
//!                   ▼
//!             publisher task ─▶ image ─▶ ReplicaManager ─▶ swap image ─▶ applied offset
//!                   │
//!  handler ◀── answered once the applied offset covers its records
//! ```
//!
//! One publisher applies every committed record; no handler changes the image or the hosted
//! partitions itself. Operations are serialised, and each runs on an image that includes the
//! records of the one before, so the controller validates against everything committed.

pub mod forward;
pub mod member;
pub mod observer;
mod pending_commands;
pub mod publisher;
pub mod quorum;
pub mod transport;

use crate::errors::KafkaError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use strom_metadata::controller::ControllerSettings;
use strom_metadata::{
    Controller, ControllerOp, MetadataError, MetadataImage, MetadataRecord, OpAnswer, Proposal, QuorumDescription,
    VoterProgress,
};
use strom_protocol::ResponseError;
use tokio::sync::{mpsc, watch};

/// Records the quorum committed, with the metadata offset after the last of them.
pub struct CommittedRecords {
    pub offset: u64,
    pub records: Vec<MetadataRecord>,
    /// Set when this node's log was replaced by a snapshot from a voter (it had fallen behind
    /// the log's compacted prefix): the image to start from, `records` then empty.
    pub snapshot: Option<Arc<MetadataImage>>,
}

/// How long a controller operation waits for a leader, the active controller's answer and this
/// broker's catching up, in all.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Waits until the publisher has applied `offset` (forever if it never does: the publisher only
/// stops with the broker).
async fn wait_applied(mut applied: watch::Receiver<u64>, offset: u64) {
    let _ = applied.wait_for(|a| *a >= offset).await;
}

pub struct MetadataStore {
    /// Controller listener address of each voter, for forwarding.
    controllers: HashMap<u64, String>,
    /// The controller, used one operation at a time.
    controller: tokio::sync::Mutex<Controller>,
    quorum: member::QuorumMember,
    image: RwLock<Arc<MetadataImage>>,
    /// Taken by the publisher when the broker starts.
    committed_rx: Mutex<Option<mpsc::UnboundedReceiver<CommittedRecords>>>,
    applied: watch::Sender<u64>,
}

impl MetadataStore {
    /// Starts this node's part in the metadata quorum and returns once the image holds
    /// everything this node knows to be committed: the image the broker starts from. A node
    /// outside `voters` is an observer (given no transport: it only fetches).
    pub fn open(
        data_dir: &std::path::Path,
        settings: ControllerSettings,
        voters: Vec<(u64, String)>,
        transport: transport::RaftTransport,
    ) -> Result<MetadataStore, MetadataError> {
        let (committed, rx) = mpsc::unbounded_channel();
        let ids: Vec<u64> = voters.iter().map(|(id, _)| *id).collect();
        let (member, image) = if ids.contains(&(settings.node_id as u64)) {
            let started = quorum::start(data_dir, settings.node_id, ids, transport, committed)?;
            (member::QuorumMember::Voter(started.node), started.image)
        } else {
            let (node, image) = observer::start(data_dir, settings.node_id, voters.clone(), committed)?;
            (member::QuorumMember::Observer(node), image)
        };
        let offset = image.offset;
        Ok(MetadataStore {
            controllers: voters.into_iter().collect(),
            controller: tokio::sync::Mutex::new(Controller::new(settings)),
            quorum: member,
            image: RwLock::new(Arc::new(image)),
            committed_rx: Mutex::new(Some(rx)),
            applied: watch::Sender::new(offset),
        })
    }

    /// The current image. Cheap: one `Arc` clone.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs one controller operation and returns its answer once this broker's publisher has
    /// applied its records (so a Metadata request that follows, on this broker, sees the change).
    /// On the active controller the operation runs here; elsewhere it is forwarded to it. While
    /// the quorum has no leader, or leadership moves, the operation is retried for up to
    /// [`WRITE_TIMEOUT`]; then the client gets NOT_CONTROLLER, which Kafka clients retry.
    pub async fn write(&self, op: ControllerOp) -> Result<OpAnswer, KafkaError> {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        loop {
            let status = self.quorum.status();
            let outcome = match status.leader {
                _ if status.is_leader => self.write_here(op.clone()).await,
                Some(leader) => match self.controllers.get(&leader) {
                    Some(address) => forward::forward(address, &op, WRITE_TIMEOUT).await,
                    None => Err(KafkaError::new(
                        ResponseError::NotController,
                        format!("no address for controller {leader}"),
                    )),
                },
                None => Err(KafkaError::new(ResponseError::NotController, "the metadata quorum has no leader yet")),
            };
            match outcome {
                Err(e) if e.code == ResponseError::NotController && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
                Ok((answer, offset)) => {
                    let caught_up = self.applied.subscribe();
                    let wait = tokio::time::timeout_at(deadline, wait_applied(caught_up, offset));
                    if wait.await.is_err() {
                        tracing::warn!(offset, "answering a controller operation before this broker applied it");
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// Runs an operation on this node, which must be the active controller with every committed
    /// record applied. Returns the answer and the metadata offset of its records. Also serves
    /// operations forwarded by other brokers.
    pub async fn write_here(&self, op: ControllerOp) -> Result<(OpAnswer, u64), KafkaError> {
        let not_controller = || KafkaError::new(ResponseError::NotController, "this node is not the active controller");
        if matches!(op, ControllerOp::DescribeQuorum) {
            let description = self.describe_quorum_here().ok_or_else(not_controller)?;
            return Ok((OpAnswer::Quorum(description), 0));
        }
        let mut controller = self.controller.lock().await;
        let status = self.quorum.status();
        if !status.is_leader || !status.committed_in_current_term {
            return Err(not_controller());
        }
        // A new leader acts only on an image holding everything committed before its term.
        wait_applied(self.applied.subscribe(), status.commit_index).await;
        let image = self.image();
        let Proposal { records, value } = controller.run(&image, op, crate::server::now_ms())?;
        if records.is_empty() {
            return Ok((value, image.offset));
        }
        let offset = self.quorum.propose(&records).await.map_err(|e| match e {
            quorum::ProposeError::NotController => not_controller(),
            quorum::ProposeError::Stopped(_) => KafkaError::new(ResponseError::UnknownServerError, e.to_string()),
        })?;
        controller.committed(&records);
        // The next operation must see these records.
        wait_applied(self.applied.subscribe(), offset).await;
        Ok((value, offset))
    }

    /// The quorum as this node sees it when it is the leader: each voter's log end as its Raft
    /// match index (the leader's own: its last index; offsets here are Raft indexes throughout),
    /// when it was last heard from, and when last caught up (heard while holding every committed
    /// entry).
    fn describe_quorum_here(&self) -> Option<QuorumDescription> {
        let status = self.quorum.status();
        if !status.is_leader {
            return None;
        }
        let heard = self.quorum.last_heard();
        let now = crate::server::now_ms();
        let voters = status
            .voter_match_index
            .iter()
            .map(|&(id, matched)| {
                let own = id == status.node_id;
                let last_fetch_ms = if own { -1 } else { heard.get(&id).copied().unwrap_or(-1) };
                let caught_up = own || matched >= status.commit_index;
                VoterProgress {
                    id: id as i32,
                    log_end_offset: if own { status.last_index as i64 } else { matched as i64 },
                    last_fetch_ms,
                    last_caught_up_ms: if own {
                        now
                    } else if caught_up {
                        last_fetch_ms
                    } else {
                        -1
                    },
                }
            })
            .collect();
        Some(QuorumDescription {
            leader_id: status.node_id as i32,
            leader_epoch: status.term as i32,
            high_watermark: status.commit_index as i64,
            voters,
            observers: self
                .quorum
                .observer_progress()
                .into_iter()
                .map(|(id, end, at)| VoterProgress {
                    id: id as i32,
                    log_end_offset: end as i64,
                    last_fetch_ms: at,
                    last_caught_up_ms: if end >= status.commit_index { at } else { -1 },
                })
                .collect(),
        })
    }

    /// On the active controller: brokers silent for more than `silence_ms`, with their endpoints.
    pub async fn silent_brokers(&self, silence_ms: i64) -> Vec<(i32, Vec<strom_metadata::BrokerEndpoint>)> {
        let status = self.quorum.status();
        if !status.is_leader || !status.committed_in_current_term {
            return Vec::new();
        }
        let controller = self.controller.lock().await;
        // Endpoints as committed: a broker that registered again elsewhere is probed there.
        wait_applied(self.applied.subscribe(), status.commit_index).await;
        controller.silent_brokers(&self.image(), crate::server::now_ms(), silence_ms)
    }

    /// Hands a Raft message from another controller to this node's quorum.
    pub fn step(&self, message: strom_metadata::quorum::RaftMessage) {
        self.quorum.step(message);
    }

    /// Serves an observer's fetch of the committed log (voters only).
    pub async fn serve_observer(
        &self,
        fetch: strom_metadata::quorum::ObserverFetch,
    ) -> Option<strom_metadata::quorum::ObserverChunk> {
        self.quorum.serve_observer(fetch).await
    }

    /// This node's view of the quorum: the leader is the active controller, the term its epoch.
    pub fn quorum_status(&self) -> strom_metadata::quorum::QuorumStatus {
        self.quorum.status()
    }

    /// Stops the metadata quorum (at shutdown, after the listeners).
    pub fn stop(&self) {
        self.quorum.stop();
    }

    /// The channel of committed records; the publisher takes it once.
    pub(crate) fn take_committed(&self) -> Option<mpsc::UnboundedReceiver<CommittedRecords>> {
        self.committed_rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Installs the image the publisher built and announces how far it got. Only the publisher
    /// calls this.
    pub(crate) fn publish(&self, image: Arc<MetadataImage>) {
        let offset = image.offset;
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = image;
        self.applied.send_modify(|applied| {
            assert!(offset > *applied, "the applied metadata offset only grows ({} → {offset})", *applied);
            *applied = offset;
        });
    }
}
