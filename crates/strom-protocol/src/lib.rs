//! Strom's thin layer over the `kafka-protocol` crate.
//!
//! It owns the wire framing and envelopes (a 4-byte big-endian length, then a request header and
//! body; responses likewise), and a zero-copy view of v2 record batch headers that the broker and
//! the storage engine share. Message bodies themselves are the generated types of `kafka-protocol`,
//! re-exported here so that every crate uses one version of them.
//!
//! ```text
//!  socket bytes ─▶ [len:i32][api_key:i16][api_version:i16][correlation_id:i32][client_id]…[body]
//!                   frame::decode_request_header ─▶ (ApiKey, RequestHeader, body bytes)
//!  handler result ─▶ frame::encode_response ─▶ [len][correlation_id](tagged fields)[body]
//! ```

pub mod batch;
pub mod frame;
pub mod spliced;

pub use kafka_protocol;
