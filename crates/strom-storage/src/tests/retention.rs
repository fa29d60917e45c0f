use super::*;
use crate::StorageError;

/// Ten segments of ~900 bytes each; batch i has timestamp 1000 * i.
fn segmented_log(root: &Path, config: LogConfig) -> Log {
    let mut log = open_log(root, config, 0, true);
    for i in 0..40 {
        append(&mut log, tagged_batch(&format!("x{i}"), 8, 1000 * i), 1000 * i);
    }
    assert!(log.segment_count() >= 5, "{}", log.segment_count());
    log
}

#[test]
fn time_retention_deletes_old_segments_but_never_the_active_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { retention_ms: 10_000, ..small_config() };
    let mut log = segmented_log(root.path(), config);
    let bases = log.segment_base_offsets();
    let data = read_all(&log, 0);

    // now = 45_000: segments whose newest batch is older than 35_000 go.
    let outcome = log.apply_retention(45_000).expect("retention");
    assert!(outcome.deleted_segments > 0);
    let remaining = log.segment_base_offsets();
    assert_eq!(remaining[..], bases[outcome.deleted_segments..]);
    assert_eq!(log.log_start_offset(), remaining[0]);
    assert_eq!(outcome.log_start_offset, remaining[0]);
    // Every remaining segment except the newest still has data younger than the cut-off.
    let kept = read_all(&log, log.log_start_offset());
    assert_eq!(kept[..], data[remaining[0] as usize..]);
    match log.read(remaining[0] - 1, 100, i64::MAX) {
        Err(StorageError::OffsetOutOfRange { log_start, .. }) => {
            assert_eq!(log_start, remaining[0])
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(!log.dir().join(format!("{:020}.log", bases[0])).exists(), "files are removed");

    // Far in the future everything but the active segment goes.
    log.apply_retention(10_000_000).expect("retention");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.segment_base_offsets(), vec![*bases.last().expect("active")]);
    assert_eq!(log.log_end_offset(), 320, "the log end never moves back");
}

#[test]
fn size_retention_keeps_the_log_under_the_limit_in_whole_segments() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { retention_bytes: 2500, retention_ms: -1, ..small_config() };
    let mut log = segmented_log(root.path(), config);
    let before = log.size_bytes();
    let outcome = log.apply_retention(0).expect("retention");
    assert!(outcome.deleted_segments > 0);
    assert_eq!(outcome.deleted_bytes, before - log.size_bytes());
    assert!(log.size_bytes() <= 2500 + 1000, "within one segment of the limit: {}", log.size_bytes());
    // One more deletion would have gone below the limit.
    let oldest = log.segment_base_offsets()[0];
    assert!(log.size_bytes() - segment_size(&log, oldest) < 2500);
    assert_eq!(log.log_start_offset(), oldest);
    assert_eq!(log.apply_retention(0).expect("again").deleted_segments, 0);
}

fn segment_size(log: &Log, base: i64) -> u64 {
    std::fs::metadata(log.dir().join(format!("{base:020}.log"))).expect("stat").len()
}

#[test]
fn unlimited_retention_deletes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { retention_ms: -1, retention_bytes: -1, ..small_config() };
    let mut log = segmented_log(root.path(), config);
    let n = log.segment_count();
    assert_eq!(log.apply_retention(i64::MAX).expect("retention").deleted_segments, 0);
    assert_eq!(log.segment_count(), n);
}

#[test]
fn delete_records_moves_log_start_and_drops_whole_segments_below_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = segmented_log(root.path(), small_config());
    let bases = log.segment_base_offsets();
    let target = bases[2] + 3;
    assert_eq!(log.delete_records_before(target).expect("delete"), target);
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.segment_base_offsets()[0], bases[2], "the segment holding the new start stays");
    assert!(matches!(log.read(target - 1, 100, i64::MAX), Err(StorageError::OffsetOutOfRange { .. })));
    let first = read_all(&log, target);
    assert_eq!(first[0].0, target);
    assert_eq!(log.delete_records_before(5).expect("lower is a no-op"), target);
    assert!(matches!(log.delete_records_before(10_000), Err(StorageError::OffsetOutOfRange { .. })));
    // Up to the end: every segment but the active one goes, and the log stays appendable.
    let leo = log.log_end_offset();
    log.delete_records_before(leo).expect("delete all");
    assert_eq!(log.segment_count(), 1);
    assert_eq!(append_simple(&mut log, 1, 5).base_offset, leo);
    // The log start survives a restart when passed back in (the manager checkpoints it).
    log.close().expect("close");
    let log = Log::open(log_dir(root.path()), tp(), small_config(), 0, leo, true).expect("open");
    assert_eq!(log.log_start_offset(), leo);
}
