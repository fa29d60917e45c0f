//! Encodes uncompressed v2 record batches: used by the broker for the records it writes itself
//! (consumer offsets, group metadata) and by tests to send exactly the bytes a client would.

use super::writer::{BatchFields, BatchWriter};

/// (key, value) of one record; `None` is null (a null value is a tombstone).
pub type BatchRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// What goes into a batch; `Default` is an uncompressed, non-idempotent batch at offset 0 with
/// timestamp 0.
#[derive(Debug, Clone, Default)]
pub struct BatchSpec<'a> {
    /// The header fields. Compression bits in `attributes` only label the batch: the records are
    /// written uncompressed regardless.
    pub fields: BatchFields,
    /// One timestamp per record, or a single one used for all records; empty means 0.
    pub timestamps: &'a [i64],
    /// (key, value) per record; `None` is null.
    pub records: &'a [BatchRecord<'a>],
}

impl BatchSpec<'_> {
    /// Encodes the batch with a correct CRC.
    ///
    /// Panics if `timestamps` has neither one entry nor one per record (a caller bug).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.records.len();
        let ts = |i: usize| -> i64 {
            match self.timestamps.len() {
                0 => 0,
                1 => self.timestamps[0],
                len => {
                    assert_eq!(len, n, "one timestamp per record, or exactly one");
                    self.timestamps[i]
                }
            }
        };
        let mut writer = BatchWriter::new(0);
        let no_headers: [(&[u8], Option<&[u8]>); 0] = [];
        for (i, (key, value)) in self.records.iter().enumerate() {
            writer.append(ts(i), *key, *value, &no_headers);
        }
        writer.finish(&self.fields).to_vec()
    }
}
