use strom_protocol::batch::testing::{encode_test_batch, BatchFields, TestRecord};

use super::*;

fn values(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("t{i}").into_bytes()).collect()
}

fn batch_with_timestamps(ts: &[i64]) -> Vec<u8> {
    let values = values(ts.len());
    let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    encode_test_batch(0, -1, -1, -1, ts, &records)
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    // Timestamps are not monotonic inside batches, as with real producers.
    let batches: Vec<Vec<i64>> = (0..30).map(|i| vec![100 * i + 10, 100 * i + 50, 100 * i + 30]).collect();
    let mut all = Vec::new();
    for ts in &batches {
        let info = append(&mut log, batch_with_timestamps(ts), 0);
        for (j, t) in ts.iter().enumerate() {
            all.push((info.base_offset + j as i64, *t));
        }
    }
    assert!(log.segment_count() > 2);
    for target in [0, 10, 11, 49, 50, 51, 1230, 1255, 2949, 2950] {
        let expected = all.iter().find(|(_, t)| *t >= target).copied();
        assert_eq!(log.offset_for_timestamp(target).expect("lookup"), expected, "target {target}");
    }
    assert_eq!(log.offset_for_timestamp(2951).expect("lookup"), None);
    assert_eq!(log.max_timestamp(), Some((2950, 88)));

    // Offsets below the log start are never returned.
    log.delete_records_before(31).expect("delete");
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), Some((31, 1050)));

    // The same answers after a restart, from the time index on disk.
    log.close().expect("close");
    let log = Log::open(log_dir(root.path()), tp(), small_config(), 0, 31, true).expect("open");
    assert_eq!(log.offset_for_timestamp(1230).expect("lookup"), Some((37, 1250)));
    assert_eq!(log.max_timestamp(), Some((2950, 88)));
}

/// ListOffsets by timestamp inside compressed batches finds the exact record, in every codec.
#[test]
fn compressed_batches_are_searched_record_by_record() {
    use strom_protocol::batch::{BatchWriter, Compression};
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let root = tempfile::tempdir().expect("tempdir");
        let mut log = open_log(root.path(), LogConfig::default(), 0, true);
        append(&mut log, batch_with_timestamps(&[10, 20]), 0);
        let mut w = BatchWriter::new(0);
        let no_headers: &[(&[u8], Option<&[u8]>)] = &[];
        for t in [30, 50, 40] {
            w.append(t, None, Some(b"compressed".as_slice()), no_headers);
        }
        let fields = BatchFields { attributes: codec as i16, ..BatchFields::default() };
        let batch = w
            .finish_with(&fields, |records, out| strom_protocol::compression::compress(codec, records, out))
            .expect("compressed batch");
        append(&mut log, batch.to_vec(), 0);
        assert_eq!(log.offset_for_timestamp(45).expect("lookup"), Some((3, 50)), "{codec:?}");
        assert_eq!(log.offset_for_timestamp(35).expect("lookup"), Some((3, 50)), "{codec:?}");
        assert_eq!(log.offset_for_timestamp(31).expect("lookup"), Some((3, 50)), "{codec:?}");
        assert_eq!(log.offset_for_timestamp(30).expect("lookup"), Some((2, 30)), "{codec:?}");
        assert_eq!(log.offset_for_timestamp(15).expect("lookup"), Some((1, 20)), "{codec:?}");
        assert_eq!(log.offset_for_timestamp(51).expect("lookup"), None, "{codec:?}");
    }
}

#[test]
fn empty_log_has_no_timestamps() {
    let root = tempfile::tempdir().expect("tempdir");
    let log = open_log(root.path(), LogConfig::default(), 0, true);
    assert_eq!(log.offset_for_timestamp(0).expect("lookup"), None);
    assert_eq!(log.max_timestamp(), None);
}

/// message.timestamp.type=LogAppendTime: the stored batch says LogAppendTime, carries the append
/// time as its max timestamp, has a valid CRC, keeps its records byte for byte, and the time
/// index follows the append time; the producer's timestamps are gone.
#[test]
fn log_append_time_stamps_batches_with_the_append_time() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = LogConfig { log_append_time: true, ..small_config() };
    let mut log = open_log(root.path(), config, 0, true);
    let sent = batch_with_timestamps(&[5, 7, 6]);
    let info = append(&mut log, sent.clone(), 1_000_000);
    assert_eq!(info.log_append_time_ms, 1_000_000);
    assert_eq!(info.max_timestamp, 1_000_000);
    let read = log.read(0, 1 << 20, i64::MAX).expect("read");
    let (header, batch) = BatchIter::new(&read.records).with_crc_check().next().expect("a batch").expect("valid CRC");
    assert_eq!(header.timestamp_type(), strom_protocol::batch::TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 1_000_000);
    assert_eq!(header.base_timestamp, 5, "the base timestamp stays the producer's, as in Kafka");
    assert_eq!(&batch[BATCH_HEADER_LEN..], &sent[BATCH_HEADER_LEN..], "records untouched");
    assert_eq!(log.offset_for_timestamp(999_999).expect("lookup"), Some((0, 1_000_000)));
    assert_eq!(log.offset_for_timestamp(1_000_001).expect("lookup"), None);

    // CreateTime (the default) keeps the producer's.
    let root = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(root.path(), small_config(), 0, true);
    let info = append(&mut log, sent.clone(), 1_000_000);
    assert_eq!((info.log_append_time_ms, info.max_timestamp), (-1, 7));
    let read = log.read(0, 1 << 20, i64::MAX).expect("read");
    assert_eq!(&read.records[16..], &sent[16..], "stored as sent but for offset and leader epoch");
}
