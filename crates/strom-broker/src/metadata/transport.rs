//! Raft messages between controllers. Each message travels in a Kafka-framed request with
//! Strom's private API key [`STROM_RAFT_API_KEY`] (request header v1 with a null client id, then
//! the raft-rs message in protobuf), one way: no response, since Raft carries its own
//! acknowledgements and retries. One task per peer keeps a connection to the peer's controller
//! endpoint (`controller.quorum.voters`) and writes what the quorum thread queues for it; a full
//! queue or a broken connection drops messages, which Raft resends.

use bytes::{BufMut, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strom_metadata::quorum::{decode_message, encode_message, RaftMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Strom's private API key for Raft messages, far above Kafka's keys (which end below 100).
pub const STROM_RAFT_API_KEY: i16 = 0x7F00;
/// Messages waiting for one peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// A single Raft message larger than this is refused on receipt (entries are capped far lower).
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 << 20;

/// The sending half, used by the quorum thread.
#[derive(Clone)]
pub struct RaftTransport {
    peers: HashMap<u64, mpsc::Sender<BytesMut>>,
    /// Peers whose process was seen gone: the connection closed and the port refuses.
    gone: Arc<Mutex<std::sync::mpsc::Receiver<u64>>>,
}

impl RaftTransport {
    /// Starts one sender task per peer `(id, host, port)`.
    pub fn start(peers: Vec<(u64, String, u16)>, stop: watch::Receiver<bool>) -> RaftTransport {
        let mut senders = HashMap::new();
        let (gone_tx, gone_rx) = std::sync::mpsc::channel();
        for (id, host, port) in peers {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            senders.insert(id, tx);
            tokio::spawn(send_loop(id, format!("{host}:{port}"), rx, gone_tx.clone(), stop.clone()));
        }
        RaftTransport { peers: senders, gone: Arc::new(Mutex::new(gone_rx)) }
    }

    /// A transport with no peers (a quorum of one).
    pub fn none() -> RaftTransport {
        RaftTransport { peers: HashMap::new(), gone: Arc::new(Mutex::new(std::sync::mpsc::channel().1)) }
    }

    /// The peers seen gone since the last call (a peer may be named more than once).
    pub fn gone_peers(&self) -> Vec<u64> {
        self.gone.lock().unwrap_or_else(|p| p.into_inner()).try_iter().collect()
    }

    /// Queues a message for its peer; drops it when the peer's queue is full or unknown.
    pub fn send(&self, message: &RaftMessage) {
        let Some(peer) = self.peers.get(&message.to) else {
            tracing::debug!(to = message.to, "no route to metadata quorum peer");
            return;
        };
        let _ = peer.try_send(private_request_frame(STROM_RAFT_API_KEY, 0, &encode_message(message)));
    }
}

/// A request frame of one of Strom's private API keys: length, request header v1 (key, version
/// 0, correlation id, null client id), then `body`.
pub fn private_request_frame(api_key: i16, correlation_id: i32, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(14 + body.len());
    frame.put_i32((10 + body.len()) as i32);
    frame.put_i16(api_key);
    frame.put_i16(0);
    frame.put_i32(correlation_id);
    frame.put_i16(-1);
    frame.put_slice(body);
    frame
}

/// The correlation id and body of a private request frame (the frame after its length prefix),
/// once its header is checked: a null client id where [`private_request_frame`] puts it.
pub fn private_request_body(frame: &[u8]) -> Result<(i32, &[u8]), String> {
    if frame.len() < 10 || frame[8..10] != [0xFF, 0xFF] {
        return Err("malformed Strom private request header".into());
    }
    Ok((i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]), &frame[10..]))
}

/// An answer frame of a private API key: length, correlation id, then `body`.
pub fn private_answer_frame(correlation_id: i32, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(8 + body.len());
    frame.put_i32((4 + body.len()) as i32);
    frame.put_i32(correlation_id);
    frame.put_slice(body);
    frame
}

/// Reads one answer frame from `stream` and returns its body, refusing a length above
/// `max_bytes` (before allocating) and an answer to another request than `correlation_id`.
pub async fn read_private_answer(
    stream: &mut TcpStream,
    correlation_id: i32,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    let len = stream.read_i32().await.map_err(|e| e.to_string())?;
    if len < 4 || len as usize > max_bytes {
        return Err(format!("bad answer length {len}"));
    }
    let answered = stream.read_i32().await.map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    if answered != correlation_id {
        return Err(format!("answer to request {answered}, expected {correlation_id}"));
    }
    Ok(body)
}

/// Decodes the body of a [`STROM_RAFT_API_KEY`] frame (after its length prefix).
pub fn decode_raft_frame(frame: &[u8]) -> Result<RaftMessage, String> {
    let (_, body) = private_request_body(frame)?;
    if body.len() > MAX_RAFT_MESSAGE_BYTES {
        return Err(format!("Strom Raft message of {} bytes is too large", body.len()));
    }
    decode_message(body).map_err(|e| format!("malformed Raft message: {e}"))
}

async fn send_loop(
    peer: u64,
    address: String,
    mut queue: mpsc::Receiver<BytesMut>,
    gone: std::sync::mpsc::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = tokio::select! {
            _ = stop.changed() => return,
            c = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&address)) => c,
        };
        let mut stream = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(peer, %address, "cannot reach metadata quorum peer: {e}");
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    // Nothing listens there: the peer's process is gone (a slow or cut-off peer
                    // times out instead). If it led the quorum, a new election need not wait.
                    let _ = gone.send(peer);
                }
                drain_queue(&mut queue);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(_) => {
                drain_queue(&mut queue);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        backoff = Duration::from_millis(50);
        tracing::debug!(peer, %address, "connected to metadata quorum peer");
        let mut unexpected = [0u8; 64];
        loop {
            let frame = tokio::select! {
                _ = stop.changed() => return,
                f = queue.recv() => match f {
                    Some(f) => f,
                    None => return,
                },
                // The peer never writes on this connection: a read ends only when it closes
                // (its process exited), which is seen at once rather than at the next write.
                r = stream.read(&mut unexpected) => {
                    if matches!(r, Ok(0) | Err(_)) {
                        tracing::debug!(peer, %address, "metadata quorum peer closed the connection");
                        break;
                    }
                    continue;
                }
            };
            let mut batch = frame;
            while let Ok(more) = queue.try_recv() {
                batch.extend_from_slice(&more);
                if batch.len() > 1 << 20 {
                    break;
                }
            }
            if let Err(e) = stream.write_all(&batch).await {
                tracing::debug!(peer, %address, "lost the connection to metadata quorum peer: {e}");
                break;
            }
        }
    }
}

/// Messages queued while the peer is unreachable are stale by the time it is back.
fn drain_queue(queue: &mut mpsc::Receiver<BytesMut>) {
    while queue.try_recv().is_ok() {}
}
