//! strom-client's idempotent producer retries InitProducerId on retriable errors, as Java's
//! producer does: a broker that has just started answers COORDINATOR_LOAD_IN_PROGRESS until it
//! has loaded its coordinator state (seen against Apache Kafka 4.0). A minimal fake broker
//! answers ApiVersions, Metadata and InitProducerId, the last with error 14 twice first.

use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strom_client::producer::Producer;
use strom_client::Properties;
use strom_protocol::frame::{decode_request_header, encode_response};
use strom_protocol::messages::api_versions_response::ApiVersion;
use strom_protocol::messages::metadata_response::MetadataResponseBroker;
use strom_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataResponse, ProducerId,
};
use strom_protocol::StrBytes;

fn serve(mut stream: TcpStream, port: u16, init_calls: Arc<AtomicUsize>) {
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let mut frame = Bytes::from(body);
        let (key, header) = decode_request_header(&mut frame).expect("a request header");
        let (v, c) = (header.request_api_version, header.correlation_id);
        let response = match key {
            ApiKey::ApiVersions => {
                let keys = [(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12), (ApiKey::InitProducerId, 0, 4)]
                    .iter()
                    .map(|(k, lo, hi)| {
                        ApiVersion::default().with_api_key(*k as i16).with_min_version(*lo).with_max_version(*hi)
                    })
                    .collect();
                encode_response(key, v, c, &ApiVersionsResponse::default().with_api_keys(keys))
            }
            ApiKey::Metadata => {
                let broker = MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port));
                encode_response(
                    key,
                    v,
                    c,
                    &MetadataResponse::default().with_brokers(vec![broker]).with_controller_id(BrokerId(1)),
                )
            }
            ApiKey::InitProducerId => {
                let n = init_calls.fetch_add(1, Ordering::SeqCst);
                let resp = if n < 2 {
                    InitProducerIdResponse::default().with_error_code(14)
                } else {
                    InitProducerIdResponse::default().with_producer_id(ProducerId(42)).with_producer_epoch(3)
                };
                encode_response(key, v, c, &resp)
            }
            other => panic!("the fake broker does not answer {other:?}"),
        };
        if stream.write_all(&response.expect("encode")).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_is_retried_while_the_coordinator_loads() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let init_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&init_calls);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8).flatten() {
            let calls = Arc::clone(&calls);
            std::thread::spawn(move || serve(stream, port, calls));
        }
    });
    let props = Properties::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("retry.backoff.ms", "20")
        .set("max.block.ms", "10000");
    let producer = Producer::new(&props).await.expect("the producer starts once the coordinator has loaded");
    assert_eq!(init_calls.load(Ordering::SeqCst), 3, "two COORDINATOR_LOAD_IN_PROGRESS answers, then success");
    drop(producer);
}
