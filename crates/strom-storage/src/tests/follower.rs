//! A follower's log built from what its leader's log returns is the same log: the same bytes,
//! offsets, leader epochs and producer state; corrupt or out-of-order input is refused whole.

use strom_protocol::batch::testing::{encode_test_batch, TestRecord};

use super::*;
use crate::StorageError;

fn idempotent(seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{}", seq as usize + i).into_bytes()).collect();
    let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    encode_test_batch(0, 77, 0, seq, &[10], &records)
}

fn follower_log(root: &Path) -> Log {
    Log::open(root.join("follower"), tp(), small_config(), 0, 0, true).expect("open")
}

/// Copies everything from `from` on, in fetch-sized chunks, the way the replica fetcher does.
fn replicate(leader: &Log, follower: &mut Log) {
    while follower.log_end_offset() < leader.log_end_offset() {
        let read = leader.read(follower.log_end_offset(), 300, i64::MAX).expect("read");
        follower.append_as_follower(&read.records, 20).expect("follower append").expect("a batch");
    }
}

fn all_bytes(log: &Log) -> Vec<u8> {
    log.read(log.log_start_offset(), usize::MAX, i64::MAX).expect("read").records.to_vec()
}

#[test]
fn the_follower_log_is_the_leader_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut leader = open_log(root.path(), small_config(), 0, true);
    let mut follower = follower_log(root.path());
    let mut seq = 0;
    for epoch in [0, 0, 2, 2, 2, 5] {
        leader.append(&idempotent(seq, 3), epoch, 10).expect("append");
        leader.append(&tagged_batch("x", 2, 10), epoch, 10).expect("append");
        seq += 3;
    }
    replicate(&leader, &mut follower);
    assert_eq!(all_bytes(&follower), all_bytes(&leader), "byte-identical");
    assert!(follower.segment_count() > 1, "the follower rolled segments too");
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(follower.latest_epoch(), Some(5));
    // Producer state moved with the data: a retry sent to the follower once it leads is a duplicate.
    match follower.append(&idempotent(seq - 3, 3), 6, 30).expect("retry") {
        AppendOutcome::Duplicate(info) => assert_eq!(info.base_offset, leader.log_end_offset() - 5),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // ... and it survives a restart of the follower.
    drop(follower);
    let follower = Log::open(root.path().join("follower"), tp(), small_config(), 0, 0, false).expect("reopen");
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
}

#[test]
fn a_cut_off_last_batch_is_left_for_the_next_fetch() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut leader = open_log(root.path(), LogConfig::default(), 0, true);
    let mut follower = follower_log(root.path());
    leader.append(&tagged_batch("a", 3, 1), 0, 1).expect("append");
    leader.append(&tagged_batch("b", 3, 1), 0, 1).expect("append");
    let bytes = all_bytes(&leader);
    let cut = &bytes[..bytes.len() - 7];
    let info = follower.append_as_follower(cut, 1).expect("append").expect("one batch");
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(follower.append_as_follower(&bytes[..10], 1).expect("nothing whole"), None);
    assert_eq!(follower.log_end_offset(), 3);
}

#[test]
fn corrupt_gapless_and_backwards_input_is_refused_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut leader = open_log(root.path(), LogConfig::default(), 0, true);
    let mut follower = follower_log(root.path());
    leader.append(&tagged_batch("a", 3, 1), 3, 1).expect("append");
    leader.append(&tagged_batch("b", 3, 1), 3, 1).expect("append");
    let bytes = all_bytes(&leader);
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(follower.append_as_follower(&corrupt, 1), Err(StorageError::InvalidBatch(_))));
    assert_eq!(follower.log_end_offset(), 0, "nothing of a refused fetch is written");
    follower.append_as_follower(&bytes, 1).expect("append");
    assert!(
        matches!(follower.append_as_follower(&bytes, 1), Err(StorageError::InvalidBatch(_))),
        "offsets below the log end"
    );
    let mut older_epoch = open_log(&root.path().join("x"), LogConfig::default(), 0, true);
    for _ in 0..2 {
        older_epoch.append(&tagged_batch("c", 3, 1), 1, 1).expect("append");
    }
    let more = older_epoch.read(0, usize::MAX, i64::MAX).expect("read").records;
    let mut shifted = more.to_vec();
    strom_protocol::batch::set_base_offset(&mut shifted, 6);
    assert!(
        matches!(follower.append_as_follower(&shifted[..more.len() / 2], 1), Err(StorageError::InvalidBatch(_))),
        "an epoch older than the log's latest"
    );
}

#[test]
fn a_follower_behind_the_leaders_log_start_restarts_there() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut follower = follower_log(root.path());
    follower.append_as_follower(&encode_test_batch(0, -1, -1, -1, &[1], &[(None, Some(b"x"))]), 1).expect("append");
    follower.truncate_fully_and_start_at(500).expect("restart");
    assert_eq!((follower.log_start_offset(), follower.log_end_offset()), (500, 500));
    let batch = encode_test_batch(500, -1, -1, -1, &[1], &[(None, Some(b"y"))]);
    follower.append_as_follower(&batch, 1).expect("append at 500");
    assert_eq!(follower.log_end_offset(), 501);
}
