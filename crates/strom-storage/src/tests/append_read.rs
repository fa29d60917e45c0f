use strom_protocol::batch::testing::simple_batch;
use strom_protocol::batch::{BatchHeader, BatchIter};

use super::*;
use crate::StorageError;

#[test]
fn round_trip_across_segment_rolls_keeps_offsets_contiguous() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let mut expected = Vec::new();
    for i in 0..40 {
        let n = 1 + i % 4;
        let info = append(&mut log, tagged_batch(&format!("b{i}"), n, 1000 + i as i64), 1000);
        assert_eq!(info.base_offset, expected.len() as i64, "offsets are contiguous");
        assert_eq!(info.last_offset, info.base_offset + n as i64 - 1);
        for j in 0..n {
            expected.push((expected.len() as i64, format!("b{i}-{j}").into_bytes()));
        }
    }
    assert_eq!(log.log_end_offset(), expected.len() as i64);
    assert!(log.segment_count() > 3, "small segments roll: {}", log.segment_count());
    assert_eq!(read_all(&log, 0), expected);
    // Every offset can be fetched directly and the first returned batch holds it.
    for offset in 0..log.log_end_offset() {
        let read = log.read(offset, 1, i64::MAX).expect("read");
        let header = BatchHeader::parse(&read.records).expect("a batch");
        assert!(header.base_offset <= offset && offset <= header.last_offset(), "offset {offset} in {header:?}");
        assert_eq!(read.records.len(), header.total_size(), "max_bytes 1 still returns one whole batch");
    }
    // Segment files are named by their base offsets.
    let logs = files_with_suffix(&log_dir(root.path()), ".log");
    let names: Vec<String> = log.segment_base_offsets().iter().map(|b| format!("{b:020}.log")).collect();
    assert_eq!(logs, names);
    assert_eq!(logs[0], "00000000000000000000.log");
}

#[test]
fn read_from_the_middle_of_a_batch_returns_that_batch() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append_simple(&mut log, 5, 10);
    append_simple(&mut log, 5, 11);
    let read = log.read(7, 1 << 20, i64::MAX).expect("read");
    let offsets: Vec<i64> = records_of(&read.records).iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8, 9]);
}

#[test]
fn max_bytes_and_max_offset_limit_what_is_returned() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    for i in 0..5 {
        append_simple(&mut log, 2, i);
    }
    let batch_size = simple_batch(2, 0).len();
    let read = log.read(0, 2 * batch_size, i64::MAX).expect("read");
    assert_eq!(read.records.len(), 2 * batch_size);
    let read = log.read(0, 2 * batch_size + 10, i64::MAX).expect("read");
    assert_eq!(read.records.len(), 2 * batch_size, "only whole batches");
    let read = log.read(0, 1 << 20, 4).expect("read");
    let last = records_of(&read.records).last().map(|(o, _)| *o);
    assert_eq!(last, Some(3), "the batch starting at the limit is not returned");
    let read = log.read(4, 1 << 20, 4).expect("read");
    assert!(read.records.is_empty());
    assert_eq!(read.log_end_offset, 10);
}

#[test]
fn out_of_range_and_end_of_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append_simple(&mut log, 3, 1);
    assert!(log.read(3, 100, i64::MAX).expect("read at LEO").records.is_empty());
    match log.read(4, 100, i64::MAX) {
        Err(StorageError::OffsetOutOfRange { requested: 4, log_start: 0, log_end: 3 }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

#[test]
fn append_stores_offsets_and_leader_epoch_without_touching_the_input() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append_simple(&mut log, 2, 1);
    let mut bytes = simple_batch(3, 2);
    bytes.extend_from_slice(&simple_batch(1, 3));
    let sent = bytes.clone();
    let info = *log.append(&bytes, 7, 3).expect("append").info();
    assert_eq!((info.base_offset, info.last_offset, info.record_count), (2, 5, 4));
    assert_eq!(bytes, sent, "the request's bytes are not modified");
    let read = log.read(2, 1 << 20, i64::MAX).expect("read");
    let headers: Vec<BatchHeader> =
        BatchIter::new(&read.records).with_crc_check().map(|r| r.expect("valid").0).collect();
    assert_eq!((headers[0].base_offset, headers[1].base_offset), (2, 5));
    assert_eq!((headers[0].partition_leader_epoch, headers[1].partition_leader_epoch), (7, 7));
    // Only baseOffset and partitionLeaderEpoch of each batch differ from what was sent.
    let second = headers[0].total_size();
    for (i, (stored, came)) in read.records.iter().zip(&sent).enumerate() {
        let at = if i >= second { i - second } else { i };
        if !(0..8).contains(&at) && !(12..16).contains(&at) {
            assert_eq!(stored, came, "byte {i}");
        }
    }
}

#[test]
fn oversized_batch_is_rejected_without_writing() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { max_message_bytes: 100, ..LogConfig::default() };
    let mut log = open_log(root.path(), config, 0, true);
    let big = simple_batch(10, 1);
    match log.append(&big, 0, 1) {
        Err(StorageError::MessageTooLarge { size, max: 100 }) => assert_eq!(size, big.len()),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn segments_roll_by_time_and_by_roll_if_due() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_ms: 1000, ..LogConfig::default() };
    let mut log = open_log(root.path(), config, 0, true);
    append(&mut log, simple_batch(1, 0), 10_000);
    append(&mut log, simple_batch(1, 0), 10_500);
    assert_eq!(log.segment_count(), 1);
    append(&mut log, simple_batch(1, 0), 11_001);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    log.roll_if_due(11_500).expect("not yet");
    assert_eq!(log.segment_count(), 2);
    log.roll_if_due(12_002).expect("roll");
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 3]);
    log.roll_if_due(20_000).expect("empty active segment does not roll");
    assert_eq!(log.segment_count(), 3);
}

#[test]
fn flush_by_message_count_advances_recovery_point() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { flush_interval_messages: 5, ..LogConfig::default() };
    let mut log = open_log(root.path(), config, 0, true);
    append_simple(&mut log, 3, 1);
    assert!(log.take_requested_flush(None).is_none(), "3 of 5 messages: no flush yet");
    append_simple(&mut log, 3, 2);
    // The append only asks for the flush; the caller syncs it off the log's lock.
    assert_eq!(log.recovery_point(), 0);
    assert!(log.take_requested_flush(Some(7)).is_none(), "nothing asked for up to 7");
    let pending = log.take_requested_flush(Some(6)).expect("5 messages reached");
    pending.sync().expect("sync");
    log.mark_flushed(&pending);
    assert_eq!(log.recovery_point(), 6);
    append_simple(&mut log, 1, 3);
    assert!(log.take_requested_flush(None).is_none(), "the count starts over after a flush");
    assert_eq!(log.recovery_point(), 6);
    log.set_config(LogConfig { flush_interval_ms: 100, ..LogConfig::default() });
    log.maybe_flush_by_time(i64::MAX / 2).expect("flush");
    assert_eq!(log.recovery_point(), 7);
    log.flush().expect("flush");
    assert_eq!(log.recovery_point(), log.log_end_offset());
}

#[test]
fn a_flush_taken_by_one_append_leaves_the_next_waiting_until_it_is_synced() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
    let mut log = open_log(root.path(), config, 0, true);
    append_simple(&mut log, 2, 1);
    append_simple(&mut log, 2, 2);
    // The first produce takes the flush, which covers both appends; the second's records are
    // still not durable until that flush is synced and marked (the broker serialises the
    // flushes of a log, so the second waits for the first and then finds nothing to do).
    let first = log.take_requested_flush(Some(2)).expect("asked for");
    assert!(log.flush_needed(Some(4)), "not durable yet");
    first.sync().expect("sync");
    log.mark_flushed(&first);
    assert!(!log.flush_needed(Some(4)), "durable once the first flush is marked");
    assert_eq!(log.recovery_point(), 4);
}

#[test]
fn truncate_to_drops_the_tail_and_producer_state_follows() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    for i in 0..30 {
        append(&mut log, tagged_batch(&format!("t{i}"), 2, i), i);
    }
    let before = read_all(&log, 0);
    log.truncate_to(25).expect("truncate");
    // Offset 25 is inside the batch 24..25, which goes too.
    assert_eq!(log.log_end_offset(), 24);
    assert_eq!(read_all(&log, 0), before[..24].to_vec());
    let info = append_simple(&mut log, 1, 99);
    assert_eq!(info.base_offset, 24);
    log.truncate_to(0).expect("truncate everything");
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.segment_count(), 1);
}
