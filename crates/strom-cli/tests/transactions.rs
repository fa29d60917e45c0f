//! Transactions end to end with librdkafka's transactional producer: commit and abort, what
//! read_committed and read_uncommitted consumers see, and a second producer with the same
//! transactional.id fencing the first.

mod support;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::Duration;
use support::TestBroker;

const TOPIC: &str = "orders";
const BROKER: &[&str] = &["transaction.state.log.num.partitions=4", "group.initial.rebalance.delay.ms=0"];

fn transactional(b: &TestBroker, id: &str) -> FutureProducer {
    let p = b.producer(&[("transactional.id", id), ("transaction.timeout.ms", "60000")]);
    p.init_transactions(Duration::from_secs(30)).expect("init_transactions");
    p
}

async fn send(p: &FutureProducer, partition: i32, value: &str) -> Result<(), KafkaError> {
    p.send(FutureRecord::<(), str>::to(TOPIC).partition(partition).payload(value), Duration::from_secs(10))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

fn read(b: &TestBroker, isolation: &str, expected: usize) -> Vec<String> {
    support::read_values(b.client_config(), TOPIC, 2, isolation, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_read_and_aborted_ones_are_not() {
    let b = TestBroker::start(BROKER);
    b.create_topic(TOPIC, 2, &[]).await;
    let p = transactional(&b, "shipping");

    p.begin_transaction().expect("begin");
    for (i, v) in ["c1", "c2", "c3"].iter().enumerate() {
        send(&p, i as i32 % 2, v).await.expect("send");
    }
    p.commit_transaction(Duration::from_secs(30)).expect("commit");

    p.begin_transaction().expect("begin");
    send(&p, 0, "a1").await.expect("send");
    send(&p, 1, "a2").await.expect("send");
    p.abort_transaction(Duration::from_secs(30)).expect("abort");

    p.begin_transaction().expect("begin");
    send(&p, 1, "c4").await.expect("send");
    p.commit_transaction(Duration::from_secs(30)).expect("commit");

    assert_eq!(read(&b, "read_committed", 4), vec!["c1", "c2", "c3", "c4"]);
    assert_eq!(read(&b, "read_uncommitted", 6), vec!["a1", "a2", "c1", "c2", "c3", "c4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let b = TestBroker::start(BROKER);
    b.create_topic(TOPIC, 2, &[]).await;
    let first = transactional(&b, "billing");
    first.begin_transaction().expect("begin");
    send(&first, 0, "open-1").await.expect("send");

    // The newer producer's init aborts the open transaction and bumps the epoch.
    let second = transactional(&b, "billing");
    second.begin_transaction().expect("begin");
    send(&second, 1, "new-1").await.expect("send");
    second.commit_transaction(Duration::from_secs(30)).expect("commit");

    let fenced = match send(&first, 0, "open-2").await {
        Err(e) => Some(e),
        Ok(()) => first.commit_transaction(Duration::from_secs(30)).err(),
    };
    let e = fenced.expect("the first producer is fenced");
    assert!(e.to_string().to_lowercase().contains("fenced") || e.to_string().contains("epoch"), "{e}");
    assert_eq!(read(&b, "read_committed", 1), vec!["new-1"]);
}
