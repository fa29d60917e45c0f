//! The log cleaner threads (`log.cleaner.threads`), Kafka's LogCleanerManager around the
//! storage engine's cleaner: each thread picks the filthiest compacted partition this broker
//! hosts (leader or follower: every replica compacts its own log, below its own high watermark),
//! cleans it and records where the next clean starts in `cleaner-offset-checkpoint`.
//!
//! ```text
//!  every log.cleaner.backoff.ms (at once again after a clean):
//!    candidates = hosted partitions with cleanup.policy ∋ compact, not being cleaned
//!    dirty ratio = dirty bytes / cleanable bytes   (cleanable: below the HW and the active segment)
//!    pick the highest ratio ≥ min.cleanable.dirty.ratio, or one whose oldest dirty record waited
//!    max.compaction.lag.ms, or one whose kept tombstones passed their delete horizon (cleaned
//!    again from its start); plan (lock) → build (no lock, paced by io.max.bytes.per.second)
//!    → install (lock) → checkpoint
//! ```

use super::log_config::cleanup_policy_has;
use super::Partition;
use crate::server::{now_ms, Broker};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_storage::{read_checkpoint, write_checkpoint, CleanOutcome, CleanSettings, StorageError, TopicPartition};
use tokio::sync::watch;

/// The cleaner's checkpoint file in the data directory, Kafka's name and format.
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// State shared by the cleaner threads.
pub struct LogCleaner {
    path: PathBuf,
    /// Where each partition's next clean starts (its first dirty offset).
    first_dirty: Mutex<HashMap<TopicPartition, i64>>,
    /// The log each first dirty offset belongs to: (partition object, truncation count) when
    /// it was recorded. A truncated, deleted or re-created log starts over from its beginning:
    /// keys below a stale first dirty offset would never reach the map, and a deleted key
    /// could come back. Entries read from the checkpoint at start are taken as they are.
    generations: Mutex<HashMap<TopicPartition, (usize, u64)>>,
    /// Partitions whose clean failed, and when to try again.
    failed_until: Mutex<HashMap<TopicPartition, Instant>>,
    in_progress: Mutex<HashSet<TopicPartition>>,
    /// When the tombstones a clean kept pass their delete horizon: the log is cleaned again
    /// then, from its start, even with nothing new dirty (else they would stay for good).
    tombstones_due: Mutex<HashMap<TopicPartition, i64>>,
    /// Bytes read and written by all threads, for `log.cleaner.io.max.bytes.per.second`.
    throttle: Mutex<Throttle>,
}

struct Throttle {
    rate: f64,
    started: Instant,
    bytes: f64,
}

impl Throttle {
    /// How long to wait so that the bytes so far stay within the rate.
    fn take(&mut self, bytes: u64) -> Duration {
        if self.rate == f64::MAX {
            return Duration::ZERO;
        }
        if self.started.elapsed() > Duration::from_secs(1) {
            // A fresh window each second: an idle cleaner does not save up a burst.
            self.started = Instant::now();
            self.bytes = 0.0;
        }
        self.bytes += bytes as f64;
        // A huge byte count or a tiny rate must not panic: wait a second at most per step.
        let due = Duration::try_from_secs_f64(self.bytes / self.rate).unwrap_or(Duration::from_secs(1));
        due.saturating_sub(self.started.elapsed())
    }
}

impl LogCleaner {
    /// Reads the checkpoint in `data_dir` (a partition not in it starts at its log start).
    pub fn open(data_dir: &std::path::Path, io_max_bytes_per_second: f64) -> Result<LogCleaner, StorageError> {
        let path = data_dir.join(CLEANER_CHECKPOINT);
        let first_dirty = read_checkpoint(&path)?;
        Ok(LogCleaner {
            path,
            first_dirty: Mutex::new(first_dirty),
            in_progress: Mutex::default(),
            generations: Mutex::default(),
            failed_until: Mutex::default(),
            tombstones_due: Mutex::default(),
            throttle: Mutex::new(Throttle { rate: io_max_bytes_per_second, started: Instant::now(), bytes: 0.0 }),
        })
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps `log.cleaner.threads` cleaner threads running until `stop`: the count is a dynamic
/// config, so threads are started when it grows and end themselves when it shrinks.
pub async fn supervise(broker: Arc<Broker>, cleaner: Arc<LogCleaner>, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<usize, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        running.retain(|_, h| !h.is_finished());
        for thread in 0..broker.dynamic.current().cleaner.threads {
            running.entry(thread).or_insert_with(|| {
                let (b, c, s) = (Arc::clone(&broker), Arc::clone(&cleaner), stop.clone());
                tokio::task::spawn_blocking(move || run(b, c, thread, s))
            });
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    for (_, handle) in running {
        let _ = handle.await;
    }
}

/// One cleaner thread; runs until `stop`, or until `log.cleaner.threads` no longer counts it.
/// Call on a blocking thread.
fn run(broker: Arc<Broker>, cleaner: Arc<LogCleaner>, thread: usize, stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Read at every pass: the cleaner settings are dynamic broker configs.
        let config = broker.dynamic.current().cleaner.clone();
        if thread >= config.threads {
            tracing::info!(thread, "cleaner thread stopped: log.cleaner.threads is now {}", config.threads);
            return;
        }
        LogCleaner::lock(&cleaner.throttle).rate = config.io_max_bytes_per_second;
        let backoff = Duration::from_millis(config.backoff_ms.max(10));
        let cleaned = match pick(&broker, &cleaner, &config) {
            Some((partition, first_dirty, settings)) => {
                let tp = TopicPartition { topic: partition.topic.clone(), partition: partition.index };
                // Released however the clean ends, a panic included (the thread is restarted
                // by the supervisor and the partition must not stay marked as being cleaned).
                let _in_progress = InProgress { cleaner: &cleaner, tp: tp.clone() };
                // A read or write failing in the partition's directory takes it offline.
                let result = partition.check(clean_one(&partition, &cleaner, first_dirty, &settings));
                match result {
                    Ok(done) => done,
                    Err(e) => {
                        // Kafka marks such a log uncleanable; it is tried again after a while
                        // here, and the other logs go first meanwhile.
                        tracing::warn!(thread, topic = %tp.topic, partition = tp.partition, "cleaning failed: {e}");
                        let until = Instant::now() + backoff * 20;
                        LogCleaner::lock(&cleaner.failed_until).insert(tp, until);
                        false
                    }
                }
            }
            None => false,
        };
        if !cleaned {
            // Wait out the backoff, in short steps so that a shutdown is not held up.
            let until = Instant::now() + backoff;
            while Instant::now() < until && !*stop.borrow() {
                std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
            }
        }
    }
}

/// A partition marked as being cleaned, unmarked on drop.
struct InProgress<'a> {
    cleaner: &'a LogCleaner,
    tp: TopicPartition,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        LogCleaner::lock(&self.cleaner.in_progress).remove(&self.tp);
    }
}

/// The filthiest compacted partition due for cleaning, marked in progress.
fn pick(
    broker: &Broker,
    cleaner: &LogCleaner,
    config: &crate::config::cleaner::CleanerConfig,
) -> Option<(Arc<Partition>, i64, CleanSettings)> {
    let image = broker.metadata.image();
    let defaults = broker.dynamic.current();
    let now = now_ms();
    let empty = BTreeMap::new();
    let mut best: Option<(f64, Arc<Partition>, i64, CleanSettings)> = None;
    let mut in_progress = LogCleaner::lock(&cleaner.in_progress);
    for p in broker.replicas.all() {
        let configs = image.topic(&p.topic).map_or(&empty, |t| &t.configs);
        if !cleanup_policy_has(&defaults, configs, "compact") {
            continue;
        }
        let tp = TopicPartition { topic: p.topic.clone(), partition: p.index };
        if in_progress.contains(&tp) {
            continue;
        }
        if LogCleaner::lock(&cleaner.failed_until).get(&tp).is_some_and(|&t| Instant::now() < t) {
            continue;
        }
        let (Ok((_, log_end)), Ok(truncations)) = (p.log_bounds(), p.log_truncations()) else { continue };
        let generation = (Arc::as_ptr(&p) as usize, truncations);
        let same_log = LogCleaner::lock(&cleaner.generations).get(&tp).is_none_or(|g| *g == generation);
        // A first dirty offset of another log (or past this one's end) is void: start over.
        let first_dirty =
            LogCleaner::lock(&cleaner.first_dirty).get(&tp).copied().filter(|&o| same_log && o <= log_end).unwrap_or(0);
        let Ok((ratio, oldest_dirty)) = p.dirtiness(first_dirty) else { continue };
        let setting = |key: &str| super::log_config::topic_setting(&defaults, configs, key);
        let min_ratio: f64 = setting("min.cleanable.dirty.ratio").and_then(|v| v.parse().ok()).unwrap_or(0.5);
        let max_lag: i64 = setting("max.compaction.lag.ms").and_then(|v| v.parse().ok()).unwrap_or(i64::MAX);
        let overdue = oldest_dirty.is_some_and(|ts| now.saturating_sub(ts) > max_lag);
        let tombstones_due = LogCleaner::lock(&cleaner.tombstones_due).get(&tp).is_some_and(|&at| at <= now);
        if !tombstones_due && (ratio <= 0.0 || (ratio < min_ratio && !overdue)) {
            continue;
        }
        // An overdue log goes first, as Kafka's `needCompactionNow`; expired tombstones are
        // removed by cleaning the whole log again.
        let (score, first_dirty) = match (overdue, tombstones_due) {
            (true, _) => (2.0 + ratio, first_dirty),
            (false, true) if ratio < min_ratio => (1.5, 0),
            _ => (ratio, first_dirty),
        };
        if best.as_ref().is_none_or(|(s, ..)| score > *s) {
            let settings = CleanSettings {
                dedupe_buffer_bytes: config.dedupe_buffer_size / config.threads.max(1),
                delete_retention_ms: setting("delete.retention.ms").and_then(|v| v.parse().ok()).unwrap_or(86_400_000),
                min_compaction_lag_ms: setting("min.compaction.lag.ms").and_then(|v| v.parse().ok()).unwrap_or(0),
                max_batch_inflated_bytes: 64 << 20,
            };
            best = Some((score, p, first_dirty, settings));
        }
    }
    let (_, partition, first_dirty, settings) = best?;
    // The log the clean's checkpoint will belong to.
    if let Ok(truncations) = partition.log_truncations() {
        let tp = TopicPartition { topic: partition.topic.clone(), partition: partition.index };
        LogCleaner::lock(&cleaner.generations).insert(tp, (Arc::as_ptr(&partition) as usize, truncations));
    }
    in_progress.insert(TopicPartition { topic: partition.topic.clone(), partition: partition.index });
    Some((partition, first_dirty, settings))
}

/// Cleans one partition; whether anything was installed.
fn clean_one(
    partition: &Partition,
    cleaner: &LogCleaner,
    first_dirty: i64,
    settings: &CleanSettings,
) -> Result<bool, StorageError> {
    let started = Instant::now();
    let now = now_ms();
    let Some(plan) = partition.plan_clean(first_dirty, now, settings)? else { return Ok(false) };
    let mut pace = |bytes: u64| {
        let wait = LogCleaner::lock(&cleaner.throttle).take(bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    };
    let built = plan.build(settings, now, &mut pace)?;
    let tp = TopicPartition { topic: partition.topic.clone(), partition: partition.index };
    match partition.install_clean(built)? {
        CleanOutcome::Installed { next_dirty, stats } => {
            tracing::info!(
                topic = %tp.topic,
                partition = tp.partition,
                next_dirty,
                read_bytes = stats.bytes_read,
                written_bytes = stats.bytes_written,
                kept = stats.records_kept,
                removed = stats.records_removed,
                tombstones_removed = stats.tombstones_removed,
                tombstones_kept = stats.tombstones_kept,
                ms = started.elapsed().as_millis() as u64,
                "cleaned log"
            );
            let mut due = LogCleaner::lock(&cleaner.tombstones_due);
            if stats.tombstones_kept > 0 {
                due.insert(tp.clone(), now.saturating_add(settings.delete_retention_ms).saturating_add(1));
            } else {
                due.remove(&tp);
            }
            drop(due);
            let mut first_dirty = LogCleaner::lock(&cleaner.first_dirty);
            first_dirty.insert(tp, next_dirty);
            write_checkpoint(&cleaner.path, &first_dirty)?;
            Ok(true)
        }
        CleanOutcome::Outdated => {
            tracing::debug!(topic = %tp.topic, partition = tp.partition, "log changed while cleaning; will try again");
            Ok(false)
        }
    }
}
