//! The records of `__transaction_state`, in Kafka's formats so that Kafka's tools
//! (`kafka-dump-log --transaction-log-decoder`) read them:
//!
//! ```text
//!  key   TransactionLogKey   v0: version:i16=0 transactional_id:string
//!  value TransactionLogValue v0: version:i16=0 producer_id:i64 producer_epoch:i16
//!                                transaction_timeout_ms:i32 transaction_status:i8
//!                                transaction_partitions:[topic:string partition_ids:[i32]]? (null when Empty)
//!                                transaction_last_update_timestamp_ms:i64 transaction_start_timestamp_ms:i64
//!        v1 (flexible): the same in compact encodings, with tagged fields previous_producer_id (0),
//!                       next_producer_id (1), client_transaction_version (2)
//! ```
//! Strom writes v0, what Kafka writes while `transaction.version` is 0 (Strom's transactions are
//! Kafka's TV0/TV1 ones: no epoch bump per transaction); it reads both. A null value is a
//! tombstone: the transactional id expired.

use super::state::TxnState;
use bytes::BufMut;
use std::collections::BTreeMap;

/// What the log keeps of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The transaction's partitions, by topic.
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub last_update_ms: i64,
    /// -1 when no transaction has started.
    pub start_ms: i64,
}

/// One decoded record of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogRecord {
    pub transactional_id: String,
    /// None: a tombstone.
    pub value: Option<TxnLogValue>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.put_i16(s.len() as i16);
    out.extend_from_slice(s.as_bytes());
}

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.put_i16(0);
    put_str(&mut out, transactional_id);
    out
}

pub fn encode_value(v: &TxnLogValue) -> Vec<u8> {
    assert!(v.state.is_persisted(), "{:?} is never written to the transaction log", v.state);
    assert!(v.state != TxnState::Empty || v.partitions.is_empty(), "an Empty transaction has no partitions");
    let mut out = Vec::with_capacity(64);
    out.put_i16(0);
    out.put_i64(v.producer_id);
    out.put_i16(v.producer_epoch);
    out.put_i32(v.timeout_ms);
    out.put_i8(v.state.id());
    if v.state == TxnState::Empty {
        out.put_i32(-1);
    } else {
        out.put_i32(v.partitions.len() as i32);
        for (topic, ids) in &v.partitions {
            put_str(&mut out, topic);
            out.put_i32(ids.len() as i32);
            for id in ids {
                out.put_i32(*id);
            }
        }
    }
    out.put_i64(v.last_update_ms);
    out.put_i64(v.start_ms);
    out
}

/// A cursor that fails instead of panicking on short input; `compact` reads v1's encodings.
struct Reader<'a> {
    bytes: &'a [u8],
    compact: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated: needed {n} bytes, {} left", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes(self.fixed()?))
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }
    fn uvarint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.fixed::<1>()?[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 5 bytes".into())
    }
    /// A length or count: -1 for null; never more than the bytes left (each item takes one).
    fn length(&mut self) -> Result<i64, String> {
        let n = if self.compact { i64::from(self.uvarint()?) - 1 } else { i64::from(self.i32()?) };
        if n > self.bytes.len() as i64 {
            return Err(format!("length {n} with {} bytes left", self.bytes.len()));
        }
        Ok(n.max(-1))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = if self.compact { i64::from(self.uvarint()?) - 1 } else { i64::from(self.i16()?) };
        if n < 0 {
            return Err("null string".into());
        }
        let bytes = self.take(n as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("string: {e}"))
    }
    /// Skips a tagged-field section (v1), keeping the fields `wanted` names.
    fn tagged(&mut self, mut wanted: impl FnMut(u32, &[u8])) -> Result<(), String> {
        if !self.compact {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            wanted(tag, self.take(size)?);
        }
        Ok(())
    }
}

/// Decodes one record of `__transaction_state` (`value` None: a tombstone).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<TxnLogRecord, String> {
    let mut k = Reader { bytes: key, compact: false };
    let key_version = k.i16()?;
    if key_version != 0 {
        return Err(format!("unknown transaction log key version {key_version}"));
    }
    let transactional_id = k.string()?;
    let value = value.map(decode_value).transpose()?;
    Ok(TxnLogRecord { transactional_id, value })
}

fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, String> {
    let mut r = Reader { bytes, compact: false };
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(format!("unknown transaction log value version {version}"));
    }
    r.compact = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.i8()?;
    let state = TxnState::from_id(status)
        .filter(|s| s.is_persisted())
        .ok_or_else(|| format!("transaction status {status} is never written to the log"))?;
    let mut partitions = BTreeMap::new();
    let topics = r.length()?;
    for _ in 0..topics.max(0) {
        let topic = r.string()?;
        let count = r.length()?;
        let mut ids = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count.max(0) {
            ids.push(r.i32()?);
        }
        r.tagged(|_, _| {})?;
        partitions.insert(topic, ids);
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    r.tagged(|_, _| {})?;
    Ok(TxnLogValue { producer_id, producer_epoch, timeout_ms, state, partitions, last_update_ms, start_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> TxnLogValue {
        TxnLogValue {
            producer_id: 4001,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeMap::from([
                ("orders".to_string(), vec![0, 2]),
                ("__consumer_offsets".to_string(), vec![7]),
            ]),
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn values_are_kafkas_v0_bytes_and_read_back() {
        let v = ongoing();
        let bytes = encode_value(&v);
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&4001i64.to_be_bytes());
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&18i16.to_be_bytes());
        expected.extend_from_slice(b"__consumer_offsets");
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&7i32.to_be_bytes());
        expected.extend_from_slice(&6i16.to_be_bytes());
        expected.extend_from_slice(b"orders");
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(bytes, expected);
        let key = encode_key("payments-1");
        assert_eq!(key, [&[0, 0, 0, 10][..], b"payments-1"].concat());
        let record = decode(&key, Some(&bytes)).expect("decodes");
        assert_eq!(record, TxnLogRecord { transactional_id: "payments-1".into(), value: Some(v) });
        assert_eq!(decode(&key, None).expect("tombstone").value, None);
    }

    #[test]
    fn an_empty_transaction_is_written_with_null_partitions() {
        let v = TxnLogValue { state: TxnState::Empty, partitions: BTreeMap::new(), start_ms: -1, ..ongoing() };
        let bytes = encode_value(&v);
        assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes(), "null partitions");
        assert_eq!(decode(&encode_key("t"), Some(&bytes)).expect("decodes").value, Some(v));
    }

    #[test]
    fn flexible_v1_values_are_read_with_their_tagged_fields_skipped() {
        let mut bytes = vec![0, 1];
        bytes.extend_from_slice(&9i64.to_be_bytes());
        bytes.extend_from_slice(&1i16.to_be_bytes());
        bytes.extend_from_slice(&30_000i32.to_be_bytes());
        bytes.push(4); // CompleteCommit
        bytes.push(2); // one topic
        bytes.push(2); // "t"
        bytes.push(b't');
        bytes.push(3); // two ids
        bytes.extend_from_slice(&5i32.to_be_bytes());
        bytes.extend_from_slice(&6i32.to_be_bytes());
        bytes.push(0); // no tagged fields in the topic
        bytes.extend_from_slice(&10i64.to_be_bytes());
        bytes.extend_from_slice(&(-1i64).to_be_bytes());
        bytes.extend_from_slice(&[1, 2, 2, 0, 2]); // tag 2 (client_transaction_version) = 2
        let v = decode(&encode_key("t"), Some(&bytes)).expect("decodes").value.expect("a value");
        assert_eq!(v.state, TxnState::CompleteCommit);
        assert_eq!(v.partitions, BTreeMap::from([("t".to_string(), vec![5, 6])]));
        assert_eq!(
            (v.producer_id, v.producer_epoch, v.timeout_ms, v.last_update_ms, v.start_ms),
            (9, 1, 30_000, 10, -1)
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic_or_an_allocation() {
        let good = encode_value(&ongoing());
        for cut in 0..good.len() {
            assert!(decode(&encode_key("t"), Some(&good[..cut])).is_err(), "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[17..21].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(&encode_key("t"), Some(&huge)).is_err());
        for status in [6, 7, 9] {
            let mut bad_state = good.clone();
            bad_state[16] = status;
            assert!(decode(&encode_key("t"), Some(&bad_state)).is_err(), "status {status}: never in the log");
        }
        assert!(decode(&[0, 1, 0, 0], None).is_err(), "key version 1");
    }
}
