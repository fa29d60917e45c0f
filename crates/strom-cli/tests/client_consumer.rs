//! strom-client's consumer against a Strom broker: sharing a group with librdkafka (strom-client
//! through fetch sessions), the rebalance listener's revoke-then-assign with a commit honoured by
//! the next owner, seek and pause, and the admin client's view of the group.

mod support;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_client::admin::Admin;
use strom_client::consumer::{Consumer, OffsetAndMetadata, RebalanceContext, RebalanceListener};
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::{Properties, TopicPartition};
use support::TestBroker;

const GROUP_BROKER: &[&str] = &["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn props(broker: &TestBroker, group: &str) -> Properties {
    Properties::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
}

async fn produce(broker: &TestBroker, topic: &str, n: usize) {
    let p = Producer::new(&Properties::new().set("bootstrap.servers", broker.bootstrap())).await.expect("producer");
    for i in 0..n {
        p.send_and_forget(ProducerRecord::new(topic).key(format!("k{i}")).value(i.to_string())).await.expect("queued");
    }
    p.close().await.expect("delivered");
}

#[test]
fn a_strom_client_member_and_a_librdkafka_member_share_a_group() {
    let broker = TestBroker::start(GROUP_BROKER);
    let rt = runtime();
    rt.block_on(broker.create_topic("shared", 6, &[]));
    let rd: BaseConsumer = broker
        .client_config()
        .set("group.id", "mixed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .create()
        .expect("librdkafka consumer");
    rd.subscribe(&["shared"]).expect("subscribe");
    let rd_values = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rd_owned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rd_thread = {
        let (values, stop, owned) = (Arc::clone(&rd_values), Arc::clone(&stop), Arc::clone(&rd_owned));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let polled = rd.poll(Duration::from_millis(50));
                owned.store(rd.assignment().map(|a| a.count()).unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
                if let Some(Ok(m)) = polled {
                    values
                        .lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
                }
            }
            let assignment = rd.assignment().expect("assignment").elements().len();
            drop(rd);
            assignment
        })
    };
    let (ours, our_assignment) = rt.block_on(async {
        let mut c = Consumer::new(&props(&broker, "mixed").set("partition.assignment.strategy", "range"))
            .await
            .expect("consumer");
        c.subscribe(&["shared"]).expect("subscribe");
        let mut values = Vec::new();
        // Both members settle on three partitions each before anything is produced.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(c.assignment().len() == 3 && rd_owned.load(std::sync::atomic::Ordering::SeqCst) == 3) {
            assert!(Instant::now() < deadline, "the group never split 3/3");
            values.extend(
                c.poll(Duration::from_millis(50)).await.expect("poll").into_iter().map(|r| format!("{:?}", r.value)),
            );
        }
        assert!(values.is_empty(), "nothing produced yet");
        produce(&broker, "shared", 3_000).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while values.len() + rd_values.lock().expect("lock").len() < 3_000 && Instant::now() < deadline {
            for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
                values.push(String::from_utf8_lossy(&r.value.unwrap_or_default()).to_string());
            }
        }
        let assignment = c.assignment().len();
        c.close().await.expect("close");
        (values, assignment)
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rd_assignment = rd_thread.join().expect("librdkafka thread");
    assert_eq!(our_assignment + rd_assignment, 6, "the two members split the six partitions");
    assert_eq!((our_assignment, rd_assignment), (3, 3));
    let mut all: Vec<String> = ours.clone();
    all.extend(rd_values.lock().expect("lock").iter().cloned());
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (3_000, 3_000), "each message exactly once across the two");
    assert!(!ours.is_empty(), "strom-client consumed its share");
    // strom-client fetched through an incremental fetch session (KIP-227), as Java's consumer
    // does; librdkafka does not use them.
    // One session, kept: a session failing at every fetch would open a new one each time.
    let opened = broker.log().matches("opened a fetch session for a consumer").count();
    assert!((1..=2).contains(&opened), "{opened} consumer sessions opened:\n{}", broker.log());
}

/// ("revoked" | "assigned", partitions)
type ListenerEvent = (String, Vec<TopicPartition>);

/// Records rebalance callbacks and commits the positions of revoked partitions.
#[derive(Clone, Default)]
struct CommitOnRevoke {
    events: Arc<Mutex<Vec<ListenerEvent>>>,
}

impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        ctx.commit_positions(partitions);
        self.events.lock().expect("lock").push(("revoked".into(), partitions.to_vec()));
    }

    fn on_partitions_assigned(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.events.lock().expect("lock").push(("assigned".into(), partitions.to_vec()));
    }
}

#[test]
fn a_commit_in_on_partitions_revoked_is_where_the_next_owner_starts() {
    let broker = TestBroker::start(GROUP_BROKER);
    runtime().block_on(async {
        broker.create_topic("handover", 2, &[]).await;
        produce(&broker, "handover", 200).await;
        let listener = CommitOnRevoke::default();
        let mut first =
            Consumer::new(&props(&broker, "handover-group").set("max.poll.records", "10")).await.expect("consumer");
        first.set_rebalance_listener(listener.clone());
        first.subscribe(&["handover"]).expect("subscribe");
        let mut seen_first = Vec::new();
        while seen_first.len() < 30 {
            seen_first.extend(first.poll(Duration::from_millis(200)).await.expect("poll"));
        }
        // The first consumer leaves; its listener commits what it consumed.
        first.close().await.expect("close");
        let events = listener.events.lock().expect("lock").clone();
        assert_eq!(events.first().map(|e| e.0.as_str()), Some("assigned"));
        assert_eq!(events.last().map(|e| e.0.as_str()), Some("revoked"), "revoke comes last: {events:?}");

        let admin = Admin::new(&Properties::new().set("bootstrap.servers", broker.bootstrap())).await.expect("admin");
        let committed = admin.list_consumer_group_offsets("handover-group").await.expect("offsets");
        let mut next_per_partition: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &seen_first {
            let e = next_per_partition.entry(r.partition).or_default();
            *e = (*e).max(r.offset + 1);
        }
        for (p, next) in &next_per_partition {
            assert_eq!(committed.get(&TopicPartition::new("handover", *p)).map(|o| o.offset), Some(*next));
        }
        let mut second = Consumer::new(&props(&broker, "handover-group")).await.expect("consumer");
        second.subscribe(&["handover"]).expect("subscribe");
        let mut seen_second = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen_first.len() + seen_second.len() < 200 && Instant::now() < deadline {
            seen_second.extend(second.poll(Duration::from_millis(200)).await.expect("poll"));
        }
        let mut offsets: Vec<(i32, i64)> =
            seen_first.iter().chain(&seen_second).map(|r| (r.partition, r.offset)).collect();
        offsets.sort();
        let before = offsets.len();
        offsets.dedup();
        assert_eq!((before, offsets.len()), (200, 200), "the second owner starts exactly where the first committed");

        // Seek, pause/resume and the admin view while the second consumer is a member.
        let tp = TopicPartition::new("handover", 0);
        second.seek(&tp, 0).expect("seek");
        second.pause(&[TopicPartition::new("handover", 1)]);
        let again = second.poll(Duration::from_secs(2)).await.expect("poll");
        assert!(!again.is_empty() && again.iter().all(|r| r.partition == 0), "only the resumed partition, from 0");
        assert_eq!(again[0].offset, 0);
        let mut metadata = BTreeMap::new();
        metadata.insert(tp.clone(), OffsetAndMetadata { offset: 5, metadata: "checkpoint".into() });
        second.commit_offsets(&metadata).await.expect("commit with metadata");
        let committed = second.committed(std::slice::from_ref(&tp)).await.expect("committed");
        assert_eq!(committed.get(&tp).map(|o| (o.offset, o.metadata.as_str())), Some((5, "checkpoint")));
        let described = admin.describe_group("handover-group").await.expect("describe");
        assert_eq!(described.state, "Stable");
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].assignment.len(), 2);
        second.close().await.expect("close");
    });
}

#[test]
fn a_pattern_subscription_follows_matching_topics() {
    let broker = TestBroker::start(GROUP_BROKER);
    runtime().block_on(async {
        broker.create_topic("pat-a", 1, &[]).await;
        broker.create_topic("other", 1, &[]).await;
        produce(&broker, "pat-a", 10).await;
        produce(&broker, "other", 10).await;
        let mut c =
            Consumer::new(&props(&broker, "pattern-group").set("metadata.max.age.ms", "300")).await.expect("consumer");
        assert!(c.subscribe_pattern("pat-(").is_err(), "an invalid regex is a clear error");
        c.subscribe_pattern("pat-.*").expect("subscribe");
        let mut topics = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut created = false;
        while topics.get("pat-b").copied().unwrap_or(0) < 10 && Instant::now() < deadline {
            for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
                *topics.entry(r.topic.clone()).or_insert(0) += 1;
            }
            // Without commits a rebalance would restart from auto.offset.reset, as in Kafka.
            c.commit_sync().await.expect("commit");
            if !created && topics.get("pat-a") == Some(&10) {
                // A topic created later joins the subscription.
                broker.create_topic("pat-b", 1, &[]).await;
                produce(&broker, "pat-b", 10).await;
                created = true;
            }
        }
        assert_eq!(topics.get("pat-a"), Some(&10));
        assert_eq!(topics.get("pat-b"), Some(&10), "{topics:?}");
        assert_eq!(topics.get("other"), None, "a topic that does not match is not consumed");
        c.close().await.expect("close");
    });
}
