//! An idempotent strom-client producer whose batch lands on the broker but whose answer is lost,
//! and which then cannot reach the broker until delivery.timeout.ms expires: the batch fails with
//! an unknown outcome. The next record must not reuse that batch's sequence numbers — the broker
//! would take it for a duplicate of the landed batch and answer with the old offset, so the
//! record would be reported written and be lost.

mod support;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strom_client::consumer::Consumer;
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::{Properties, TopicPartition};
use support::TestBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FORWARD: u8 = 0;
/// Forward everything, but cut the connection instead of passing on the first Produce answer.
const LOSE_NEXT_PRODUCE_ANSWER: u8 = 1;
/// Accept connections and close them at once (the broker seems down).
const REFUSE: u8 = 2;
/// Cut the connection instead of passing on the next Produce request, then refuse.
const DROP_NEXT_PRODUCE: u8 = 3;

/// One Kafka frame (length prefix included), or `None` at the end of the stream.
async fn read_frame(from: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.ok()?;
    let mut frame = len.to_vec();
    frame.resize(4 + i32::from_be_bytes(len).max(0) as usize, 0);
    from.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

/// A loopback proxy in front of the broker that understands just enough of the protocol to
/// know which answer belongs to a Produce request.
async fn proxy(listener: TcpListener, broker: u16, mode: Arc<AtomicU8>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { return };
        if mode.load(Ordering::SeqCst) == REFUSE {
            continue; // dropped: closed at once
        }
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", broker)).await else { continue };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut broker_read, mut broker_write) = upstream.into_split();
        let api_keys = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let keys = Arc::clone(&api_keys);
        let mode_in = Arc::clone(&mode);
        tokio::spawn(async move {
            while let Some(frame) = read_frame(&mut client_read).await {
                let key = i16::from_be_bytes([frame[4], frame[5]]);
                if key == 0 && mode_in.load(Ordering::SeqCst) == DROP_NEXT_PRODUCE {
                    mode_in.store(REFUSE, Ordering::SeqCst);
                    return; // the request never reaches the broker
                }
                keys.lock().expect("lock").push_back(key);
                if broker_write.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        let mode = Arc::clone(&mode);
        tokio::spawn(async move {
            while let Some(frame) = read_frame(&mut broker_read).await {
                let key = api_keys.lock().expect("lock").pop_front().unwrap_or(-1);
                if key == 0 && mode.load(Ordering::SeqCst) == LOSE_NEXT_PRODUCE_ANSWER {
                    mode.store(REFUSE, Ordering::SeqCst);
                    return; // both halves drop: the client sees the connection go
                }
                if client_write.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A broker advertising the proxy's port, the proxy's listener (to hand to `proxy`) and port,
/// and a runtime to drive the test in.
fn broker_behind_proxy() -> (TestBroker, TcpListener, u16, tokio::runtime::Runtime) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let proxy_port = listener.local_addr().expect("addr").port();
    let broker = TestBroker::start(&[&format!("advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}")]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener = runtime.block_on(async { TcpListener::from_std(listener).expect("tokio listener") });
    (broker, listener, proxy_port, runtime)
}

/// An idempotent producer that gives up on a batch within 1.5 s.
async fn quick_producer(props: &Properties) -> Producer {
    Producer::new(
        &props
            .clone()
            .set("linger.ms", "0")
            .set("request.timeout.ms", "500")
            .set("delivery.timeout.ms", "1500")
            .set("retry.backoff.ms", "50")
            .set("reconnect.backoff.ms", "50"),
    )
    .await
    .expect("idempotent producer")
}

#[test]
fn a_batch_of_unknown_outcome_does_not_give_its_sequence_numbers_to_the_next() {
    let (broker, listener, proxy_port, runtime) = broker_behind_proxy();
    runtime.block_on(async {
        let mode = Arc::new(AtomicU8::new(FORWARD));
        tokio::spawn(proxy(listener, broker.port, Arc::clone(&mode)));
        let props = Properties::new().set("bootstrap.servers", format!("127.0.0.1:{proxy_port}"));
        broker.create_topic("lost-answer", 1, &[]).await;
        let producer = quick_producer(&props).await;

        mode.store(LOSE_NEXT_PRODUCE_ANSWER, Ordering::SeqCst);
        let first = producer.send_and_wait(ProducerRecord::new("lost-answer").value("first")).await;
        assert!(first.is_err(), "the first record's outcome is unknown to the producer: {first:?}");
        mode.store(FORWARD, Ordering::SeqCst);

        let second = producer
            .send_and_wait(ProducerRecord::new("lost-answer").value("second"))
            .await
            .expect("the second record is written");
        assert_eq!(second.offset, 1, "the second record lands after the first, not on top of it");
        producer.close().await.expect("close");

        let mut consumer = Consumer::new(&props.clone().set("auto.offset.reset", "earliest")).await.expect("consumer");
        consumer.assign(&[TopicPartition::new("lost-answer", 0)]).expect("assign");
        let mut values = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while values.len() < 2 && std::time::Instant::now() < deadline {
            for r in consumer.poll(Duration::from_millis(200)).await.expect("poll") {
                values.push(r.value.map(|v| v.to_vec()).unwrap_or_default());
            }
        }
        assert_eq!(values, vec![b"first".to_vec(), b"second".to_vec()]);
    });
}

/// The other half: the batch never reached the broker (connections refused until
/// delivery.timeout.ms), so the broker's sequence for the producer stops before it. The next
/// batch must not carry the sequence after the failed one — the broker would answer
/// OUT_OF_ORDER_SEQUENCE_NUMBER to it and to every batch after, for good. The producer takes a
/// new producer id (sequences from 0), as Java's does, and carries on.
#[test]
fn a_batch_that_never_arrived_does_not_leave_a_sequence_gap_that_blocks_the_partition() {
    let (broker, listener, proxy_port, runtime) = broker_behind_proxy();
    runtime.block_on(async {
        let mode = Arc::new(AtomicU8::new(FORWARD));
        tokio::spawn(proxy(listener, broker.port, Arc::clone(&mode)));
        let props = Properties::new().set("bootstrap.servers", format!("127.0.0.1:{proxy_port}"));
        broker.create_topic("gap", 1, &[]).await;
        let producer = quick_producer(&props).await;
        let zero = producer.send_and_wait(ProducerRecord::new("gap").value("zero")).await.expect("written");
        assert_eq!(zero.offset, 0);
        mode.store(DROP_NEXT_PRODUCE, Ordering::SeqCst);
        let lost = producer.send_and_wait(ProducerRecord::new("gap").value("never-arrived")).await;
        assert!(lost.is_err(), "the broker could not be reached: {lost:?}");
        mode.store(FORWARD, Ordering::SeqCst);
        for (i, v) in ["one", "two", "three"].into_iter().enumerate() {
            let m = producer.send_and_wait(ProducerRecord::new("gap").value(v)).await.expect("written after the gap");
            assert_eq!(m.offset, 1 + i as i64);
        }
        producer.close().await.expect("close");
    });
}
