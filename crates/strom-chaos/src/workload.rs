//! The load during the faults: idempotent `acks=all` producers writing unique numbered values
//! (`"<producer>-<seq>"`), consumers in one group that commit after every poll, a sampler of
//! the group's committed offsets, and admin operations (create and delete topics, add
//! partitions). Everything they saw goes into [`Seen`] for the checker.

use crate::cluster::client_properties;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_client::admin::{Admin, NewTopic};
use strom_client::consumer::Consumer;
use strom_client::producer::{Producer, ProducerRecord, RecordMetadata};
use strom_client::TopicPartition;
use strom_metadata::sim_rng::SimRng;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

pub const GROUP: &str = "chaos-readers";

/// An acknowledged write.
#[derive(Debug, Clone)]
pub struct Ack {
    pub producer: usize,
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
}

/// What the clients saw, for the checker.
#[derive(Default)]
pub struct Seen {
    pub acked: Vec<Ack>,
    /// Sends that failed: the value may or may not be in the log.
    pub failed: Vec<(usize, u64, String)>,
    /// The value each consumer read at each (partition, offset), the first time it was read.
    pub reads: HashMap<(i32, i64), String>,
    /// Two readers saw different values at one offset.
    pub divergent_reads: Vec<String>,
    pub commits: u64,
    pub commit_errors: u64,
    pub poll_errors: u64,
    /// The highest committed offset sampled per partition, and every time one went back.
    pub committed: BTreeMap<i32, i64>,
    pub committed_went_back: Vec<String>,
    /// Auxiliary topics whose creation was acknowledged and which were not deleted since.
    pub live_aux_topics: BTreeSet<String>,
    pub deleted_aux_topics: BTreeSet<String>,
    pub admin_ok: u64,
    pub admin_failed: u64,
}

pub struct Shared {
    pub seen: Mutex<Seen>,
    start: Instant,
    /// Per partition, when a write to it was last acknowledged (ms since the start).
    last_ack_ms: Vec<AtomicU64>,
    stop: AtomicBool,
    /// Producers stop at `stop`; the rest keep going until `stop_readers` (the read back).
    stop_readers: AtomicBool,
}

impl Shared {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The longest any partition has gone without an acknowledged write, until now.
    pub fn since_last_ack(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        let oldest = self.last_ack_ms.iter().map(|t| t.load(Ordering::Relaxed)).min().unwrap_or(now);
        Duration::from_millis(now.saturating_sub(oldest))
    }

    fn outcome(&self, producer: usize, seq: u64, result: strom_client::Result<RecordMetadata>) {
        match result {
            Ok(m) => {
                let now = self.start.elapsed().as_millis() as u64;
                if let Some(last) = self.last_ack_ms.get(m.partition as usize) {
                    last.store(now, Ordering::Relaxed);
                }
                self.seen().acked.push(Ack { producer, seq, partition: m.partition, offset: m.offset });
            }
            Err(e) => self.seen().failed.push((producer, seq, e.to_string())),
        }
    }

    fn read(&self, partition: i32, offset: i64, value: String) {
        let mut seen = self.seen();
        match seen.reads.get(&(partition, offset)) {
            Some(v) if *v != value => {
                let d = format!("partition {partition} offset {offset}: read {v:?}, later {value:?}");
                seen.divergent_reads.push(d);
            }
            Some(_) => {}
            None => {
                seen.reads.insert((partition, offset), value);
            }
        }
    }
}

pub struct Workload {
    pub shared: Arc<Shared>,
    producers: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

pub struct WorkloadSpec {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    pub seed: u64,
}

impl Workload {
    pub fn start(spec: &WorkloadSpec) -> Workload {
        let shared = Arc::new(Shared {
            seen: Mutex::new(Seen::default()),
            start: Instant::now(),
            last_ack_ms: (0..spec.partitions).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
            stop_readers: AtomicBool::new(false),
        });
        let producers = (0..spec.producers)
            .map(|id| {
                let p = ProducerSpec {
                    bootstrap: spec.bootstrap.clone(),
                    topic: spec.topic.clone(),
                    partitions: spec.partitions,
                };
                tokio::spawn(produce(id, p, Arc::clone(&shared)))
            })
            .collect();
        let mut others: Vec<JoinHandle<()>> = (0..spec.consumers)
            .map(|_| tokio::spawn(consume(spec.bootstrap.clone(), spec.topic.clone(), Arc::clone(&shared))))
            .collect();
        others.push(tokio::spawn(sample_commits(spec.bootstrap.clone(), Arc::clone(&shared))));
        others.push(tokio::spawn(administer(spec.bootstrap.clone(), spec.seed, Arc::clone(&shared))));
        Workload { shared, producers, others }
    }

    /// Stops the producers and waits until every send they made has an outcome.
    pub async fn stop_producers(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for p in self.producers.drain(..) {
            let _ = p.await;
        }
    }

    /// Stops the consumers, the sampler and the admin task.
    pub async fn stop_rest(&mut self) {
        self.shared.stop_readers.store(true, Ordering::Relaxed);
        for t in self.others.drain(..) {
            let _ = t.await;
        }
    }
}

/// Sends a producer may have in flight per partition: a partition whose leader is unreachable
/// holds only these, and the others keep going.
struct ProducerSpec {
    bootstrap: String,
    topic: String,
    partitions: i32,
}

const IN_FLIGHT_PER_PARTITION: usize = 50;

/// Writes `"<id>-<seq>"` round-robin over the partitions, at most about 1,000 records a second.
async fn produce(id: usize, spec: ProducerSpec, shared: Arc<Shared>) {
    let props = client_properties(&spec.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("delivery.timeout.ms", "30000");
    let producer = loop {
        match Producer::new(&props).await {
            Ok(p) => break p,
            Err(_) if !shared.stop.load(Ordering::Relaxed) => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(_) => return,
        }
    };
    let permits: Vec<Arc<Semaphore>> =
        (0..spec.partitions).map(|_| Arc::new(Semaphore::new(IN_FLIGHT_PER_PARTITION))).collect();
    let mut outcomes = JoinSet::new();
    let mut seq = 0u64;
    let mut partition = id as i32;
    let mut idle = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        partition = (partition + 1) % spec.partitions;
        let Ok(permit) = Arc::clone(&permits[partition as usize]).try_acquire_owned() else {
            idle += 1;
            if idle >= spec.partitions {
                idle = 0;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            continue;
        };
        idle = 0;
        let record = ProducerRecord::new(spec.topic.clone()).partition(partition).value(format!("{id}-{seq}"));
        match producer.send(record).await {
            Ok(f) => {
                outcomes.spawn(async move {
                    let result = f.await;
                    drop(permit);
                    (seq, result)
                });
            }
            Err(e) => shared.seen().failed.push((id, seq, e.to_string())),
        }
        seq += 1;
        while let Some(Ok((seq, result))) = outcomes.try_join_next() {
            shared.outcome(id, seq, result);
        }
        if seq.is_multiple_of(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    while let Some(Ok((seq, result))) = outcomes.join_next().await {
        shared.outcome(id, seq, result);
    }
    let _ = producer.close().await;
}

async fn consume(bootstrap: String, topic: String, shared: Arc<Shared>) {
    let props = client_properties(&bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    while !shared.stop_readers.load(Ordering::Relaxed) {
        let Ok(mut consumer) = Consumer::new(&props).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if consumer.subscribe(&[topic.as_str()]).is_err() {
            return;
        }
        let mut errors_in_a_row = 0;
        while !shared.stop_readers.load(Ordering::Relaxed) && errors_in_a_row < 10 {
            match consumer.poll(Duration::from_millis(500)).await {
                Ok(records) => {
                    errors_in_a_row = 0;
                    for r in &records {
                        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
                        shared.read(r.partition, r.offset, value);
                    }
                    if !records.is_empty() {
                        let result = consumer.commit_sync().await;
                        let mut seen = shared.seen();
                        match result {
                            Ok(()) => seen.commits += 1,
                            Err(_) => seen.commit_errors += 1,
                        }
                    }
                }
                Err(_) => {
                    errors_in_a_row += 1;
                    shared.seen().poll_errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        // Ten errors in a row: a new consumer (a new member) takes over.
        let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close()).await;
    }
}

/// An admin client, tried again until it connects or the workload stops.
async fn admin_client(bootstrap: &str, shared: &Shared) -> Option<Admin> {
    while !shared.stop_readers.load(Ordering::Relaxed) {
        match Admin::new(&client_properties(bootstrap)).await {
            Ok(a) => return Some(a),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    None
}

/// Samples the group's committed offsets every half second: they must never go back.
async fn sample_commits(bootstrap: String, shared: Arc<Shared>) {
    let Some(admin) = admin_client(&bootstrap, &shared).await else { return };
    while !shared.stop_readers.load(Ordering::Relaxed) {
        if let Ok(offsets) = admin.list_consumer_group_offsets(GROUP).await {
            let mut went_back = Vec::new();
            {
                let mut seen = shared.seen();
                for (tp, o) in offsets {
                    let before = seen.committed.get(&tp.partition).copied().unwrap_or(-1);
                    if o.offset < before {
                        let at = shared.start.elapsed().as_secs_f64();
                        let what = format!(
                            "{tp}: committed offset went back from {before} to {} ({at:.1} s into the run)",
                            o.offset
                        );
                        went_back.push(what);
                    } else {
                        seen.committed.insert(tp.partition, o.offset);
                    }
                }
            }
            if !went_back.is_empty() {
                // Which broker answered: asked again at once, so a moved coordinator shows.
                let by = match admin.describe_group(GROUP).await {
                    Ok(d) => format!("coordinator {}", d.coordinator),
                    Err(e) => format!("coordinator unknown: {e}"),
                };
                let mut seen = shared.seen();
                seen.committed_went_back.extend(went_back.into_iter().map(|w| format!("{w}; {by}")));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every two seconds one of: create an auxiliary topic, delete the oldest, add a partition.
async fn administer(bootstrap: String, seed: u64, shared: Arc<Shared>) {
    let Some(admin) = admin_client(&bootstrap, &shared).await else { return };
    let mut rng = SimRng(seed ^ 0xad_0001);
    let mut next = 0;
    while !shared.stop_readers.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let live: Vec<String> = shared.seen().live_aux_topics.iter().cloned().collect();
        let ok = match rng.below(3) {
            choice if live.is_empty() || (choice < 2 && live.len() < 3) => {
                let name = format!("chaos-aux-{next}");
                next += 1;
                let created = admin.create_topics(&[NewTopic::new(name.clone(), 2, 3)], false).await;
                let ok = matches!(created.as_deref(), Ok([(_, Ok(()))]));
                if ok {
                    shared.seen().live_aux_topics.insert(name);
                }
                ok
            }
            0 => {
                let name = &live[0];
                let deleted = admin.delete_topics(&[name.as_str()]).await;
                // Whatever the answer, the topic's fate is unknown unless it was acknowledged.
                let mut seen = shared.seen();
                seen.live_aux_topics.remove(name);
                let ok = matches!(deleted.as_deref(), Ok([(_, Ok(()))]));
                if ok {
                    seen.deleted_aux_topics.insert(name.clone());
                }
                ok
            }
            _ => {
                let name = &live[rng.below(live.len() as u64) as usize];
                // At most 8 partitions each: a long run must not grow without bound.
                let count = admin.describe_topics(&[name.as_str()]).await.ok().map(|t| t[0].partition_count());
                match count {
                    Some(c) if c < 8 => admin.create_partitions(name, c + 1).await.is_ok(),
                    Some(_) => true,
                    None => false,
                }
            }
        };
        let mut seen = shared.seen();
        if ok {
            seen.admin_ok += 1;
        } else {
            seen.admin_failed += 1;
        }
    }
}

/// Reads every partition of `topic` from the beginning to its end (the high watermark now).
pub async fn read_back(bootstrap: &str, topic: &str, partitions: i32) -> Result<Vec<(i32, i64, String)>, String> {
    let admin = Admin::new(&client_properties(bootstrap)).await.map_err(|e| e.to_string())?;
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let query: BTreeMap<TopicPartition, i64> = tps.iter().map(|tp| (tp.clone(), -1)).collect();
    let ends = admin.list_offsets(&query).await.map_err(|e| format!("end offsets: {e}"))?;
    let mut consumer = Consumer::new(&client_properties(bootstrap).set("auto.offset.reset", "earliest"))
        .await
        .map_err(|e| e.to_string())?;
    consumer.assign(&tps).map_err(|e| e.to_string())?;
    consumer.seek_to_beginning(&tps).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |c: &Consumer| tps.iter().all(|tp| c.position(tp).unwrap_or(0) >= ends.get(tp).map_or(0, |e| e.0));
    while !done(&consumer) {
        if Instant::now() > deadline {
            return Err(format!("the read back did not reach the end offsets {ends:?} in 120 s"));
        }
        if let Ok(records) = consumer.poll(Duration::from_millis(500)).await {
            for r in records {
                let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
                out.push((r.partition, r.offset, value));
            }
        }
    }
    Ok(out)
}
