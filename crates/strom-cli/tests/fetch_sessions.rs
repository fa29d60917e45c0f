//! Incremental fetch sessions (KIP-227) as Java's consumer uses them: a full fetch opens a
//! session, then a fetch naming no partition reads them all and is answered only with those that
//! have news.

mod support;

use rdkafka::producer::FutureRecord;
use std::time::Duration;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

const PARTITIONS: i32 = 200;

fn fetch(
    client: &mut RawClient,
    version: i16,
    session: (i32, i32),
    topic: Option<(&str, uuid::Uuid)>,
) -> FetchResponse {
    let mut req = FetchRequest::default().with_max_wait_ms(10).with_min_bytes(1).with_max_bytes(1 << 20);
    req.session_id = session.0;
    req.session_epoch = session.1;
    if let Some((name, id)) = topic {
        let parts =
            (0..PARTITIONS).map(|p| FetchPartition::default().with_partition(p).with_partition_max_bytes(1 << 16));
        let t = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
            .with_topic_id(id)
            .with_partitions(parts.collect());
        req.topics = vec![t];
    }
    client.call(ApiKey::Fetch, version, &req)
}

fn partitions(resp: &FetchResponse) -> Vec<i32> {
    resp.responses.iter().flat_map(|t| t.partitions.iter().map(|p| p.partition_index)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_fetch_is_answered_with_what_changed_only() {
    let broker = TestBroker::start(&[]);
    for version in [12i16, 16] {
        // A topic each: by name up to v12, by id from v13.
        let wide = format!("wide-v{version}");
        broker.create_topic(&wide, PARTITIONS, &[]).await;
        let mut metadata_client = RawClient::connect(&broker.bootstrap());
        let request = strom_protocol::messages::MetadataRequest::default().with_topics(None);
        let metadata: strom_protocol::messages::MetadataResponse = metadata_client.call(ApiKey::Metadata, 12, &request);
        let named = |t: &&strom_protocol::messages::metadata_response::MetadataResponseTopic| {
            t.name.as_ref().is_some_and(|n| n.as_str() == wide)
        };
        let topic_id = metadata.topics.iter().find(named).expect("topic").topic_id;
        let mut client = RawClient::connect(&broker.bootstrap());
        // A full fetch with epoch 0 opens a session and is answered in full.
        let full = fetch(&mut client, version, (0, 0), Some((&wide, topic_id)));
        assert_eq!(full.error_code, 0);
        assert!(full.session_id > 0, "v{version}: a session was opened");
        assert_eq!(partitions(&full).len(), PARTITIONS as usize);
        let id = full.session_id;
        // Nothing new: an empty answer, though all 200 partitions were read.
        let quiet = fetch(&mut client, version, (id, 1), None);
        assert_eq!((quiet.error_code, quiet.session_id, partitions(&quiet)), (0, id, vec![]), "v{version}");
        // One partition gets a record: only it is in the next answer, with its record.
        let producer = broker.producer(&[]);
        producer
            .send(FutureRecord::<(), _>::to(&wide).partition(17).payload("news"), Duration::from_secs(10))
            .await
            .expect("produced");
        let news = fetch(&mut client, version, (id, 2), None);
        assert_eq!(partitions(&news), vec![17], "v{version}");
        let p = &news.responses[0].partitions[0];
        assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()), "v{version}: the record is there");
        // The client moves partition 17 on (it sends only that one); nothing new after it.
        let mut next = FetchRequest::default().with_max_wait_ms(10).with_min_bytes(1);
        next.session_id = id;
        next.session_epoch = 3;
        let moved = FetchPartition::default().with_partition(17).with_fetch_offset(1).with_partition_max_bytes(1 << 16);
        next.topics = vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(wide.clone())))
            .with_topic_id(topic_id)
            .with_partitions(vec![moved])];
        let after: FetchResponse = client.call(ApiKey::Fetch, version, &next);
        assert_eq!(partitions(&after), Vec::<i32>::new(), "v{version}: nothing after offset 1");
        // A wrong epoch, an unknown session; epoch -1 closes the session.
        assert_eq!(fetch(&mut client, version, (id, 9), None).error_code, 71, "INVALID_FETCH_SESSION_EPOCH");
        assert_eq!(fetch(&mut client, version, (id + 1, 1), None).error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
        let closed = fetch(&mut client, version, (id, -1), Some((&wide, topic_id)));
        assert_eq!((closed.session_id, partitions(&closed).len()), (0, PARTITIONS as usize));
        assert_eq!(fetch(&mut client, version, (id, 5), None).error_code, 70, "closed");
    }
}

/// Bytes on the wire for 1,000 quiet partitions, with and without a session, for
/// docs/benchmarks.md: `cargo test -p strom-cli --test fetch_sessions wire_bytes -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn wire_bytes_of_a_quiet_fetch_with_and_without_a_session() {
    use strom_protocol::frame::encode_request;
    use strom_protocol::messages::RequestHeader;
    let broker = TestBroker::start(&[]);
    broker.create_topic("thousand", 1_000, &[]).await;
    let mut client = RawClient::connect(&broker.bootstrap());
    let mut exchange = |session: (i32, i32), partitions: i32| -> (usize, usize, i32) {
        let parts =
            (0..partitions).map(|p| FetchPartition::default().with_partition(p).with_partition_max_bytes(1 << 16));
        let t = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("thousand")))
            .with_partitions(parts.collect());
        let mut req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20);
        req.session_id = session.0;
        req.session_epoch = session.1;
        if partitions > 0 {
            req.topics = vec![t];
        }
        let mut header = RequestHeader::default();
        header.request_api_key = ApiKey::Fetch as i16;
        header.request_api_version = 12;
        header.correlation_id = 1;
        let frame = encode_request(&header, &req).expect("encode");
        client.send_bytes(&frame).expect("send");
        let answer = client.read_frame().expect("answer");
        let mut body = answer.clone();
        let (_, resp) =
            strom_protocol::frame::decode_response::<FetchResponse>(ApiKey::Fetch, 12, &mut body).expect("decode");
        (frame.len(), answer.len() + 4, resp.session_id)
    };
    let (full_req, full_resp, _) = exchange((0, -1), 1_000);
    let (_, _, id) = exchange((0, 0), 1_000);
    let (inc_req, inc_resp, _) = exchange((id, 1), 0);
    println!(
        "1,000 quiet partitions, Fetch v12: without a session {full_req} B request, {full_resp} B response; \
              with one (incremental) {inc_req} B request, {inc_resp} B response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_answer_carries_each_record_with_its_own_partition() {
    use strom_protocol::batch::{BatchIter, RecordIter, BATCH_HEADER_LEN};
    let broker = TestBroker::start(&[]);
    for topic in ["quiet", "busy"] {
        broker.create_topic(topic, 3, &[]).await;
    }
    let producer = broker.producer(&[]);
    let mut client = RawClient::connect(&broker.bootstrap());
    let topic = |name: &'static str| {
        let parts = (0..3).map(|p| FetchPartition::default().with_partition(p).with_partition_max_bytes(1 << 16));
        FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str(name))).with_partitions(parts.collect())
    };
    let mut full = FetchRequest::default().with_max_wait_ms(10).with_min_bytes(1).with_max_bytes(1 << 20);
    full.session_epoch = 0;
    full.topics = vec![topic("quiet"), topic("busy")];
    let opened: FetchResponse = client.call(ApiKey::Fetch, 12, &full);
    assert!(opened.session_id > 0);
    // Records in the second topic only: the first drops out of the answer, and the records
    // must come with the partition they belong to (the file regions follow the partitions).
    for (p, value) in [(2, "busy-2"), (0, "busy-0")] {
        producer
            .send(FutureRecord::<(), _>::to("busy").partition(p).payload(value), Duration::from_secs(10))
            .await
            .expect("sent");
    }
    let mut next = FetchRequest::default().with_max_wait_ms(10).with_min_bytes(1).with_max_bytes(1 << 20);
    next.session_id = opened.session_id;
    next.session_epoch = 1;
    let resp: FetchResponse = client.call(ApiKey::Fetch, 12, &next);
    assert_eq!(resp.responses.len(), 1, "only the topic with news");
    assert_eq!(resp.responses[0].topic.0.as_str(), "busy");
    let mut got = Vec::new();
    for p in &resp.responses[0].partitions {
        let records = p.records.clone().unwrap_or_default();
        for item in BatchIter::new(&records) {
            let (_, batch) = item.expect("a batch");
            for r in RecordIter::new(&batch[BATCH_HEADER_LEN..]) {
                let value = String::from_utf8_lossy(r.expect("record").value.unwrap_or_default()).into_owned();
                got.push((p.partition_index, value));
            }
        }
    }
    got.sort();
    assert_eq!(got, vec![(0, "busy-0".to_string()), (2, "busy-2".to_string())]);
}
