//! Shorthands for tests in any crate that need exactly the bytes a Kafka client would send,
//! without pulling a client library into unit tests.

pub use super::builder::{BatchRecord as TestRecord, BatchSpec as TestBatch};
pub use super::writer::BatchFields;

/// Encodes an uncompressed v2 batch with the given records. `timestamps` holds one timestamp per
/// record or a single one for all. A non-idempotent batch uses producer id -1, epoch -1, sequence -1.
#[doc(hidden)]
pub fn encode_test_batch(
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamps: &[i64],
    records: &[TestRecord<'_>],
) -> Vec<u8> {
    let fields = BatchFields { base_offset, producer_id, producer_epoch, base_sequence, ..BatchFields::default() };
    TestBatch { fields, timestamps, records }.encode()
}

/// Shorthand: a non-idempotent batch of `n` records with values "v0", "v1", … and timestamp `ts`.
#[doc(hidden)]
pub fn simple_batch(n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
    let records: Vec<TestRecord<'_>> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
    encode_test_batch(0, -1, -1, -1, &[ts], &records)
}
