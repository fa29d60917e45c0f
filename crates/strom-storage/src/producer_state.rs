//! Idempotent-producer state of one partition: for each producer id its epoch and the metadata of
//! its last five batches, which is what lets the leader drop a retried batch instead of writing it
//! twice, and refuse gaps and zombie producers.
//!
//! ```text
//!  producer 4000 ─ epoch 2 ─ [seq 0..9 @ 100..109] [seq 10..14 @ 117..121] … (≤ 5, oldest first)
//!  incoming batch (epoch 2, seq 15..19) → in sequence → append
//!  incoming batch (epoch 2, seq 10..14) → one of the cached five → duplicate: answer 117..121
//!  incoming batch (epoch 2, seq 22..25) → gap → OUT_OF_ORDER_SEQUENCE_NUMBER
//!  incoming batch (epoch 1, …)          → INVALID_PRODUCER_EPOCH (fenced)
//! ```
//! The state is rebuilt after a restart from the latest snapshot (see [`crate::snapshot`]) plus
//! the batches appended after it. Producers are never expired (Kafka drops them after
//! `producer.id.expiration.ms`); that keeps an idle producer's sequence valid across retention.

use std::collections::{HashMap, VecDeque};

use strom_protocol::batch::{increment_sequence, BatchHeader};

use crate::error::{Result, StorageError};
use crate::transactions::{CompletedTxn, EndTxnMarker, TransactionTracker};

/// How many recent batches per producer are remembered for duplicate detection; the same as
/// Kafka and as the client's `max.in.flight.requests.per.connection` limit for idempotence.
pub const MAX_CACHED_BATCHES: usize = 5;

/// Where one recent batch of a producer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the batch's first record; with `last_seq` it identifies a retried batch.
    pub first_seq: i32,
    /// Sequence of the batch's last record; the next batch must start right after it.
    pub last_seq: i32,
    /// Offset the batch got, answered again for a duplicate.
    pub first_offset: i64,
    /// Last offset the batch got.
    pub last_offset: i64,
    /// The batch's max timestamp, returned again for a duplicate.
    pub timestamp: i64,
}

/// Everything remembered about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The id assigned by InitProducerId.
    pub producer_id: i64,
    /// Current epoch; older epochs are fenced.
    pub epoch: i16,
    /// Oldest first, at most [`MAX_CACHED_BATCHES`].
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the producer's last batch.
    pub last_timestamp: i64,
    /// The coordinator epoch of the producer's last end-of-transaction marker (-1: none yet);
    /// a marker from an older coordinator is fenced.
    pub coordinator_epoch: i32,
    /// Where the producer's open transaction begins in this partition, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    pub(crate) fn new(producer_id: i64, epoch: i16) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        let last_seq = header.last_sequence();
        self.batches.iter().find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq).copied()
    }

    /// Records a batch that is now in the log (or, during validation, would be).
    fn push(&mut self, header: &BatchHeader) {
        if header.producer_epoch != self.epoch {
            self.epoch = header.producer_epoch;
            self.batches.clear();
        }
        if header.is_control() {
            return;
        }
        if header.is_transactional() && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(header.base_offset);
        }
        if self.batches.len() == MAX_CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
        self.last_timestamp = header.max_timestamp;
    }
}

/// The result of checking a request's batches against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// All batches may be appended.
    Append,
    /// A batch was already written; the request is answered with its original offsets.
    Duplicate(BatchMetadata),
}

/// The producer state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// The open transactions (and the ended ones not yet replicated), for the LSO.
    transactions: TransactionTracker,
}

/// Kafka's `ProducerAppendInfo.checkProducerEpoch` for transactions: once a producer has a
/// transaction open here, everything it writes must belong to it until the marker.
fn check_transactional(entry: Option<&ProducerEntry>, header: &BatchHeader) -> Result<()> {
    match entry {
        Some(e) if e.current_txn_first_offset.is_some() && !header.is_transactional() => {
            Err(StorageError::InvalidTxnState {
                producer_id: header.producer_id,
                why: "Expected transactional write from producer with an open transaction".into(),
            })
        }
        _ => Ok(()),
    }
}

/// Kafka's sequence check: the first sequence of a new batch must follow the last one, wrapping
/// from `i32::MAX` to 0.
/// Kafka's `ProducerAppendInfo.checkSequence`. `entry` is the producer's state including the
/// earlier batches of this request. A producer with no state (new here, expired, or whose
/// batches retention removed) may start at any sequence, as in Kafka since KIP-360; after its
/// first batch, the batches of the same request must follow on (Kafka lets even those jump).
fn check_sequence(entry: Option<&ProducerEntry>, header: &BatchHeader) -> Result<()> {
    let pid = header.producer_id;
    let received = header.base_sequence;
    let expected = match entry {
        None => return Ok(()),
        Some(e) if header.producer_epoch < e.epoch => {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: pid,
                current: e.epoch,
                received: header.producer_epoch,
            });
        }
        Some(e) if header.producer_epoch > e.epoch => 0,
        Some(e) => e.last_seq().map_or(0, |last| increment_sequence(last, 1)),
    };
    if received != expected {
        return Err(StorageError::OutOfOrderSequence { producer_id: pid, expected, received });
    }
    Ok(())
}

impl ProducerStateManager {
    /// An empty state (a new partition, or before replay).
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    /// Checks all batches of one append request without changing anything, so that the append is
    /// all-or-nothing. Batches of one producer in the same request must follow each other. As in
    /// Kafka, finding a duplicate makes the whole request a duplicate.
    pub(crate) fn validate(&self, headers: &[BatchHeader]) -> Result<Verdict> {
        let mut staged: HashMap<i64, Option<ProducerEntry>> = HashMap::new();
        for header in headers.iter().filter(|h| h.has_producer_id() && !h.is_control()) {
            let pid = header.producer_id;
            let entry = staged.entry(pid).or_insert_with(|| self.producers.get(&pid).cloned());
            if let Some(dup) = entry.as_ref().and_then(|e| e.find_duplicate(header)) {
                return Ok(Verdict::Duplicate(dup));
            }
            check_sequence(entry.as_ref(), header)?;
            check_transactional(entry.as_ref(), header)?;
            entry.get_or_insert_with(|| ProducerEntry::new(pid, header.producer_epoch)).push(header);
        }
        Ok(Verdict::Append)
    }

    /// Records a batch that was written to the log (appends and replay after a restart); for a
    /// control batch, `marker` is what it holds. Returns the transaction a marker ended.
    pub(crate) fn apply(&mut self, header: &BatchHeader, marker: Option<EndTxnMarker>) -> Option<CompletedTxn> {
        if !header.has_producer_id() {
            return None;
        }
        let pid = header.producer_id;
        let entry = self.producers.entry(pid).or_insert_with(|| ProducerEntry::new(pid, header.producer_epoch));
        if let Some(marker) = marker {
            return Self::end_transaction(&mut self.transactions, entry, header, marker);
        }
        if header.producer_epoch < entry.epoch {
            // Cannot come from our own appends; a replayed log with a fenced epoch keeps the newer.
            return None;
        }
        let was_open = entry.current_txn_first_offset.is_some();
        entry.push(header);
        if let (false, Some(first)) = (was_open, entry.current_txn_first_offset) {
            self.transactions.begin(pid, first);
        }
        None
    }

    /// Kafka's `appendEndTxnMarker` once the marker is in the log: the producer's epoch and
    /// coordinator epoch move on (a new epoch starts its sequences afresh) and its open
    /// transaction, if any, ends. A marker for no open transaction (an empty one) ends nothing.
    fn end_transaction(
        transactions: &mut TransactionTracker,
        entry: &mut ProducerEntry,
        header: &BatchHeader,
        marker: EndTxnMarker,
    ) -> Option<CompletedTxn> {
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(marker.coordinator_epoch);
        entry.last_timestamp = header.max_timestamp;
        let first_offset = entry.current_txn_first_offset.take()?;
        let completed = CompletedTxn {
            producer_id: entry.producer_id,
            first_offset,
            last_offset: header.base_offset,
            aborted: !marker.commit,
        };
        transactions.complete(&completed);
        Some(completed)
    }

    /// Before a partition leader appends a marker: refused if the producer has moved on to a
    /// newer epoch (INVALID_PRODUCER_EPOCH) or a newer coordinator wrote its last marker
    /// (TRANSACTION_COORDINATOR_FENCED). An equal or newer epoch is accepted, as in Kafka.
    pub(crate) fn validate_marker(&self, producer_id: i64, producer_epoch: i16, coordinator_epoch: i32) -> Result<()> {
        let Some(e) = self.producers.get(&producer_id) else { return Ok(()) };
        if producer_epoch < e.epoch {
            return Err(StorageError::InvalidProducerEpoch { producer_id, current: e.epoch, received: producer_epoch });
        }
        if e.coordinator_epoch > coordinator_epoch {
            return Err(StorageError::TransactionCoordinatorFenced {
                producer_id,
                current: e.coordinator_epoch,
                received: coordinator_epoch,
            });
        }
        Ok(())
    }

    /// The partition's open transactions and the LSO they allow.
    pub fn transactions(&self) -> &TransactionTracker {
        &self.transactions
    }

    /// The high watermark moved: ended transactions whose marker is below it stop bounding the LSO.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.transactions.on_high_watermark(high_watermark);
    }

    /// The state of one producer, for the broker (e.g. to answer DescribeProducers).
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// All producers, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Forgets producers whose last batch is `expiration_ms` or more older than `now_ms`
    /// (`producer.id.expiration.ms`, Kafka's `removeExpiredProducers`; its timestamps are the
    /// batches' max timestamps). Returns how many went.
    /// Producers with an open transaction never expire (Kafka's `isProducerExpired`).
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// A producer restored from a snapshot, with its open transaction if it had one. A snapshot
    /// naming a producer twice, or two transactions at one offset, is unusable.
    pub(crate) fn insert(&mut self, entry: ProducerEntry) -> std::result::Result<(), String> {
        if self.producers.contains_key(&entry.producer_id) {
            return Err(format!("producer {} twice", entry.producer_id));
        }
        if let Some(first) = entry.current_txn_first_offset {
            if self.transactions.ongoing().any(|(_, f)| f == first) {
                return Err(format!("two transactions start at offset {first}"));
            }
            self.transactions.begin(entry.producer_id, first);
        }
        self.producers.insert(entry.producer_id, entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::batch::testing::{encode_test_batch, TestRecord};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, offset: i64) -> BatchHeader {
        let recs: Vec<TestRecord<'_>> = (0..n).map(|_| (None, Some(&b"x"[..]))).collect();
        let bytes = encode_test_batch(offset, pid, epoch, seq, &[1], &recs);
        BatchHeader::parse(&bytes).expect("valid")
    }

    #[test]
    fn sequences_epochs_and_duplicates() {
        let mut state = ProducerStateManager::new();
        let b0 = header(7, 0, 0, 3, 0);
        assert_eq!(state.validate(&[b0]).expect("first"), Verdict::Append);
        state.apply(&b0, None);
        let b1 = header(7, 0, 3, 2, 3);
        assert!(matches!(
            state.validate(&[header(7, 0, 6, 1, 0)]),
            Err(StorageError::OutOfOrderSequence { expected: 3, received: 6, .. })
        ));
        state.validate(&[b1]).expect("in sequence");
        state.apply(&b1, None);
        match state.validate(&[header(7, 0, 0, 3, 999)]).expect("dup") {
            Verdict::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 2)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        assert!(matches!(
            state.validate(&[header(7, 1, 5, 1, 0)]),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        let bumped = header(7, 1, 0, 1, 5);
        state.validate(&[bumped]).expect("new epoch from 0");
        state.apply(&bumped, None);
        assert!(matches!(
            state.validate(&[header(7, 0, 5, 1, 0)]),
            Err(StorageError::InvalidProducerEpoch { current: 1, .. })
        ));
        // A producer without state may start anywhere (KIP-360).
        assert_eq!(state.validate(&[header(8, 0, 4, 1, 0)]).expect("any start"), Verdict::Append);
    }

    #[test]
    fn only_last_five_batches_are_remembered_and_wrap_is_in_sequence() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            let h = header(1, 0, i, 1, i64::from(i));
            state.validate(&[h]).expect("in sequence");
            state.apply(&h, None);
        }
        assert_eq!(state.get(1).map(|e| e.batches.len()), Some(MAX_CACHED_BATCHES));
        // seq 1 fell out of the cache: it is neither a duplicate nor in sequence.
        assert!(state.validate(&[header(1, 0, 1, 1, 0)]).is_err());
        assert!(matches!(state.validate(&[header(1, 0, 6, 1, 0)]), Ok(Verdict::Duplicate(_))));

        let mut state = ProducerStateManager::new();
        let mut e = ProducerEntry::new(2, 0);
        e.batches.push_back(BatchMetadata {
            first_seq: i32::MAX - 1,
            last_seq: i32::MAX,
            first_offset: 0,
            last_offset: 1,
            timestamp: 0,
        });
        state.insert(e).expect("inserted");
        assert_eq!(state.validate(&[header(2, 0, 0, 1, 2)]).expect("wraps"), Verdict::Append);
    }

    #[test]
    fn several_batches_in_one_request_are_checked_in_order() {
        let state = ProducerStateManager::new();
        let a = header(3, 0, 0, 2, 0);
        let b = header(3, 0, 2, 2, 0);
        assert_eq!(state.validate(&[a, b]).expect("consecutive"), Verdict::Append);
        let c = header(3, 0, 5, 1, 0);
        assert!(state.validate(&[a, c]).is_err());
        assert!(state.is_empty(), "validation changes nothing");
    }
}
