use super::testing::{encode_test_batch, simple_batch, TestBatch};
use super::*;

fn kv<'a>(k: &'a str, v: &'a str) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    (Some(k.as_bytes()), Some(v.as_bytes()))
}

#[test]
fn parses_header_fields() {
    let batch = encode_test_batch(42, 7, 3, 10, &[1000, 1005, 1002], &[kv("a", "1"), kv("b", "2"), kv("c", "3")]);
    let h = BatchHeader::parse(&batch).expect("valid header");
    assert_eq!(h.base_offset, 42);
    assert_eq!(h.magic, 2);
    assert_eq!(h.total_size(), batch.len());
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(h.last_offset(), 44);
    assert_eq!(h.next_offset(), 45);
    assert_eq!(h.record_count(), 3);
    assert_eq!(h.base_timestamp, 1000);
    assert_eq!(h.max_timestamp, 1005);
    assert_eq!(h.producer_id, 7);
    assert_eq!(h.producer_epoch, 3);
    assert_eq!(h.base_sequence, 10);
    assert_eq!(h.last_sequence(), 12);
    assert_eq!(h.compression(), Compression::None);
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert!(!h.is_transactional());
    assert!(!h.is_control());
    verify_crc(&batch).expect("crc ok");
}

#[test]
fn attribute_bits() {
    let recs = [kv("k", "v")];
    let batch = TestBatch {
        fields: BatchFields { attributes: 4 | 0x08 | 0x10, ..BatchFields::default() },
        records: &recs,
        ..TestBatch::default()
    }
    .encode();
    let h = BatchHeader::parse(&batch).expect("valid");
    assert_eq!(h.compression(), Compression::Zstd);
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert!(h.is_transactional());
    assert!(!h.is_control());
    let bad = TestBatch {
        fields: BatchFields { attributes: 6, ..BatchFields::default() },
        records: &recs,
        ..TestBatch::default()
    }
    .encode();
    assert_eq!(BatchHeader::parse(&bad), Err(BatchError::UnknownCompression(6)));
}

#[test]
fn flipped_byte_fails_crc() {
    let mut batch = simple_batch(3, 99);
    let last = batch.len() - 2;
    batch[last] ^= 0x01;
    match verify_crc(&batch) {
        Err(BatchError::CrcMismatch { expected, actual }) => assert_ne!(expected, actual),
        other => panic!("expected CRC mismatch, got {other:?}"),
    }
    assert!(matches!(validate_produce_batches(&batch), Err(BatchError::CrcMismatch { .. })));
}

#[test]
fn offset_and_epoch_rewrite_keep_crc_valid() {
    let mut batch = simple_batch(2, 5);
    set_base_offset(&mut batch, 1_000_000);
    set_partition_leader_epoch(&mut batch, 17);
    let h = BatchHeader::parse(&batch).expect("valid");
    assert_eq!(h.base_offset, 1_000_000);
    assert_eq!(h.partition_leader_epoch, 17);
    assert_eq!(h.last_offset(), 1_000_001);
    verify_crc(&batch).expect("rewrite is outside the CRC");
}

#[test]
fn bad_magic_and_length() {
    let mut batch = simple_batch(1, 0);
    batch[16] = 1;
    assert_eq!(BatchHeader::parse(&batch), Err(BatchError::BadMagic(1)));
    let mut batch = simple_batch(1, 0);
    batch[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(BatchHeader::parse(&batch), Err(BatchError::BadLength(10)));
    assert!(matches!(BatchHeader::parse(&batch[..30]), Err(BatchError::Truncated { .. })));
}

#[test]
fn iterator_reports_valid_prefix_of_torn_tail() {
    let a = simple_batch(2, 1);
    let b = simple_batch(3, 2);
    let mut bytes = a.clone();
    bytes.extend_from_slice(&b);
    let whole = bytes.len();
    bytes.extend_from_slice(&simple_batch(1, 3)[..40]);
    let mut it = BatchIter::new(&bytes).with_crc_check();
    assert_eq!(it.next().expect("first").expect("ok").1, &a[..]);
    assert_eq!(it.next().expect("second").expect("ok").1, &b[..]);
    assert!(matches!(it.next(), Some(Err(BatchError::Truncated { .. }))));
    assert!(it.next().is_none());
    assert_eq!(it.valid_up_to(), whole);
}

#[test]
fn iterator_stops_at_corrupt_batch_and_cut_body() {
    let a = simple_batch(2, 1);
    let mut bytes = a.clone();
    let mut b = simple_batch(2, 1);
    let n = b.len();
    b[n - 1] ^= 0xff;
    bytes.extend_from_slice(&b);
    let mut it = BatchIter::new(&bytes).with_crc_check();
    assert!(it.next().expect("first").is_ok());
    assert!(matches!(it.next(), Some(Err(BatchError::CrcMismatch { .. }))));
    assert_eq!(it.valid_up_to(), a.len());
    // Without CRC checking the same bytes are structurally fine.
    assert_eq!(BatchIter::new(&bytes).filter(|r| r.is_ok()).count(), 2);

    let cut = &a[..a.len() - 1];
    let mut it = BatchIter::new(cut);
    assert!(matches!(it.next(), Some(Err(BatchError::Truncated { .. }))));
    assert_eq!(it.valid_up_to(), 0);
}

#[test]
fn validate_produce_accepts_several_batches() {
    let mut bytes = encode_test_batch(0, 1, 0, 0, &[10], &[kv("a", "1"), kv("b", "2")]);
    bytes.extend_from_slice(&encode_test_batch(0, 1, 0, 2, &[11], &[kv("c", "3")]));
    let headers = validate_produce_batches(&bytes).expect("valid");
    assert_eq!(headers.len(), 2);
    assert_eq!(headers[1].header.base_sequence, 2);
    assert_eq!(headers[0].timestamps, Some((10, 10)));
}

#[test]
fn validate_produce_rejects_bad_requests() {
    assert_eq!(validate_produce_batches(&[]), Err(BatchError::Empty));
    let mut bytes = simple_batch(2, 0);
    bytes.extend_from_slice(&[0, 0, 0]);
    assert!(matches!(validate_produce_batches(&bytes), Err(BatchError::Truncated { .. })));
    let empty = simple_batch(0, 0);
    assert!(matches!(validate_produce_batches(&empty), Err(BatchError::Malformed(_))));
    let recs = [kv("k", "v")];
    let control = TestBatch {
        fields: BatchFields { attributes: 0x20, ..BatchFields::default() },
        records: &recs,
        ..TestBatch::default()
    }
    .encode();
    assert_eq!(validate_produce_batches(&control), Err(BatchError::ControlBatchFromClient));

    // recordsCount inconsistent with lastOffsetDelta (CRC recomputed so only the count is wrong).
    let mut bad = simple_batch(3, 0);
    bad[57..61].copy_from_slice(&2i32.to_be_bytes());
    let crc = compute_crc(&bad);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(validate_produce_batches(&bad), Err(BatchError::Malformed(_))));
}

#[test]
fn record_iterator_decodes_records() {
    let batch =
        encode_test_batch(0, -1, -1, -1, &[100, 90, 130], &[kv("a", "x"), (None, Some(b"y")), (Some(b"c"), None)]);
    let recs: Vec<Record<'_>> =
        RecordIter::new(&batch[BATCH_HEADER_LEN..]).collect::<Result<_, _>>().expect("records parse");
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].key, Some(&b"a"[..]));
    assert_eq!(recs[1].key, None);
    assert_eq!(recs[1].timestamp_delta, -10);
    assert_eq!(recs[2].offset_delta, 2);
    assert_eq!(recs[2].value, None);
    assert_eq!(recs[2].timestamp_delta, 30);
    // A cut record fails instead of reading out of bounds.
    let cut = &batch[BATCH_HEADER_LEN..batch.len() - 1];
    assert!(RecordIter::new(cut).any(|r| r.is_err()));
}

#[test]
fn sequence_wraps_like_kafka() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    assert_eq!(increment_sequence(5, 2), 7);
}
