//! Request/response envelopes of the Kafka wire protocol.
//!
//! A frame is a 4-byte big-endian size followed by that many bytes. Requests start with a header
//! whose version depends on the API and its version (flexible versions carry tagged fields);
//! responses start with the correlation id (and, for flexible versions, tagged fields), except
//! ApiVersions, whose response header is always v0 so that a client can read it before it knows
//! which versions the broker speaks.

use crate::codec::{Decodable, Encodable};
use crate::messages::{ApiKey, RequestHeader, ResponseHeader};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the length prefix in front of every frame.
pub const FRAME_LENGTH_BYTES: usize = 4;

/// Why a frame could not be understood. Any of these closes the connection, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("frame too short for a request header ({0} bytes)")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    BadHeader(String),
    #[error("cannot encode response: {0}")]
    Encode(String),
}

/// Checks a frame's announced size before its body is read, so that a hostile or broken client
/// cannot make the broker allocate more than `socket.request.max.bytes`.
pub fn check_frame_size(announced: i32, max: usize) -> Result<usize, FrameError> {
    if announced < 0 || announced as usize > max {
        return Err(FrameError::TooLarge { size: announced as i64, max });
    }
    if (announced as usize) < 8 {
        return Err(FrameError::TooShort(announced as usize));
    }
    Ok(announced as usize)
}

/// Reads the API key, version and correlation id without decoding the rest, so that even a
/// request of an unsupported version can be answered with the right correlation id.
pub fn peek_key_version_correlation(frame: &[u8]) -> Result<(i16, i16, i32), FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let mut b = &frame[..8];
    Ok((b.get_i16(), b.get_i16(), b.get_i32()))
}

/// Reads a frame body of `size` bytes (after its length prefix) into a buffer that is not zeroed
/// first: zeroing a megabyte per produce request or fetch response cost ~5% of a broker's CPU.
/// The buffer grows with the bytes that actually arrive (doubling from 64 KiB), so a peer that
/// announces a large frame and sends little of it holds little memory. A stream that ends early
/// is an `UnexpectedEof` error saying how much arrived.
pub async fn read_frame_body<R: AsyncRead + Unpin>(reader: &mut R, size: usize) -> std::io::Result<BytesMut> {
    const FIRST_CHUNK: usize = 64 * 1024;
    let mut frame = BytesMut::with_capacity(size.min(FIRST_CHUNK));
    while frame.len() < size {
        if frame.len() == frame.capacity() {
            frame.reserve((size - frame.len()).min(frame.len().max(FIRST_CHUNK)));
        }
        if (&mut *reader).take((size - frame.len()) as u64).read_buf(&mut frame).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("stream ended after {} of {size} frame bytes", frame.len()),
            ));
        }
    }
    Ok(frame)
}

/// Decodes the request header and leaves `frame` positioned at the start of the body.
pub fn decode_request_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), FrameError> {
    let (key, version, _) = peek_key_version_correlation(frame)?;
    let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(frame, header_version).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    Ok((api_key, header))
}

/// Encodes a complete response frame: length prefix, response header, body.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut, FrameError> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader { correlation_id, ..Default::default() };
    // Sized up front: a fetch response of megabytes must not be copied while the buffer grows.
    let size = body.compute_size(api_version).map_err(|e| FrameError::Encode(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(FRAME_LENGTH_BYTES + 16 + size);
    buf.put_i32(0);
    header.encode(&mut buf, header_version).map_err(|e| FrameError::Encode(e.to_string()))?;
    body.encode(&mut buf, api_version).map_err(|e| FrameError::Encode(format!("{api_key:?} v{api_version}: {e}")))?;
    let len = (buf.len() - FRAME_LENGTH_BYTES) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Encodes a complete request frame (used by tests and by Strom's own client tools).
pub fn encode_request<R: Encodable>(header: &RequestHeader, body: &R) -> Result<BytesMut, FrameError> {
    let api_key =
        ApiKey::try_from(header.request_api_key).map_err(|_| FrameError::UnknownApiKey(header.request_api_key))?;
    // Sized up front: a produce request of megabytes must not be copied while the buffer grows.
    let size = body.compute_size(header.request_api_version).map_err(|e| FrameError::Encode(e.to_string()))?;
    let header_size = header.client_id.as_ref().map_or(0, |c| c.len()) + 16;
    let mut buf = BytesMut::with_capacity(FRAME_LENGTH_BYTES + header_size + size);
    buf.put_i32(0);
    header
        .encode(&mut buf, api_key.request_header_version(header.request_api_version))
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    body.encode(&mut buf, header.request_api_version).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = (buf.len() - FRAME_LENGTH_BYTES) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Decodes a response body after its header (used by tests and Strom's own client tools).
pub fn decode_response<R: Decodable>(
    api_key: ApiKey,
    api_version: i16,
    frame: &mut Bytes,
) -> Result<(ResponseHeader, R), FrameError> {
    let header = ResponseHeader::decode(frame, api_key.response_header_version(api_version))
        .map_err(|e| FrameError::BadHeader(e.to_string()))?;
    let body = R::decode(frame, api_version).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    Ok((header, body))
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // as clients outside this crate must (non_exhaustive)
mod tests {
    use super::*;
    use crate::codec::StrBytes;
    use crate::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn request_round_trip_keeps_header_and_body() {
        let mut header = RequestHeader::default();
        header.request_api_key = ApiKey::Metadata as i16;
        header.request_api_version = 12;
        header.correlation_id = 42;
        header.client_id = Some(StrBytes::from_static_str("t"));
        let frame = encode_request(&header, &MetadataRequest::default()).expect("encode");
        let mut body = Bytes::from(frame).slice(4..);
        let (key, decoded) = decode_request_header(&mut body).expect("decode");
        assert_eq!(key, ApiKey::Metadata);
        assert_eq!(decoded.correlation_id, 42);
        assert_eq!(decoded.client_id.as_deref(), Some("t"));
    }

    #[test]
    fn api_versions_response_uses_header_v0_even_when_flexible() {
        let frame = encode_response(ApiKey::ApiVersions, 3, 7, &ApiVersionsResponse::default()).expect("encode");
        // length, then correlation id, then immediately the body (error_code = 0): no tagged fields.
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
        let _ = ApiVersionsRequest::default();
    }

    #[test]
    fn oversized_and_negative_frames_are_rejected() {
        assert!(check_frame_size(-1, 100).is_err());
        assert!(check_frame_size(101, 100).is_err());
        assert!(check_frame_size(3, 100).is_err());
        assert_eq!(check_frame_size(100, 100).expect("fits"), 100);
    }
}
