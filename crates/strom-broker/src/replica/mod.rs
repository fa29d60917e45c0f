//! Partition replicas hosted by this broker: each partition's log and replica state (leader or
//! follower, ISR, high watermark), the manager that keeps the set of hosted partitions in line
//! with the metadata image, the replica fetchers that copy leaders' logs to followers, and the
//! ISR task that proposes ISR changes to the controller.
//!
//! On a single node this broker leads every partition and is its only replica, so the high
//! watermark is the log end offset as soon as an append returns.

pub mod cleaner;
mod divergence;
pub mod fetcher;
mod follower;
pub mod isr;
pub mod log_config;
mod manager;
mod partition;
mod partition_flush;
pub mod partition_metadata;
pub mod quota;
pub mod read_replica;
pub mod state;

pub use follower::{FetchPosition, LeaderProgress};
pub use log_config::log_config_for;
pub use manager::{Reconciled, ReplicaManager};
pub use partition::{Partition, Progress, ReadLimit};
#[cfg(test)]
mod simulation;
pub use state::RoleChange;
