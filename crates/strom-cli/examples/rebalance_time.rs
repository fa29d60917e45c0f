//! How long a consumer group takes to become stable again after one member leaves: librdkafka
//! consumers (eager `range` assignor) in one group; one closes; the clock stops when the others
//! own every partition again. Not a test: it prints the figure issue 3 asks for.
//!
//! cargo run --release -p strom-cli --example rebalance_time -- BOOTSTRAP [MEMBERS] [PARTITIONS] [HEARTBEAT_MS]
//!
//! The topic `rebalance-time-<pid>` is created with PARTITIONS partitions. The remaining members
//! learn of the rebalance from their next heartbeat, so HEARTBEAT_MS (librdkafka default 3000)
//! bounds most of the figure on any broker.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Member {
    owned: AtomicUsize,
    stop: AtomicBool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: rebalance_time BOOTSTRAP [MEMBERS] [PARTITIONS] [HEARTBEAT_MS]");
        std::process::exit(1);
    }
    let bootstrap = args[1].clone();
    let members: usize = args.get(2).map_or(10, |a| a.parse().expect("MEMBERS is a number"));
    let partitions: usize = args.get(3).map_or(100, |a| a.parse().expect("PARTITIONS is a number"));
    let heartbeat_ms: u64 = args.get(4).map_or(3000, |a| a.parse().expect("HEARTBEAT_MS is a number"));
    let topic = format!("rebalance-time-{}", std::process::id());
    create_topic(&bootstrap, &topic, partitions);

    let state: Arc<Vec<Member>> =
        Arc::new((0..members).map(|_| Member { owned: AtomicUsize::new(0), stop: AtomicBool::new(false) }).collect());
    let threads: Vec<_> = (0..members)
        .map(|i| {
            let (state, bootstrap, topic) = (Arc::clone(&state), bootstrap.clone(), topic.clone());
            std::thread::spawn(move || run_member(i, &state, &bootstrap, &topic, heartbeat_ms))
        })
        .collect();

    let owned_by = |skip: Option<usize>| -> usize {
        state.iter().enumerate().filter(|(i, _)| Some(*i) != skip).map(|(_, m)| m.owned.load(Ordering::SeqCst)).sum()
    };
    let start = Instant::now();
    wait_until(Duration::from_secs(120), || {
        owned_by(None) == partitions && state.iter().all(|m| m.owned.load(Ordering::SeqCst) > 0)
    });
    println!(
        "{members} members own {partitions} partitions after {:.2} s (initial join)",
        start.elapsed().as_secs_f64()
    );

    let leaving = members - 1;
    let before = state[leaving].owned.load(Ordering::SeqCst);
    let left_at = Instant::now();
    state[leaving].stop.store(true, Ordering::SeqCst);
    wait_until(Duration::from_secs(120), || owned_by(Some(leaving)) == partitions);
    println!(
        "member {leaving} (owning {before}) left; the other {} own all {partitions} partitions again after {:.3} s \
         (heartbeat.interval.ms={heartbeat_ms})",
        members - 1,
        left_at.elapsed().as_secs_f64()
    );
    for m in state.iter() {
        m.stop.store(true, Ordering::SeqCst);
    }
    for t in threads {
        let _ = t.join();
    }
}

fn run_member(i: usize, state: &[Member], bootstrap: &str, topic: &str, heartbeat_ms: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", topic)
        .set("client.id", format!("member-{i}"))
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let me = &state[i];
    while !me.stop.load(Ordering::SeqCst) {
        let _ = consumer.poll(Duration::from_millis(20));
        let owned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        me.owned.store(owned, Ordering::SeqCst);
    }
    consumer.unsubscribe();
    drop(consumer); // close(): LeaveGroup
}

fn create_topic(bootstrap: &str, topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let results = runtime.block_on(admin.create_topics(&[new], &AdminOptions::new())).expect("create topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("could not create {t}: {e}"));
    }
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "gave up after {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
