//! A steady acks=all idempotent producer for fault tests, a group consumer reading beside it,
//! and the check of what they left: every acknowledged value exactly once, in acknowledgement
//! order per partition, at contiguous offsets.

use super::cluster::TestCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Acknowledged values per partition, in acknowledgement order.
pub type Acked = BTreeMap<i32, Vec<u64>>;

pub struct Writer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Acked>,
}

impl Writer {
    /// Writes values 0, 1, 2, … (value i to partition i % `partitions`) in waves of 60 until
    /// stopped (and at least 600). Any failed delivery fails the test.
    pub fn start(cluster: &TestCluster, topic: &str, partitions: i32) -> Writer {
        let bootstrap = cluster.bootstrap();
        let producer: FutureProducer = cluster.nodes[0].producer(&[
            ("bootstrap.servers", bootstrap.as_str()),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "60000"),
            ("linger.ms", "5"),
        ]);
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut acked = Acked::new();
            let mut i = 0u64;
            while !stopped.load(Ordering::Relaxed) || i < 600 {
                let mut wave = Vec::new();
                for _ in 0..60 {
                    let partition = (i % partitions as u64) as i32;
                    let value = i.to_string();
                    let f = producer
                        .send_result(FutureRecord::<(), str>::to(&topic).partition(partition).payload(&value))
                        .expect("queue");
                    wave.push((partition, i, f));
                    i += 1;
                }
                for (partition, value, f) in wave {
                    match f.await.expect("delivery future") {
                        Ok(_) => acked.entry(partition).or_default().push(value),
                        Err((e, _)) => panic!("acks=all produce of {value} failed: {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acked
        });
        Writer { stop, task }
    }

    pub async fn finish(self) -> Acked {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

/// What a reader saw per partition: (offset, value) in the order read.
type Read = BTreeMap<i32, Vec<(i64, u64)>>;

/// A consumer in group `readers` subscribed to the topic while the writer writes, committing
/// what it read (auto commit), so that a test can show that consumers go on through what it
/// does.
pub struct GroupReader {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Read>,
}

impl GroupReader {
    pub fn start(cluster: &TestCluster, topic: &str) -> GroupReader {
        let consumer: BaseConsumer = cluster.nodes[0]
            .client_config()
            .set("bootstrap.servers", cluster.bootstrap())
            .set("group.id", "readers")
            .set("auto.offset.reset", "earliest")
            .set("auto.commit.interval.ms", "200")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let (stop, count) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (stopped, counted) = (Arc::clone(&stop), Arc::clone(&count));
        let thread = std::thread::spawn(move || {
            let mut read = Read::new();
            while !stopped.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        read.entry(m.partition()).or_default().push((m.offset(), value_of(&m)));
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Err(e)) => panic!("the group consumer failed: {e}"),
                    None => {}
                }
            }
            // Leaves the group before the consumer is closed.
            consumer.unsubscribe();
            read
        });
        GroupReader { stop, count, thread }
    }

    /// Records read so far.
    pub fn read_so_far(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits (up to 60 s) until the reader has read everything acknowledged, stops it, and
    /// checks what it read as `check_read_back` does.
    pub fn finish(self, acked: &Acked) {
        let total: usize = acked.values().map(Vec::len).sum();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.read_so_far() < total {
            assert!(Instant::now() < deadline, "the group consumer read {} of {total}", self.read_so_far());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop.store(true, Ordering::Relaxed);
        let read = self.thread.join().expect("reader thread");
        check_partitions(&read, acked);
    }
}

fn value_of(m: &impl Message) -> u64 {
    String::from_utf8_lossy(m.payload().unwrap_or_default()).parse().expect("numeric value")
}

/// Reads `topic` back through node 0 and checks it against what was acknowledged.
pub fn check_read_back(cluster: &TestCluster, topic: &str, partitions: i32, acked: &Acked) {
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(total >= 600, "only {total} records acknowledged");
    let read = cluster.nodes[0].consume_all(topic, partitions, total);
    let mut by_partition = Read::new();
    for m in &read {
        by_partition.entry(m.partition()).or_default().push((m.offset(), value_of(m)));
    }
    check_partitions(&by_partition, acked);
}

/// Per partition: contiguous offsets from 0 holding exactly the acknowledged values, in order.
fn check_partitions(by_partition: &Read, acked: &Acked) {
    for (partition, expected) in acked {
        let got = by_partition.get(partition).cloned().unwrap_or_default();
        let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..got.len() as i64).collect::<Vec<_>>(), "partition {partition}: contiguous offsets");
        let values: Vec<u64> = got.iter().map(|(_, v)| *v).collect();
        assert_eq!(&values, expected, "partition {partition}: every acknowledged value once, in order");
    }
}
