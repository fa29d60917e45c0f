//! Raft messages as bytes, for the transport between controllers (protobuf, raft-rs's own
//! encoding). Decoding is bounded by the input: protobuf reads lengths against what is left.

use protobuf::Message as _;
use raft::eraftpb::Message;

pub fn encode_message(message: &Message) -> Vec<u8> {
    // Encoding a message built in memory cannot fail (no unset required fields in proto3).
    message.write_to_bytes().expect("raft messages encode")
}

pub fn decode_message(bytes: &[u8]) -> Result<Message, String> {
    Message::parse_from_bytes(bytes).map_err(|e| e.to_string())
}

use super::core::Committed;
use super::observer::{ObserverChunk, ObserverContent, ObserverFetch};
use bytes::{Buf, BufMut};

/// Bytes of an [`ObserverFetch`] on the wire.
pub const OBSERVER_FETCH_BYTES: usize = 20;

pub fn encode_observer_fetch(fetch: &ObserverFetch, out: &mut Vec<u8>) {
    out.put_i32(fetch.observer_id);
    out.put_u64(fetch.from_index);
    out.put_u32(fetch.max_bytes);
    out.put_u32(fetch.max_wait_ms);
}

pub fn decode_observer_fetch(mut bytes: &[u8]) -> Result<ObserverFetch, String> {
    if bytes.len() != OBSERVER_FETCH_BYTES {
        return Err(format!("observer fetch of {} bytes (expected {OBSERVER_FETCH_BYTES})", bytes.len()));
    }
    Ok(ObserverFetch {
        observer_id: bytes.get_i32(),
        from_index: bytes.get_u64(),
        max_bytes: bytes.get_u32(),
        max_wait_ms: bytes.get_u32(),
    })
}

/// The answer: leader (-1: none), term, commit, then 0 and the entries (count, then index, term,
/// length and data of each) or 1 and the snapshot (index, term, length, data).
pub fn encode_observer_chunk(chunk: &ObserverChunk, out: &mut Vec<u8>) {
    out.put_i64(chunk.leader.map_or(-1, |l| l as i64));
    out.put_u64(chunk.term);
    out.put_u64(chunk.commit);
    let put_item = |out: &mut Vec<u8>, index: u64, term: u64, data: &[u8]| {
        out.put_u64(index);
        out.put_u64(term);
        out.put_u32(data.len() as u32);
        out.put_slice(data);
    };
    match &chunk.content {
        ObserverContent::Entries(entries) => {
            out.put_u8(0);
            out.put_u32(entries.len() as u32);
            for e in entries {
                put_item(out, e.index, e.term, &e.data);
            }
        }
        ObserverContent::Snapshot { index, term, data } => {
            out.put_u8(1);
            put_item(out, *index, *term, data);
        }
    }
}

/// Decodes an answer; every length is checked against what is left before it is used.
pub fn decode_observer_chunk(mut bytes: &[u8]) -> Result<ObserverChunk, String> {
    fn need(bytes: &[u8], n: usize, what: &str) -> Result<(), String> {
        if bytes.len() < n {
            return Err(format!("observer chunk ends inside {what}"));
        }
        Ok(())
    }
    fn item(bytes: &mut &[u8]) -> Result<(u64, u64, bytes::Bytes), String> {
        need(bytes, 20, "an entry header")?;
        let (index, term, len) = (bytes.get_u64(), bytes.get_u64(), bytes.get_u32() as usize);
        need(bytes, len, "an entry")?;
        let data = bytes::Bytes::copy_from_slice(&bytes[..len]);
        bytes.advance(len);
        Ok((index, term, data))
    }
    need(bytes, 25, "the header")?;
    let leader = match bytes.get_i64() {
        -1 => None,
        id if id >= 0 => Some(id as u64),
        id => return Err(format!("observer chunk names leader {id}")),
    };
    let (term, commit) = (bytes.get_u64(), bytes.get_u64());
    let content = match bytes.get_u8() {
        0 => {
            need(bytes, 4, "the entry count")?;
            let count = bytes.get_u32() as usize;
            if count > bytes.len() / 20 {
                return Err(format!("observer chunk claims {count} entries in {} bytes", bytes.len()));
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                let (index, term, data) = item(&mut bytes)?;
                entries.push(Committed { index, term, data });
            }
            ObserverContent::Entries(entries)
        }
        1 => {
            let (index, term, data) = item(&mut bytes)?;
            ObserverContent::Snapshot { index, term, data }
        }
        kind => return Err(format!("observer chunk of unknown kind {kind}")),
    };
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the observer chunk", bytes.len()));
    }
    Ok(ObserverChunk { leader, term, commit, content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observer_messages_round_trip_and_truncations_are_refused() {
        let fetch = ObserverFetch { observer_id: 4, from_index: 17, max_bytes: 1 << 20, max_wait_ms: 500 };
        let mut bytes = Vec::new();
        encode_observer_fetch(&fetch, &mut bytes);
        assert_eq!(decode_observer_fetch(&bytes), Ok(fetch));
        assert!(decode_observer_fetch(&bytes[..19]).is_err());

        let entries = vec![
            Committed { index: 17, term: 2, data: bytes::Bytes::from_static(b"records") },
            Committed { index: 18, term: 3, data: bytes::Bytes::new() },
        ];
        for content in [
            ObserverContent::Entries(entries),
            ObserverContent::Entries(Vec::new()),
            ObserverContent::Snapshot { index: 9, term: 1, data: bytes::Bytes::from_static(b"image") },
        ] {
            let chunk = ObserverChunk { leader: Some(1), term: 3, commit: 18, content };
            let mut bytes = Vec::new();
            encode_observer_chunk(&chunk, &mut bytes);
            assert_eq!(decode_observer_chunk(&bytes), Ok(chunk));
            for cut in 0..bytes.len() {
                assert!(decode_observer_chunk(&bytes[..cut]).is_err(), "cut at {cut} accepted");
            }
        }
        // A count larger than the bytes could hold is refused before anything is allocated.
        let mut lying = Vec::new();
        encode_observer_chunk(
            &ObserverChunk { leader: None, term: 1, commit: 1, content: ObserverContent::Entries(Vec::new()) },
            &mut lying,
        );
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_observer_chunk(&lying).unwrap_err().contains("claims"));
    }
}
