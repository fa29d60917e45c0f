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

fn aborted(log: &Log, from: i64, to: i64) -> Vec<(i64, i64, i64, i64)> {
    log.aborted_transactions(from, to)
        .iter()
        .map(|e| (e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset))
        .collect()
}

/// A log with two aborts and a commit: A aborted 0-1 (marker 3) while B was open, B committed
/// (marker 4), C aborted 5 (marker 6).
fn log_with_aborts(root: &std::path::Path, config: LogConfig) -> Log {
    let mut log = open_log(root, config, 0, true);
    append(&mut log, from_producer(1, 0, 2, true), 50); // 0..1: A
    append(&mut log, from_producer(2, 0, 1, true), 50); // 2: B
    log.append_marker(1, 0, marker(false, 0), 0, 60).expect("abort A"); // 3
    log.append_marker(2, 0, marker(true, 0), 0, 60).expect("commit B"); // 4
    append(&mut log, from_producer(3, 0, 1, true), 50); // 5: C
    log.append_marker(3, 0, marker(false, 0), 0, 60).expect("abort C"); // 6
    log
}

#[test]
fn aborts_are_indexed_with_the_stable_offset_after_them_and_found_by_range() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = log_with_aborts(root.path(), LogConfig::default());
    let all = vec![(1, 0, 3, 2), (3, 5, 6, 7)];
    assert_eq!(aborted(&log, 0, 7), all, "A's entry: B was still open at offset 2");
    assert_eq!(aborted(&log, 4, 7), vec![(3, 5, 6, 7)], "A ended before the fetch");
    assert_eq!(aborted(&log, 0, 3), vec![(1, 0, 3, 2)], "C starts at the bound");
    assert_eq!(files_with_suffix(&log_dir(root.path()), crate::TXN_INDEX_SUFFIX).len(), 1);
    assert_eq!(log.last_stable_offset(7), 0, "A's abort is not replicated yet");
    log.on_high_watermark(7);
    assert_eq!(log.last_stable_offset(7), 7);
}

#[test]
fn the_index_survives_restarts_and_is_rebuilt_when_lost_in_a_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    let log = log_with_aborts(root.path(), LogConfig::default());
    let expected = aborted(&log, 0, 7);
    log.close().expect("close");
    let log = open_log(root.path(), LogConfig::default(), 0, true);
    assert_eq!(aborted(&log, 0, 7), expected, "read back after a clean restart");
    drop(log);

    // A crash before the index reached the disk: gone, torn, or garbage.
    let index = log_dir(root.path()).join(format!("{}{}", crate::file_stem(0), crate::TXN_INDEX_SUFFIX));
    let whole = std::fs::read(&index).expect("index");
    for damaged in [Vec::new(), whole[..40].to_vec(), vec![7u8; 34]] {
        std::fs::write(&index, &damaged).expect("damage");
        let log = open_log(root.path(), LogConfig::default(), 0, false);
        assert_eq!(aborted(&log, 0, 7), expected, "rebuilt from {} damaged bytes", damaged.len());
        drop(log);
        assert_eq!(std::fs::read(&index).expect("index"), whole, "written whole again");
    }
    // Below the recovery point, after a clean shutdown, a bad file is rebuilt as well.
    std::fs::write(&index, [1u8; 35]).expect("damage");
    let log = open_log(root.path(), LogConfig::default(), 7, true);
    assert_eq!(aborted(&log, 0, 7), expected);
}

#[test]
fn truncation_and_segment_deletion_take_the_entries_of_what_they_remove() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_bytes: 1, ..LogConfig::default() };
    let mut log = log_with_aborts(root.path(), config.clone());
    log.truncate_to(6).expect("truncate before C's marker");
    assert_eq!(aborted(&log, 0, 7), vec![(1, 0, 3, 2)]);
    assert_eq!(log.transactions().ongoing().collect::<Vec<_>>(), vec![(3, 5)], "C is open again");
    drop(log);
    let mut log = open_log(root.path(), config, 0, false);
    assert_eq!(aborted(&log, 0, 7), vec![(1, 0, 3, 2)], "not brought back by a recovery");

    // One segment per batch: A's marker is in the segment at 3.
    let index = log_dir(root.path()).join(format!("{}{}", crate::file_stem(3), crate::TXN_INDEX_SUFFIX));
    assert!(index.exists());
    log.delete_records_before(5).expect("delete records");
    log.apply_retention(100).expect("retention");
    assert!(!index.exists(), "deleted with its segment");
    assert!(aborted(&log, 0, 7).is_empty());
}

#[test]
fn a_follower_indexes_the_aborts_it_replicates() {
    let root = tempfile::tempdir().expect("tempdir");
    let leader = log_with_aborts(root.path(), LogConfig::default());
    let follower_root = tempfile::tempdir().expect("tempdir");
    let mut follower = open_log(follower_root.path(), LogConfig::default(), 0, true);
    let read = leader.read(0, 1 << 20, 7).expect("read");
    follower.append_as_follower(&read.records, 70).expect("append").expect("batches");
    assert_eq!(aborted(&follower, 0, 7), aborted(&leader, 0, 7), "the same entries as the leader's");
    follower.close().expect("close");
    let follower = open_log(follower_root.path(), LogConfig::default(), 0, true);
    assert_eq!(aborted(&follower, 0, 7).len(), 2, "on disk too");
}

#[test]
fn a_new_segment_does_not_inherit_a_leftover_index() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = log_dir(root.path());
    std::fs::create_dir_all(&dir).expect("dir");
    let mut stale = Vec::new();
    crate::transactions::AbortedTxn { producer_id: 1, first_offset: 0, last_offset: 90, last_stable_offset: 91 }
        .encode(&mut stale);
    std::fs::write(dir.join(format!("{}{}", crate::file_stem(0), crate::TXN_INDEX_SUFFIX)), &stale).expect("write");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    assert!(aborted(&log, 0, 100).is_empty(), "an index whose segment is gone is removed");
    append(&mut log, from_producer(1, 0, 1, true), 50);
    log.append_marker(1, 0, marker(false, 0), 0, 60).expect("an abort appends without a stale entry in the way");
    assert_eq!(aborted(&log, 0, 2).len(), 1);
}
