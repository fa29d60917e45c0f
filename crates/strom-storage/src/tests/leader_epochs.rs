//! The log keeps its leader epoch cache in step: a new epoch is recorded at its first offset,
//! truncation and retention trim it, and it survives a restart (and a crash that cut the log).

use super::*;
use crate::{LEADER_EPOCH_CHECKPOINT, UNDEFINED_EPOCH};

fn append_in(log: &mut Log, epoch: i32, tag: &str) -> i64 {
    match log.append(&tagged_batch(tag, 2, 1), epoch, 1).expect("append") {
        AppendOutcome::Appended(info) => info.base_offset,
        other => panic!("expected an append, got {other:?}"),
    }
}

fn epochs(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epochs().iter().map(|e| (e.epoch, e.start_offset)).collect()
}

#[test]
fn epochs_are_recorded_answered_truncated_and_reloaded() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    for (epoch, tag) in [(0, "a"), (0, "b"), (2, "c"), (2, "d"), (5, "e")] {
        append_in(&mut log, epoch, tag);
    }
    assert_eq!(epochs(&log), vec![(0, 0), (2, 4), (5, 8)]);
    assert_eq!(log.end_offset_for_epoch(5), (5, 10), "the latest epoch ends at the log end");
    assert_eq!(log.end_offset_for_epoch(3), (2, 8), "a follower of epoch 3 truncates to 8");
    assert_eq!(log.end_offset_for_epoch(UNDEFINED_EPOCH), (-1, -1));
    let file = std::fs::read_to_string(log_dir(root.path()).join(LEADER_EPOCH_CHECKPOINT)).expect("file");
    assert_eq!(file, "0\n3\n0 0\n2 4\n5 8\n");

    log.truncate_to(6).expect("truncate");
    assert_eq!(epochs(&log), vec![(0, 0), (2, 4)], "epoch 5 started past the new end");
    drop(log);
    let mut log = open_log(root.path(), small_config(), 0, false);
    assert_eq!(epochs(&log), vec![(0, 0), (2, 4)]);
    assert_eq!(append_in(&mut log, 7, "f"), 6);
    assert_eq!(epochs(&log), vec![(0, 0), (2, 4), (7, 6)]);
    log.delete_records_before(5).expect("delete records");
    assert_eq!(epochs(&log)[0], (2, log.log_start_offset()), "the first epoch starts at the log start");
}

#[test]
fn a_cache_ahead_of_a_crashed_log_is_trimmed_at_load() {
    let root = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open_log(root.path(), small_config(), 0, true);
        append_in(&mut log, 1, "a");
        log.flush().expect("flush");
    }
    // As if the crash came after the cache recorded epoch 3 at offset 2 but before its batch.
    std::fs::write(log_dir(root.path()).join(LEADER_EPOCH_CHECKPOINT), "0\n2\n1 0\n3 2\n").expect("write");
    let log = open_log(root.path(), small_config(), 2, false);
    assert_eq!(epochs(&log), vec![(1, 0)]);
    // A corrupt file (it is rewritten without an fsync) is not fatal: the epochs are recorded
    // again from the batches, from the log start.
    drop(log);
    std::fs::write(log_dir(root.path()).join(LEADER_EPOCH_CHECKPOINT), "garbage").expect("write");
    let mut log = open_log(root.path(), small_config(), 2, false);
    assert_eq!(epochs(&log), vec![(1, 0)]);
    append_in(&mut log, 4, "b");
    assert_eq!(epochs(&log), vec![(1, 0), (4, 2)]);
    // So is a missing one.
    drop(log);
    std::fs::remove_file(log_dir(root.path()).join(LEADER_EPOCH_CHECKPOINT)).expect("remove");
    let log = open_log(root.path(), small_config(), 0, true);
    assert_eq!(epochs(&log), vec![(1, 0), (4, 2)]);
}
