//! This node's part in the metadata quorum: a voter (a controller, taking part in Raft) or an
//! observer (a broker-only node following the committed log). The metadata store talks to
//! either through this one type.

use super::observer::ObserverNode;
use super::quorum::{ProposeError, QuorumNode};
use std::collections::HashMap;
use strom_metadata::quorum::{ObserverChunk, ObserverFetch, QuorumStatus, RaftMessage};
use strom_metadata::MetadataRecord;

pub enum QuorumMember {
    Voter(QuorumNode),
    Observer(ObserverNode),
}

impl QuorumMember {
    pub fn status(&self) -> QuorumStatus {
        match self {
            QuorumMember::Voter(v) => v.status(),
            QuorumMember::Observer(o) => o.status(),
        }
    }

    /// Proposes records; only the leader, a voter, accepts.
    pub async fn propose(&self, records: &[MetadataRecord]) -> Result<u64, ProposeError> {
        match self {
            QuorumMember::Voter(v) => v.propose(records).await,
            QuorumMember::Observer(_) => Err(ProposeError::NotController),
        }
    }

    /// A Raft message from a controller; an observer takes no part in Raft and drops it.
    pub fn step(&self, message: RaftMessage) {
        match self {
            QuorumMember::Voter(v) => v.step(message),
            QuorumMember::Observer(_) => tracing::debug!(from = message.from, "an observer ignores Raft messages"),
        }
    }

    pub fn last_heard(&self) -> HashMap<u64, i64> {
        match self {
            QuorumMember::Voter(v) => v.last_heard(),
            QuorumMember::Observer(_) => HashMap::new(),
        }
    }

    /// Observers that fetched from this voter: (id, log end, last fetch ms).
    pub fn observer_progress(&self) -> Vec<(u64, u64, i64)> {
        match self {
            QuorumMember::Voter(v) => v.observer_progress(),
            QuorumMember::Observer(_) => Vec::new(),
        }
    }

    /// Answers an observer's fetch; None on an observer (only voters serve the log).
    pub async fn serve_observer(&self, fetch: ObserverFetch) -> Option<ObserverChunk> {
        match self {
            QuorumMember::Voter(v) => v.serve_observer(fetch).await,
            QuorumMember::Observer(_) => None,
        }
    }

    pub fn stop(&self) {
        match self {
            QuorumMember::Voter(v) => v.stop(),
            QuorumMember::Observer(o) => o.stop(),
        }
    }
}
