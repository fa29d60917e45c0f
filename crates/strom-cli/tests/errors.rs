//! Kafka error codes reach real clients: admin errors through librdkafka's admin client,
//! produce errors through librdkafka and the raw protocol; garbage on one connection does not
//! disturb the others. Also ListOffsets by timestamp.

mod support;

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::TopicPartitionList;
use std::time::Duration;
use strom_protocol::batch::testing::TestBatch;
use strom_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse};
use strom_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

async fn create_error(broker: &TestBroker, topic: NewTopic<'_>) -> RDKafkaErrorCode {
    let results = broker.admin().create_topics([&topic], &AdminOptions::new()).await.expect("request");
    results.into_iter().next().expect("one result").expect_err("must fail").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_carry_kafka_codes() {
    let broker = TestBroker::start(&[]);
    broker.create_topic("exists", 1, &[]).await;
    let code = create_error(&broker, NewTopic::new("exists", 1, TopicReplication::Fixed(1))).await;
    assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists);
    let code = create_error(&broker, NewTopic::new("bad name!", 1, TopicReplication::Fixed(1))).await;
    assert_eq!(code, RDKafkaErrorCode::InvalidTopic);
    let code = create_error(&broker, NewTopic::new("x".repeat(250).as_str(), 1, TopicReplication::Fixed(1))).await;
    assert_eq!(code, RDKafkaErrorCode::InvalidTopic);
    let code = create_error(&broker, NewTopic::new("zero", 0, TopicReplication::Fixed(1))).await;
    assert_eq!(code, RDKafkaErrorCode::InvalidPartitions);
    let code = create_error(&broker, NewTopic::new("three", 1, TopicReplication::Fixed(3))).await;
    assert_eq!(code, RDKafkaErrorCode::InvalidReplicationFactor);
    let code =
        create_error(&broker, NewTopic::new("cfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")).await;
    assert_eq!(code, RDKafkaErrorCode::InvalidConfig);

    // Partitions only grow.
    let admin = broker.admin();
    let r = admin.create_partitions([&NewPartitions::new("exists", 3)], &AdminOptions::new()).await.expect("req");
    assert!(r[0].is_ok(), "{r:?}");
    let r = admin.create_partitions([&NewPartitions::new("exists", 2)], &AdminOptions::new()).await.expect("req");
    assert_eq!(r[0].clone().expect_err("shrink").1, RDKafkaErrorCode::InvalidPartitions);
    let md = admin.inner().fetch_metadata(Some("exists"), Duration::from_secs(5)).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 3);

    // Delete, then it is gone.
    let r = admin.delete_topics(&["exists"], &AdminOptions::new()).await.expect("req");
    assert!(r[0].is_ok());
    let r = admin.delete_topics(&["exists"], &AdminOptions::new()).await.expect("req");
    assert_eq!(r[0].clone().expect_err("gone").1, RDKafkaErrorCode::UnknownTopicOrPartition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_carry_kafka_codes() {
    let broker = TestBroker::start(&["auto.create.topics.enable=false"]);
    broker.create_topic("small", 1, &[("max.message.bytes", "1000")]).await;
    let producer = broker.producer(&[("compression.type", "none"), ("message.timeout.ms", "5000")]);
    let big = vec![b'x'; 5000];
    let err = producer
        .send_result(FutureRecord::<(), _>::to("small").payload(&big))
        .map_err(|(e, _)| e)
        .expect("enqueue")
        .await
        .expect("future")
        .expect_err("too large");
    assert!(matches!(err.0, KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)), "{err:?}");

    let mut raw = RawClient::connect(&broker.bootstrap());
    let produce = |topic: &str, records: Vec<u8>| {
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(records.into());
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        req
    };
    let error_of = |resp: ProduceResponse| resp.responses[0].partition_responses[0].error_code;
    let good = TestBatch { records: &[(Some(b"k"), Some(b"v"))], ..Default::default() }.encode();

    // Unknown topic with auto-create off.
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("nope", good.clone()));
    assert_eq!(error_of(resp), 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // Bad CRC.
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("small", corrupt));
    assert_eq!(error_of(resp), 2, "CORRUPT_MESSAGE");
    // Truncated batch.
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("small", good[..good.len() - 3].to_vec()));
    assert_eq!(error_of(resp), 2, "CORRUPT_MESSAGE");
    // Too large for the topic.
    let value = vec![b'v'; 2000];
    let large = TestBatch { records: &[(None, Some(&value))], ..Default::default() }.encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("small", large));
    assert_eq!(error_of(resp), 10, "MESSAGE_TOO_LARGE");
    // A good batch still works on the same connection.
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("small", good));
    assert_eq!(error_of(resp), 0);

    // Illegal topic name in Metadata.
    let mut req = MetadataRequest::default();
    let mut t = strom_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("bad/name")));
    req.topics = Some(vec![t]);
    let resp: MetadataResponse = raw.call(ApiKey::Metadata, 12, &req);
    assert_eq!(resp.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_timestamp_finds_first_offset_at_or_after() {
    let broker = TestBroker::start(&[]);
    broker.create_topic("times", 1, &[]).await;
    let producer = broker.producer(&[("linger.ms", "0")]);
    for i in 0..100i64 {
        producer
            .send_result(FutureRecord::<(), _>::to("times").payload("x").timestamp(1_000_000 + i * 10))
            .map_err(|(e, _)| e)
            .expect("enqueue")
            .await
            .expect("future")
            .expect("delivered");
    }
    let consumer: BaseConsumer = broker.client_config().create().expect("consumer");
    for (target, expected) in [(0i64, 0i64), (1_000_000, 0), (1_000_005, 1), (1_000_500, 50), (1_000_990, 99)] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, rdkafka::Offset::Offset(target)).expect("add");
        let r = consumer.offsets_for_times(tpl, Duration::from_secs(5)).expect("offsets_for_times");
        let offset = r.elements()[0].offset();
        assert_eq!(offset, rdkafka::Offset::Offset(expected), "target {target}");
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, rdkafka::Offset::Offset(2_000_000)).expect("add");
    let r = consumer.offsets_for_times(tpl, Duration::from_secs(5)).expect("offsets_for_times");
    assert_eq!(r.elements()[0].offset(), rdkafka::Offset::End, "no timestamp that late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_close_only_that_connection() {
    let broker = TestBroker::start(&["socket.request.max.bytes=1048576"]);
    // Oversized frame.
    let mut bad = RawClient::connect(&broker.bootstrap());
    bad.send_bytes(&(200_000_000i32).to_be_bytes()).expect("send");
    assert!(bad.read_frame().is_err(), "oversized frame closes the connection");
    // Random bytes.
    let mut bad = RawClient::connect(&broker.bootstrap());
    let mut junk = vec![0u8, 0, 0, 64];
    junk.extend((0..64u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    bad.send_bytes(&junk).expect("send");
    assert!(bad.read_frame().is_err(), "garbage closes the connection");
    // Truncated frame, then the client goes away.
    let mut bad = RawClient::connect(&broker.bootstrap());
    bad.send_bytes(&[0, 0, 1, 0, 0, 18, 0]).expect("send");
    drop(bad);
    // Negative length.
    let mut bad = RawClient::connect(&broker.bootstrap());
    bad.send_bytes(&(-5i32).to_be_bytes()).expect("send");
    assert!(bad.read_frame().is_err());

    // Everyone else is still served.
    let mut good = RawClient::connect(&broker.bootstrap());
    let resp: ApiVersionsResponse = good.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
    assert!(resp.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));
    // An ApiVersions version from the future gets UNSUPPORTED_VERSION in v0 with our versions.
    let mut future = Vec::new();
    future.extend_from_slice(&10i32.to_be_bytes());
    future.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    future.extend_from_slice(&99i16.to_be_bytes()); // a version from the future
    future.extend_from_slice(&77i32.to_be_bytes()); // correlation id
    future.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    good.send_bytes(&future).expect("send");
    let frame = good.read_frame().expect("answered, not closed");
    assert_eq!(&frame[0..4], &77i32.to_be_bytes());
    assert_eq!(&frame[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    broker.create_topic("after-garbage", 1, &[]).await;
}

/// A Produce request (acks=all) of `records` for partition 0 of `topic`.
fn produce_request(topic: &str, records: Vec<u8>) -> ProduceRequest {
    let p = PartitionProduceData::default().with_index(0).with_records(Some(records.into()));
    let t = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![p]);
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![t])
}

/// KIP-467: a compacted topic refuses records without a key, naming each in `record_errors`;
/// compressed batches are checked too; the other records of the request are not appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_refuse_records_without_keys() {
    let broker = TestBroker::start(&[]);
    broker.create_topic("table", 1, &[("cleanup.policy", "compact")]).await;
    broker.create_topic("stream", 1, &[]).await;
    let mut raw = RawClient::connect(&broker.bootstrap());
    let produce = produce_request;
    let mixed = TestBatch {
        records: &[(Some(b"k1"), Some(b"v")), (None, Some(b"v")), (Some(b"k2"), Some(b"v")), (None, None)],
        ..Default::default()
    }
    .encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("table", mixed.clone()));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    let errors: Vec<(i32, String)> = p
        .record_errors
        .iter()
        .map(|e| (e.batch_index, e.batch_index_error_message.as_deref().unwrap_or_default().to_string()))
        .collect();
    let why = "Compacted topic cannot accept message without key in topic partition table-0".to_string();
    assert_eq!(errors, vec![(1, why.clone()), (3, why)]);
    let message = p.error_message.as_deref().unwrap_or_default();
    assert!(message.starts_with("One or more records have been rejected due to 2 record errors"), "{message}");
    // The same batch is fine on a topic that is not compacted, and keyed records on the table.
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("stream", mixed));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let keyed = TestBatch { records: &[(Some(b"k1"), Some(b"v1"))], ..Default::default() }.encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("table", keyed));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0), "nothing of the refused batch was appended");

    // librdkafka sees INVALID_RECORD, for compressed batches too.
    for codec in ["none", "gzip", "lz4", "zstd", "snappy"] {
        let producer = broker.producer(&[("compression.type", codec), ("message.timeout.ms", "5000")]);
        let err = producer
            .send_result(FutureRecord::<(), _>::to("table").payload("no key"))
            .map_err(|(e, _)| e)
            .expect("enqueue")
            .await
            .expect("future")
            .expect_err("refused");
        assert!(matches!(err.0, KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)), "{codec}: {err:?}");
        producer
            .send(FutureRecord::to("table").key("k").payload("keyed"), Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("{codec}: a keyed record is accepted: {e}"));
    }
}

/// message.timestamp.before.max.ms / after.max.ms (Kafka 4.0 defaults: unbounded / one hour):
/// records out of range are refused with INVALID_TIMESTAMP and named in record_errors, in
/// compressed batches too; in-range records are appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_out_of_range_are_refused() {
    let broker = TestBroker::start(&[]);
    broker.create_topic("recent", 1, &[("message.timestamp.before.max.ms", "60000")]).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let mut raw = RawClient::connect(&broker.bootstrap());
    let produce = produce_request;
    let kv: &[strom_protocol::batch::testing::TestRecord<'_>] =
        &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2")), (Some(b"c"), Some(b"3"))];
    // The second record is two hours ahead (the default after.max.ms is one hour).
    let future = TestBatch { timestamps: &[now, now + 7_200_000, now], records: kv, ..Default::default() }.encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("recent", future));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 32, "INVALID_TIMESTAMP");
    assert_eq!(p.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![1]);
    let why = p.record_errors[0].batch_index_error_message.as_deref().unwrap_or_default();
    assert!(
        why.starts_with(&format!("Timestamp {} of message with offset 1 is out of range", now + 7_200_000)),
        "{why}"
    );
    // Older than before.max.ms on this topic.
    let old = TestBatch { timestamps: &[now, 1_000, now], records: kv, ..Default::default() }.encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("recent", old.clone()));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 32);
    // The same old record is fine where before.max.ms is unbounded (the default).
    broker.create_topic("any-age", 1, &[]).await;
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("any-age", old));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let fine = TestBatch { timestamps: &[now, now, now], records: kv, ..Default::default() }.encode();
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("recent", fine));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0), "nothing refused was appended");

    // librdkafka, compressed: the record two hours ahead is refused.
    let producer = broker.producer(&[("compression.type", "lz4"), ("message.timeout.ms", "5000")]);
    let err = producer
        .send_result(FutureRecord::<(), _>::to("recent").payload("late").timestamp(now + 7_200_000))
        .map_err(|(e, _)| e)
        .expect("enqueue")
        .await
        .expect("future")
        .expect_err("refused");
    assert!(matches!(err.0, KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp)), "{err:?}");
}

/// Produce below v7 may not carry zstd batches (Kafka's ProduceRequest.validateRecords).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_needs_produce_v7() {
    let broker = TestBroker::start(&[]);
    broker.create_topic("z", 1, &[]).await;
    let mut w = strom_protocol::batch::BatchWriter::new(0);
    let no_headers: &[(&[u8], Option<&[u8]>)] = &[];
    w.append(1, Some(b"k".as_slice()), Some(b"v".as_slice()), no_headers);
    let codec = strom_protocol::batch::Compression::Zstd;
    let fields = strom_protocol::batch::BatchFields { attributes: codec as i16, ..Default::default() };
    let batch = w.finish_with(&fields, |r, out| strom_protocol::compression::compress(codec, r, out)).expect("batch");
    let mut raw = RawClient::connect(&broker.bootstrap());
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 6, &produce_request("z", batch.to_vec()));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 76, "UNSUPPORTED_COMPRESSION_TYPE");
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 7, &produce_request("z", batch.to_vec()));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

/// As Kafka: clients cannot write the coordinators' topics (INVALID_TOPIC_EXCEPTION).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topics_refuse_client_writes() {
    let broker = TestBroker::start(&[]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    let forged = TestBatch { records: &[(Some(b"k"), Some(b"v"))], ..Default::default() }.encode();
    for topic in ["__consumer_offsets", "__transaction_state"] {
        let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce_request(topic, forged.clone()));
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 17, "{topic}: INVALID_TOPIC_EXCEPTION");
        assert_eq!(p.error_message.as_deref(), Some(format!("Cannot append to internal topic {topic}").as_str()));
    }
}
