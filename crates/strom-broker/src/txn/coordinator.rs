//! The transaction coordinator's core: a state machine without I/O, as the group coordinator's.
//! It owns the transactional ids of the `__transaction_state` partitions this broker leads and
//! answers InitProducerId, AddPartitionsToTxn / AddOffsetsToTxn and EndTxn (Kafka's
//! `TransactionCoordinator`, TV0/TV1 rules) with a [`Step`]: an answer now, or a [`Write`] to
//! make durable first. The adapter writes it (acks=all), reports with [`TxnCoordinator::written`],
//! and performs the [`Effect`]s it gets back: answers, and markers to send to partition leaders,
//! whose outcome it reports with [`TxnCoordinator::markers_written`].
//!
//! ```text
//!  EndTxn ─▶ Write(PrepareX) ─▶ answer NONE + SendMarkers ─▶ markers_written (all) ─▶ Write(CompleteX)
//! ```

use super::records::TxnLogRecord;
use super::state::{Transit, TxnError, TxnMetadata, TxnState, EXHAUSTED_EPOCH, NO_EPOCH};
use crate::group::records::partition_for_group;
use std::collections::{BTreeSet, HashMap};
use strom_protocol::ResponseError;

/// The coordinator's settings (`transaction.*` broker configs).
#[derive(Debug, Clone)]
pub struct TxnSettings {
    /// `transaction.state.log.num.partitions`.
    pub log_partitions: i32,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

/// What happens once a write reached the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrite {
    /// InitProducerId is answered with the producer id and epoch.
    AnswerInit,
    /// AddPartitionsToTxn / AddOffsetsToTxn is answered.
    AnswerAdd,
    /// EndTxn is answered, then the markers go out.
    AnswerEnd,
    /// The abort of a fenced transaction (a newer InitProducerId): that request is answered
    /// CONCURRENT_TRANSACTIONS (it retries once the abort completes), the markers go out.
    FencedAbort,
    /// A timed-out transaction's abort: no one to answer, the markers go out.
    TimeoutAbort,
    /// CompleteCommit / CompleteAbort: the transaction is over.
    Complete,
    /// The id expired: it is forgotten.
    Tombstone,
}

/// A change to make durable in `__transaction_state`, then report with `written`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub partition: i32,
    pub coordinator_epoch: i32,
    pub transactional_id: String,
    pub transit: Transit,
    pub then: AfterWrite,
}

/// An answer to a client request: an error, or (for InitProducerId) the producer id and epoch.
pub type Answer = Result<Option<(i64, i16)>, ResponseError>;

/// What a request gets now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Answer(Answer),
    Write(Write),
}

/// Markers for one transaction, to every partition it wrote to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    /// The `__transaction_state` partition that coordinates the transaction.
    pub log_partition: i32,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: BTreeSet<(String, i32)>,
}

/// What the adapter does after a write or a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    SendMarkers(Markers),
    Write(Write),
}

/// How the markers of a transaction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkersOutcome {
    /// Every partition has its marker.
    Written,
    /// A partition refused it for good (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED):
    /// a newer producer or coordinator took over; this one gives the transaction up, as Kafka.
    Abandoned,
}

struct LogPartition {
    coordinator_epoch: i32,
    txns: HashMap<String, TxnMetadata>,
    /// Transactions whose markers are out.
    sending: BTreeSet<String>,
}

pub struct TxnCoordinator {
    settings: TxnSettings,
    partitions: HashMap<i32, LogPartition>,
}

fn fenced_error(e: TxnError) -> ResponseError {
    match e {
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
    }
}

impl TxnCoordinator {
    pub fn new(settings: TxnSettings) -> TxnCoordinator {
        TxnCoordinator { settings, partitions: HashMap::new() }
    }

    /// The `__transaction_state` partition of `transactional_id` (Kafka's `partitionFor`).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for_group(transactional_id, self.settings.log_partitions)
    }

    /// This broker leads `partition` under `coordinator_epoch` (its leader epoch): the records
    /// read from it become the ids' state; transactions caught between PrepareX and CompleteX
    /// get their markers again, as Kafka's loading does.
    pub fn load(&mut self, partition: i32, coordinator_epoch: i32, records: Vec<TxnLogRecord>) -> Vec<Effect> {
        let mut txns = HashMap::new();
        for r in records {
            match r.value {
                Some(v) => txns.insert(r.transactional_id.clone(), TxnMetadata::from_log(&r.transactional_id, &v)),
                None => txns.remove(&r.transactional_id),
            };
        }
        let mut loaded = LogPartition { coordinator_epoch, txns, sending: BTreeSet::new() };
        let mut effects = Vec::new();
        for m in loaded.txns.values() {
            if matches!(m.state(), TxnState::PrepareCommit | TxnState::PrepareAbort) {
                effects.push(Effect::SendMarkers(markers_of(m, partition, coordinator_epoch)));
                loaded.sending.insert(m.transactional_id.clone());
            }
        }
        self.partitions.insert(partition, loaded);
        effects
    }

    /// This broker no longer leads `partition`: its ids are forgotten (writes and markers in
    /// flight find a changed coordinator epoch).
    pub fn unload(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// The topic's partition count, as the metadata has it (the config's is only the count a
    /// new topic gets): ids must map to the partitions FindCoordinator names.
    pub fn set_partition_count(&mut self, count: i32) {
        if count > 0 {
            self.settings.log_partitions = count;
        }
    }

    /// The coordinator epoch `partition` was loaded under, if it is loaded.
    pub fn coordinator_epoch(&self, partition: i32) -> Option<i32> {
        self.partitions.get(&partition).map(|lp| lp.coordinator_epoch)
    }

    /// The partitions loaded, with their coordinator epochs.
    pub fn loaded(&self) -> Vec<(i32, i32)> {
        self.partitions.iter().map(|(p, lp)| (*p, lp.coordinator_epoch)).collect()
    }

    fn led(&mut self, transactional_id: &str) -> Result<(i32, &mut LogPartition), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        let partition = self.partition_for(transactional_id);
        self.partitions.get_mut(&partition).map(|p| (partition, p)).ok_or(ResponseError::NotCoordinator)
    }

    /// A known transactional id this broker coordinates: (its partition, the coordinator epoch,
    /// its state); INVALID_PRODUCER_ID_MAPPING when it is not known.
    fn known(&mut self, transactional_id: &str) -> Result<(i32, i32, &mut TxnMetadata), ResponseError> {
        let (partition, lp) = self.led(transactional_id)?;
        let m = lp.txns.get_mut(transactional_id).ok_or(ResponseError::InvalidProducerIdMapping)?;
        Ok((partition, lp.coordinator_epoch, m))
    }

    /// InitProducerId with a transactional id. `expected` is the client's (pid, epoch) (v3+,
    /// KIP-360); `fresh_producer_id` a producer id the adapter allocated, used if the id is new
    /// or its epoch is used up.
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_producer_id: i64,
        now_ms: i64,
    ) -> Step {
        if transactional_id.is_empty() {
            return Step::Answer(Err(ResponseError::InvalidRequest));
        }
        if !(1..=self.settings.max_timeout_ms).contains(&timeout_ms) {
            return Step::Answer(Err(ResponseError::InvalidTransactionTimeout));
        }
        let (partition, lp) = match self.led(transactional_id) {
            Ok(found) => found,
            Err(e) => return Step::Answer(Err(e)),
        };
        let coordinator_epoch = lp.coordinator_epoch;
        let m = lp
            .txns
            .entry(transactional_id.to_string())
            .or_insert_with(|| TxnMetadata::new(transactional_id, fresh_producer_id, timeout_ms, now_ms));
        if m.pending.is_some() {
            return Step::Answer(Err(ResponseError::ConcurrentTransactions));
        }
        if let Some((pid, epoch)) = expected {
            let c = &m.current;
            let valid = c.producer_epoch == NO_EPOCH
                || pid == c.producer_id
                || (pid == c.previous_producer_id && epoch >= EXHAUSTED_EPOCH);
            if !valid {
                return Step::Answer(Err(ResponseError::ProducerFenced));
            }
        }
        let write = |prepared, then| write_step(partition, coordinator_epoch, transactional_id, prepared, then);
        match m.state() {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Step::Answer(Err(ResponseError::ConcurrentTransactions))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                write(m.prepare_init(timeout_ms, expected, fresh_producer_id, now_ms), AfterWrite::AnswerInit)
            }
            TxnState::Ongoing => {
                // A newer producer: the open transaction is aborted under a bumped epoch first.
                match m.prepare_fenced_abort(now_ms) {
                    Some(prepared) => write(prepared, AfterWrite::FencedAbort),
                    // Kafka throws here; the producer can only start over with a new id.
                    None => Step::Answer(Err(ResponseError::ProducerFenced)),
                }
            }
            TxnState::Dead | TxnState::PrepareEpochFence => {
                panic!("{transactional_id}: {:?} is never a settled state", m.state())
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets` partition).
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Step {
        let (partition, coordinator_epoch, m) = match self.known(transactional_id) {
            Ok(found) => found,
            Err(e) => return Step::Answer(Err(e)),
        };
        if m.pending.is_some() {
            return Step::Answer(Err(ResponseError::ConcurrentTransactions));
        }
        if m.current.producer_id != producer_id {
            return Step::Answer(Err(ResponseError::InvalidProducerIdMapping));
        }
        if m.current.producer_epoch != producer_epoch {
            return Step::Answer(Err(ResponseError::ProducerFenced));
        }
        match m.state() {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Step::Answer(Err(ResponseError::ConcurrentTransactions))
            }
            TxnState::Ongoing if partitions.iter().all(|p| m.current.partitions.contains(p)) => {
                return Step::Answer(Ok(None))
            }
            _ => {}
        }
        let prepared = m.prepare_add_partitions(partitions, now_ms);
        write_step(partition, coordinator_epoch, transactional_id, prepared, AfterWrite::AnswerAdd)
    }

    /// EndTxn from the client (Kafka's `endTransactionWithTV1`).
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Step {
        let (partition, coordinator_epoch, m) = match self.known(transactional_id) {
            Ok(found) => found,
            Err(e) => return Step::Answer(Err(e)),
        };
        if m.current.producer_id != producer_id {
            return Step::Answer(Err(ResponseError::InvalidProducerIdMapping));
        }
        if m.current.producer_epoch != producer_epoch {
            return Step::Answer(Err(ResponseError::ProducerFenced));
        }
        if m.pending.is_some() {
            return Step::Answer(Err(ResponseError::ConcurrentTransactions));
        }
        let answer = match (m.state(), commit) {
            (TxnState::Ongoing, _) => None,
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Some(Ok(None)),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Some(Err(ResponseError::ConcurrentTransactions))
            }
            _ => Some(Err(ResponseError::InvalidTxnState)),
        };
        if let Some(a) = answer {
            return Step::Answer(a);
        }
        let prepared = m.prepare_end(commit, now_ms);
        write_step(partition, coordinator_epoch, transactional_id, prepared, AfterWrite::AnswerEnd)
    }

    /// A [`Write`] reached the log (`Ok`) or failed with `Err(code)`: the answer for the request
    /// that asked for it (if any), and what follows.
    pub fn written(&mut self, w: Write, result: Result<(), ResponseError>) -> (Option<Answer>, Vec<Effect>) {
        let answers = !matches!(w.then, AfterWrite::TimeoutAbort | AfterWrite::Complete | AfterWrite::Tombstone);
        let Some(lp) = self.partitions.get_mut(&w.partition).filter(|lp| lp.coordinator_epoch == w.coordinator_epoch)
        else {
            // The partition moved meanwhile: the new coordinator has the log.
            return (answers.then_some(Err(ResponseError::NotCoordinator)), Vec::new());
        };
        let Some(m) = lp.txns.get_mut(&w.transactional_id).filter(|m| m.pending == Some(w.transit.state)) else {
            // Gone, or not the change pending (a report repeated or from before a reload).
            return (answers.then_some(Err(ResponseError::NotCoordinator)), Vec::new());
        };
        if let Err(e) = result {
            m.abort_pending();
            // Kafka's mapping of append errors for the client.
            let code = match e {
                ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => ResponseError::NotCoordinator,
                ResponseError::NotEnoughReplicas
                | ResponseError::NotEnoughReplicasAfterAppend
                | ResponseError::RequestTimedOut
                | ResponseError::UnknownTopicOrPartition => ResponseError::CoordinatorNotAvailable,
                ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge => ResponseError::UnknownServerError,
                other => other,
            };
            return (answers.then_some(Err(code)), Vec::new());
        }
        let coordinator_epoch = lp.coordinator_epoch;
        if w.then == AfterWrite::Tombstone {
            lp.txns.remove(&w.transactional_id);
            return (None, Vec::new());
        }
        m.complete(w.transit);
        let mut effects = Vec::new();
        let answer = match w.then {
            AfterWrite::AnswerInit => Some(Ok(Some((m.current.producer_id, m.current.producer_epoch)))),
            AfterWrite::AnswerAdd => Some(Ok(None)),
            AfterWrite::AnswerEnd | AfterWrite::FencedAbort | AfterWrite::TimeoutAbort => {
                effects.push(Effect::SendMarkers(markers_of(m, w.partition, coordinator_epoch)));
                lp.sending.insert(w.transactional_id.clone());
                match w.then {
                    AfterWrite::AnswerEnd => Some(Ok(None)),
                    AfterWrite::FencedAbort => Some(Err(ResponseError::ConcurrentTransactions)),
                    _ => None,
                }
            }
            AfterWrite::Complete => None,
            AfterWrite::Tombstone => unreachable!("handled above"),
        };
        (answer, effects)
    }

    /// The markers of `transactional_id`'s transaction (sent under `coordinator_epoch`) are all
    /// written, or abandoned: CompleteCommit / CompleteAbort is written next.
    pub fn markers_written(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        transactional_id: &str,
        outcome: MarkersOutcome,
        now_ms: i64,
    ) -> Vec<Effect> {
        let Some(lp) = self.partitions.get_mut(&partition).filter(|lp| lp.coordinator_epoch == coordinator_epoch)
        else {
            return Vec::new();
        };
        if outcome == MarkersOutcome::Abandoned {
            // Kept as sending, so that the timer does not send them again: a newer producer or
            // coordinator owns the transaction now, and this partition will be unloaded.
            return Vec::new();
        }
        lp.sending.remove(transactional_id);
        let Some(m) = lp.txns.get_mut(transactional_id) else { return Vec::new() };
        match m.prepare_complete(now_ms) {
            Ok(transit) => vec![Effect::Write(Write {
                partition,
                coordinator_epoch,
                transactional_id: transactional_id.to_string(),
                transit,
                then: AfterWrite::Complete,
            })],
            Err(_) => Vec::new(),
        }
    }

    /// The timers: open transactions past their timeout are aborted (fenced first, as Kafka's
    /// `abortTimedOutTransactions`); ids idle past `transactional.id.expiration.ms` expire;
    /// transactions left between PrepareX and CompleteX (a failed CompleteX write) get their
    /// markers again.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let expiration = self.settings.id_expiration_ms;
        let mut effects = Vec::new();
        for (&partition, lp) in &mut self.partitions {
            let coordinator_epoch = lp.coordinator_epoch;
            let write = |m: &TxnMetadata, transit: Transit, then| {
                Effect::Write(Write {
                    partition,
                    coordinator_epoch,
                    transactional_id: m.transactional_id.clone(),
                    transit,
                    then,
                })
            };
            for m in lp.txns.values_mut() {
                if m.pending.is_some() {
                    continue;
                }
                let c = &m.current;
                let state = m.state();
                if state == TxnState::Ongoing && now_ms > c.start_ms.saturating_add(i64::from(c.timeout_ms)) {
                    if let Some(Ok(t)) = m.prepare_fenced_abort(now_ms) {
                        effects.push(write(m, t, AfterWrite::TimeoutAbort));
                    }
                } else if state.may_expire() && now_ms.saturating_sub(c.last_update_ms) > expiration {
                    if let Ok(t) = m.prepare_dead(now_ms) {
                        effects.push(write(m, t, AfterWrite::Tombstone));
                    }
                } else if matches!(state, TxnState::PrepareCommit | TxnState::PrepareAbort)
                    && !lp.sending.contains(&m.transactional_id)
                {
                    effects.push(Effect::SendMarkers(markers_of(m, partition, coordinator_epoch)));
                    lp.sending.insert(m.transactional_id.clone());
                }
            }
        }
        effects
    }

    /// A transactional id's state (DescribeTransactions), if this broker coordinates it.
    pub fn describe(&self, transactional_id: &str) -> Result<Option<&TxnMetadata>, ResponseError> {
        let partition = self.partition_for(transactional_id);
        let lp = self.partitions.get(&partition).ok_or(ResponseError::NotCoordinator)?;
        Ok(lp.txns.get(transactional_id))
    }

    /// Every transactional id this broker coordinates (ListTransactions).
    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.partitions.values().flat_map(|lp| lp.txns.values())
    }
}

/// A prepared change as the write the adapter makes, or the refusal as the answer.
fn write_step(
    partition: i32,
    coordinator_epoch: i32,
    transactional_id: &str,
    prepared: Result<Transit, TxnError>,
    then: AfterWrite,
) -> Step {
    match prepared {
        Ok(transit) => Step::Write(Write {
            partition,
            coordinator_epoch,
            transactional_id: transactional_id.to_string(),
            transit,
            then,
        }),
        Err(e) => Step::Answer(Err(fenced_error(e))),
    }
}

fn markers_of(m: &TxnMetadata, log_partition: i32, coordinator_epoch: i32) -> Markers {
    Markers {
        log_partition,
        transactional_id: m.transactional_id.clone(),
        producer_id: m.current.producer_id,
        producer_epoch: m.current.producer_epoch,
        coordinator_epoch,
        commit: m.state() == TxnState::PrepareCommit,
        partitions: m.current.partitions.clone(),
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
