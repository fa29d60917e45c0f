//! Log compaction against a model: random keyed writes with tombstones, cleaned, then read back
//! as a consumer would; and crashes at every step of the segment swap.

use std::collections::HashMap;
use std::path::Path;

use strom_protocol::batch::testing::{encode_test_batch, TestRecord};
use strom_protocol::batch::{BatchIter, RecordIter, BATCH_HEADER_LEN};

use super::{append, files_with_suffix, log_dir, open_log};
use crate::{CleanOutcome, CleanSettings, Log, LogConfig};

/// (offset, key, value) as written or read.
type Entry = (i64, Vec<u8>, Option<Vec<u8>>);

fn config() -> LogConfig {
    LogConfig { segment_bytes: 700, index_interval_bytes: 120, ..LogConfig::default() }
}

fn settings() -> CleanSettings {
    CleanSettings { delete_retention_ms: 1_000, ..CleanSettings::default() }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Writes `batches` random keyed batches (keys k0..k{keys}, one record in eight a tombstone);
/// returns what was written, by offset.
fn write_random(log: &mut Log, rng: &mut Rng, batches: usize, keys: u64, now_ms: i64) -> Vec<Entry> {
    let mut written = Vec::new();
    for _ in 0..batches {
        let n = 1 + rng.below(4) as usize;
        let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
            .map(|_| {
                let key = format!("k{}", rng.below(keys)).into_bytes();
                let value = (rng.below(8) != 0).then(|| format!("v{}", rng.below(1_000_000)).into_bytes());
                (key, value)
            })
            .collect();
        let records: Vec<TestRecord<'_>> = entries.iter().map(|(k, v)| (Some(k.as_slice()), v.as_deref())).collect();
        let info = append(log, encode_test_batch(0, -1, -1, -1, &[now_ms], &records), now_ms);
        for (i, (k, v)) in entries.into_iter().enumerate() {
            written.push((info.base_offset + i as i64, k, v));
        }
    }
    written
}

/// Every record of the log, read from its start as a consumer would (holes skipped).
fn read_entries(log: &Log) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let read = log.read(next, 4096, i64::MAX).expect("read");
        if read.records.is_empty() {
            break;
        }
        for item in BatchIter::new(&read.records).with_crc_check() {
            let (h, batch) = item.expect("valid batches");
            for r in RecordIter::new(&batch[BATCH_HEADER_LEN..]) {
                let r = r.expect("valid record");
                let offset = h.base_offset + i64::from(r.offset_delta);
                if offset >= next {
                    out.push((offset, r.key.unwrap_or_default().to_vec(), r.value.map(<[u8]>::to_vec)));
                }
            }
            next = next.max(h.next_offset());
        }
    }
    out
}

/// One whole clean: plan, build, install. The first dirty offset of the next.
fn clean(log: &mut Log, first_dirty: i64, now_ms: i64) -> Option<i64> {
    let plan = log.plan_clean(first_dirty, log.log_end_offset(), now_ms, &settings())?;
    let built = plan.build(&settings(), now_ms, &mut |_| {}).expect("build");
    match log.install_clean(built).expect("install") {
        CleanOutcome::Installed { next_dirty, .. } => Some(next_dirty),
        CleanOutcome::Outdated => panic!("nothing changed the log meanwhile"),
    }
}

/// The first offset of the active segment: everything before it was cleanable.
fn active_base(dir: &Path) -> i64 {
    let logs = files_with_suffix(dir, ".log");
    logs.last().and_then(|n| n.trim_end_matches(".log").parse().ok()).expect("a segment")
}

/// Checks what a clean may and must keep: the records read are records as written at their
/// offsets, in order; below `cleaned_to`, a record is there exactly when it is its key's latest
/// write below `cleaned_to` (a tombstone only if at or above `tombstones_expired_below`); above
/// it, everything is.
fn check(read: &[Entry], written: &[Entry], cleaned_to: i64, tombstones_expired_below: i64) {
    let by_offset: HashMap<i64, &Entry> = written.iter().map(|e| (e.0, e)).collect();
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets strictly increase");
    for e in read {
        assert_eq!(Some(&e), by_offset.get(&e.0), "a record is what was written at its offset");
    }
    let mut latest: HashMap<&[u8], i64> = HashMap::new();
    for e in written.iter().filter(|e| e.0 < cleaned_to) {
        latest.insert(&e.1, e.0);
    }
    let present: std::collections::HashSet<i64> = read.iter().map(|e| e.0).collect();
    for e in written {
        let is_latest = latest.get(e.1.as_slice()) == Some(&e.0);
        let expected = e.0 >= cleaned_to || (is_latest && (e.2.is_some() || e.0 >= tombstones_expired_below));
        assert_eq!(present.contains(&e.0), expected, "offset {} key {:?} latest {is_latest}", e.0, e.1);
    }
}

#[test]
fn a_cleaned_log_holds_the_latest_value_of_each_key_at_its_offset() {
    for seed in 1..=25u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open_log(dir.path(), config(), 0, true);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut written = write_random(&mut log, &mut rng, 120, 12, 1_000);
        let first_end = active_base(&log_dir(dir.path()));
        let next = clean(&mut log, 0, 2_000).expect("dirty segments to clean");
        assert_eq!(next, first_end, "seed {seed}: the whole cleanable range was mapped");
        check(&read_entries(&log), &written, first_end, 0);

        // More writes, and a second clean from where the first ended, past the delete horizon
        // of the tombstones the first one kept (2,000 + delete.retention.ms).
        written.extend(write_random(&mut log, &mut rng, 60, 12, 5_000));
        let second_end = active_base(&log_dir(dir.path()));
        assert_eq!(clean(&mut log, next, 5_000), Some(second_end));
        check(&read_entries(&log), &written, second_end, first_end);

        // The cleaned log reopens (indexes and all) to the same records.
        let before_close = read_entries(&log);
        log.close().expect("close");
        let log = open_log(dir.path(), config(), 0, false);
        assert_eq!(read_entries(&log), before_close, "seed {seed}: reopened");
        assert!(files_with_suffix(&log_dir(dir.path()), ".cleaned").is_empty());
    }
}

/// A log of random keyed writes, the same for the same seed, cleaned once already (so that
/// its cleaned segments are small and the next clean groups several into one).
fn random_log(root: &Path, seed: u64) -> (Log, Vec<Entry>) {
    let mut log = open_log(root, config(), 0, true);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut written = write_random(&mut log, &mut rng, 100, 10, 1_000);
    clean(&mut log, 0, 1_500);
    written.extend(write_random(&mut log, &mut rng, 60, 10, 1_600));
    (log, written)
}

#[test]
fn a_crash_at_any_step_of_the_swap_leaves_the_old_or_the_new_segments() {
    for seed in 1..=12u64 {
        // The reference: the same log cleaned without a crash.
        let reference = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = random_log(reference.path(), seed);
        let before = read_entries(&log);
        clean(&mut log, 0, 2_000).expect("something to clean");
        let after = read_entries(&log);
        assert!(after.len() < before.len(), "seed {seed}: the clean removed records");
        for step in 0..4 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, _) = random_log(dir.path(), seed);
            let plan = log.plan_clean(0, log.log_end_offset(), 2_000, &settings()).expect("a plan");
            let built = plan.build(&settings(), 2_000, &mut |_| {}).expect("build");
            drop(log); // the crash: nothing installed by the log itself
            let ldir = log_dir(dir.path());
            assert!(built.groups.iter().any(|g| g.replaces.len() > 1), "seed {seed}: a group of several segments");
            // Step 2 stops at a random point of the deletions: some groups' old segments gone.
            let mut rng = Rng((seed * 31 + step) | 1);
            for g in built.groups.iter() {
                let delete_this = step == 3 || (step == 2 && rng.below(2) == 0);
                let stem = crate::file_stem(g.base);
                if step >= 1 {
                    // The commit point: .cleaned renamed to .swap.
                    let swap = format!("{stem}.{}.log.swap", crate::file_stem(g.end));
                    std::fs::rename(ldir.join(format!("{stem}.log.cleaned")), ldir.join(swap)).expect("rename");
                }
                if delete_this {
                    for (old, _) in &g.replaces {
                        for suffix in [".log", ".index", ".timeindex"] {
                            let _ = std::fs::remove_file(ldir.join(format!("{}{suffix}", crate::file_stem(*old))));
                        }
                    }
                }
            }
            let reopened = open_log(dir.path(), config(), 0, false);
            let expected = if step == 0 { &before } else { &after };
            assert_eq!(&read_entries(&reopened), expected, "seed {seed}, crash after step {step}");
            assert!(files_with_suffix(&ldir, ".swap").is_empty() && files_with_suffix(&ldir, ".cleaned").is_empty());
        }
    }
}

#[test]
fn a_clean_planned_before_retention_deleted_a_segment_is_not_installed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = random_log(dir.path(), 3);
    let plan = log.plan_clean(0, log.log_end_offset(), 2_000, &settings()).expect("a plan");
    let built = plan.build(&settings(), 2_000, &mut |_| {}).expect("build");
    let before = read_entries(&log);
    let second_segment = *log.segments.keys().nth(1).expect("two segments");
    log.delete_records_before(second_segment).expect("delete records");
    assert_eq!(log.install_clean(built).expect("install"), CleanOutcome::Outdated);
    assert!(files_with_suffix(&log_dir(dir.path()), ".cleaned").is_empty(), "the copies are removed");
    assert_eq!(read_entries(&log), before.into_iter().filter(|e| e.0 >= second_segment).collect::<Vec<_>>());
}

#[test]
fn a_producers_last_batch_survives_with_no_record_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(dir.path(), config(), 0, true);
    // Producer 9 writes key a twice; then others overwrite a, until segments roll.
    let records: Vec<TestRecord<'_>> = vec![(Some(b"a".as_slice()), Some(b"p9".as_slice()))];
    let info = append(&mut log, encode_test_batch(0, 9, 0, 0, &[1_000], &records), 1_000);
    let mut rng = Rng(77);
    let written = write_random(&mut log, &mut rng, 80, 1, 1_000);
    assert!(written.iter().any(|e| e.1 == b"k0"), "other writes follow");
    let a_again: Vec<TestRecord<'_>> = vec![(Some(b"a".as_slice()), Some(b"later".as_slice()))];
    append(&mut log, encode_test_batch(0, -1, -1, -1, &[1_000], &a_again), 1_000);
    for _ in 0..3 {
        write_random(&mut log, &mut rng, 20, 1, 1_000);
    }
    clean(&mut log, 0, 2_000).expect("clean");
    let read = log.read(0, 1 << 20, i64::MAX).expect("read");
    let first = BatchIter::new(&read.records).next().expect("a batch").expect("valid").0;
    assert_eq!((first.base_offset, first.producer_id, first.records_count), (info.base_offset, 9, 0));
    // And the producer's state is rebuilt from it after a crash (no snapshot): a gap in its
    // sequence is still refused, and its next sequence, 1, accepted.
    log.close().expect("close");
    for f in files_with_suffix(&log_dir(dir.path()), ".snapshot") {
        std::fs::remove_file(log_dir(dir.path()).join(f)).expect("remove snapshot");
    }
    let mut log = open_log(dir.path(), config(), 0, false);
    let next: Vec<TestRecord<'_>> = vec![(Some(b"b".as_slice()), Some(b"p9-1".as_slice()))];
    let gap = log.append(&encode_test_batch(0, 9, 0, 5, &[1_000], &next), 0, 1_000);
    assert!(matches!(gap, Err(crate::StorageError::OutOfOrderSequence { expected: 1, .. })), "{gap:?}");
    append(&mut log, encode_test_batch(0, 9, 0, 1, &[1_000], &next), 1_000);
}

/// Cleaner throughput, for docs/benchmarks.md:
/// `cargo test --release -p strom-storage cleaner_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn cleaner_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() };
    let mut log = open_log(dir.path(), config, 0, true);
    let value = vec![b'x'; 1_000];
    let mut written = 0u64;
    let mut i = 0u64;
    while written < 512 << 20 {
        let keys: Vec<Vec<u8>> = (0..100).map(|j| format!("key-{}", (i * 100 + j) % 100_000).into_bytes()).collect();
        let records: Vec<TestRecord<'_>> = keys.iter().map(|k| (Some(k.as_slice()), Some(value.as_slice()))).collect();
        let batch = encode_test_batch(0, -1, -1, -1, &[1_000], &records);
        written += batch.len() as u64;
        append(&mut log, batch, 1_000);
        i += 1;
    }
    log.flush().expect("flush");
    let started = std::time::Instant::now();
    let plan = log.plan_clean(0, log.log_end_offset(), 2_000, &settings()).expect("a plan");
    let built = plan.build(&settings(), 2_000, &mut |_| {}).expect("build");
    let stats = built.stats;
    log.install_clean(built).expect("install");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "cleaned {} MB of dirty log (read {} MB: map and rewrite; {} MB kept, {} of {} records) in {secs:.2} s: {:.0} MB/s of dirty log",
        written >> 20,
        stats.bytes_read >> 20,
        stats.bytes_written >> 20,
        stats.records_kept,
        stats.records_kept + stats.records_removed,
        (written as f64 / (1 << 20) as f64) / secs
    );
}

#[test]
fn a_log_starting_inside_its_first_segment_is_cleaned() {
    // DeleteRecords (or a follower taking its leader's log start) leaves the log start inside a
    // segment: the clean must still install, not be planned and thrown away forever.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(dir.path(), config(), 0, true);
    let written = write_random(&mut log, &mut Rng(99), 100, 10, 1_000);
    let first_next = log.segments.values().next().expect("a segment").next_offset();
    let inside = first_next / 2;
    assert!(inside > log.segments.keys().next().copied().unwrap_or(0), "a log start inside the first segment");
    log.delete_records_before(inside).expect("delete records");
    assert!(clean(&mut log, 0, 5_000).is_some(), "installed");
    let end = active_base(&log_dir(dir.path()));
    let kept: Vec<Entry> = written.into_iter().filter(|e| e.0 >= inside).collect();
    check(&read_entries(&log), &kept, end, 0);
}
