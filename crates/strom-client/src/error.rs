//! The client's one error type. Kafka error codes keep Kafka's names so that a user can look
//! them up in Kafka's documentation.

use std::time::Duration;
use strom_protocol::ResponseError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("invalid configuration {key}: {message}")]
    Config { key: String, message: String },
    #[error("cannot reach {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("connection to {addr} failed: {message}")]
    Network { addr: String, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{name} (Kafka error {code}){}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka { code: i16, name: String, message: Option<String> },
    #[error("timed out after {after:?}: {what}")]
    Timeout { what: String, after: Duration },
    #[error("the broker supports no version of {api} that this client speaks ({min}..={max})")]
    UnsupportedVersion { api: String, min: i16, max: i16 },
    #[error("record of {size} bytes exceeds max.request.size {max}")]
    RecordTooLarge { size: usize, max: usize },
    #[error("{0}")]
    InvalidInput(String),
    #[error("the client is closed")]
    Closed,
    #[error("woken up")]
    Wakeup,
}

impl ClientError {
    /// The error for a non-zero Kafka error code.
    pub fn kafka(code: i16, message: Option<String>) -> ClientError {
        let name = match ResponseError::try_from_code(code) {
            Some(e) => screaming_snake(&format!("{e:?}")),
            None => format!("UNKNOWN_ERROR_{code}"),
        };
        ClientError::Kafka { code, name, message: message.filter(|m| !m.is_empty()) }
    }

    /// The Kafka error code, if this is a broker error.
    pub fn code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same request may succeed (Kafka's RetriableException, plus network
    /// failures and timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable()),
            ClientError::Connect { .. } | ClientError::Network { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// Whether the client's metadata may be stale (a leader moved, a topic appeared or vanished).
    pub fn needs_metadata_refresh(&self) -> bool {
        matches!(self.code(), Some(3 | 5 | 6 | 9 | 74 | 75 | 100))
            || matches!(self, ClientError::Connect { .. } | ClientError::Network { .. })
    }
}

/// `NotLeaderOrFollower` → `NOT_LEADER_OR_FOLLOWER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// Turns a Kafka error code into a result.
pub fn check(code: i16) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::kafka(code, None))
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_carry_kafkas_names() {
        let e = ClientError::kafka(6, None);
        assert_eq!(e.to_string(), "NOT_LEADER_OR_FOLLOWER (Kafka error 6)");
        assert!(e.is_retriable() && e.needs_metadata_refresh());
        assert!(!ClientError::kafka(10, None).is_retriable(), "MESSAGE_TOO_LARGE is final");
    }
}
