use strom_protocol::batch::{BatchFields, BatchRecord, BatchSpec};

use super::*;
use crate::transactions::{CompletedTxn, EndTxnMarker};
use crate::StorageError;

/// A batch of `n` records from producer `pid` (epoch 0) at sequence `seq`, transactional or not.
fn from_producer(pid: i64, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("{pid}-{}", seq as usize + i).into_bytes()).collect();
    let records: Vec<BatchRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    let attributes = if transactional { 0x10 } else { 0 };
    let fields =
        BatchFields { producer_id: pid, producer_epoch: 0, base_sequence: seq, attributes, ..BatchFields::default() };
    BatchSpec { fields, timestamps: &[50], records: &records }.encode()
}

fn marker(commit: bool, coordinator_epoch: i32) -> EndTxnMarker {
    EndTxnMarker { commit, coordinator_epoch }
}

#[test]
fn transactions_hold_the_last_stable_offset_until_their_markers_are_replicated() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append(&mut log, from_producer(1, 0, 2, true), 50); // 0..1: A
    append(&mut log, from_producer(2, 0, 1, true), 50); // 2: B
    append_simple(&mut log, 1, 50); // 3: no producer
    assert_eq!(log.transactions().last_stable_offset(4), 0);
    match log.append(&from_producer(1, 2, 1, false), 0, 50) {
        Err(StorageError::InvalidTxnState { producer_id: 1, .. }) => {}
        other => panic!("a non-transactional write inside a transaction: {other:?}"),
    }

    let (info, ended) = log.append_marker(1, 0, marker(true, 3), 0, 60).expect("commit A");
    assert_eq!(info.base_offset, 4);
    assert_eq!(ended, Some(CompletedTxn { producer_id: 1, first_offset: 0, last_offset: 4, aborted: false }));
    assert_eq!(log.transactions().last_stable_offset(5), 0, "A's marker is not below the HW yet");
    log.on_high_watermark(5);
    assert_eq!(log.transactions().last_stable_offset(5), 2, "B is still open");
    // After its marker, A writes outside a transaction again.
    append(&mut log, from_producer(1, 2, 1, false), 50); // 5

    match log.append_marker(2, 0, marker(false, 2), 0, 60) {
        Err(StorageError::TransactionCoordinatorFenced { .. }) => panic!("B never saw coordinator epoch 3"),
        Ok((_, Some(ended))) => assert!(ended.aborted && ended.first_offset == 2 && ended.last_offset == 6),
        other => panic!("abort B: {other:?}"),
    }
    log.on_high_watermark(7);
    assert_eq!(log.transactions().last_stable_offset(7), 7);
    // A marker for a producer with nothing open ends nothing, but moves its epochs on.
    let (_, ended) = log.append_marker(1, 1, marker(false, 4), 0, 60).expect("an empty abort");
    assert_eq!(ended, None);
    match log.append_marker(1, 1, marker(true, 3), 0, 60) {
        Err(StorageError::TransactionCoordinatorFenced { current: 4, received: 3, .. }) => {}
        other => panic!("a marker from an older coordinator: {other:?}"),
    }
    match log.append_marker(1, 0, marker(true, 4), 0, 60) {
        Err(StorageError::InvalidProducerEpoch { current: 1, received: 0, .. }) => {}
        other => panic!("a marker for an older producer epoch: {other:?}"),
    }
}

#[test]
fn open_transactions_survive_a_clean_restart_and_a_recovery() {
    for clean in [true, false] {
        let root = tempfile::tempdir().expect("tempdir");
        let mut log = open_log(root.path(), LogConfig::default(), 0, true);
        append(&mut log, from_producer(1, 0, 1, true), 50); // 0: A
        append(&mut log, from_producer(2, 0, 1, true), 50); // 1: B
        log.append_marker(1, 0, marker(true, 0), 0, 60).expect("commit A"); // 2
        if clean {
            log.close().expect("close");
        } else {
            drop(log); // no snapshot at the end: the log is replayed from its start
        }
        let mut log = open_log(root.path(), LogConfig::default(), 0, clean);
        let open: Vec<(i64, i64)> = log.transactions().ongoing().collect();
        assert_eq!(open, vec![(2, 1)], "clean={clean}: B's transaction is open, A's ended");
        // The replica state hands the checkpointed HW to the log once it is opened.
        log.on_high_watermark(3);
        assert_eq!(log.transactions().last_stable_offset(3), 1);
    }
}
