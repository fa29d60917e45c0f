use super::*;
use crate::txn::records::TxnLogValue;
use std::collections::BTreeMap;

const ID: &str = "payments";
const EPOCH: i32 = 5;

fn coordinator() -> (TxnCoordinator, i32) {
    let mut c =
        TxnCoordinator::new(TxnSettings { log_partitions: 50, max_timeout_ms: 900_000, id_expiration_ms: 1_000_000 });
    let partition = c.partition_for(ID);
    assert!(c.load(partition, EPOCH, Vec::new()).is_empty());
    (c, partition)
}

fn write(step: Step) -> Write {
    match step {
        Step::Write(w) => w,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn answer(step: Step) -> Answer {
    match step {
        Step::Answer(a) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

/// Writes `step`'s change successfully.
fn durable(c: &mut TxnCoordinator, request: impl FnOnce(&mut TxnCoordinator) -> Step) -> (Option<Answer>, Vec<Effect>) {
    let w = write(request(c));
    c.written(w, Ok(()))
}

fn init(c: &mut TxnCoordinator, now: i64) -> (i64, i16) {
    match durable(c, |c| c.init_producer_id(ID, 60_000, None, 4000, now)) {
        (Some(Ok(Some(pe))), effects) if effects.is_empty() => pe,
        other => panic!("init: {other:?}"),
    }
}

fn markers(effects: &[Effect]) -> &Markers {
    match effects {
        [Effect::SendMarkers(m)] => m,
        other => panic!("expected markers, got {other:?}"),
    }
}

#[test]
fn a_committed_transaction_writes_its_states_answers_and_sends_markers() {
    let (mut c, partition) = coordinator();
    let (pid, epoch) = init(&mut c, 1);
    assert_eq!((pid, epoch), (4000, 0));
    let w = write(c.add_partitions(ID, pid, epoch, &parts(&[("orders", 0), ("orders", 1)]), 10));
    assert_eq!((w.partition, w.coordinator_epoch, w.transit.state), (partition, EPOCH, TxnState::Ongoing));
    assert_eq!(c.written(w, Ok(())), (Some(Ok(None)), vec![]));
    assert_eq!(answer(c.add_partitions(ID, pid, epoch, &parts(&[("orders", 1)]), 11)), Ok(None), "no write: present");

    let (answered, effects) = durable(&mut c, |c| c.end_txn(ID, pid, epoch, true, 20));
    assert_eq!(answered, Some(Ok(None)), "answered before the markers");
    let m = markers(&effects).clone();
    assert!(m.commit && m.producer_epoch == 0 && m.coordinator_epoch == EPOCH && m.partitions.len() == 2);
    assert_eq!(answer(c.end_txn(ID, pid, epoch, true, 21)), Err(ResponseError::ConcurrentTransactions));
    assert_eq!(answer(c.init_producer_id(ID, 60_000, None, 1, 21)), Err(ResponseError::ConcurrentTransactions));

    let effects = c.markers_written(partition, EPOCH, ID, MarkersOutcome::Written, 30);
    let [Effect::Write(w)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(
        (w.transit.state, w.then, w.transit.partitions.len()),
        (TxnState::CompleteCommit, AfterWrite::Complete, 0)
    );
    assert_eq!(c.written(w.clone(), Ok(())), (None, vec![]));
    assert_eq!(answer(c.end_txn(ID, pid, epoch, true, 40)), Ok(None), "a retried commit");
    assert_eq!(answer(c.end_txn(ID, pid, epoch, false, 40)), Err(ResponseError::InvalidTxnState));
    assert_eq!(init(&mut c, 50), (4000, 1), "the next InitProducerId bumps the epoch");
}

#[test]
fn requests_for_ids_elsewhere_or_malformed_are_refused() {
    let (mut c, partition) = coordinator();
    assert_eq!(answer(c.init_producer_id("", 1000, None, 1, 0)), Err(ResponseError::InvalidRequest));
    assert_eq!(answer(c.init_producer_id(ID, 0, None, 1, 0)), Err(ResponseError::InvalidTransactionTimeout));
    assert_eq!(answer(c.init_producer_id(ID, 900_001, None, 1, 0)), Err(ResponseError::InvalidTransactionTimeout));
    assert_eq!(
        answer(c.add_partitions(ID, 1, 0, &parts(&[("t", 0)]), 0)),
        Err(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(answer(c.end_txn(ID, 1, 0, true, 0)), Err(ResponseError::InvalidProducerIdMapping));
    let (pid, epoch) = init(&mut c, 1);
    assert_eq!(answer(c.end_txn(ID, pid, epoch, true, 2)), Err(ResponseError::InvalidTxnState), "nothing open");
    assert_eq!(
        answer(c.add_partitions(ID, pid + 1, epoch, &parts(&[("t", 0)]), 2)),
        Err(ResponseError::InvalidProducerIdMapping)
    );
    c.unload(partition);
    assert_eq!(answer(c.init_producer_id(ID, 1000, None, 1, 3)), Err(ResponseError::NotCoordinator));
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_transaction_under_a_bumped_epoch() {
    let (mut c, partition) = coordinator();
    let (pid, old_epoch) = init(&mut c, 1);
    durable(&mut c, |c| c.add_partitions(ID, pid, old_epoch, &parts(&[("orders", 0)]), 10));

    let w = write(c.init_producer_id(ID, 60_000, None, 9999, 20));
    assert_eq!(
        (w.transit.state, w.transit.producer_epoch, w.then),
        (TxnState::PrepareAbort, 1, AfterWrite::FencedAbort)
    );
    let (answered, effects) = c.written(w, Ok(()));
    assert_eq!(answered, Some(Err(ResponseError::ConcurrentTransactions)), "the new producer retries");
    let m = markers(&effects);
    assert!(!m.commit && m.producer_epoch == 1, "abort markers fence epoch 0 on the partitions");
    assert_eq!(answer(c.end_txn(ID, pid, old_epoch, true, 21)), Err(ResponseError::ProducerFenced));
    assert_eq!(
        answer(c.add_partitions(ID, pid, old_epoch, &parts(&[("x", 0)]), 21)),
        Err(ResponseError::ProducerFenced)
    );

    let effects = c.markers_written(partition, EPOCH, ID, MarkersOutcome::Written, 30);
    let [Effect::Write(w)] = effects.as_slice() else { panic!("{effects:?}") };
    c.written(w.clone(), Ok(()));
    assert_eq!(init(&mut c, 40), (pid, 2), "the retry gets the next epoch");
}

#[test]
fn an_open_transaction_past_its_timeout_is_aborted_by_the_coordinator() {
    let (mut c, _) = coordinator();
    let (pid, epoch) = init(&mut c, 1);
    durable(&mut c, |c| c.add_partitions(ID, pid, epoch, &parts(&[("orders", 0)]), 1_000));
    assert!(c.tick(61_000).is_empty(), "not yet");
    let effects = c.tick(61_001);
    let [Effect::Write(w)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(
        (w.then, w.transit.state, w.transit.producer_epoch),
        (AfterWrite::TimeoutAbort, TxnState::PrepareAbort, 1)
    );
    let (answered, effects) = c.written(w.clone(), Ok(()));
    assert_eq!(answered, None);
    assert!(!markers(&effects).commit);
    assert!(c.tick(61_002).is_empty(), "markers are out already");
    assert_eq!(answer(c.end_txn(ID, pid, epoch, true, 61_003)), Err(ResponseError::ProducerFenced));
}

#[test]
fn a_new_coordinator_resends_the_markers_of_half_finished_transactions() {
    let mut c =
        TxnCoordinator::new(TxnSettings { log_partitions: 50, max_timeout_ms: 900_000, id_expiration_ms: 1_000_000 });
    let partition = c.partition_for(ID);
    let value = TxnLogValue {
        producer_id: 7,
        producer_epoch: 3,
        timeout_ms: 60_000,
        state: TxnState::PrepareCommit,
        partitions: BTreeMap::from([("orders".to_string(), vec![0, 1])]),
        last_update_ms: 5,
        start_ms: 1,
    };
    let records = vec![
        TxnLogRecord {
            transactional_id: "gone".into(),
            value: Some(TxnLogValue { state: TxnState::Empty, partitions: BTreeMap::new(), ..value.clone() }),
        },
        TxnLogRecord { transactional_id: "gone".into(), value: None },
        TxnLogRecord { transactional_id: ID.into(), value: Some(value) },
    ];
    let effects = c.load(partition, 9, records);
    let m = markers(&effects);
    assert_eq!((m.producer_id, m.producer_epoch, m.coordinator_epoch, m.commit), (7, 3, 9, true));
    assert_eq!(c.all().count(), 1, "the tombstone removed the other id");
    let effects = c.markers_written(partition, 9, ID, MarkersOutcome::Written, 10);
    assert!(matches!(effects.as_slice(), [Effect::Write(w)] if w.transit.state == TxnState::CompleteCommit));
}

#[test]
fn writes_that_fail_or_outlive_the_coordinator_change_nothing() {
    let (mut c, partition) = coordinator();
    let (pid, epoch) = init(&mut c, 1);
    let w = write(c.add_partitions(ID, pid, epoch, &parts(&[("orders", 0)]), 10));
    assert_eq!(
        c.written(w, Err(ResponseError::NotEnoughReplicas)),
        (Some(Err(ResponseError::CoordinatorNotAvailable)), vec![])
    );
    assert_eq!(c.describe(ID).expect("here").expect("known").state(), TxnState::Empty);
    let w = write(c.add_partitions(ID, pid, epoch, &parts(&[("orders", 0)]), 11));
    c.unload(partition);
    c.load(partition, EPOCH + 1, Vec::new());
    assert_eq!(c.written(w, Ok(())), (Some(Err(ResponseError::NotCoordinator)), vec![]));
}

#[test]
fn idle_ids_expire_with_a_tombstone() {
    let (mut c, _) = coordinator();
    init(&mut c, 1);
    assert!(c.tick(1_000_001).is_empty());
    let effects = c.tick(1_000_002);
    let [Effect::Write(w)] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(w.then, AfterWrite::Tombstone);
    assert_eq!(c.written(w.clone(), Ok(())), (None, vec![]));
    assert_eq!(c.describe(ID), Ok(None));
}
