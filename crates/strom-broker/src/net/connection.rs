//! One task per client connection. Requests are read, processed and answered in order (as
//! Kafka does, so that pipelined produce requests of an idempotent producer append in sequence);
//! each response is written before the next request is read.
//!
//! A frame above `socket.request.max.bytes`, a truncated frame or a request that cannot be
//! decoded closes this connection with a log line; every other connection goes on. So does a
//! connection that completes no request within `connections.max.idle.ms`, as in Kafka: a client
//! that stops halfway through a frame holds its connection (and the bytes it sent) no longer.

use crate::dispatch::{dispatch, Outcome};
use crate::net::zero_copy::write_parts;
use crate::server::Broker;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use strom_protocol::frame::{check_frame_size, read_frame_body};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The next request frame, `None` when the client closed the connection between frames.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Option<bytes::BytesMut>, String> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => {
            tracing::debug!("connection read failed: {e}");
            return Ok(None);
        }
    }
    let size = check_frame_size(i32::from_be_bytes(len), max).map_err(|e| e.to_string())?;
    read_frame_body(reader, size).await.map(Some).map_err(|e| format!("truncated frame ({e})"))
}

pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let max = broker.config.socket_request_max_bytes;
    let sendfile = broker.config.fetch_zero_copy.applies_to(peer.ip());
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    loop {
        let frame = match timeout(idle, read_frame(&mut reader, max)).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(reason)) => {
                tracing::warn!(%peer, "closing connection: {reason}");
                break;
            }
            Err(_) => {
                tracing::info!(%peer, "closing connection: no complete request for {idle:?} (connections.max.idle.ms)");
                break;
            }
        };
        match dispatch(&broker, frame.freeze(), peer).await {
            Outcome::Respond(response) => {
                if let Err(e) = writer.write_all(&response).await {
                    tracing::debug!(%peer, "connection write failed: {e}");
                    break;
                }
            }
            Outcome::RespondParts(parts) => {
                if let Err(e) = write_parts(&mut writer, parts, sendfile).await {
                    if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other) {
                        tracing::warn!(%peer, "closing connection: {e}");
                    } else {
                        tracing::debug!(%peer, "connection write failed: {e}");
                    }
                    break;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                tracing::warn!(%peer, "closing connection: {reason}");
                break;
            }
        }
        if let Err(e) = writer.flush().await {
            tracing::debug!(%peer, "connection write failed: {e}");
            break;
        }
    }
    let _ = writer.flush().await;
}
