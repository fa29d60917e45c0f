//! librdkafka against a real `strom server`: keyed messages with headers, idempotence, acks=all
//! and every codec make the round trip intact and in order per partition, with fetches copied or
//! sent with sendfile.

mod support;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::collections::HashMap;
use support::TestBroker;

fn key_of(i: usize) -> String {
    format!("key-{}", i % 997)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_keyed_messages_round_trip_in_order() {
    // A loopback consumer: fetches copy the records through the connection's buffer.
    keyed_messages_round_trip_in_order(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_keyed_messages_round_trip_in_order_with_sendfile() {
    // Fetches send the records with sendfile, across many small segments.
    keyed_messages_round_trip_in_order(&["fetch.zero.copy=true", "log.segment.bytes=262144"]).await;
}

async fn keyed_messages_round_trip_in_order(overrides: &[&str]) {
    let broker = TestBroker::start(overrides);
    broker.create_topic("orders", 6, &[]).await;
    let producer = broker.producer(&[
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("compression.type", "lz4"),
        ("linger.ms", "5"),
    ]);
    const N: usize = 100_000;
    let base_ts = 1_700_000_000_000i64;
    let mut deliveries = Vec::with_capacity(N);
    for i in 0..N {
        let key = key_of(i);
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new()
            .insert(Header { key: "seq", value: Some(i.to_string().as_bytes()) })
            .insert(Header { key: "origin", value: Some("test".as_bytes()) });
        let record =
            FutureRecord::to("orders").key(&key).payload(&value).headers(headers).timestamp(base_ts + i as i64);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
    }
    let mut acked: HashMap<(i32, i64), usize> = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let delivery = d.await.expect("delivery future").unwrap_or_else(|(e, _)| panic!("message {i} failed: {e}"));
        assert!(acked.insert((delivery.partition, delivery.offset), i).is_none(), "two messages got one offset");
    }

    let messages = broker.consume_all("orders", 6, N);
    let mut last_seq_per_partition: HashMap<i32, i64> = HashMap::new();
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut key_partition: HashMap<String, i32> = HashMap::new();
    for m in &messages {
        let expected_offset = next_offset.entry(m.partition()).or_insert(0);
        assert_eq!(m.offset(), *expected_offset, "offsets are contiguous in partition {}", m.partition());
        *expected_offset += 1;
        let i = acked[&(m.partition(), m.offset())];
        let headers = m.headers().expect("headers");
        let seq: i64 =
            std::str::from_utf8(headers.get(0).value.expect("seq value")).expect("utf8").parse().expect("num");
        assert_eq!(seq as usize, i);
        assert_eq!(headers.get(1).key, "origin");
        assert_eq!(m.key(), Some(key_of(i).as_bytes()));
        assert_eq!(m.payload(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(m.timestamp().to_millis(), Some(base_ts + i as i64));
        let last = last_seq_per_partition.entry(m.partition()).or_insert(-1);
        assert!(seq > *last, "order per partition kept");
        *last = seq;
        let p = key_partition.entry(key_of(i)).or_insert(m.partition());
        assert_eq!(*p, m.partition(), "one key, one partition");
    }
    assert_eq!(next_offset.len(), 6, "all six partitions got data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips() {
    let broker = TestBroker::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        broker.create_topic(&topic, 1, &[]).await;
        let producer = broker.producer(&[("compression.type", codec), ("linger.ms", "20")]);
        let futures: Vec<_> = (0..500)
            .map(|i| {
                let value = format!("{codec} message {i} {}", "x".repeat(i % 50));
                producer
                    .send_result(FutureRecord::to(&topic).key("k").payload(&value))
                    .map_err(|(e, _)| e)
                    .expect("enqueue")
            })
            .collect();
        for f in futures {
            f.await.expect("future").expect("delivered");
        }
        let messages = broker.consume_all(&topic, 1, 500);
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m.offset(), i as i64);
            let expected = format!("{codec} message {i} {}", "x".repeat(i % 50));
            assert_eq!(m.payload(), Some(expected.as_bytes()), "codec {codec}");
        }
    }
}

/// A topic with message.timestamp.type=LogAppendTime: consumers see the broker's append time
/// (as LogAppendTime) instead of the producer's timestamp, for compressed batches too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_carry_the_brokers_time() {
    use rdkafka::Timestamp;
    let broker = TestBroker::start(&[]);
    broker.create_topic("appended", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    for codec in ["none", "lz4"] {
        let producer = broker.producer(&[("compression.type", codec)]);
        producer
            .send(
                FutureRecord::to("appended").key("k").payload("v").timestamp(1_000),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("{codec}: {e}"));
    }
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let got = broker.consume_all("appended", 1, 2);
    for m in &got {
        match m.timestamp() {
            Timestamp::LogAppendTime(t) => {
                assert!(before <= t && t <= after, "append time {t} not in [{before}, {after}]")
            }
            other => panic!("expected LogAppendTime, got {other:?}"),
        }
    }
}

/// A topic's compression.type other than `producer`: batches in another codec are stored
/// recompressed with the topic's, and consumers read the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_a_compression_type_recompress_other_codecs() {
    use strom_protocol::batch::{BatchIter, Compression};
    use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
    use strom_protocol::StrBytes;
    let broker = TestBroker::start(&[]);
    broker.create_topic("as-zstd", 1, &[("compression.type", "zstd")]).await;
    broker.create_topic("as-plain", 1, &[("compression.type", "uncompressed")]).await;
    for (topic, codecs) in [("as-zstd", ["lz4", "none", "zstd"]), ("as-plain", ["gzip", "snappy", "none"])] {
        for codec in codecs {
            let producer = broker.producer(&[("compression.type", codec), ("linger.ms", "0")]);
            for i in 0..5 {
                let value = format!("{codec}-{i}");
                producer
                    .send(FutureRecord::to(topic).key("k").payload(&value), std::time::Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("{topic} {codec}: {e}"));
            }
        }
    }
    let mut raw = support::raw::RawClient::connect(&broker.bootstrap());
    for (topic, stored) in [("as-zstd", Compression::Zstd), ("as-plain", Compression::None)] {
        let part = FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20);
        let t =
            FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str(topic))).with_partitions(vec![part]);
        let req = FetchRequest::default().with_max_wait_ms(10).with_max_bytes(1 << 20).with_topics(vec![t]);
        let resp: FetchResponse = raw.call(ApiKey::Fetch, 12, &req);
        let records = resp.responses[0].partitions[0].records.clone().unwrap_or_default();
        let codecs: Vec<Compression> =
            BatchIter::new(&records).with_crc_check().map(|b| b.expect("valid batch").0.compression()).collect();
        assert!(!codecs.is_empty() && codecs.iter().all(|c| *c == stored), "{topic}: {codecs:?}");
        let values: Vec<String> = broker
            .consume_all(topic, 1, 15)
            .iter()
            .map(|m| String::from_utf8_lossy(m.payload().expect("value")).into_owned())
            .collect();
        assert_eq!(values.len(), 15);
        assert!(values.iter().any(|v| v.starts_with("none-")), "{values:?}");
    }
}
