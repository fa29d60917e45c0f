//! strom-client's producer against a Strom broker: every send mode, every codec, Java-compatible key
//! partitioning, sticky spreading of keyless records, bad input, and idempotent delivery across
//! a broker restart.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use strom_client::admin::{Admin, NewTopic};
use strom_client::consumer::Consumer;
use strom_client::producer::partitioner::{murmur2, to_positive};
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::{ClientError, Properties, TopicPartition};
use support::TestBroker;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn props(broker: &TestBroker) -> Properties {
    Properties::new().set("bootstrap.servers", broker.bootstrap())
}

async fn create(broker: &TestBroker, topic: &str, partitions: i32) {
    let admin = Admin::new(&props(broker)).await.expect("admin");
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, 1)], false).await.expect("create");
    results[0].1.as_ref().expect("created");
}

/// Every record of `topic` as (partition, offset, key, value), read with strom-client.
async fn read_all(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
    let mut c = Consumer::new(&props(broker).set("auto.offset.reset", "earliest")).await.expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(&tps).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < expected && std::time::Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(200)).await.expect("poll") {
            let b = |x: &Option<bytes::Bytes>| x.as_ref().map(|v| v.to_vec()).unwrap_or_default();
            out.push((r.partition, r.offset, b(&r.key), b(&r.value)));
        }
    }
    out
}

#[test]
fn every_send_mode_delivers() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        create(&broker, "modes", 3).await;
        let p = Producer::new(&props(&broker).set("linger.ms", "1")).await.expect("producer");
        let meta = p.send_and_wait(ProducerRecord::new("modes").key("sync").value("1")).await.expect("sync send");
        assert_eq!(&*meta.topic, "modes");
        assert!(meta.offset >= 0);
        let future = p.send(ProducerRecord::new("modes").key("future").value("2")).await.expect("queued");
        let (tx, rx) = tokio::sync::oneshot::channel();
        p.send_with_callback(ProducerRecord::new("modes").key("callback").value("3"), move |r| {
            let _ = tx.send(r);
        })
        .await
        .expect("queued");
        p.send_and_forget(ProducerRecord::new("modes").key("forget").value("4").header("h", "v"))
            .await
            .expect("queued");
        p.flush().await.expect("flush");
        assert!(future.await.expect("future delivered").offset >= 0);
        assert!(rx.await.expect("callback called").expect("callback delivered").offset >= 0);
        p.close().await.expect("close");
        let mut values: Vec<Vec<u8>> = read_all(&broker, "modes", 3, 4).await.into_iter().map(|r| r.3).collect();
        values.sort();
        assert_eq!(values, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
    });
}

#[test]
fn every_codec_round_trips_keys_repeated_headers_nulls_and_timestamps() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let topic = format!("codec-{codec}");
            create(&broker, &topic, 1).await;
            let p = Producer::new(&props(&broker).set("compression.type", codec).set("linger.ms", "20"))
                .await
                .expect("producer");
            let mut futures = Vec::new();
            for i in 0..50i64 {
                let mut r = ProducerRecord::new(topic.as_str()).timestamp(1_700_000_000_000 + (i % 7) * 1000 - 3000);
                if i % 5 != 0 {
                    r = r.key(format!("k{i}")).value(format!("value-{i}").repeat(1 + i as usize % 3));
                }
                if i % 2 == 0 {
                    r = r.header("a", format!("h{i}"));
                    r.headers.push(("null-header".into(), None));
                    r = r.header("a", "repeated key");
                }
                futures.push(p.send(r).await.expect("queued"));
            }
            let mut offsets = Vec::new();
            for f in futures {
                offsets.push(f.await.expect("delivered").offset);
            }
            assert_eq!(offsets, (0..50).collect::<Vec<i64>>(), "{codec}: offsets in send order");
            p.close().await.expect("close");
            let mut c = Consumer::new(&props(&broker).set("auto.offset.reset", "earliest")).await.expect("consumer");
            c.assign(&[TopicPartition::new(topic.as_str(), 0)]).expect("assign");
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while got.len() < 50 && std::time::Instant::now() < deadline {
                got.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
            }
            assert_eq!(got.len(), 50, "{codec}");
            for (i, r) in got.iter().enumerate() {
                let i = i as i64;
                assert_eq!(r.offset, i);
                assert_eq!(r.timestamp, 1_700_000_000_000 + (i % 7) * 1000 - 3000, "{codec} #{i}");
                if i % 5 == 0 {
                    assert_eq!((&r.key, &r.value), (&None, &None), "{codec} #{i}: null key and value");
                } else {
                    assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                    assert_eq!(r.value.as_deref(), Some(format!("value-{i}").repeat(1 + i as usize % 3).as_bytes()));
                }
                let expected: Vec<(String, Option<bytes::Bytes>)> = if i % 2 == 0 {
                    vec![
                        ("a".into(), Some(format!("h{i}").into())),
                        ("null-header".into(), None),
                        ("a".into(), Some("repeated key".into())),
                    ]
                } else {
                    Vec::new()
                };
                assert_eq!(r.headers, expected, "{codec} #{i}");
            }
        }
    });
}

#[test]
fn flush_and_close_return_after_every_callback_ran() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        create(&broker, "flushed", 3).await;
        let p = Producer::new(&props(&broker).set("acks", "1").set("linger.ms", "2")).await.expect("producer");
        for round in 0..3 {
            let called = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for i in 0..3000 {
                let called = std::sync::Arc::clone(&called);
                p.send_with_callback(ProducerRecord::new("flushed").value(format!("{round}-{i}")), move |r| {
                    r.expect("delivered");
                    // Slow callbacks widen the window in which a batch's partition is free but its
                    // callbacks have not all run yet.
                    std::thread::sleep(Duration::from_micros(20));
                    called.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
                .await
                .expect("queued");
            }
            if round < 2 {
                p.flush().await.expect("flush");
            } else {
                p.close().await.expect("close");
            }
            assert_eq!(called.load(std::sync::atomic::Ordering::SeqCst), 3000, "round {round}");
        }
    });
}

#[test]
fn keys_land_where_java_puts_them_and_keyless_records_spread() {
    let broker = TestBroker::start(&[]);
    runtime().block_on(async {
        create(&broker, "keys", 6).await;
        let p = Producer::new(&props(&broker).set("batch.size", "1024")).await.expect("producer");
        for i in 0..60 {
            let key = format!("key-{i}");
            let meta = p.send_and_wait(ProducerRecord::new("keys").key(key.clone()).value("v")).await.expect("send");
            assert_eq!(meta.partition, to_positive(murmur2(key.as_bytes())) % 6, "{key}");
        }
        let mut futures = Vec::new();
        for _ in 0..3_000 {
            futures.push(p.send(ProducerRecord::new("keys").value(vec![b'x'; 100])).await.expect("queued"));
        }
        let mut used = HashSet::new();
        for f in futures {
            used.insert(f.await.expect("delivered").partition);
        }
        assert_eq!(used.len(), 6, "keyless records use every partition over many batches");
        p.close().await.expect("close");
    });
}

#[test]
fn bad_input_fails_clearly() {
    let broker = TestBroker::start(&["auto.create.topics.enable=false"]);
    runtime().block_on(async {
        create(&broker, "small", 1).await;
        let p = Producer::new(&props(&broker).set("max.request.size", "2048").set("max.block.ms", "1500"))
            .await
            .expect("producer");
        let err = p.send(ProducerRecord::new("small").value(vec![0u8; 4096])).await.err().expect("too large");
        assert!(matches!(err, ClientError::RecordTooLarge { .. }), "{err}");
        let started = std::time::Instant::now();
        let err = p.send(ProducerRecord::new("no-such-topic").value("v")).await.err().expect("unknown topic");
        assert_eq!(err.code(), Some(3), "UNKNOWN_TOPIC_OR_PARTITION, got {err}");
        assert!(started.elapsed() >= Duration::from_millis(1400), "waited for max.block.ms");
        let err = p.send(ProducerRecord::new("small").partition(7).value("v")).await.err().expect("no partition 7");
        assert!(err.to_string().contains("partition 7"), "{err}");
    });
}

#[test]
fn idempotent_delivery_survives_a_broker_restart() {
    let mut broker = TestBroker::start(&[]);
    let rt = runtime();
    let p = rt.block_on(async {
        create(&broker, "restart", 3).await;
        Producer::new(
            &props(&broker).set("linger.ms", "5").set("retry.backoff.ms", "50").set("request.timeout.ms", "3000"),
        )
        .await
        .expect("producer")
    });
    const N: usize = 100_000;
    // Sending goes on in a task while the broker stops and comes back.
    let sending = {
        let p = p.clone();
        rt.spawn(async move {
            let mut futures = Vec::with_capacity(N);
            for i in 0..N {
                let key = format!("k{}", i % 64);
                futures
                    .push(p.send(ProducerRecord::new("restart").key(key).value(i.to_string())).await.expect("queued"));
                if i % 1_000 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            futures
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    broker.stop();
    std::thread::sleep(Duration::from_millis(300));
    broker.restart();
    let futures = rt.block_on(sending).expect("sending task");
    rt.block_on(async {
        for f in futures {
            f.await.expect("every record delivered");
        }
        p.close().await.expect("close");
        let records = read_all(&broker, "restart", 3, N).await;
        assert_eq!(records.len(), N, "none lost, none duplicated");
        let distinct: HashSet<&Vec<u8>> = records.iter().map(|r| &r.3).collect();
        assert_eq!(distinct.len(), N, "no duplicates");
        // Order per key (hence per partition) is the send order.
        let mut last: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut by_partition: BTreeMap<i32, Vec<(i64, Vec<u8>, usize)>> = BTreeMap::new();
        for (p, o, k, v) in records {
            let i: usize = String::from_utf8(v).expect("utf8").parse().expect("number");
            by_partition.entry(p).or_default().push((o, k, i));
        }
        for rs in by_partition.values_mut() {
            rs.sort();
            for (_, k, i) in rs.iter() {
                if let Some(prev) = last.insert(k.clone(), *i) {
                    assert!(prev < *i, "key {:?}: {prev} came before {i}", String::from_utf8_lossy(k));
                }
            }
        }
    });
}
