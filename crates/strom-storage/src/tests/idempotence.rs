use strom_protocol::batch::testing::{encode_test_batch, TestRecord};

use super::*;
use crate::StorageError;

const PID: i64 = 4000;

fn idem(epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("p{epoch}-{}", seq as usize + i).into_bytes()).collect();
    let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    encode_test_batch(0, PID, epoch, seq, &[50], &records)
}

fn try_append(log: &mut Log, batch: Vec<u8>) -> Result<AppendOutcome, StorageError> {
    log.append(&batch, 0, 50)
}

/// Appends seq 0..14 in three batches of 5 and one non-idempotent batch in between.
fn produce_some(log: &mut Log) {
    append(log, idem(0, 0, 5), 50);
    append_simple(log, 2, 50);
    append(log, idem(0, 5, 5), 50);
    append(log, idem(0, 10, 5), 50);
}

#[test]
fn retried_batch_is_answered_with_its_original_offsets() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    produce_some(&mut log);
    let leo = log.log_end_offset();
    let size = log.size_bytes();
    match try_append(&mut log, idem(0, 5, 5)).expect("duplicate is not an error") {
        AppendOutcome::Duplicate(info) => assert_eq!((info.base_offset, info.last_offset), (7, 11)),
        other => panic!("expected duplicate, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), leo, "nothing appended");
    assert_eq!(log.size_bytes(), size);
    let info = append(&mut log, idem(0, 15, 1), 50);
    assert_eq!(info.base_offset, leo);
}

#[test]
fn gaps_and_old_epochs_are_rejected() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    produce_some(&mut log);
    match try_append(&mut log, idem(0, 16, 1)) {
        Err(StorageError::OutOfOrderSequence { producer_id: PID, expected: 15, received: 16 }) => {}
        other => panic!("expected OutOfOrderSequence, got {other:?}"),
    }
    append(&mut log, idem(1, 0, 2), 50);
    match try_append(&mut log, idem(0, 15, 1)) {
        Err(StorageError::InvalidProducerEpoch { producer_id: PID, current: 1, received: 0 }) => {}
        other => panic!("expected InvalidProducerEpoch, got {other:?}"),
    }
    // A new epoch starts at sequence 0.
    assert!(matches!(try_append(&mut log, idem(2, 7, 1)), Err(StorageError::OutOfOrderSequence { expected: 0, .. })));
}

/// Kafka's checkSequence (KIP-360): a producer the partition has no state for (new here,
/// expired, or its batches gone with retention) may start at any sequence, and from then on
/// must follow it.
#[test]
fn a_producer_without_state_may_start_at_any_sequence() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    let stranger = |seq: i32| encode_test_batch(0, PID + 1, 0, seq, &[1], &[(None, Some(b"x"))]);
    assert!(matches!(log.append(&stranger(3), 0, 1), Ok(AppendOutcome::Appended(_))));
    assert!(matches!(log.append(&stranger(4), 0, 1), Ok(AppendOutcome::Appended(_))));
    assert!(matches!(log.append(&stranger(6), 0, 1), Err(StorageError::OutOfOrderSequence { expected: 5, .. })));
}

/// producer.id.expiration.ms: a producer idle that long is forgotten, and may then start again
/// at any sequence; an active one is kept.
#[test]
fn idle_producers_expire() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { producer_id_expiration_ms: 1_000, ..LogConfig::default() };
    let mut log = open_log(root.path(), config, 0, true);
    produce_some(&mut log); // batch timestamps 50
    let other = encode_test_batch(0, PID + 1, 0, 0, &[900], &[(None, Some(b"x"))]);
    log.append(&other, 0, 900).expect("append");
    assert_eq!(log.expire_producers(1_000), 0, "not yet");
    assert_eq!(log.expire_producers(1_050), 1, "PID's last batch is 1,000 ms old");
    assert!(log.producer_state().get(PID).is_none());
    assert!(log.producer_state().get(PID + 1).is_some());
    // Its next batch (seq 15) is accepted as the start of a new history.
    assert!(matches!(try_append(&mut log, idem(0, 15, 1)), Ok(AppendOutcome::Appended(_))));
}

#[test]
fn a_request_with_a_bad_batch_appends_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append(&mut log, idem(0, 0, 2), 50);
    let mut bytes = idem(0, 2, 2);
    bytes.extend_from_slice(&idem(0, 7, 1));
    assert!(matches!(log.append(&bytes, 0, 1), Err(StorageError::OutOfOrderSequence { expected: 4, .. })));
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.producer_state().get(PID).and_then(|e| e.batches.back()).map(|b| b.last_seq), Some(1));
}

#[test]
fn producer_state_survives_clean_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    produce_some(&mut log);
    log.close().expect("close");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    assert_eq!(log.load_summary().producer_batches_replayed, 0);
    assert!(matches!(try_append(&mut log, idem(0, 10, 5)), Ok(AppendOutcome::Duplicate(_))));
    assert!(matches!(try_append(&mut log, idem(0, 20, 1)), Err(StorageError::OutOfOrderSequence { expected: 15, .. })));
    append(&mut log, idem(0, 15, 1), 50);
}

#[test]
fn producer_state_survives_crash_by_replaying_the_log() {
    let root = tempfile::tempdir().expect("tempdir");
    // Small segments: rolls take snapshots, and the crash leaves batches after the last one.
    let mut log = open_log(root.path(), small_config(), 0, true);
    for i in 0..12 {
        append(&mut log, idem(0, i * 2, 2), 50);
    }
    assert!(log.segment_count() > 1);
    drop(log);
    // The recovery point a flush after the last roll leaves: the segments below are trusted, and
    // the producer state comes from the snapshot taken at that roll.
    let last_roll = files_with_suffix(&log_dir(root.path()), ".snapshot")
        .iter()
        .filter_map(|n| n.strip_suffix(".snapshot")?.parse::<i64>().ok())
        .max()
        .expect("a snapshot");
    let mut log = open_log(root.path(), small_config(), last_roll, false);
    assert_eq!(log.load_summary().producer_snapshot_offset, Some(last_roll));
    assert!(log.load_summary().producer_batches_replayed > 0);
    match try_append(&mut log, idem(0, 22, 2)).expect("dup") {
        AppendOutcome::Duplicate(info) => {
            assert_eq!((info.base_offset, info.last_offset), (22, 23))
        }
        other => panic!("expected duplicate, got {other:?}"),
    }
    assert!(matches!(try_append(&mut log, idem(0, 25, 1)), Err(StorageError::OutOfOrderSequence { expected: 24, .. })));

    // Without any snapshot the whole log is replayed.
    drop(log);
    for name in files_with_suffix(&log_dir(root.path()), ".snapshot") {
        std::fs::remove_file(log_dir(root.path()).join(name)).expect("remove snapshot");
    }
    let mut log = open_log(root.path(), small_config(), 0, false);
    assert_eq!(log.load_summary().producer_snapshot_offset, None);
    assert_eq!(log.load_summary().producer_batches_replayed, 12);
    assert!(matches!(try_append(&mut log, idem(0, 20, 2)), Ok(AppendOutcome::Duplicate(_))));
    append(&mut log, idem(0, 24, 1), 50);
}
