//! Errors of the metadata layer. Each admin-facing variant corresponds to one Kafka error code; the
//! broker maps them in one place.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("This server does not host this topic: {0}")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Broker {0} is not registered.")]
    BrokerNotRegistered(i32),
    #[error("Broker {broker_id} has epoch {expected}, the request carried {got}.")]
    StaleBrokerEpoch { broker_id: i32, expected: i64, got: i64 },
    #[error("This broker is not the partition's leader (the leader is {leader}).")]
    NotLeader { leader: i32 },
    #[error("The leader epoch {got} is not the partition's current one ({current}).")]
    FencedLeaderEpoch { current: i32, got: i32 },
    #[error("The partition epoch {got} is not the partition's current one ({current}).")]
    InvalidUpdateVersion { current: i32, got: i32 },
    #[error("{0}")]
    IneligibleReplica(String),
    #[error("Topic deletion is disabled (delete.topic.enable=false).")]
    TopicDeletionDisabled,
    #[error("metadata log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("metadata log {path} is corrupt at line {line}: {reason}")]
    Corrupt { path: PathBuf, line: usize, reason: String },
}

impl MetadataError {
    /// A write of the metadata log that failed for want of space (ENOSPC, EDQUOT): the quorum
    /// files are as they were before it, and the same write can be tried again once space is
    /// freed.
    pub fn is_disk_full(&self) -> bool {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        matches!(self, MetadataError::Io { source, .. } if matches!(source.raw_os_error(), Some(ENOSPC | EDQUOT)))
    }
}
