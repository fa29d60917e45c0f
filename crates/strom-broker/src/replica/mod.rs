//! Partition replicas hosted by this broker: each partition's log, its high watermark and leader
//! epoch, and the manager that keeps the set of hosted partitions in line with the metadata image.
//!
//! In single-node mode this broker leads every partition and is the only ISR member, so the high
//! watermark is the log end offset as soon as an append returns.

pub mod log_config;
mod manager;
mod partition;
pub mod partition_metadata;
pub mod state;

pub use log_config::log_config_for;
pub use manager::ReplicaManager;
pub use partition::Partition;
