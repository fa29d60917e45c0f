use std::fs::OpenOptions;
use std::io::Write;

use super::*;

fn fill(log: &mut Log, batches: usize) -> Vec<(i64, Vec<u8>)> {
    for i in 0..batches {
        append(log, tagged_batch(&format!("r{i}"), 1 + i % 3, 100 + i as i64), 100);
    }
    read_all(log, 0)
}

fn last_log_file(log: &Log) -> PathBuf {
    let base = *log.segment_base_offsets().last().expect("a segment");
    log.dir().join(format!("{base:020}.log"))
}

#[test]
fn reopen_after_clean_close_needs_no_scan() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let data = fill(&mut log, 30);
    let (leo, segments) = (log.log_end_offset(), log.segment_count());
    log.close().expect("close");

    let log = open_log(root.path(), small_config(), 0, true);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.recovery_point(), leo);
    let summary = log.load_summary();
    assert_eq!(summary.segments_recovered, 0, "{summary:?}");
    assert_eq!(summary.bytes_scanned, 0);
    assert_eq!(summary.producer_snapshot_offset, Some(leo));
    assert_eq!(summary.producer_batches_replayed, 0);
    assert_eq!(read_all(&log, 0), data);
}

#[test]
fn crash_with_garbage_tail_truncates_it_and_keeps_whole_batches() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let data = fill(&mut log, 30);
    let leo = log.log_end_offset();
    let path = last_log_file(&log);
    let index_path = path.with_extension("index");
    let index_before = std::fs::read(&index_path).expect("index");
    drop(log); // no close: a crash

    let garbage = [0xde_u8; 37];
    OpenOptions::new().append(true).open(&path).expect("open").write_all(&garbage).expect("garbage");
    std::fs::write(&index_path, b"").expect("lose the index too");

    let mut log = open_log(root.path(), small_config(), 0, false);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.load_summary().bytes_truncated, garbage.len() as u64);
    assert!(log.load_summary().segments_recovered >= 1);
    assert_eq!(std::fs::read(&index_path).expect("index"), index_before, "index rebuilt identically");
    assert_eq!(read_all(&log, 0), data);
    let info = append_simple(&mut log, 1, 500);
    assert_eq!(info.base_offset, leo, "appends continue at the recovered end");
}

#[test]
fn crash_with_torn_last_batch_drops_only_that_batch() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    let data = fill(&mut log, 10);
    let last_batch = log.read(log.log_end_offset() - 1, 1, i64::MAX).expect("read").records;
    let torn_from = log.log_end_offset() - records_of(&last_batch).len() as i64;
    let path = last_log_file(&log);
    drop(log);
    let len = std::fs::metadata(&path).expect("stat").len();
    OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 5).expect("cut");

    let log = open_log(root.path(), LogConfig::default(), 0, false);
    assert_eq!(log.log_end_offset(), torn_from);
    assert_eq!(read_all(&log, 0), data[..torn_from as usize].to_vec());
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), len - last_batch.len() as u64);
}

#[test]
fn crash_recovery_scans_only_from_the_recovery_point() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    fill(&mut log, 30);
    log.flush().expect("flush");
    let rp = log.recovery_point();
    append_simple(&mut log, 2, 1000);
    let segments = log.segment_count();
    drop(log);
    let log = open_log(root.path(), small_config(), rp, false);
    assert!(log.load_summary().segments_recovered < segments, "{:?}", log.load_summary());
    assert_eq!(log.log_end_offset(), rp + 2);
}

#[test]
fn a_roll_lets_the_rolled_segments_be_flushed_outside_the_log_and_moves_the_recovery_point() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    assert!(log.take_flush_after_roll().is_none(), "nothing rolled yet");
    fill(&mut log, 30);
    let active_base = *log.segment_base_offsets().last().expect("segments");
    let pending = log.take_flush_after_roll().expect("rolled");
    assert_eq!(pending.up_to, active_base);
    assert!(log.take_flush_after_roll().is_none(), "taken once");
    assert_eq!(log.recovery_point(), 0, "not before the files are synced");
    append_simple(&mut log, 2, 1000); // appends go on meanwhile
    pending.sync().expect("fsync");
    log.mark_flushed(&pending);
    assert_eq!(log.recovery_point(), active_base);
    let segments = log.segment_count();
    let end = log.log_end_offset();
    drop(log);
    // A crash now scans only the active segment.
    let mut log = open_log(root.path(), small_config(), active_base, false);
    assert_eq!(log.load_summary().segments_recovered, 1, "{:?} of {segments}", log.load_summary());
    assert_eq!(log.log_end_offset(), end);

    // A flush taken before a truncation does not count after it.
    fill(&mut log, 30);
    let pending = log.take_flush_after_roll().expect("rolled again");
    let before = log.recovery_point();
    log.truncate_to(active_base + 1).expect("truncate");
    fill(&mut log, 30);
    pending.sync().expect("fsync");
    log.mark_flushed(&pending);
    assert!(log.recovery_point() <= before.max(active_base + 1), "{} vs {before}", log.recovery_point());
}

#[test]
fn corruption_in_an_earlier_segment_drops_later_segments() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let data = fill(&mut log, 30);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3);
    let dir = log.dir().to_path_buf();
    drop(log);
    // Flip a byte in the last batch of the second segment.
    let victim = dir.join(format!("{:020}.log", bases[1]));
    let mut bytes = std::fs::read(&victim).expect("read");
    let at = bytes.len() - 3;
    bytes[at] ^= 0xff;
    std::fs::write(&victim, &bytes).expect("write");

    let log = open_log(root.path(), small_config(), 0, false);
    assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
    assert_eq!(log.load_summary().segments_deleted, bases.len() - 2);
    let leo = log.log_end_offset();
    assert!(leo < bases[2]);
    assert_eq!(read_all(&log, 0), data[..leo as usize].to_vec());
}

#[test]
fn corrupt_index_is_rebuilt_even_after_clean_shutdown() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let data = fill(&mut log, 30);
    let first = log.dir().join(format!("{:020}.index", 0));
    let second = log.dir().join(format!("{:020}.timeindex", log.segment_base_offsets()[1]));
    log.close().expect("close");
    let good = std::fs::read(&first).expect("index");
    assert!(!good.is_empty());
    std::fs::write(&first, [0xff_u8; 13]).expect("corrupt index");
    std::fs::write(&second, [1_u8; 7]).expect("corrupt time index");

    let log = open_log(root.path(), small_config(), 0, true);
    assert_eq!(log.load_summary().segments_recovered, 2);
    assert_eq!(std::fs::read(&first).expect("index"), good);
    assert_eq!(read_all(&log, 0), data);
}

#[test]
fn index_pointing_at_the_wrong_batch_is_rebuilt() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let data = fill(&mut log, 30);
    let index = log.dir().join(format!("{:020}.index", 0));
    log.close().expect("close");
    let mut bytes = std::fs::read(&index).expect("index");
    // Same position, a different relative offset: plausible-looking but wrong.
    let last = bytes.len() - 8;
    bytes[last + 3] = bytes[last + 3].wrapping_add(1);
    std::fs::write(&index, &bytes).expect("write");
    let log = open_log(root.path(), small_config(), 0, true);
    assert_eq!(log.load_summary().segments_recovered, 1);
    assert_eq!(read_all(&log, 0), data);
}

#[test]
fn stale_files_are_cleaned_up_at_open() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), LogConfig::default(), 0, true);
    append_simple(&mut log, 1, 1);
    let dir = log.dir().to_path_buf();
    log.close().expect("close");
    std::fs::write(dir.join("00000000000000000500.index"), b"").expect("orphan");
    std::fs::write(dir.join("00000000000000000000.log.deleted"), b"x").expect("stale");
    let log = open_log(root.path(), LogConfig::default(), 0, true);
    assert_eq!(log.log_end_offset(), 1);
    assert!(!dir.join("00000000000000000500.index").exists());
    assert!(!dir.join("00000000000000000000.log.deleted").exists());
}
