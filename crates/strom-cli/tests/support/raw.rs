//! A raw Kafka-protocol client for tests that need exact error codes or malformed input.

use bytes::{Bytes, BytesMut};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use strom_protocol::frame::{decode_response, encode_request};
use strom_protocol::messages::{ApiKey, RequestHeader};
use strom_protocol::{Decodable, Encodable, StrBytes};

pub struct RawClient {
    stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub fn connect(bootstrap: &str) -> RawClient {
        let stream = TcpStream::connect(bootstrap).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        RawClient { stream, correlation: 0 }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame; `Err` when the broker closed the connection.
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut buf = BytesMut::zeroed(i32::from_be_bytes(len) as usize);
        self.stream.read_exact(&mut buf)?;
        Ok(buf.freeze())
    }

    pub fn call<Req: Encodable, Resp: Decodable>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("strom-test"));
        let frame = encode_request(&header, req).expect("encode request");
        self.send_bytes(&frame).expect("send");
        let mut resp = self.read_frame().expect("response");
        let (h, body) = decode_response::<Resp>(key, version, &mut resp).expect("decode response");
        assert_eq!(h.correlation_id, self.correlation);
        body
    }
}
