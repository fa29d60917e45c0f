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
