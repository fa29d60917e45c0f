//! Consumer groups with librdkafka: unicast within a group, multicast across groups, take-over
//! when a member leaves, a late joiner gets a share, committed offsets survive a broker restart,
//! cooperative-sticky moves only what it must, and the admin view of groups.

mod support;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientContext, TopicPartitionList};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::TestBroker;

const GROUP_BROKER: &[&str] = &["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"];

/// A rebalance callback: ("assign" | "revoke", partitions).
type RebalanceEvent = (&'static str, Vec<i32>);

/// Records rebalance callbacks.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let (kind, tpl) = match r {
            Rebalance::Assign(t) => ("assign", *t),
            Rebalance::Revoke(t) => ("revoke", *t),
            Rebalance::Error(_) => return,
        };
        let parts = tpl.elements().iter().map(|e| e.partition()).collect();
        self.events.lock().expect("lock").push((kind, parts));
    }
}

/// A group member polling in its own thread.
struct Member {
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<(i32, i64)>>>,
    assignment: Arc<Mutex<Vec<i32>>>,
    recorder: Recorder,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn spawn(broker: &TestBroker, group: &str, topic: &str, extra: &[(&str, &str)]) -> Member {
        let mut config = broker.client_config();
        config
            .set("group.id", group)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "200")
            .set("fetch.wait.max.ms", "100");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let recorder = Recorder::default();
        let consumer: BaseConsumer<Recorder> = config.create_with_context(recorder.clone()).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let received: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
        let assignment: Arc<Mutex<Vec<i32>>> = Arc::default();
        let thread = {
            let (stop, received, assignment) = (stop.clone(), received.clone(), assignment.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                        received.lock().expect("lock").push((m.partition(), m.offset()));
                    }
                    if let Ok(a) = consumer.assignment() {
                        let mut parts: Vec<i32> = a.elements().iter().map(|e| e.partition()).collect();
                        parts.sort_unstable();
                        *assignment.lock().expect("lock") = parts;
                    }
                }
                // Dropping the consumer closes it: final commit, then LeaveGroup.
                drop(consumer);
            })
        };
        Member { stop, received, assignment, recorder, thread: Some(thread) }
    }

    fn received(&self) -> Vec<(i32, i64)> {
        self.received.lock().expect("lock").clone()
    }

    fn assignment(&self) -> Vec<i32> {
        self.assignment.lock().expect("lock").clone()
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.close();
    }
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn produce(broker: &TestBroker, topic: &str, range: std::ops::Range<usize>) -> HashSet<(i32, i64)> {
    let producer = broker.producer(&[("linger.ms", "5")]);
    let futures: Vec<_> = range
        .map(|i| {
            let key = format!("k{i}");
            producer.send_result(FutureRecord::to(topic).key(&key).payload(&key)).map_err(|(e, _)| e).expect("enqueue")
        })
        .collect();
    let mut out = HashSet::new();
    for f in futures {
        let d = f.await.expect("future").expect("delivered");
        out.insert((d.partition, d.offset));
    }
    out
}

fn all_partitions(members: &[&Member]) -> Vec<i32> {
    let mut all: Vec<i32> = members.iter().flat_map(|m| m.assignment()).collect();
    all.sort_unstable();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_shares_partitions_takes_over_and_rebalances_for_a_newcomer() {
    let broker = TestBroker::start(GROUP_BROKER);
    broker.create_topic("shared", 6, &[]).await;
    let produced = produce(&broker, "shared", 0..60_000).await;

    let mut m0 = Member::spawn(&broker, "unicast", "shared", &[]);
    let m1 = Member::spawn(&broker, "unicast", "shared", &[]);
    let m2 = Member::spawn(&broker, "unicast", "shared", &[]);
    wait_until("60,000 messages are consumed", Duration::from_secs(60), || {
        m0.received().len() + m1.received().len() + m2.received().len() >= 60_000
    });
    wait_until("each member owns two partitions", Duration::from_secs(20), || {
        [&m0, &m1, &m2].iter().all(|m| m.assignment().len() == 2)
    });
    assert_eq!(all_partitions(&[&m0, &m1, &m2]), vec![0, 1, 2, 3, 4, 5], "disjoint and complete");
    let mut seen = HashSet::new();
    for m in [&m0, &m1, &m2] {
        for r in m.received() {
            assert!(seen.insert(r), "message {r:?} consumed twice within the group");
        }
    }
    assert_eq!(seen, produced, "every message consumed exactly once across the group");

    // One member leaves: the other two take over its partitions.
    let left = m0.assignment();
    let started = Instant::now();
    m0.close();
    wait_until("the two remaining members own all six partitions", Duration::from_secs(20), || {
        all_partitions(&[&m1, &m2]) == vec![0, 1, 2, 3, 4, 5]
    });
    let takeover = started.elapsed();
    assert!(takeover < Duration::from_secs(10), "take-over took {takeover:?}");
    let more = produce(&broker, "shared", 60_000..66_000).await;
    wait_until("no message is lost after the take-over", Duration::from_secs(30), || {
        let got: HashSet<_> = m1.received().into_iter().chain(m2.received()).collect();
        more.is_subset(&got)
    });
    assert!(left.iter().all(|p| all_partitions(&[&m1, &m2]).contains(p)));

    // A newcomer gets a share.
    let m3 = Member::spawn(&broker, "unicast", "shared", &[]);
    wait_until("the newcomer gets partitions", Duration::from_secs(20), || {
        !m3.assignment().is_empty() && all_partitions(&[&m1, &m2, &m3]) == vec![0, 1, 2, 3, 4, 5]
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_receive_every_message() {
    let broker = TestBroker::start(GROUP_BROKER);
    broker.create_topic("fanout", 3, &[]).await;
    let produced = produce(&broker, "fanout", 0..3000).await;
    let a = Member::spawn(&broker, "group-a", "fanout", &[]);
    let b = Member::spawn(&broker, "group-b", "fanout", &[]);
    wait_until("both groups consumed everything", Duration::from_secs(30), || {
        a.received().len() >= 3000 && b.received().len() >= 3000
    });
    for m in [&a, &b] {
        let got: HashSet<_> = m.received().into_iter().collect();
        assert_eq!(got, produced);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_broker_restart() {
    let mut broker = TestBroker::start(GROUP_BROKER);
    broker.create_topic("resume", 1, &[]).await;
    produce(&broker, "resume", 0..1000).await;
    let consumer = |b: &TestBroker| -> BaseConsumer {
        b.client_config()
            .set("group.id", "resumer")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer")
    };
    {
        let c = consumer(&broker);
        c.subscribe(&["resume"]).expect("subscribe");
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while n < 600 {
            assert!(Instant::now() < deadline, "consumed only {n}");
            if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
                n += 1;
            }
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("resume", 0, rdkafka::Offset::Offset(600)).expect("add");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    broker.stop();
    broker.restart();
    let c = consumer(&broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("resume", 0);
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed");
    assert_eq!(committed.elements()[0].offset(), rdkafka::Offset::Offset(600));
    c.subscribe(&["resume"]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        assert!(Instant::now() < deadline, "no message after restart");
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            break m.expect("message").offset();
        }
    };
    assert_eq!(first, 600, "resumes at the committed offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_what_the_newcomer_takes() {
    let broker = TestBroker::start(GROUP_BROKER);
    broker.create_topic("coop", 6, &[]).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let first = Member::spawn(&broker, "coop-group", "coop", &coop);
    wait_until("the first member owns everything", Duration::from_secs(20), || first.assignment().len() == 6);
    let second = Member::spawn(&broker, "coop-group", "coop", &coop);
    wait_until("the newcomer gets a share", Duration::from_secs(30), || {
        second.assignment().len() == 3 && first.assignment().len() == 3
    });
    let kept: BTreeSet<i32> = first.assignment().into_iter().collect();
    let taken: BTreeSet<i32> = second.assignment().into_iter().collect();
    let events = first.recorder.events.lock().expect("lock").clone();
    let revoked: BTreeSet<i32> = events.iter().filter(|(k, _)| *k == "revoke").flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(revoked, taken, "only the partitions the newcomer took were revoked: {events:?}");
    assert!(kept.is_disjoint(&revoked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_view_lists_describes_and_deletes_groups() {
    let broker = TestBroker::start(GROUP_BROKER);
    broker.create_topic("watched", 2, &[]).await;
    let mut m = Member::spawn(&broker, "watched-group", "watched", &[("client.id", "watcher-1")]);
    wait_until("the member owns both partitions", Duration::from_secs(20), || m.assignment().len() == 2);
    let admin = broker.admin();
    let groups = admin.inner().fetch_group_list(Some("watched-group"), Duration::from_secs(10)).expect("describe");
    let g = &groups.groups()[0];
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.protocol_type(), "consumer");
    assert_eq!(g.members().len(), 1);
    assert_eq!(g.members()[0].client_id(), "watcher-1");
    assert!(g.members()[0].client_host().contains("127.0.0.1"), "{}", g.members()[0].client_host());
    assert!(g.members()[0].assignment().is_some_and(|a| !a.is_empty()));
    let all = admin.inner().fetch_group_list(None, Duration::from_secs(10)).expect("list");
    assert!(all.groups().iter().any(|g| g.name() == "watched-group"));

    let opts = rdkafka::admin::AdminOptions::new();
    let r = admin.delete_groups(&["watched-group"], &opts).await.expect("request");
    assert_eq!(r[0].clone().expect_err("non-empty").1, rdkafka::types::RDKafkaErrorCode::NonEmptyGroup);
    m.close();
    wait_until("the group is empty", Duration::from_secs(20), || {
        admin
            .inner()
            .fetch_group_list(Some("watched-group"), Duration::from_secs(5))
            .is_ok_and(|l| l.groups()[0].state() == "Empty")
    });
    let r = admin.delete_groups(&["watched-group"], &opts).await.expect("request");
    assert!(r[0].is_ok(), "{r:?}");
    let r = admin.delete_groups(&["watched-group"], &opts).await.expect("request");
    assert_eq!(r[0].clone().expect_err("gone").1, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound);
}
