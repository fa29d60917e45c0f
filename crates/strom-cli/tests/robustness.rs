//! The broker against hostile and broken clients, black-box: thousands of random, mutated and
//! truncated frames over many connections while a real client produces and consumes beside them;
//! then thousands of connections that stop halfway through a frame. After each, the broker must
//! be alive, answer ApiVersions and Metadata, have kept its memory within a bound, and have
//! served the real client without an error.

mod support;

use bytes::{BufMut, BytesMut};
use rdkafka::producer::FutureRecord;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use strom_protocol::messages::{
    random_request_body, ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use strom_protocol::testing::Rng;
use support::raw::RawClient;
use support::TestBroker;

/// The frame from the issue that once aborted the broker: Metadata v0 whose topic array claims
/// 54,132,736 entries in a 14-byte body.
const CLAIMS_54_MILLION_TOPICS: &[u8] = b"\x00\x00\x00\x0e\x00\x03\x00\x00\x00\x00\x00\x01\xff\xff\x03\x3a\x00\x00";

/// A request header (v1 or v2 as the API and version want) and then `body`, framed.
fn frame(key: i16, version: i16, correlation: i32, body: &[u8], flexible_header: bool) -> Vec<u8> {
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(key);
    f.put_i16(version);
    f.put_i32(correlation);
    f.put_i16(4);
    f.put_slice(b"fuzz");
    if flexible_header {
        f.put_u8(0);
    }
    f.put_slice(body);
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    f.to_vec()
}

/// One hostile frame (or frame fragment) of a kind picked by the RNG.
fn hostile_frame(rng: &mut Rng, correlation: i32) -> Vec<u8> {
    let key = ApiKey::ALL[(rng.u64() % ApiKey::ALL.len() as u64) as usize];
    let (lo, hi) = key.valid_versions();
    let version = lo + (rng.u64() % (hi - lo + 1) as u64) as i16;
    let flexible = key.request_header_version(version) >= 2;
    let random_bytes = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.u64() as u8).collect::<Vec<u8>>();
    match rng.u64() % 8 {
        // A valid request, with bytes flipped.
        0 | 1 => {
            let body = random_request_body(key, version, rng).map(|b| b.to_vec()).unwrap_or_default();
            let mut f = frame(key as i16, version, correlation, &body, flexible);
            for _ in 0..1 + rng.u64() % 4 {
                let at = 4 + (rng.u64() as usize) % (f.len() - 4);
                f[at] ^= 1 << (rng.u64() % 8);
            }
            f
        }
        // A valid request, cut short (the length prefix still announces all of it).
        2 => {
            let body = random_request_body(key, version, rng).map(|b| b.to_vec()).unwrap_or_default();
            let f = frame(key as i16, version, correlation, &body, flexible);
            let keep = 4 + (rng.u64() as usize) % (f.len() - 3);
            f[..keep].to_vec()
        }
        // A valid header, then random bytes.
        3 | 4 => {
            let n = (rng.u64() % 200) as usize;
            let body = random_bytes(rng, n);
            frame(key as i16, version, correlation, &body, flexible)
        }
        // A version out of range, or an API key nobody defines.
        5 => {
            let body = random_bytes(rng, 16);
            let key = if rng.bool() { key as i16 } else { 1000 + (rng.u64() % 1000) as i16 };
            frame(key, hi + 1 + (rng.u64() % 50) as i16, correlation, &body, flexible)
        }
        // Lengths that are negative, too small, or too large.
        6 => {
            let len: i32 = match rng.u64() % 4 {
                0 => -1 - (rng.u64() % 1000) as i32,
                1 => (rng.u64() % 8) as i32,
                2 => i32::MAX,
                _ => 200 << 20,
            };
            let mut f = len.to_be_bytes().to_vec();
            f.extend(random_bytes(rng, 12));
            f
        }
        // The frame that used to abort the broker, or a variant with another count.
        _ => {
            let mut f = CLAIMS_54_MILLION_TOPICS.to_vec();
            if rng.bool() {
                let n = f.len();
                f[n - 4..].copy_from_slice(&(rng.u64() as u32 | 0x0100_0000).to_be_bytes());
            }
            f
        }
    }
}

/// Sends `frames` on one connection, then reads until the broker answers or closes.
fn hostile_connection(addr: &str, frames: &[Vec<u8>]) {
    let Ok(mut s) = TcpStream::connect(addr) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    for f in frames {
        if s.write_all(f).is_err() {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn assert_serves(broker: &mut TestBroker) {
    assert!(broker.is_running(), "the broker died:\n{}", broker.log());
    let mut raw = RawClient::connect(&broker.bootstrap());
    let versions: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    assert!(versions.api_keys.len() >= 20);
    let metadata: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(metadata.brokers.len(), 1);
}

#[test]
fn random_mutated_and_truncated_frames_leave_the_broker_serving() {
    const CONNECTIONS: usize = 1_200;
    const THREADS: usize = 4;
    let mut broker = TestBroker::start(&[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(broker.create_topic("real", 3, &[]));
    let addr = broker.bootstrap();

    // The frame from the issue, on its own first.
    hostile_connection(&addr, &[CLAIMS_54_MILLION_TOPICS.to_vec()]);
    assert_serves(&mut broker);

    let sent = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let addr = addr.clone();
                scope.spawn(move || {
                    let mut rng = Rng::new(7 + t as u64);
                    let mut frames_sent = 0;
                    for c in 0..CONNECTIONS / THREADS {
                        let frames: Vec<Vec<u8>> = (0..1 + rng.u64() % 8)
                            .map(|i| hostile_frame(&mut rng, (c * 10) as i32 + i as i32))
                            .collect();
                        frames_sent += frames.len();
                        hostile_connection(&addr, &frames);
                    }
                    frames_sent
                })
            })
            .collect();
        // A real client beside them: every record must be acknowledged and read back.
        let producer = broker.producer(&[("acks", "all")]);
        rt.block_on(async {
            for i in 0..600 {
                let payload = format!("record-{i}");
                let key = format!("k{i}");
                producer
                    .send(FutureRecord::to("real").payload(&payload).key(&key), Duration::from_secs(30))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("real producer failed beside the hostile clients: {e}"));
            }
        });
        workers.into_iter().map(|w| w.join().expect("worker")).sum::<usize>()
    });
    assert!(sent >= 4_000, "only {sent} hostile frames were sent");
    let consumed = broker.consume_all("real", 3, 600);
    assert_eq!(consumed.len(), 600);
    assert_serves(&mut broker);
    let (rss, peak) = broker.memory_kib();
    assert!(peak < 128 * 1024, "broker peak RSS {peak} KiB (now {rss} KiB) after {sent} hostile frames");
    let log = broker.log();
    assert!(log.contains("closing connection"), "malformed frames are logged");
    eprintln!("{sent} hostile frames over {CONNECTIONS} connections; broker RSS {rss} KiB, peak {peak} KiB");
}

#[test]
fn thousands_of_half_sent_frames_keep_memory_bounded_and_are_closed_when_idle() {
    const CONNECTIONS: usize = 10_000;
    let mut broker = TestBroker::start(&["max.connections=20000", "connections.max.idle.ms=4000"]);
    let addr = broker.bootstrap();
    let (rss_before, _) = broker.memory_kib();
    let mut held = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let mut s = TcpStream::connect(&addr).expect("connect");
        // Announce frames up to socket.request.max.bytes (100 MiB) and send only part of them.
        let announced: i32 = if i % 2 == 0 { 100 << 20 } else { 1 << 20 };
        s.write_all(&announced.to_be_bytes()).expect("length");
        s.write_all(&[0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0]).expect("part of a header");
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_serves(&mut broker);
    let (rss, _) = broker.memory_kib();
    let per_connection = (rss.saturating_sub(rss_before) * 1024) / CONNECTIONS as u64;
    eprintln!(
        "{CONNECTIONS} half-sent frames: broker RSS {rss_before} -> {rss} KiB ({per_connection} bytes per connection)"
    );
    assert!(rss < 200 * 1024, "broker RSS {rss} KiB with {CONNECTIONS} half-sent frames");

    // connections.max.idle.ms closes them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut open = held.len();
    for s in &mut held {
        let _ =
            s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10))));
        let mut b = [0u8; 1];
        if let Ok(0) = s.read(&mut b) {
            open -= 1;
        }
    }
    assert_eq!(open, 0, "connections still open after connections.max.idle.ms");
    drop(held);
    assert_serves(&mut broker);
    assert!(broker.log().contains("connections.max.idle.ms"));
}
