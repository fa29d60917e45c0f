//! The broker's handle on cluster metadata.
//!
//! ```text
//!  handler ─▶ MetadataStore::write(op) ─▶ Controller (image → Proposal: records + answer)
//!                   │ records
//!                   ▼
//!             quorum (single node: the local metadata log, fsynced)
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

use crate::errors::KafkaError;
use std::sync::{Arc, Mutex, RwLock};
use strom_metadata::controller::ControllerSettings;
use strom_metadata::log::MetadataLog;
use strom_metadata::{Controller, MetadataError, MetadataImage, MetadataRecord, Proposal};
use strom_protocol::ResponseError;
use tokio::sync::{mpsc, watch};

/// Records the quorum committed, with the metadata offset after the last of them.
pub struct CommittedRecords {
    pub offset: u64,
    pub records: Vec<MetadataRecord>,
}

/// The controller and the local log it writes, used one operation at a time.
struct Writer {
    controller: Controller,
    log: Arc<Mutex<MetadataLog>>,
    /// Metadata offset after the last record written.
    offset: u64,
}

pub struct MetadataStore {
    writer: tokio::sync::Mutex<Writer>,
    image: RwLock<Arc<MetadataImage>>,
    committed: mpsc::UnboundedSender<CommittedRecords>,
    /// Taken by the publisher when the broker starts.
    committed_rx: Mutex<Option<mpsc::UnboundedReceiver<CommittedRecords>>>,
    applied: watch::Sender<u64>,
}

impl MetadataStore {
    /// Opens the metadata log and replays it into the image the broker starts from.
    pub fn open(data_dir: &std::path::Path, settings: ControllerSettings) -> Result<MetadataStore, MetadataError> {
        let (log, image) = MetadataLog::open(data_dir)?;
        let offset = image.applied_records;
        let (committed, rx) = mpsc::unbounded_channel();
        Ok(MetadataStore {
            writer: tokio::sync::Mutex::new(Writer {
                controller: Controller::new(settings),
                log: Arc::new(Mutex::new(log)),
                offset,
            }),
            image: RwLock::new(Arc::new(image)),
            committed,
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
        let mut writer = self.writer.lock().await;
        let image = self.image();
        let Proposal { records, value } = op(&mut writer.controller, &image)?;
        if records.is_empty() {
            return Ok(value);
        }
        let log = Arc::clone(&writer.log);
        let to_write = records.clone();
        tokio::task::spawn_blocking(move || log.lock().unwrap_or_else(|p| p.into_inner()).append(&to_write))
            .await
            .map_err(|e| {
            KafkaError::new(ResponseError::UnknownServerError, format!("metadata write task failed: {e}"))
        })??;
        writer.controller.committed(&records);
        writer.offset += records.len() as u64;
        let offset = writer.offset;
        if self.committed.send(CommittedRecords { offset, records }).is_err() {
            return Err(KafkaError::new(ResponseError::UnknownServerError, "the broker is shutting down"));
        }
        self.applied
            .subscribe()
            .wait_for(|applied| *applied >= offset)
            .await
            .map_err(|_| KafkaError::new(ResponseError::UnknownServerError, "the broker is shutting down"))?;
        Ok(value)
    }

    /// The channel of committed records; the publisher takes it once.
    pub(crate) fn take_committed(&self) -> Option<mpsc::UnboundedReceiver<CommittedRecords>> {
        self.committed_rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Installs the image the publisher built and announces how far it got. Only the publisher
    /// calls this.
    pub(crate) fn publish(&self, image: Arc<MetadataImage>) {
        let offset = image.applied_records;
        *self.image.write().unwrap_or_else(|p| p.into_inner()) = image;
        self.applied.send_modify(|applied| {
            assert!(offset > *applied, "the applied metadata offset only grows ({} → {offset})", *applied);
            *applied = offset;
        });
    }
}
