//! Tests of the whole log through its public API, asserting what a client would observe:
//! offsets, record values, errors.

mod append_read;
mod cleaner;
mod follower;
mod idempotence;
mod leader_epochs;
mod manager;
mod model;
mod recovery;
mod retention;
mod timestamps;
mod transactions;

use std::path::{Path, PathBuf};

use strom_protocol::batch::testing::{encode_test_batch, simple_batch, TestRecord};
use strom_protocol::batch::{BatchIter, RecordIter, BATCH_HEADER_LEN};

use crate::{AppendInfo, AppendOutcome, Log, LogConfig, TopicPartition};

pub(crate) fn tp() -> TopicPartition {
    TopicPartition::new("orders", 0)
}

/// Small segments and a dense index, so that a few batches exercise rolls and index lookups.
pub(crate) fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 1000, index_interval_bytes: 150, ..LogConfig::default() }
}

pub(crate) fn log_dir(root: &Path) -> PathBuf {
    root.join(tp().to_string())
}

pub(crate) fn open_log(root: &Path, config: LogConfig, recovery_point: i64, clean: bool) -> Log {
    Log::open(log_dir(root), tp(), config, recovery_point, 0, clean).expect("open log")
}

/// A batch of `n` records whose values are `"{tag}-{i}"`.
pub(crate) fn tagged_batch(tag: &str, n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect();
    let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    encode_test_batch(0, -1, -1, -1, &[ts], &records)
}

pub(crate) fn append(log: &mut Log, batch: Vec<u8>, now_ms: i64) -> AppendInfo {
    match log.append(&batch, 0, now_ms).expect("append") {
        AppendOutcome::Appended(info) => info,
        other => panic!("expected an append, got {other:?}"),
    }
}

pub(crate) fn append_simple(log: &mut Log, n: usize, ts: i64) -> AppendInfo {
    append(log, simple_batch(n, ts), ts)
}

/// (offset, value) of every record in fetched bytes, checking batch structure and CRCs.
pub(crate) fn records_of(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for item in BatchIter::new(bytes).with_crc_check() {
        let (header, batch) = item.expect("fetched batches are valid");
        for record in RecordIter::new(&batch[BATCH_HEADER_LEN..]) {
            let record = record.expect("valid record");
            out.push((header.base_offset + i64::from(record.offset_delta), record.value.unwrap_or_default().to_vec()));
        }
    }
    out
}

/// Reads the whole log from `from` by following fetch offsets, as a consumer would.
pub(crate) fn read_all(log: &Log, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.log_end_offset() {
        let read = log.read(next, 700, i64::MAX).expect("read");
        let records = records_of(&read.records);
        assert!(!records.is_empty(), "read at {next} below the LEO returned nothing");
        for (offset, value) in records {
            if offset >= next {
                out.push((offset, value));
            }
        }
        next = out.last().map_or(next, |(o, _)| o + 1);
    }
    out
}

/// The file names in the partition directory with the given suffix, sorted.
pub(crate) fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

#[test]
fn log_and_manager_can_move_between_threads() {
    // The broker keeps each Log behind a lock shared by tasks on several threads.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<crate::LogManager>();
}
