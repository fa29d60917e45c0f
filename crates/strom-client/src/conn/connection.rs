//! One TCP connection to one broker with pipelined requests: any number of tasks may send
//! requests at once; a reader task matches responses to requests by correlation id. The broker
//! answers in order, which the reader checks.

use super::versions::BrokerVersions;
use crate::error::{ClientError, Result};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strom_protocol::frame::{decode_response, encode_request, read_frame_body};
use strom_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use strom_protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Responses above this size are refused (a corrupt length prefix must not allocate gigabytes).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

type Waiter = (i32, oneshot::Sender<Result<Bytes>>);

struct Shared {
    addr: String,
    /// Requests sent and not yet answered, in send order.
    waiting: Mutex<VecDeque<Waiter>>,
    closed: AtomicBool,
}

impl Shared {
    fn fail_all(&self, err: ClientError) {
        self.closed.store(true, Ordering::SeqCst);
        let waiting: Vec<Waiter> = self.lock_waiting().drain(..).collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(err.clone()));
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiter>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct BrokerConnection {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    correlation: AtomicI32,
    client_id: String,
    versions: BrokerVersions,
    request_timeout: Duration,
}

impl BrokerConnection {
    /// Connects and negotiates API versions.
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<BrokerConnection> {
        let connect_err = |message: String| ClientError::Connect { addr: addr.to_string(), message };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(format!("no answer within {timeout:?}")))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            waiting: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(read_loop(reader, Arc::clone(&shared)));
        let mut conn = BrokerConnection {
            shared,
            writer: tokio::sync::Mutex::new(writer),
            correlation: AtomicI32::new(0),
            client_id: client_id.to_string(),
            versions: BrokerVersions::default(),
            request_timeout: timeout,
        };
        conn.versions = conn.negotiate().await?;
        Ok(conn)
    }

    /// ApiVersions v3; a broker that does not know v3 answers UNSUPPORTED_VERSION in v0 form,
    /// after which v0 is used (KIP-511).
    async fn negotiate(&self) -> Result<BrokerVersions> {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("strom-client");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let mut resp: ApiVersionsResponse = match self.send_versioned(ApiKey::ApiVersions, 3, &req).await {
            Ok(r) => r,
            Err(ClientError::Protocol(_)) => self.send_versioned(ApiKey::ApiVersions, 0, &req).await?,
            Err(e) => return Err(e),
        };
        if resp.error_code == 35 {
            resp = self.send_versioned(ApiKey::ApiVersions, 0, &req).await?;
        }
        crate::error::check(resp.error_code)?;
        Ok(BrokerVersions::new(resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version))))
    }

    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// Sends `req` at the negotiated version of `api` and waits for the response.
    pub async fn send<Req: Encodable, Resp: Decodable>(&self, api: ApiKey, req: &Req) -> Result<(i16, Resp)> {
        let version = self.versions.pick(api)?;
        Ok((version, self.send_versioned(api, version, req).await?))
    }

    /// Sends a request that the broker does not answer (Produce with acks=0).
    pub async fn send_no_response<Req: Encodable>(&self, api: ApiKey, req: &Req) -> Result<i16> {
        let version = self.versions.pick(api)?;
        let (frame, _) = self.frame(api, version, req)?;
        self.write(&frame).await?;
        Ok(version)
    }

    pub async fn send_versioned<Req: Encodable, Resp: Decodable>(
        &self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp> {
        let (frame, correlation) = self.frame(api, version, req)?;
        let (tx, rx) = oneshot::channel();
        {
            // Queue and write under the writer lock so that the queue order is the wire order.
            let mut writer = self.writer.lock().await;
            if self.is_closed() {
                return Err(self.network_error("connection closed"));
            }
            self.shared.lock_waiting().push_back((correlation, tx));
            if let Err(e) = writer.write_all(&frame).await {
                let err = self.network_error(&e.to_string());
                self.shared.fail_all(err.clone());
                return Err(err);
            }
        }
        let mut body = match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(self.network_error("connection closed")),
            Err(_) => {
                // Kafka closes the connection on a request timeout: later answers would be misread.
                let err =
                    ClientError::Timeout { what: format!("{api:?} to {}", self.addr()), after: self.request_timeout };
                self.shared.fail_all(err.clone());
                let _ = self.writer.lock().await.shutdown().await;
                return Err(err);
            }
        };
        let (_, resp) = decode_response::<Resp>(api, version, &mut body)
            .map_err(|e| ClientError::Protocol(format!("{api:?} v{version} response from {}: {e}", self.addr())))?;
        Ok(resp)
    }

    fn frame<Req: Encodable>(&self, api: ApiKey, version: i16, req: &Req) -> Result<(BytesMut, i32)> {
        let correlation = self.correlation.fetch_add(1, Ordering::Relaxed);
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_string(self.client_id.clone()));
        let frame =
            encode_request(&header, req).map_err(|e| ClientError::Protocol(format!("{api:?} v{version}: {e}")))?;
        Ok((frame, correlation))
    }

    async fn write(&self, frame: &[u8]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        writer.write_all(frame).await.map_err(|e| {
            let err = self.network_error(&e.to_string());
            self.shared.fail_all(err.clone());
            err
        })
    }

    fn network_error(&self, message: &str) -> ClientError {
        ClientError::Network { addr: self.addr().to_string(), message: message.to_string() }
    }
}

impl Drop for BrokerConnection {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }
}

async fn read_loop(mut reader: tokio::net::tcp::OwnedReadHalf, shared: Arc<Shared>) {
    let err = loop {
        let mut len = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut len).await {
            break e.to_string();
        }
        let size = i32::from_be_bytes(len);
        if size < 4 || size as usize > MAX_RESPONSE_BYTES {
            break format!("invalid response size {size}");
        }
        let frame = match read_frame_body(&mut reader, size as usize).await {
            Ok(frame) => frame,
            Err(e) => break e.to_string(),
        };
        let frame = frame.freeze();
        let correlation = (&frame[..4]).get_i32();
        let Some((expected, tx)) = shared.lock_waiting().pop_front() else {
            break format!("unexpected response with correlation id {correlation}");
        };
        if expected != correlation {
            let _ = tx.send(Err(ClientError::Protocol(format!("correlation id {correlation}, expected {expected}"))));
            break "responses out of order".to_string();
        }
        let _ = tx.send(Ok(frame));
        if shared.closed.load(Ordering::SeqCst) && shared.lock_waiting().is_empty() {
            return;
        }
    };
    shared.fail_all(ClientError::Network { addr: shared.addr.clone(), message: err });
}
