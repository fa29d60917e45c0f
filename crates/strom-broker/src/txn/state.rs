//! One transactional id's state on its coordinator, and the transitions between states, as
//! Kafka's `TransactionMetadata` (the TV0/TV1 rules: the producer epoch moves on
//! InitProducerId and on fencing, not on every transaction).
//!
//! ```text
//!        InitProducerId            AddPartitions / AddOffsets          EndTxn
//!  Empty ───────────────▶ Empty ─────────────────────────▶ Ongoing ───────────▶ PrepareCommit ─▶ CompleteCommit
//!    ▲                                                        │ (or a timeout,        PrepareAbort ──▶ CompleteAbort
//!    └─────────────── InitProducerId from Complete* ◀─────────┘  a newer producer)
//! ```
//! Every change is two-phase: `prepare_*` checks it and marks the change pending (no other may
//! start meanwhile: CONCURRENT_TRANSACTIONS), the record is written to `__transaction_state`,
//! then `complete` applies it (or `abort_pending` forgets it if the write failed).

use super::records::TxnLogValue;
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `TransactionState`, with its ids in the log and its names in DescribeTransactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        TxnState::ALL.iter().position(|s| *s == self).expect("listed") as i8
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        usize::try_from(id).ok().and_then(|i| TxnState::ALL.get(i).copied())
    }

    /// The name Kafka's admin APIs use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Dead and PrepareEpochFence are only ever pending, never in the log.
    pub fn is_persisted(self) -> bool {
        !matches!(self, TxnState::Dead | TxnState::PrepareEpochFence)
    }

    /// Whether an id in this state may expire (`transactional.id.expiration.ms`).
    pub fn may_expire(self) -> bool {
        matches!(self, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
    }

    /// The states a transition to `self` may start from (Kafka's `validPreviousStates`, TV1).
    fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }
}

/// No epoch yet (a new transactional id), or no last epoch.
pub const NO_EPOCH: i16 = -1;
/// An epoch this high is used up: the next InitProducerId takes a new producer id.
pub const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// Why a change was refused, as the error the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    ConcurrentTransactions,
    ProducerFenced,
    InvalidTxnState,
}

/// What a transition leads to: the next values of everything the log keeps, plus the epoch
/// bookkeeping that only lives in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl Transit {
    /// The record the log gets.
    pub fn log_value(&self) -> TxnLogValue {
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            partitions.entry(topic.clone()).or_default().push(*p);
        }
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }
}

/// A transactional id on its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub current: Transit,
    /// The change being written, if any.
    pub pending: Option<TxnState>,
}

impl TxnMetadata {
    /// A transactional id seen for the first time: Empty, with no epoch yet.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            current: Transit {
                producer_id,
                previous_producer_id: -1,
                producer_epoch: NO_EPOCH,
                last_producer_epoch: NO_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms,
            },
            pending: None,
        }
    }

    /// As loaded from the log.
    pub fn from_log(transactional_id: &str, v: &TxnLogValue) -> TxnMetadata {
        let partitions = v.partitions.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p))).collect();
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            current: Transit {
                producer_id: v.producer_id,
                previous_producer_id: -1,
                producer_epoch: v.producer_epoch,
                last_producer_epoch: NO_EPOCH,
                timeout_ms: v.timeout_ms,
                state: v.state,
                partitions,
                start_ms: v.start_ms,
                last_update_ms: v.last_update_ms,
            },
            pending: None,
        }
    }

    pub fn state(&self) -> TxnState {
        self.current.state
    }

    fn prepare(&mut self, next: Transit) -> Result<Transit, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        assert!(
            next.state.valid_previous().contains(&self.current.state),
            "{}: {:?} → {:?} is not a transition",
            self.transactional_id,
            self.current.state,
            next.state
        );
        self.pending = Some(next.state);
        Ok(next)
    }

    /// InitProducerId on a transaction that is not open: the epoch moves on (Kafka's
    /// `prepareIncrementProducerEpoch`), or, when used up, a new producer id starts at epoch 0
    /// (`prepareProducerIdRotation`). `expected` is the client's (pid, epoch) (KIP-360), if it
    /// sent one; a retry of a bump that succeeded gets the same epoch again.
    pub fn prepare_init(
        &mut self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_producer_id: i64,
        now_ms: i64,
    ) -> Result<Transit, TxnError> {
        let c = &self.current;
        let expected_epoch = expected.map(|(_, e)| e);
        let mut next = Transit {
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..c.clone()
        };
        if c.producer_epoch >= EXHAUSTED_EPOCH && expected_epoch.is_none_or(|e| e == c.producer_epoch) {
            next.previous_producer_id = c.producer_id;
            next.producer_id = new_producer_id;
            next.producer_epoch = 0;
            next.last_producer_epoch = if expected.is_some() { c.producer_epoch } else { NO_EPOCH };
        } else {
            match expected_epoch {
                None => {
                    next.producer_epoch = c.producer_epoch + 1;
                    next.last_producer_epoch = NO_EPOCH;
                }
                Some(e) if e == c.producer_epoch || c.producer_epoch == NO_EPOCH => {
                    next.producer_epoch = c.producer_epoch + 1;
                    next.last_producer_epoch = c.producer_epoch;
                }
                Some(e) if e == c.last_producer_epoch => {}
                Some(_) => return Err(TxnError::ProducerFenced),
            }
        }
        self.prepare(next)
    }

    /// A newer producer (InitProducerId) or the timeout ends an open transaction: it is
    /// aborted under the next epoch, so that its markers fence the old producer (Kafka's
    /// `prepareFenceProducerEpoch` then PrepareAbort). The bump is part of the change: a failed
    /// write leaves the epoch as it was, so retries never bump twice (Kafka's
    /// `hasFailedEpochFence`). None when the epoch cannot move (32767).
    pub fn prepare_fenced_abort(&mut self, now_ms: i64) -> Option<Result<Transit, TxnError>> {
        assert_eq!(self.current.state, TxnState::Ongoing, "only an open transaction is fenced");
        let epoch = self.current.producer_epoch.checked_add(1)?;
        let next = Transit {
            state: TxnState::PrepareAbort,
            producer_epoch: epoch,
            last_producer_epoch: NO_EPOCH,
            last_update_ms: now_ms,
            ..self.current.clone()
        };
        Some(self.prepare(next))
    }

    /// The partitions join the transaction, which is Ongoing from now (`prepareAddPartitions`);
    /// it started now unless it was open already.
    pub fn prepare_add_partitions(&mut self, partitions: &[(String, i32)], now_ms: i64) -> Result<Transit, TxnError> {
        let c = &self.current;
        let start_ms = if c.state == TxnState::Ongoing { c.start_ms } else { now_ms };
        let mut all = c.partitions.clone();
        all.extend(partitions.iter().cloned());
        let next = Transit { state: TxnState::Ongoing, partitions: all, start_ms, last_update_ms: now_ms, ..c.clone() };
        self.prepare(next)
    }

    /// EndTxn on an Ongoing transaction: PrepareCommit or PrepareAbort.
    pub fn prepare_end(&mut self, commit: bool, now_ms: i64) -> Result<Transit, TxnError> {
        let state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        let next = Transit { state, last_update_ms: now_ms, ..self.current.clone() };
        self.prepare(next)
    }

    /// Every marker is written: CompleteCommit or CompleteAbort, with no partitions left
    /// (INVALID_TXN_STATE when there is nothing to complete: a late or repeated report).
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<Transit, TxnError> {
        let state = match self.current.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Err(TxnError::InvalidTxnState),
        };
        let next = Transit { state, partitions: BTreeSet::new(), last_update_ms: now_ms, ..self.current.clone() };
        self.prepare(next)
    }

    /// The id expired (`transactional.id.expiration.ms`): a tombstone is written.
    pub fn prepare_dead(&mut self, now_ms: i64) -> Result<Transit, TxnError> {
        let next = Transit { state: TxnState::Dead, last_update_ms: now_ms, ..self.current.clone() };
        self.prepare(next)
    }

    /// The pending change reached the log.
    pub fn complete(&mut self, transit: Transit) {
        assert_eq!(self.pending, Some(transit.state), "{}: completing a change not pending", self.transactional_id);
        let c = &self.current;
        assert!(
            transit.producer_epoch >= c.producer_epoch || transit.producer_id != c.producer_id,
            "{}: the producer epoch went back",
            self.transactional_id
        );
        self.current = transit;
        self.pending = None;
    }

    /// The pending change did not reach the log: nothing changed.
    pub fn abort_pending(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(names: &[(&str, i32)]) -> Vec<(String, i32)> {
        names.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn ids_and_names_are_kafkas() {
        for (i, s) in TxnState::ALL.iter().enumerate() {
            assert_eq!(s.id() as usize, i);
            assert_eq!(TxnState::from_id(i as i8), Some(*s));
            assert_eq!(TxnState::from_name(s.name()), Some(*s));
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_id(-1), None);
        assert_eq!((TxnState::PrepareCommit.id(), TxnState::CompleteAbort.id()), (2, 5));
    }

    #[test]
    fn a_transaction_goes_from_empty_through_ongoing_to_complete() {
        let mut m = TxnMetadata::new("t", 100, 60_000, 1);
        let t = m.prepare_init(60_000, None, 999, 2).expect("init");
        assert_eq!((t.producer_id, t.producer_epoch), (100, 0), "a new id starts at epoch 0");
        assert_eq!(m.prepare_init(60_000, None, 999, 2), Err(TxnError::ConcurrentTransactions));
        m.complete(t);
        let t = m.prepare_add_partitions(&parts(&[("a", 0), ("b", 1)]), 10).expect("add");
        assert_eq!((t.state, t.start_ms, t.partitions.len()), (TxnState::Ongoing, 10, 2));
        m.complete(t);
        let t = m.prepare_add_partitions(&parts(&[("a", 2)]), 20).expect("add more");
        assert_eq!(t.start_ms, 10, "still the same transaction");
        m.complete(t);
        let t = m.prepare_end(true, 30).expect("commit");
        assert_eq!(t.state, TxnState::PrepareCommit);
        m.complete(t);
        let t = m.prepare_complete(40).expect("complete");
        assert_eq!((t.state, t.partitions.len()), (TxnState::CompleteCommit, 0));
        m.complete(t);
        let t = m.prepare_add_partitions(&parts(&[("a", 0)]), 50).expect("next transaction");
        assert_eq!(t.start_ms, 50);
        m.abort_pending();
        assert_eq!(m.state(), TxnState::CompleteCommit, "a failed write changes nothing");
    }

    #[test]
    fn init_bumps_the_epoch_once_per_call_and_a_retry_of_a_bump_gets_the_same_epoch() {
        let mut m = TxnMetadata::new("t", 100, 60_000, 1);
        let t = m.prepare_init(60_000, None, 0, 2).expect("init");
        m.complete(t);
        let t = m.prepare_init(60_000, Some((100, 0)), 0, 3).expect("KIP-360 bump");
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        m.complete(t);
        let t = m.prepare_init(60_000, Some((100, 0)), 0, 4).expect("a retry of that bump");
        assert_eq!(t.producer_epoch, 1, "not bumped again");
        m.abort_pending();
        assert_eq!(m.prepare_init(60_000, Some((100, 5)), 0, 4), Err(TxnError::ProducerFenced));
    }

    #[test]
    fn a_used_up_epoch_rotates_the_producer_id() {
        let mut m = TxnMetadata::new("t", 100, 60_000, 1);
        m.current.producer_epoch = EXHAUSTED_EPOCH;
        let t = m.prepare_init(60_000, None, 777, 2).expect("rotate");
        assert_eq!((t.producer_id, t.producer_epoch, t.previous_producer_id), (777, 0, 100));
        m.complete(t);
    }

    #[test]
    fn a_fence_bumps_the_epoch_and_aborts_with_it() {
        let mut m = TxnMetadata::new("t", 100, 60_000, 1);
        let t = m.prepare_init(60_000, None, 0, 2).expect("init");
        m.complete(t);
        let t = m.prepare_add_partitions(&parts(&[("a", 0)]), 10).expect("add");
        m.complete(t);
        let t = m.prepare_fenced_abort(20).expect("an epoch left").expect("fenced");
        assert_eq!((t.state, t.producer_epoch), (TxnState::PrepareAbort, 1));
        m.abort_pending();
        assert_eq!(m.current.producer_epoch, 0, "a failed write bumps nothing");
        let t = m.prepare_fenced_abort(21).expect("an epoch left").expect("fenced again");
        assert_eq!(t.producer_epoch, 1, "bumped once");
        m.complete(t);
        m.current.state = TxnState::Ongoing;
        m.current.producer_epoch = i16::MAX;
        assert!(m.prepare_fenced_abort(30).is_none(), "no epoch left to fence with");
    }

    #[test]
    #[should_panic(expected = "is not a transition")]
    fn an_invalid_transition_is_a_bug() {
        let mut m = TxnMetadata::new("t", 100, 60_000, 1);
        let _ = m.prepare_end(true, 2);
    }
}
