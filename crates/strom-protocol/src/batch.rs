//! A zero-copy view of Kafka v2 record batches (magic 2), the unit that producers send, the log
//! stores and consumers fetch.
//!
//! The broker never re-encodes a batch: it checks the header and the CRC, overwrites `baseOffset`
//! and `partitionLeaderEpoch` in place (both lie before the CRC'd range), and stores the bytes as
//! they came. Everything here therefore works on plain byte slices.
//!
//! ```text
//!  offset  field                 type   covered by CRC
//!   0      baseOffset            i64    no   ◀─ rewritten by the leader
//!   8      batchLength           i32    no   (bytes after this field)
//!  12      partitionLeaderEpoch  i32    no   ◀─ rewritten by the leader
//!  16      magic                 i8     no   (must be 2)
//!  17      crc                   u32    no   (CRC-32C of bytes 21..end)
//!  21      attributes            i16    yes  compression:3 | timestampType:1 | transactional:1 | control:1
//!  23      lastOffsetDelta       i32    yes
//!  27      baseTimestamp         i64    yes
//!  35      maxTimestamp          i64    yes
//!  43      producerId            i64    yes
//!  51      producerEpoch         i16    yes
//!  53      baseSequence          i32    yes
//!  57      recordsCount          i32    yes
//!  61      records…                     yes
//! ```

mod builder;
mod records;
mod rewrite;
#[doc(hidden)]
pub mod testing;
mod writer;

pub use builder::{BatchRecord, BatchSpec};
pub use records::{Record, RecordHeader, RecordIter};
pub use rewrite::{rewrite_batch, KeptRecord, DELETE_HORIZON_BIT};
pub use writer::{put_varlong, varlong_size, BatchFields, BatchWriter};

/// Size of the fixed v2 batch header; the records start right after it.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before and including `batchLength`: a batch occupies `LOG_OVERHEAD + batchLength` bytes.
pub const LOG_OVERHEAD: usize = 12;
/// The only record format Strom accepts (Kafka 0.11+ clients all speak it).
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch sent without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch sent without idempotence.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch sent without idempotence.
pub const NO_SEQUENCE: i32 = -1;
/// Timestamp meaning "none", as in Kafka.
pub const NO_TIMESTAMP: i64 = -1;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
/// `batchLength` of a batch without records: everything after the length field up to the records.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why bytes are not a valid v2 batch. The broker maps these to `CORRUPT_MESSAGE` /
/// `INVALID_RECORD` / `UNSUPPORTED_COMPRESSION_TYPE`; storage recovery treats any of them as the
/// end of the valid prefix of a segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the announced `batchLength` require (a torn write or a
    /// cut-off request).
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// Not a v2 batch (v0/v1 message sets are not supported).
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    BadMagic(i8),
    /// The bytes changed since the producer computed the CRC.
    #[error("record batch CRC mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    /// `batchLength` smaller than a header or negative.
    #[error("invalid record batch length {0}")]
    BadLength(i32),
    /// Compression codec bits 5..7 are not defined by Kafka.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// A produce request's records field held no batch at all.
    #[error("produce request contains no record batch")]
    Empty,
    /// Control batches are written by the transaction coordinator, never by clients.
    #[error("clients may not produce control batches")]
    ControlBatchFromClient,
    /// Any other structural problem, described for the client's error message.
    #[error("malformed record batch: {0}")]
    Malformed(String),
}

/// The compression codec of a batch (attribute bits 0..2). The broker stores batches compressed as
/// they came; only readers that need individual records (timestamp lookup) care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Records stored as they are.
    None,
    /// Codec 1.
    Gzip,
    /// Codec 2 (Kafka's framed snappy).
    Snappy,
    /// Codec 3 (LZ4 frame format).
    Lz4,
    /// Codec 4 (needs produce v7+).
    Zstd,
}

impl Compression {
    /// Decodes the codec bits; `None` for the undefined values 5..7.
    pub fn from_bits(bits: u8) -> Option<Compression> {
        match bits {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Whether record timestamps were set by the producer or overwritten by the broker on append
/// (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer (attribute bit 3 clear).
    CreateTime,
    /// Set by the broker on append (attribute bit 3 set).
    LogAppendTime,
}

/// The parsed fixed header of one v2 batch. Cheap to copy, so that the log can keep it beside the
/// byte range it describes while the bytes themselves stay untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record; assigned by the leader on append.
    pub base_offset: i64,
    /// Bytes after the length field; the batch occupies `LOG_OVERHEAD + batch_length` bytes.
    pub batch_length: i32,
    /// Leader epoch at append time; used by followers to find divergence after a leader change.
    pub partition_leader_epoch: i32,
    /// Always 2 once parsed.
    pub magic: i8,
    /// CRC-32C of bytes 21..end, as stored in the batch.
    pub crc: u32,
    /// Raw attribute bits; see the helper methods.
    pub attributes: i16,
    /// `last_offset() - base_offset`; also `records_count - 1` for batches fresh from a producer.
    pub last_offset_delta: i32,
    /// Timestamp of the first record; record timestamps are deltas from it.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for LogAppendTime); drives the time index.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch fencing zombie producers, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, for duplicate and gap detection, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch (may be less than `last_offset_delta + 1` after compaction).
    pub records_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses the fixed header at the start of `bytes`. Only the header must be present; whether
    /// the whole batch is there is the caller's (or [`BatchIter`]'s) concern, so that the log can
    /// read just 61 bytes to skip a batch.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() <= MAGIC_AT {
            return Err(BatchError::Truncated { needed: BATCH_HEADER_LEN, available: bytes.len() });
        }
        let magic = bytes[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated { needed: BATCH_HEADER_LEN, available: bytes.len() });
        }
        let batch_length = be_i32(bytes, BATCH_LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength(batch_length));
        }
        let attributes = be_i16(bytes, ATTRIBUTES_AT);
        let codec = (attributes & COMPRESSION_MASK) as u8;
        if Compression::from_bits(codec).is_none() {
            return Err(BatchError::UnknownCompression(codec));
        }
        let header = BatchHeader {
            base_offset: be_i64(bytes, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: be_i32(bytes, LEADER_EPOCH_AT),
            magic,
            crc: be_u32(bytes, CRC_AT),
            attributes,
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            records_count: be_i32(bytes, 57),
        };
        if header.last_offset_delta < 0 {
            return Err(BatchError::Malformed(format!("negative lastOffsetDelta {}", header.last_offset_delta)));
        }
        if header.records_count < 0 {
            return Err(BatchError::Malformed(format!("negative recordsCount {}", header.records_count)));
        }
        Ok(header)
    }

    /// The 61 header bytes this header describes, as they go into a segment file.
    pub fn to_bytes(&self) -> [u8; BATCH_HEADER_LEN] {
        let mut b = [0u8; BATCH_HEADER_LEN];
        b[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b[16] = self.magic as u8;
        b[17..21].copy_from_slice(&self.crc.to_be_bytes());
        b[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        b[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        b[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        b[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        b[57..61].copy_from_slice(&self.records_count.to_be_bytes());
        b
    }

    /// Names `codec` in the attribute bits (the records must be compressed with it).
    pub fn set_compression(&mut self, codec: Compression) {
        self.attributes = (self.attributes & !COMPRESSION_MASK) | codec as i16;
    }

    /// Kafka's `setMaxTimestamp(LOG_APPEND_TIME, now)`: the batch is marked LogAppendTime, its
    /// max timestamp (which every record then reports) becomes `now_ms`, and the CRC is computed
    /// again over the new header fields and the unchanged `records` (the batch's bytes after its
    /// 61-byte header). The records themselves are neither decoded nor re-encoded.
    pub fn set_log_append_time(&mut self, now_ms: i64, records: &[u8]) {
        self.attributes |= TIMESTAMP_TYPE_BIT;
        self.max_timestamp = now_ms;
        let header = self.to_bytes();
        self.crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..]), records);
    }

    /// The codec the records are compressed with (validated by `parse`).
    pub fn compression(&self) -> Compression {
        Compression::from_bits((self.attributes & COMPRESSION_MASK) as u8).unwrap_or(Compression::None)
    }

    /// Whether record timestamps are create times or the broker's append time.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction: invisible to read_committed consumers until its commit marker.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// KIP-534: the delete horizon a log cleaner recorded in the batch (its base timestamp,
    /// when attribute bit 6 says so), after which its tombstones may be removed.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & rewrite::DELETE_HORIZON_BIT != 0).then_some(self.base_timestamp)
    }

    /// A transaction marker (commit/abort) rather than user data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Offset of the last record (inclusive); the next batch starts after it.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset the next batch will get: `last_offset() + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Number of records, as announced in the header.
    pub fn record_count(&self) -> i32 {
        self.records_count
    }

    /// Whether the batch comes from an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the last record, wrapping to 0 after `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Adds `increment` to a producer sequence with Kafka's wrap-around (after `i32::MAX` comes 0).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence < 0 {
        return sequence;
    }
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Checks the CRC-32C of the batch at the start of `batch` (which must hold the whole batch;
/// extra bytes after it are ignored).
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let size = header.total_size();
    if batch.len() < size {
        return Err(BatchError::Truncated { needed: size, available: batch.len() });
    }
    let actual = crc32c::crc32c(&batch[ATTRIBUTES_AT..size]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch { expected: header.crc, actual });
    }
    Ok(())
}

/// Computes the CRC a batch should carry; used by tests and by code that builds batches.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or(&[]))
}

/// Overwrites `baseOffset` in place. The field lies outside the CRC, so the batch stays valid.
///
/// Panics if `batch` is shorter than the field: callers only pass batches they have parsed.
pub fn set_base_offset(batch: &mut [u8], offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites `partitionLeaderEpoch` in place (outside the CRC, like `baseOffset`).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Walks consecutive batches in a byte slice (a produce request's records, a fetched chunk, a
/// segment read into memory). It stops at the first problem and yields that error once; after
/// that, [`BatchIter::valid_up_to`] is the length of the valid prefix, which is where recovery
/// truncates a torn tail.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
    check_crc: bool,
    done: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates batches checking their structure only (no CRC): for bytes the broker wrote itself.
    pub fn new(bytes: &'a [u8]) -> BatchIter<'a> {
        BatchIter { bytes, position: 0, check_crc: false, done: false }
    }

    /// Also verifies each batch's CRC: for bytes from the network or from a crashed log.
    pub fn with_crc_check(mut self) -> BatchIter<'a> {
        self.check_crc = true;
        self
    }

    /// Byte position just after the last batch yielded successfully.
    pub fn valid_up_to(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.position >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.position..];
        let result = BatchHeader::parse(rest).and_then(|header| {
            let size = header.total_size();
            if rest.len() < size {
                return Err(BatchError::Truncated { needed: size, available: rest.len() });
            }
            let batch = &rest[..size];
            if self.check_crc {
                verify_crc(batch)?;
            }
            Ok((header, batch))
        });
        match result {
            Ok((header, batch)) => {
                self.position += batch.len();
                Some(Ok((header, batch)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates the records field of a produce request the way Kafka's `LogValidator` does before
/// anything is written: one or more complete v2 batches, CRCs intact, `recordsCount ≥ 1` and equal
/// to `lastOffsetDelta + 1`, no control batches, no trailing bytes; for uncompressed batches the
/// records themselves must parse and carry offset deltas 0, 1, 2, …
pub fn validate_produce_batches(bytes: &[u8]) -> Result<Vec<ProducedBatch>, BatchError> {
    let mut headers = Vec::new();
    for item in BatchIter::new(bytes).with_crc_check() {
        let (header, batch) = item?;
        if header.records_count < 1 {
            return Err(BatchError::Malformed("batch holds no records".into()));
        }
        if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
            return Err(BatchError::Malformed(format!(
                "recordsCount {} does not match lastOffsetDelta {}",
                header.records_count, header.last_offset_delta
            )));
        }
        if header.is_control() {
            return Err(BatchError::ControlBatchFromClient);
        }
        // Compressed batches are not inflated here: their timestamps are the header's.
        let mut timestamps =
            (header.base_timestamp != NO_TIMESTAMP).then_some((header.base_timestamp, header.max_timestamp));
        if header.compression() == Compression::None {
            timestamps = None;
            let mut expected_delta = 0i32;
            for record in RecordIter::new(&batch[BATCH_HEADER_LEN..]) {
                let record = record?;
                let t = header.base_timestamp.wrapping_add(record.timestamp_delta);
                if t != NO_TIMESTAMP {
                    timestamps = Some(timestamps.map_or((t, t), |(lo, hi): (i64, i64)| (lo.min(t), hi.max(t))));
                }
                if record.offset_delta != expected_delta {
                    return Err(BatchError::Malformed(format!(
                        "record offset delta {} where {} was expected",
                        record.offset_delta, expected_delta
                    )));
                }
                expected_delta += 1;
            }
            if expected_delta != header.records_count {
                return Err(BatchError::Malformed(format!(
                    "batch announces {} records but holds {}",
                    header.records_count, expected_delta
                )));
            }
        }
        headers.push(ProducedBatch { header, timestamps });
    }
    if headers.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(headers)
}

/// A batch of a produce request that passed [`validate_produce_batches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducedBatch {
    pub header: BatchHeader,
    /// The smallest and largest record timestamps (records without a timestamp, -1, left out;
    /// `None` if none has one): exact for uncompressed batches, the header's base and max
    /// timestamps for compressed ones.
    pub timestamps: Option<(i64, i64)>,
}

#[cfg(test)]
mod tests;
