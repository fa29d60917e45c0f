//! Forwarding controller operations to the active controller. A broker that is not the quorum's
//! leader sends the operation (as JSON, with Strom's private API key [`STROM_FORWARD_API_KEY`])
//! to the leader's controller listener; the leader runs it, and answers with the outcome and the
//! metadata offset of its records, so that the forwarding broker can answer its client once its
//! own image has caught up to that offset.

use crate::errors::KafkaError;
use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strom_metadata::{ControllerOp, OpAnswer};
use strom_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Strom's private API key for forwarded controller operations.
pub const STROM_FORWARD_API_KEY: i16 = 0x7F01;
/// No forwarded operation or answer comes near this (a created topic's description).
const MAX_FORWARD_BYTES: usize = 16 << 20;

/// What the active controller answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedOutcome {
    pub error_code: i16,
    pub message: Option<String>,
    pub answer: Option<OpAnswer>,
    /// The metadata offset after the operation's records (0 when it proposed none).
    pub offset: u64,
}

impl ForwardedOutcome {
    pub fn from_result(result: Result<(OpAnswer, u64), KafkaError>) -> ForwardedOutcome {
        match result {
            Ok((answer, offset)) => ForwardedOutcome { error_code: 0, message: None, answer: Some(answer), offset },
            Err(e) => ForwardedOutcome { error_code: e.code(), message: e.message, answer: None, offset: 0 },
        }
    }

    pub fn into_result(self) -> Result<(OpAnswer, u64), KafkaError> {
        match (self.error_code, self.answer) {
            (0, Some(answer)) => Ok((answer, self.offset)),
            (0, None) => Err(KafkaError::new(ResponseError::UnknownServerError, "the controller sent no answer")),
            (code, _) => {
                let code = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
                Err(KafkaError { code, message: self.message })
            }
        }
    }
}

/// Sends `op` to the controller at `address` and waits for its outcome.
pub async fn forward(address: &str, op: &ControllerOp, timeout: Duration) -> Result<(OpAnswer, u64), KafkaError> {
    let unreachable = |why: String| {
        KafkaError::new(ResponseError::NotController, format!("cannot reach the active controller at {address}: {why}"))
    };
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(op).map_err(|e| e.to_string())?;
        let frame = super::transport::private_request_frame(STROM_FORWARD_API_KEY, 1, &body);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let len = stream.read_i32().await.map_err(|e| e.to_string())?;
        if len < 4 || len as usize > MAX_FORWARD_BYTES {
            return Err(format!("bad response length {len}"));
        }
        let mut buf = vec![0u8; len as usize];
        stream.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        serde_json::from_slice::<ForwardedOutcome>(&buf[4..]).map_err(|e| format!("unreadable answer: {e}"))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(outcome)) => outcome.into_result(),
        Ok(Err(why)) => Err(unreachable(why)),
        Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
    }
}

/// Decodes a forwarded operation (the frame after its length prefix).
pub fn decode_forward_frame(frame: &[u8]) -> Result<(i32, ControllerOp), String> {
    if frame.len() < 10 || frame[8..10] != [0xFF, 0xFF] {
        return Err("malformed Strom forward frame header".into());
    }
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let op = serde_json::from_slice(&frame[10..]).map_err(|e| format!("malformed forwarded operation: {e}"))?;
    Ok((correlation_id, op))
}

/// Encodes the answer frame: length, correlation id, JSON.
pub fn encode_forward_answer(correlation_id: i32, outcome: &ForwardedOutcome) -> BytesMut {
    let body = serde_json::to_vec(outcome).unwrap_or_default();
    let mut frame = BytesMut::with_capacity(8 + body.len());
    frame.put_i32((4 + body.len()) as i32);
    frame.put_i32(correlation_id);
    frame.put_slice(&body);
    frame
}
