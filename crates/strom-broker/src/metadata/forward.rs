//! Forwarding controller operations to the active controller. A broker that is not the quorum's
//! leader sends the operation (as JSON, with Strom's private API key [`STROM_FORWARD_API_KEY`])
//! to the leader's controller listener; the leader runs it, and answers with the outcome and the
//! metadata offset of its records, so that the forwarding broker can answer its client once its
//! own image has caught up to that offset.

use super::transport::{private_answer_frame, private_request_body, private_request_frame, read_private_answer};
use crate::errors::KafkaError;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strom_metadata::{ControllerOp, OpAnswer};
use strom_protocol::ResponseError;
use tokio::io::AsyncWriteExt;
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
        let frame = private_request_frame(STROM_FORWARD_API_KEY, 1, &body);
        stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        let answer = read_private_answer(&mut stream, 1, MAX_FORWARD_BYTES).await?;
        serde_json::from_slice::<ForwardedOutcome>(&answer).map_err(|e| format!("unreadable answer: {e}"))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(outcome)) => outcome.into_result(),
        Ok(Err(why)) => Err(unreachable(why)),
        Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
    }
}

/// Decodes a forwarded operation (the frame after its length prefix).
pub fn decode_forward_frame(frame: &[u8]) -> Result<(i32, ControllerOp), String> {
    let (correlation_id, body) = private_request_body(frame)?;
    let op = serde_json::from_slice(body).map_err(|e| format!("malformed forwarded operation: {e}"))?;
    Ok((correlation_id, op))
}

/// Encodes the answer frame: length, correlation id, JSON.
pub fn encode_forward_answer(correlation_id: i32, outcome: &ForwardedOutcome) -> BytesMut {
    private_answer_frame(correlation_id, &serde_json::to_vec(outcome).unwrap_or_default())
}
