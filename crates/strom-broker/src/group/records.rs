//! The records of `__consumer_offsets`, in Kafka's formats so that operators' tools read them:
//!
//! ```text
//!  key v1  OffsetCommitKey    : version:i16=1 group:string topic:string partition:i32
//!  value v3 OffsetCommitValue : version:i16=3 offset:i64 leader_epoch:i32 metadata:string commit_timestamp:i64
//!  key v2  GroupMetadataKey   : version:i16=2 group:string
//!  value v3 GroupMetadataValue: version:i16=3 protocol_type:string generation:i32 protocol:string? leader:string?
//!                               current_state_timestamp:i64 members:[member_id:string group_instance_id:string?
//!                               client_id:string client_host:string rebalance_timeout:i32 session_timeout:i32
//!                               subscription:bytes assignment:bytes]
//! ```
//! A null value is a tombstone: the offset or group was deleted. Older value versions (0-2) that
//! Kafka wrote are read too.

use bytes::{Buf, BufMut, Bytes};

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not say (OffsetCommit before v6).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A group's membership as of its last completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// One decoded record of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Offset { group: String, topic: String, partition: i32, value: Option<CommittedOffset> },
    Group { group: String, value: Option<StoredGroup> },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.put_i16(s.len() as i16);
    out.extend_from_slice(s.as_bytes());
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.extend_from_slice(b);
}

pub fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.put_i16(1);
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.put_i32(partition);
    out
}

pub fn encode_offset_value(v: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + v.metadata.len());
    out.put_i16(3);
    out.put_i64(v.offset);
    out.put_i32(v.leader_epoch);
    put_str(&mut out, &v.metadata);
    out.put_i64(v.commit_timestamp_ms);
    out
}

pub fn encode_group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.put_i16(2);
    put_str(&mut out, group);
    out
}

pub fn encode_group_value(g: &StoredGroup) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_i16(3);
    put_str(&mut out, &g.protocol_type);
    out.put_i32(g.generation);
    put_nullable_str(&mut out, g.protocol.as_deref());
    put_nullable_str(&mut out, g.leader.as_deref());
    out.put_i64(g.state_timestamp_ms);
    out.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.group_instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// A cursor over a record's bytes that fails instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, n: usize) -> Result<(), String> {
        if self.0.remaining() < n {
            return Err(format!("truncated: needed {n} bytes, {} left", self.0.remaining()));
        }
        Ok(())
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn nullable_str(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let s = String::from_utf8(self.0[..len as usize].to_vec()).map_err(|e| e.to_string())?;
        self.0.advance(len as usize);
        Ok(Some(s))
    }
    fn str(&mut self) -> Result<String, String> {
        self.nullable_str()?.ok_or_else(|| "null where a string is required".to_string())
    }
    fn bytes(&mut self) -> Result<Bytes, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        self.need(len as usize)?;
        let b = Bytes::copy_from_slice(&self.0[..len as usize]);
        self.0.advance(len as usize);
        Ok(b)
    }
}

/// Decodes one record of `__consumer_offsets`.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, String> {
    let mut k = Reader(key);
    match k.i16()? {
        0 | 1 => {
            let group = k.str()?;
            let topic = k.str()?;
            let partition = k.i32()?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(OffsetsRecord::Offset { group, topic, partition, value })
        }
        2 => {
            let group = k.str()?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(OffsetsRecord::Group { group, value })
        }
        other => Err(format!("unknown key version {other}")),
    }
}

fn decode_offset_value(bytes: &[u8]) -> Result<CommittedOffset, String> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp_ms = r.i64()?;
    if version > 3 {
        return Err(format!("unsupported offset value version {version}"));
    }
    Ok(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
}

fn decode_group_value(bytes: &[u8]) -> Result<StoredGroup, String> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!("unsupported group value version {version}"));
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::with_capacity(count.clamp(0, 1024) as usize);
    for _ in 0..count.max(0) {
        let member_id = r.str()?;
        let group_instance_id = if version >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout_ms = r.i32()?;
        let session_timeout_ms = if version >= 1 { r.i32()? } else { rebalance_timeout_ms };
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(StoredGroup { protocol_type, generation, protocol, leader, state_timestamp_ms, members })
}

/// Kafka's partition for a group (and for a transactional id):
/// `Utils.abs(id.hashCode) % partitions`, where `hashCode` is Java's `String.hashCode` over UTF-16
/// code units and `Utils.abs` is `Math.abs` except that `Integer.MIN_VALUE` gives 0. (Not the
/// partitioner's `toPositive`, which masks the sign bit: for a negative hash the two differ.)
pub fn partition_for_group(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip() {
        let value = CommittedOffset { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 7 };
        let rec = decode(&encode_offset_key("g", "t", 5), Some(&encode_offset_value(&value))).expect("decode");
        assert_eq!(
            rec,
            OffsetsRecord::Offset { group: "g".into(), topic: "t".into(), partition: 5, value: Some(value) }
        );
        let tomb = decode(&encode_offset_key("g", "t", 5), None).expect("decode");
        assert!(matches!(tomb, OffsetsRecord::Offset { value: None, .. }));
    }

    #[test]
    fn group_records_round_trip() {
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 99,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let rec = decode(&encode_group_key("grp"), Some(&encode_group_value(&g))).expect("decode");
        assert_eq!(rec, OffsetsRecord::Group { group: "grp".into(), value: Some(g) });
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let key = encode_offset_key("g", "t", 1);
        for cut in 0..key.len() {
            assert!(decode(&key[..cut], None).is_err());
        }
    }

    #[test]
    fn group_partition_matches_java_string_hash_code() {
        // Java: "hello".hashCode() == 99162322 (the JDK documentation's example value).
        assert_eq!(partition_for_group("hello", 1_000_000_000), 99_162_322);
        // "testGroup".hashCode() == -1202336499; Utils.abs gives 1202336499; % 50 == 49.
        assert_eq!(partition_for_group("testGroup", 50), 49);
        // -787547453: 3 of 50 (masking the sign bit would give 45).
        assert_eq!(partition_for_group("chaos-readers", 50), 3);
        // Java's hashCode of this one is Integer.MIN_VALUE: Utils.abs gives 0.
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert_eq!(partition_for_group("test-group", 50), 12);
        assert_eq!(partition_for_group("", 50), 0);
    }
}
