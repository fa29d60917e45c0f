//! The one place where Strom's internal errors become Kafka error codes (and, where the API has
//! a message field, a human sentence).

use strom_metadata::MetadataError;
use strom_protocol::batch::BatchError;
use strom_protocol::ResponseError;
use strom_storage::StorageError;

/// A Kafka error code with the sentence to send where the API has an error message field.
#[derive(Debug, Clone)]
pub struct KafkaError {
    pub code: ResponseError,
    pub message: Option<String>,
}

impl KafkaError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        KafkaError { code, message: Some(message.into()) }
    }

    pub fn code(&self) -> i16 {
        self.code.code()
    }
}

impl From<ResponseError> for KafkaError {
    fn from(code: ResponseError) -> Self {
        KafkaError { code, message: None }
    }
}

impl From<MetadataError> for KafkaError {
    fn from(e: MetadataError) -> Self {
        let code = match &e {
            MetadataError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            MetadataError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            MetadataError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            MetadataError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            MetadataError::InvalidConfig(_) => ResponseError::InvalidConfig,
            MetadataError::BrokerNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            MetadataError::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
            MetadataError::InvalidRequest(_) => ResponseError::InvalidRequest,
            MetadataError::TopicDeletionDisabled => ResponseError::TopicDeletionDisabled,
            MetadataError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            MetadataError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            MetadataError::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
            MetadataError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
            MetadataError::Io { .. } | MetadataError::Corrupt { .. } => {
                tracing::error!("metadata log failure: {e}");
                ResponseError::KafkaStorageError
            }
        };
        KafkaError::new(code, e.to_string())
    }
}

impl From<StorageError> for KafkaError {
    fn from(e: StorageError) -> Self {
        let code = match &e {
            StorageError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            StorageError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
            StorageError::TransactionCoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
            StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            StorageError::InvalidBatch(_) => ResponseError::CorruptMessage,
            // Logged once, when the directory failed.
            StorageError::LogDirOffline { .. } => ResponseError::KafkaStorageError,
            _ => {
                tracing::error!("storage failure: {e}");
                ResponseError::KafkaStorageError
            }
        };
        KafkaError::new(code, e.to_string())
    }
}

impl From<BatchError> for KafkaError {
    fn from(e: BatchError) -> Self {
        KafkaError::new(ResponseError::CorruptMessage, e.to_string())
    }
}
