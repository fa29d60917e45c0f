//! The transactions of one partition (KIP-98) as its log shows them: which producers have a
//! transaction open (a transactional batch, and no end marker after it yet), the first offset a
//! `read_committed` consumer may not pass (the last stable offset, LSO), and what an ended
//! transaction leaves for the aborted-transaction index.
//!
//! ```text
//!  offset   100  101  102  103         104  105
//!  batch     A    B    A   COMMIT(A)    B   ABORT(B)
//!  open     A@100, B@101 → after 103: B@101 → after 105: none
//!  LSO      min(first offset of the earliest open (or not yet replicated) transaction, HW)
//! ```
//! An ended transaction bounds the LSO until its marker is below the high watermark: until
//! then a new leader may lack the marker, and the transaction is open again there.

use std::collections::BTreeMap;

use strom_protocol::batch::{BatchFields, BatchHeader, BatchSpec, RecordIter, BATCH_HEADER_LEN};

use crate::error::{Result, StorageError};

/// The control record type of an abort marker (Kafka's `ControlRecordType.ABORT`).
pub const ABORT_MARKER: i16 = 0;
/// The control record type of a commit marker (`ControlRecordType.COMMIT`).
pub const COMMIT_MARKER: i16 = 1;
/// Batch attributes of a marker: transactional (0x10) and control (0x20), uncompressed.
const MARKER_ATTRIBUTES: i16 = 0x30;

/// An end-of-transaction marker, the one record of a control batch. Key: version i16 (0), type
/// i16; value: version i16 (0), coordinator epoch i32 (Kafka's `EndTransactionMarker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    /// The transaction coordinator's epoch: a marker from an older coordinator is fenced.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The control batch (at offset 0: the log assigns its offset) a partition leader appends.
    pub fn encode_batch(&self, producer_id: i64, producer_epoch: i16, timestamp: i64) -> Vec<u8> {
        let kind = if self.commit { COMMIT_MARKER } else { ABORT_MARKER };
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = 0i16.to_be_bytes().to_vec();
        value.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        let fields = BatchFields {
            attributes: MARKER_ATTRIBUTES,
            producer_id,
            producer_epoch,
            base_sequence: -1,
            ..BatchFields::default()
        };
        BatchSpec { fields, timestamps: &[timestamp], records: &[(Some(&key), Some(&value))] }.encode()
    }

    /// The marker a control batch holds; `None` for other control records (KRaft's, which a
    /// data partition never holds, or a type this version does not know). `batch` is the whole
    /// batch, `header` its parsed header. As Kafka, a key version above 0 is read as version 0.
    pub fn parse(header: &BatchHeader, batch: &[u8]) -> Result<Option<EndTxnMarker>> {
        if !header.is_control() {
            return Ok(None);
        }
        let corrupt = |why: &str| {
            StorageError::InvalidBatch(strom_protocol::batch::BatchError::Malformed(format!(
                "control batch at offset {}: {why}",
                header.base_offset
            )))
        };
        let body = batch.get(BATCH_HEADER_LEN..header.total_size()).ok_or_else(|| corrupt("truncated"))?;
        let record = RecordIter::new(body).next().ok_or_else(|| corrupt("no record"))?;
        let record = record.map_err(|e| corrupt(&e.to_string()))?;
        let key = record.key.filter(|k| k.len() >= 4).ok_or_else(|| corrupt("key shorter than 4 bytes"))?;
        let commit = match i16::from_be_bytes([key[2], key[3]]) {
            ABORT_MARKER => false,
            COMMIT_MARKER => true,
            _ => return Ok(None),
        };
        let value =
            record.value.filter(|v| v.len() >= 6).ok_or_else(|| corrupt("marker value shorter than 6 bytes"))?;
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(Some(EndTxnMarker { commit, coordinator_epoch }))
    }
}

/// A transaction whose marker is now in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// The offset of its first batch in this partition.
    pub first_offset: i64,
    /// The offset of its marker.
    pub last_offset: i64,
    pub aborted: bool,
}

/// One entry of the aborted-transaction index (`.txnindex`), Kafka's layout: version i16 (0),
/// producer id i64, first offset i64, last offset i64 (the marker's), last stable offset i64
/// (the LSO once the marker was written), big-endian, 34 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub const SIZE: usize = 34;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&0i16.to_be_bytes());
        for field in [self.producer_id, self.first_offset, self.last_offset, self.last_stable_offset] {
            out.extend_from_slice(&field.to_be_bytes());
        }
    }

    /// One entry from exactly [`Self::SIZE`] bytes; an unknown version is refused (the caller
    /// names the file).
    pub fn decode(bytes: &[u8]) -> std::result::Result<AbortedTxn, String> {
        if bytes.len() != Self::SIZE {
            return Err(format!("aborted transaction entry of {} bytes", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != 0 {
            return Err(format!("aborted transaction entry version {version}"));
        }
        let field = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Ok(AbortedTxn {
            producer_id: field(2),
            first_offset: field(10),
            last_offset: field(18),
            last_stable_offset: field(26),
        })
    }
}

/// The open transactions of a partition, and the ended ones whose marker is not yet below the
/// high watermark; both bound the last stable offset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransactionTracker {
    /// First offset → producer id.
    ongoing: BTreeMap<i64, i64>,
    /// First offset → (producer id, marker offset).
    unreplicated: BTreeMap<i64, (i64, i64)>,
}

impl TransactionTracker {
    /// `producer_id` wrote the first batch of a transaction at `first_offset`.
    pub fn begin(&mut self, producer_id: i64, first_offset: i64) {
        let previous = self.ongoing.insert(first_offset, producer_id);
        assert!(previous.is_none(), "two transactions start at offset {first_offset}");
    }

    /// The marker of the transaction that started at `completed.first_offset` was appended.
    pub fn complete(&mut self, completed: &CompletedTxn) {
        let open = self.ongoing.remove(&completed.first_offset);
        assert_eq!(open, Some(completed.producer_id), "the completed transaction was open");
        assert!(completed.last_offset > completed.first_offset, "a marker follows its transaction's batches");
        self.unreplicated.insert(completed.first_offset, (completed.producer_id, completed.last_offset));
    }

    /// The high watermark moved to `high_watermark`: markers below it are replicated for good.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.unreplicated.retain(|_, (_, marker)| *marker >= high_watermark);
    }

    /// The first offset of the earliest transaction that is open or not yet replicated.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        ongoing.into_iter().chain(unreplicated).min()
    }

    /// What a `read_committed` consumer may read up to (exclusive): never past the HW.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.first_unstable_offset().map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// The LSO right after `completed`'s marker, as the index stores it: the first offset of the
    /// earliest other open transaction, or just past the marker.
    pub fn stable_offset_after(&self, completed: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| **pid != completed.producer_id)
            .map_or(completed.last_offset + 1, |(first, _)| *first)
    }

    /// Open transactions, oldest first, as (producer id, first offset).
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(first, pid)| (*pid, *first))
    }
}

/// The aborted transactions a fetch of `[fetch_offset, upper_bound)` must name (Kafka's
/// `collectAbortedTxns`): those that end at or after the fetch offset and begin before the
/// bound. `entries` are one segment's index, in marker order; `complete` says the search need
/// not go on into later segments (an entry's LSO reached the bound).
pub fn aborted_in_range(entries: &[AbortedTxn], fetch_offset: i64, upper_bound: i64) -> (Vec<AbortedTxn>, bool) {
    let mut found = Vec::new();
    for e in entries {
        if e.last_offset >= fetch_offset && e.first_offset < upper_bound {
            found.push(*e);
        }
        if e.last_stable_offset >= upper_bound {
            return (found, true);
        }
    }
    (found, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(batch: &[u8]) -> BatchHeader {
        BatchHeader::parse(batch).expect("a valid batch")
    }

    #[test]
    fn markers_are_control_batches_in_kafkas_layout() {
        let commit = EndTxnMarker { commit: true, coordinator_epoch: 7 };
        let batch = commit.encode_batch(4000, 3, 1_700_000_000_000);
        let header = parsed(&batch);
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch, header.records_count), (4000, 3, 1));
        assert_eq!(EndTxnMarker::parse(&header, &batch).expect("parses"), Some(commit));
        let body = &batch[BATCH_HEADER_LEN..];
        let record = RecordIter::new(body).next().expect("one record").expect("valid");
        assert_eq!(record.key, Some(&[0, 0, 0, 1][..]), "version 0, COMMIT");
        assert_eq!(record.value, Some(&[0, 0, 0, 0, 0, 7][..]), "version 0, coordinator epoch 7");
        let abort = EndTxnMarker { commit: false, coordinator_epoch: 0 };
        let batch = abort.encode_batch(1, 0, 0);
        assert_eq!(EndTxnMarker::parse(&parsed(&batch), &batch).expect("parses"), Some(abort));
    }

    #[test]
    fn the_lso_stops_at_the_earliest_open_or_unreplicated_transaction_and_never_passes_the_hw() {
        let mut t = TransactionTracker::default();
        assert_eq!(t.last_stable_offset(50), 50);
        t.begin(1, 100);
        t.begin(2, 101);
        assert_eq!(t.last_stable_offset(120), 100);
        assert_eq!(t.last_stable_offset(90), 90, "never past the HW");
        let a = CompletedTxn { producer_id: 1, first_offset: 100, last_offset: 103, aborted: false };
        assert_eq!(t.stable_offset_after(&a), 101, "B is still open");
        t.complete(&a);
        assert_eq!(t.last_stable_offset(120), 100, "A's marker is not replicated yet");
        t.on_high_watermark(104);
        assert_eq!(t.last_stable_offset(120), 101, "A is done for good; B is open");
        let b = CompletedTxn { producer_id: 2, first_offset: 101, last_offset: 105, aborted: true };
        assert_eq!(t.stable_offset_after(&b), 106);
        t.complete(&b);
        t.on_high_watermark(106);
        assert_eq!(t.last_stable_offset(120), 120);
        assert_eq!(t.ongoing().count(), 0);
    }

    #[test]
    fn index_entries_are_34_bytes_and_a_fetch_names_the_aborts_it_overlaps() {
        let e = AbortedTxn { producer_id: 9, first_offset: 10, last_offset: 20, last_stable_offset: 21 };
        let mut bytes = Vec::new();
        e.encode(&mut bytes);
        assert_eq!(bytes.len(), AbortedTxn::SIZE);
        assert_eq!(AbortedTxn::decode(&bytes).expect("decodes"), e);
        bytes[1] = 1;
        assert!(AbortedTxn::decode(&bytes).is_err(), "an unknown version is refused");
        assert!(AbortedTxn::decode(&bytes[..33]).is_err());

        let entries = [
            AbortedTxn { producer_id: 1, first_offset: 0, last_offset: 5, last_stable_offset: 6 },
            AbortedTxn { producer_id: 2, first_offset: 4, last_offset: 12, last_stable_offset: 13 },
            AbortedTxn { producer_id: 3, first_offset: 20, last_offset: 30, last_stable_offset: 31 },
        ];
        let (found, complete) = aborted_in_range(&entries, 6, 15);
        assert_eq!(found.iter().map(|e| e.producer_id).collect::<Vec<_>>(), vec![2], "ends before 6 or starts at 15+");
        assert!(complete, "the third entry's LSO passes the bound");
        let (found, complete) = aborted_in_range(&entries, 0, 100);
        assert_eq!(found.len(), 3);
        assert!(!complete, "later segments may hold more");
    }
}
