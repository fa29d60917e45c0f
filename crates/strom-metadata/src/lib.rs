//! Cluster metadata, kept the KRaft way: an append-only log of records applied in order to an
//! in-memory image.
//!
//! ```text
//!   admin request ─▶ Controller::create_topic(..) ── validates ──▶ Vec<MetadataRecord>
//!                          │                                          │
//!                          ▼                                          ▼
//!                  MetadataLog::append (fsync) ─────────────▶ MetadataImage::apply (new Arc)
//! ```
//!
//! The controller is a synchronous state machine without network I/O. In single-node mode the
//! records go to a local file ([`MetadataLog`]); a later cluster mode replicates the very same
//! records through a Raft quorum, and every broker builds its image by applying them.

pub mod broker_config;
pub mod broker_lifecycle;
pub mod controller;
pub mod election;
pub mod error;
pub mod image;
pub mod log;
pub mod operation;
pub mod partition_change;
pub mod placement;
pub mod quorum;
pub mod reassignment;
pub mod records;
pub mod sim_rng;
pub mod topic_config;

pub use controller::{Controller, CreateTopicSpec, Proposal};
pub use error::MetadataError;
pub use image::{BrokerImage, MetadataImage, PartitionImage, TopicImage};
pub use operation::{ControllerOp, OpAnswer, QuorumDescription, VoterProgress};
pub use partition_change::IsrChange;
pub use records::{BrokerEndpoint, MetadataRecord};
