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

pub mod publisher;
pub mod quorum;
pub mod transport;

use crate::errors::KafkaError;
use std::sync::{Arc, Mutex, RwLock};
use strom_metadata::controller::ControllerSettings;
use strom_metadata::{Controller, MetadataError, MetadataImage, MetadataRecord, Proposal};
use strom_protocol::ResponseError;
use tokio::sync::{mpsc, watch};

/// Records the quorum committed, with the metadata offset after the last of them.
pub struct CommittedRecords {
    pub offset: u64,
    pub records: Vec<MetadataRecord>,
}

pub struct MetadataStore {
    /// The controller, used one operation at a time.
    controller: tokio::sync::Mutex<Controller>,
    quorum: quorum::QuorumNode,
    image: RwLock<Arc<MetadataImage>>,
    /// Taken by the publisher when the broker starts.
    committed_rx: Mutex<Option<mpsc::UnboundedReceiver<CommittedRecords>>>,
    applied: watch::Sender<u64>,
}

impl MetadataStore {
    /// Starts the metadata quorum and returns once the image holds everything committed: the
    /// image the broker starts from.
    pub fn open(
        data_dir: &std::path::Path,
        settings: ControllerSettings,
        voters: Vec<u64>,
        transport: transport::RaftTransport,
    ) -> Result<MetadataStore, MetadataError> {
        let (committed, rx) = mpsc::unbounded_channel();
        let started = quorum::start(data_dir, settings.node_id, voters, transport, committed)?;
        let offset = started.image.offset;
        Ok(MetadataStore {
            controller: tokio::sync::Mutex::new(Controller::new(settings)),
            quorum: started.node,
            image: RwLock::new(Arc::new(started.image)),
            committed_rx: Mutex::new(Some(rx)),
            applied: watch::Sender::new(offset),
        })
    }

    /// The current image. Cheap: one `Arc` clone.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs one controller operation on the current image, commits its records and returns its
    /// answer once this broker's publisher has applied them (so a Metadata request that follows
    /// sees the change). Operations that propose no records (validation) return at once.
    pub async fn write<T>(
        &self,
        op: impl FnOnce(&mut Controller, &MetadataImage) -> Result<Proposal<T>, MetadataError>,
    ) -> Result<T, KafkaError> {
        let mut controller = self.controller.lock().await;
        let image = self.image();
        let Proposal { records, value } = op(&mut controller, &image)?;
        if records.is_empty() {
            return Ok(value);
        }
        let offset = self.quorum.propose(&records).await.map_err(|e| match e {
            quorum::ProposeError::NotController => KafkaError::new(ResponseError::NotController, e.to_string()),
            quorum::ProposeError::Stopped(_) => KafkaError::new(ResponseError::UnknownServerError, e.to_string()),
        })?;
        controller.committed(&records);
        self.applied
            .subscribe()
            .wait_for(|applied| *applied >= offset)
            .await
            .map_err(|_| KafkaError::new(ResponseError::UnknownServerError, "the broker is shutting down"))?;
        Ok(value)
    }

    /// Hands a Raft message from another controller to this node's quorum.
    pub fn step(&self, message: strom_metadata::quorum::RaftMessage) {
        self.quorum.step(message);
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
