//! The Strom broker: accepts Kafka clients, dispatches each request to its API handler, and
//! drives the storage engine and the metadata controller.
//!
//! ```text
//!  TcpListener ─▶ net::connection (one task per client: read frame, dispatch, write response)
//!                        │
//!                        ▼
//!                  dispatch ─▶ handlers/<api>.rs ─▶ replica::ReplicaManager ─▶ strom-storage Log
//!                                               └─▶ metadata::MetadataStore ─▶ strom-metadata Controller
//!  metadata::publisher: the one task that applies committed metadata records to the image and
//!                       the hosted partitions
//!  purgatory: fetches wait for new data (watch channel bumped by every append)
//! ```
//!
//! Handlers stay thin: parse, call the core, build the response. Error codes are chosen in one
//! place, [`errors`].

pub mod config;
pub mod dispatch;
pub mod errors;
pub mod fault_injection;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod lifecycle;
pub mod meta_properties;
pub mod metadata;
pub mod net;
pub mod purgatory;
pub mod replica;
pub mod server;
pub mod txn;

pub use config::BrokerConfig;
pub use server::{start, Broker, BrokerHandle, StartError};
/// For the binary's runtime hooks: an fsync on a marked (async worker) thread is refused.
pub use strom_storage::mark_async_worker;
