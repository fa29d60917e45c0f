//! A steady acks=all idempotent producer for fault tests, and the check of what it left:
//! every acknowledged value exactly once, in acknowledgement order per partition, at
//! contiguous offsets.

use super::cluster::TestCluster;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
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

/// Reads `topic` back through node 0 and checks it against what was acknowledged.
pub fn check_read_back(cluster: &TestCluster, topic: &str, partitions: i32, acked: &Acked) {
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(total >= 600, "only {total} records acknowledged");
    let read = cluster.nodes[0].consume_all(topic, partitions, total);
    let mut by_partition: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
    for m in &read {
        let value: u64 = String::from_utf8_lossy(m.payload().unwrap_or_default()).parse().expect("numeric value");
        by_partition.entry(m.partition()).or_default().push((m.offset(), value));
    }
    for (partition, expected) in acked {
        let got = by_partition.get(partition).cloned().unwrap_or_default();
        let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..got.len() as i64).collect::<Vec<_>>(), "partition {partition}: contiguous offsets");
        let values: Vec<u64> = got.iter().map(|(_, v)| *v).collect();
        assert_eq!(&values, expected, "partition {partition}: every acknowledged value once, in order");
    }
}
