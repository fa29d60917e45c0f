//! The storage crate's one error type. Variants carry the facts the broker needs to pick a Kafka
//! error code (`MESSAGE_TOO_LARGE`, `OUT_OF_ORDER_SEQUENCE_NUMBER`, `INVALID_PRODUCER_EPOCH`,
//! `OFFSET_OUT_OF_RANGE`, `CORRUPT_MESSAGE`, `KAFKA_STORAGE_ERROR`) and to write a useful sentence.

use std::io;
use std::path::PathBuf;

use strom_protocol::batch::BatchError;

/// Everything that can go wrong in a log. Disk trouble is `Io` or `Corrupt`; the rest are the
/// client's fault and map to specific Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file operation failed; `context` says which file and what we were doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An fsync failed: whatever the errno, the kernel may have dropped the dirty pages, so a
    /// later fsync succeeding proves nothing; the directory is not trusted any more.
    #[error("fsync {}: {source}", path.display())]
    Fsync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The partition's log directory failed earlier (JBOD): nothing in it is read or written.
    #[error("log directory {} is offline", path.display())]
    LogDirOffline { path: PathBuf },
    /// A file's content makes no sense and cannot be repaired automatically.
    #[error("corrupt file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max})")]
    MessageTooLarge { size: usize, max: u32 },
    /// An idempotent producer skipped or reordered sequence numbers.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, received {received}")]
    OutOfOrderSequence { producer_id: i64, expected: i32, received: i32 },
    /// A producer with an older epoch was fenced by a newer instance.
    #[error("producer {producer_id} has epoch {received}, older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, current: i16, received: i16 },
    /// A producer wrote outside its transaction: a non-transactional batch while one is open
    /// (Kafka's "Expected transactional write").
    #[error("producer {producer_id}: {why}")]
    InvalidTxnState { producer_id: i64, why: String },
    /// An end-of-transaction marker from a coordinator older than the last one seen.
    #[error("marker for producer {producer_id} from coordinator epoch {received}, older than {current}")]
    TransactionCoordinatorFenced { producer_id: i64, current: i32, received: i32 },
    /// The requested offset lies outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { requested: i64, log_start: i64, log_end: i64 },
    /// The bytes handed to `append` are not valid batches.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
}

/// Adds "what we were doing with which file" to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io { context: what(), source })
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
