//! The metadata quorum: the controllers keep the metadata log consistent with Raft, using
//! TiKV's `raft` crate (see docs/decisions.md, "The metadata quorum").
//!
//! ```text
//!  tick / peer message / proposal ──▶ QuorumCore (RawNode + MemoryLog, no I/O)
//!                                          │ poll()
//!                                          ▼
//!        Persist(batch) ─▶ Send(messages) ─▶ RestoreSnapshot / Apply(committed entries)
//!        (durable first)   (to peers)        (to the metadata image, in log order)
//! ```
//!
//! The core is the same in a running node (files and TCP execute the commands) and in the
//! deterministic simulation of the tests (a simulated disk, network and clock do). The voter set
//! is static (`controller.quorum.voters`); brokers that are not voters (observers) follow the
//! committed log by fetching it from the voters instead of taking part in Raft (`observer.rs`).

mod core;
mod durable;
mod logger;
mod observer;
mod storage;
mod wire;

#[cfg(test)]
mod simulation;

pub use self::core::{Committed, PersistBatch, QuorumCommand, QuorumCore, QuorumError, QuorumSettings, QuorumStatus};
pub use durable::{DurableQuorumLog, QUORUM_DIR};
pub use observer::{ObserverChunk, ObserverContent, ObserverCore, ObserverFetch};
pub use raft::eraftpb::{HardState, Message as RaftMessage, Snapshot};
pub use storage::PersistentState;
pub use wire::{
    decode_message, decode_observer_chunk, decode_observer_fetch, encode_message, encode_observer_chunk,
    encode_observer_fetch,
};
