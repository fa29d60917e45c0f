//! Response frames whose record data is written separately — from a file with `sendfile`, without
//! ever being copied into the frame. The frame is encoded as usual, with each
//! such records field left as a placeholder; this module finds the placeholders and splits the
//! frame around them, so that no encoder has to be written by hand for any version.
//!
//! How placeholders are found: the response is encoded twice, once with every placeholder
//! records field null and once empty. A null and an empty records field differ only in their
//! length prefix (`-1` vs `0` as an INT32 before flexible versions; `0` vs `1` as an unsigned
//! varint since), and both encodings have the same size, so the bytes that differ are exactly
//! the placeholders' length prefixes, in encoding order.

use crate::codec::Encodable;
use crate::frame::{encode_response, FrameError, FRAME_LENGTH_BYTES};
use crate::messages::ApiKey;
use bytes::{BufMut, Bytes, BytesMut};

/// A piece of a response frame, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramePart {
    /// Bytes to write as they are (including each records field's length prefix).
    Bytes(Bytes),
    /// The data of the `n`th placeholder (its length was given), written by the caller.
    Records(usize),
}

/// Encodes a response whose records fields at the placeholders carry `lens[n]` bytes each that
/// the caller writes itself. `set_placeholders(body, empty)` sets every placeholder records field,
/// in encoding order, to null (`empty == false`) or to empty bytes (`empty == true`). For APIs
/// whose body is flexible exactly when their response header is (all but ApiVersions; in
/// practice Fetch).
pub fn encode_response_spliced<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &mut R,
    set_placeholders: impl Fn(&mut R, bool),
    lens: &[usize],
) -> Result<Vec<FramePart>, FrameError> {
    set_placeholders(body, false);
    let with_nulls = encode_response(api_key, api_version, correlation_id, body)?;
    set_placeholders(body, true);
    let with_empties = encode_response(api_key, api_version, correlation_id, body)?;
    let flexible = api_key.response_header_version(api_version) >= 1;
    split(with_nulls, &with_empties, flexible, lens)
}

fn split(frame: BytesMut, other: &[u8], flexible: bool, lens: &[usize]) -> Result<Vec<FramePart>, FrameError> {
    let mismatch = |what: String| FrameError::Encode(format!("splicing records into a response: {what}"));
    if frame.len() != other.len() {
        return Err(mismatch(format!("encodings differ in size ({} vs {})", frame.len(), other.len())));
    }
    let prefix_len = if flexible { 1 } else { 4 };
    let mut slots = Vec::with_capacity(lens.len());
    let mut i = FRAME_LENGTH_BYTES;
    while i < frame.len() {
        if frame[i] != other[i] {
            slots.push(i);
            i += prefix_len;
        } else {
            i += 1;
        }
    }
    if slots.len() != lens.len() {
        return Err(mismatch(format!("{} placeholders found, {} expected", slots.len(), lens.len())));
    }
    let frame = frame.freeze();
    let mut parts = Vec::with_capacity(3 * lens.len() + 1);
    let mut size = frame.len() - FRAME_LENGTH_BYTES;
    let mut from = FRAME_LENGTH_BYTES;
    for (n, (&at, &len)) in slots.iter().zip(lens).enumerate() {
        let mut piece = BytesMut::with_capacity(at - from + 5);
        piece.extend_from_slice(&frame[from..at]);
        if flexible {
            put_unsigned_varint(&mut piece, len as u64 + 1);
        } else {
            let len = i32::try_from(len).map_err(|_| mismatch(format!("{len} bytes of records")))?;
            piece.put_i32(len);
        }
        size = size - prefix_len + (piece.len() - (at - from)) + len;
        parts.push(FramePart::Bytes(piece.freeze()));
        parts.push(FramePart::Records(n));
        from = at + prefix_len;
    }
    parts.push(FramePart::Bytes(frame.slice(from..)));
    let size = i32::try_from(size).map_err(|_| mismatch(format!("a frame of {size} bytes")))?;
    match parts.first_mut() {
        Some(FramePart::Bytes(first)) => {
            let mut with_length = BytesMut::with_capacity(FRAME_LENGTH_BYTES + first.len());
            with_length.put_i32(size);
            with_length.extend_from_slice(first);
            *first = with_length.freeze();
        }
        _ => return Err(mismatch("no leading bytes".into())),
    }
    Ok(parts)
}

fn put_unsigned_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // as clients outside this crate must (non_exhaustive)
mod tests {
    use super::*;
    use crate::codec::StrBytes;
    use crate::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use crate::messages::{FetchResponse, TopicName};

    /// A fetch response with `records` per partition (None: an error partition with null records).
    fn response(records: &[Option<Bytes>]) -> FetchResponse {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        for (i, r) in records.iter().enumerate() {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 1000 + i as i64;
            p.records = r.clone();
            p.aborted_transactions = Some(Vec::new());
            topic.partitions.push(p);
        }
        let mut resp = FetchResponse::default();
        resp.responses.push(topic);
        resp
    }

    /// Every Fetch version Strom speaks: the spliced frame with the data put back in is the frame
    /// kafka-protocol encodes with the data inside, byte for byte.
    #[test]
    fn spliced_frames_equal_whole_frames_in_every_version() {
        let data: Vec<Bytes> = [200usize, 0, 70_000].iter().map(|&n| Bytes::from(vec![0xAB; n])).collect();
        // Partition 1 is an error partition (null records) that is not a placeholder.
        let records = [Some(data[0].clone()), None, Some(data[2].clone())];
        for version in 4..=15 {
            let whole = encode_response(ApiKey::Fetch, version, 9, &response(&records)).expect("encode");
            let mut body = response(&records);
            let lens = [data[0].len(), data[2].len()];
            let parts = encode_response_spliced(
                ApiKey::Fetch,
                version,
                9,
                &mut body,
                |r, empty| {
                    for i in [0, 2] {
                        r.responses[0].partitions[i].records = empty.then(Bytes::new);
                    }
                },
                &lens,
            )
            .expect("spliced");
            let mut joined = Vec::new();
            for part in &parts {
                match part {
                    FramePart::Bytes(b) => joined.extend_from_slice(b),
                    FramePart::Records(n) => joined.extend_from_slice(&data[[0, 2][*n]]),
                }
            }
            assert_eq!(joined, whole.to_vec(), "Fetch v{version}");
        }
    }

    #[test]
    fn a_wrong_placeholder_count_is_an_error_not_a_corrupt_frame() {
        let mut body = response(&[Some(Bytes::from_static(b"x"))]);
        let err = encode_response_spliced(ApiKey::Fetch, 11, 1, &mut body, |_, _| {}, &[1]);
        assert!(err.is_err());
    }
}
