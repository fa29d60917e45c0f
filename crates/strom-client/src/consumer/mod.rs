//! The consumer: subscribe (with a group) or assign (standalone), poll, commit, seek.
//!
//! ```no_run
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::consumer::Consumer;
//! use strom_client::Properties;
//! let mut consumer = Consumer::new(&Properties::new()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("group.id", "billing")
//!     .set("enable.auto.commit", "false"))
//!     .await?;
//! consumer.subscribe(&["orders"])?;
//! loop {
//!     let records = consumer.poll(std::time::Duration::from_millis(500)).await?;
//!     for r in &records {
//!         println!("{}-{}@{}: {:?}", r.topic, r.partition, r.offset, r.value);
//!     }
//!     consumer.commit_sync().await?; // manual commit after processing the batch
//! #   break;
//! }
//! consumer.close().await?;
//! # Ok(()) }
//! ```

pub mod assignor;
pub mod config;
mod decode;
pub mod fetcher;
mod group;
pub mod listener;
pub mod offsets;
mod rebalance;

pub use config::{ConsumerConfig, OffsetReset};
pub use fetcher::{ConsumerRecord, TimestampType};
pub use listener::{RebalanceContext, RebalanceListener};
pub use offsets::OffsetAndMetadata;

use crate::config::Properties;
use crate::conn::Cluster;
use crate::error::{ClientError, Result};
use crate::TopicPartition;
use fetcher::FetchOutcome;
use offsets::CommitAs;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Breaks a blocking poll() from another task or thread (Kafka's wakeup()).
#[derive(Clone, Default)]
pub struct WakeupHandle {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl WakeupHandle {
    pub fn wakeup(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

#[derive(Debug, Clone)]
enum Subscription {
    None,
    Topics(Vec<String>),
    /// A regex matched against whole topic names (Java's Pattern.matches), re-evaluated at each
    /// rejoin and every metadata.max.age.ms; internal topics never match.
    Pattern {
        regex: regex::Regex,
        matched: Vec<String>,
        checked: Instant,
    },
    Assigned,
}

impl Subscription {
    fn is_group(&self) -> bool {
        matches!(self, Subscription::Topics(_) | Subscription::Pattern { .. })
    }
}

pub struct Consumer {
    cfg: ConsumerConfig,
    cluster: Arc<Cluster>,
    subscription: Subscription,
    /// Assigned partitions and their positions (absent until known).
    assignment: BTreeSet<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    paused: BTreeSet<TopicPartition>,
    state: group::SharedState,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    listener: Option<Box<dyn RebalanceListener>>,
    buffer: VecDeque<ConsumerRecord>,
    /// Where fetching goes on once the buffered records are consumed (past control records).
    fetched_up_to: BTreeMap<TopicPartition, i64>,
    last_auto_commit: Instant,
    wakeup: WakeupHandle,
    cooperative: bool,
    /// An incremental fetch session (KIP-227) per leader.
    fetch_sessions: HashMap<i32, strom_protocol::fetch_session::FetchSessionClient>,
}

impl Consumer {
    pub async fn new(props: &Properties) -> Result<Consumer> {
        let cfg = ConsumerConfig::from_properties(props)?;
        let cluster = Cluster::connect(cfg.cluster.clone()).await?;
        Ok(Consumer {
            cfg,
            cluster,
            subscription: Subscription::None,
            assignment: BTreeSet::new(),
            positions: BTreeMap::new(),
            paused: BTreeSet::new(),
            state: group::new_state(),
            heartbeat: None,
            listener: None,
            buffer: VecDeque::new(),
            fetched_up_to: BTreeMap::new(),
            last_auto_commit: Instant::now(),
            wakeup: WakeupHandle::default(),
            cooperative: false,
            fetch_sessions: HashMap::new(),
        })
    }

    fn group_id(&self) -> Result<&str> {
        self.cfg.group_id.as_deref().ok_or_else(|| ClientError::Config {
            key: "group.id".into(),
            message: "required to subscribe and to commit offsets".into(),
        })
    }

    /// Joins the consumer group for these topics (the assignment comes with the next poll).
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.group_id()?;
        if topics.is_empty() {
            return Err(ClientError::InvalidInput("subscribe needs at least one topic".into()));
        }
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        self.cluster.add_topics(topics.iter().map(String::as_str));
        self.subscription = Subscription::Topics(topics);
        group::lock(&self.state).rejoin_needed = true;
        Ok(())
    }

    /// Joins the consumer group for every topic whose whole name matches `pattern`; topics
    /// created later join the subscription within metadata.max.age.ms.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<()> {
        self.group_id()?;
        let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| ClientError::InvalidInput(format!("invalid topic pattern '{pattern}': {e}")))?;
        self.subscription = Subscription::Pattern { regex, matched: Vec::new(), checked: Instant::now() };
        group::lock(&self.state).rejoin_needed = true;
        Ok(())
    }

    /// Consumes exactly these partitions, without a group (a standalone consumer).
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if self.subscription.is_group() {
            return Err(ClientError::InvalidInput("cannot assign partitions while subscribed".into()));
        }
        self.cluster.add_topics(partitions.iter().map(|tp| tp.topic.as_str()));
        self.assignment = partitions.iter().cloned().collect();
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.buffer.retain(|r| partitions.iter().any(|tp| tp.topic == r.topic && tp.partition == r.partition));
        self.fetched_up_to.retain(|tp, _| partitions.contains(tp));
        self.subscription = Subscription::Assigned;
        Ok(())
    }

    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.iter().cloned().collect()
    }

    pub fn wakeup_handle(&self) -> WakeupHandle {
        self.wakeup.clone()
    }

    /// Records fetched since the last poll, at most max.poll.records; waits up to `timeout` for some.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        group::lock(&self.state).last_poll = Instant::now();
        loop {
            if self.wakeup.flag.swap(false, Ordering::SeqCst) {
                return Err(ClientError::Wakeup);
            }
            self.maybe_rebalance().await?;
            self.maybe_auto_commit().await?;
            self.ensure_positions().await?;
            if !self.buffer.is_empty() {
                return Ok(self.take_buffered());
            }
            let fetchable: BTreeMap<TopicPartition, i64> = self
                .positions
                .iter()
                .filter(|(tp, _)| self.assignment.contains(*tp) && !self.paused.contains(*tp))
                .map(|(tp, p)| (tp.clone(), *p))
                .collect();
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            if fetchable.is_empty() {
                let wait = (deadline - now).min(Duration::from_millis(100));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wakeup.notify.notified() => {}
                }
                continue;
            }
            let outcomes = tokio::select! {
                r = fetcher::fetch(&self.cluster, &self.cfg, &fetchable, &mut self.fetch_sessions) => r?,
                _ = self.wakeup.notify.notified() => continue,
            };
            self.absorb(outcomes).await?;
        }
    }

    /// Hands out up to max.poll.records; the position of a partition is the offset after the
    /// last record handed out (Kafka's position), not after the last one fetched.
    fn take_buffered(&mut self) -> Vec<ConsumerRecord> {
        let n = self.buffer.len().min(self.cfg.max_poll_records);
        let out: Vec<ConsumerRecord> = self.buffer.drain(..n).collect();
        for r in &out {
            let tp = TopicPartition::new(r.topic.clone(), r.partition);
            if let Some(p) = self.positions.get_mut(&tp) {
                *p = (*p).max(r.offset + 1);
            }
        }
        if self.buffer.is_empty() {
            for (tp, next) in std::mem::take(&mut self.fetched_up_to) {
                if let Some(p) = self.positions.get_mut(&tp) {
                    *p = (*p).max(next);
                }
            }
        }
        out
    }

    /// Forgets fetched, not yet returned records of these partitions (seek, pause, revoke).
    pub(crate) fn discard_buffered(&mut self, partitions: &[TopicPartition]) {
        self.buffer.retain(|r| !partitions.iter().any(|tp| tp.topic == r.topic && tp.partition == r.partition));
        for tp in partitions {
            self.fetched_up_to.remove(tp);
        }
    }

    async fn absorb(&mut self, outcomes: Vec<(TopicPartition, FetchOutcome)>) -> Result<()> {
        let mut refresh = false;
        let mut reset = Vec::new();
        for (tp, outcome) in outcomes {
            // Drop answers for partitions revoked or repositioned while the fetch was out.
            let Some(&position) = self.positions.get(&tp) else { continue };
            match outcome {
                FetchOutcome::Records { records, next_position, .. } => {
                    if records.first().is_some_and(|r| r.offset < position) {
                        continue;
                    }
                    if records.is_empty() {
                        self.positions.insert(tp, next_position.max(position));
                    } else {
                        self.fetched_up_to.insert(tp, next_position.max(position));
                    }
                    self.buffer.extend(records);
                }
                FetchOutcome::OutOfRange => {
                    tracing::info!(%tp, position, "fetch position is out of range; resetting the offset (auto.offset.reset)");
                    reset.push(tp)
                }
                FetchOutcome::Retry(e) => {
                    tracing::debug!(%tp, "fetch will be retried: {e}");
                    refresh |= e.needs_metadata_refresh();
                }
            }
        }
        if !reset.is_empty() {
            for tp in &reset {
                self.positions.remove(tp);
            }
            self.reset_positions(&reset).await?;
        }
        if refresh {
            self.cluster.refresh().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Positions of partitions that have none: the committed offset (group), else auto.offset.reset.
    async fn ensure_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> =
            self.assignment.iter().filter(|tp| !self.positions.contains_key(*tp)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut still = missing.clone();
        if self.cfg.group_id.is_some() {
            let committed = self.committed(&missing).await?;
            for (tp, o) in committed {
                self.positions.insert(tp.clone(), o.offset);
                still.retain(|t| t != &tp);
            }
        }
        self.reset_positions(&still).await
    }

    async fn reset_positions(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let timestamp = match self.cfg.auto_offset_reset {
            OffsetReset::Earliest => offsets::EARLIEST,
            OffsetReset::Latest => offsets::LATEST,
            OffsetReset::None => {
                return Err(ClientError::InvalidInput(format!(
                    "no committed offset for {} and auto.offset.reset=none",
                    partitions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        self.seek_to_time(partitions, timestamp).await
    }

    async fn seek_to_time(&mut self, partitions: &[TopicPartition], timestamp: i64) -> Result<()> {
        let query: BTreeMap<TopicPartition, i64> = partitions.iter().map(|tp| (tp.clone(), timestamp)).collect();
        if self.cluster.snapshot().topics.keys().filter(|t| partitions.iter().any(|p| &p.topic == *t)).count() == 0 {
            self.cluster.refresh().await?;
        }
        let found = offsets::list_offsets(&self.cluster, &query, self.cfg.isolation_level).await?;
        for (tp, (offset, _)) in found {
            // As Java's consumer logs it: a reset is where reprocessing (or skipping) starts.
            tracing::info!(%tp, offset, "resetting offset for partition");
            self.positions.insert(tp, offset);
        }
        Ok(())
    }

    async fn maybe_auto_commit(&mut self) -> Result<()> {
        if self.cfg.enable_auto_commit && self.last_auto_commit.elapsed() >= self.cfg.auto_commit_interval {
            self.last_auto_commit = Instant::now();
            if let Err(e) = self.commit_sync().await {
                tracing::warn!("auto-commit failed: {e}");
            }
        }
        Ok(())
    }

    /// Commits the positions of every assigned partition (what poll() has returned).
    pub async fn commit_sync(&mut self) -> Result<()> {
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = self
            .positions
            .iter()
            .filter(|(tp, _)| self.assignment.contains(*tp))
            .map(|(tp, p)| (tp.clone(), OffsetAndMetadata::new(*p)))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Commits explicit offsets (the next offset to read), with their metadata strings.
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>) -> Result<()> {
        let group = self.group_id()?.to_string();
        let coordinator = self.coordinator().await?;
        let who = self.commit_identity();
        offsets::commit(&self.cluster, coordinator, &group, &who, offsets).await
    }

    /// Commits in the background; `callback` gets the outcome.
    pub fn commit_async(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        callback: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        let offsets = offsets.unwrap_or_else(|| {
            self.positions
                .iter()
                .filter(|(tp, _)| self.assignment.contains(*tp))
                .map(|(tp, p)| (tp.clone(), OffsetAndMetadata::new(*p)))
                .collect()
        });
        let (cluster, state, who) = (Arc::clone(&self.cluster), Arc::clone(&self.state), self.commit_identity());
        let group = self.cfg.group_id.clone();
        tokio::spawn(async move {
            let result = async {
                let group = group
                    .ok_or(ClientError::Config { key: "group.id".into(), message: "required to commit".into() })?;
                let known = group::lock(&state).coordinator;
                let coordinator = match known {
                    Some(c) => c,
                    None => offsets::find_coordinator(&cluster, &group).await?,
                };
                offsets::commit(&cluster, coordinator, &group, &who, &offsets).await
            }
            .await;
            callback(result);
        });
    }

    fn commit_identity(&self) -> CommitAs {
        let st = group::lock(&self.state);
        if self.subscription.is_group() && st.stable {
            CommitAs {
                generation_id: st.generation,
                member_id: st.member_id.clone(),
                group_instance_id: self.cfg.group_instance_id.clone(),
            }
        } else {
            CommitAs { generation_id: -1, member_id: String::new(), group_instance_id: None }
        }
    }

    async fn coordinator(&mut self) -> Result<i32> {
        if let Some(c) = group::lock(&self.state).coordinator {
            return Ok(c);
        }
        let group = self.group_id()?.to_string();
        let c = offsets::find_coordinator(&self.cluster, &group).await?;
        group::lock(&self.state).coordinator = Some(c);
        Ok(c)
    }

    /// The group's committed offsets for `partitions`.
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let group = self.group_id()?.to_string();
        let known = group::lock(&self.state).coordinator;
        let (coordinator, offsets) =
            offsets::fetch_committed_retrying(&self.cluster, known, &group, partitions).await?;
        if known != Some(coordinator) {
            group::lock(&self.state).coordinator = Some(coordinator);
        }
        Ok(offsets)
    }

    /// The offset of the next record poll() returns for `tp`.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if !self.assignment.contains(tp) {
            return Err(ClientError::InvalidInput(format!("{tp} is not assigned to this consumer")));
        }
        self.positions.insert(tp.clone(), offset);
        self.discard_buffered(std::slice::from_ref(tp));
        Ok(())
    }

    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.discard_buffered(partitions);
        self.seek_to_time(partitions, offsets::EARLIEST).await
    }

    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.discard_buffered(partitions);
        self.seek_to_time(partitions, offsets::LATEST).await
    }

    /// For each partition, the first offset whose timestamp is at or after the given one
    /// (None when no record is that late).
    pub async fn offsets_for_times(
        &self,
        query: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Option<(i64, i64)>>> {
        let found = offsets::list_offsets(&self.cluster, query, self.cfg.isolation_level).await?;
        Ok(query.keys().map(|tp| (tp.clone(), found.get(tp).copied().filter(|(o, _)| *o >= 0))).collect())
    }

    /// Stops fetching from these partitions (the membership stays).
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        self.paused.extend(partitions.iter().cloned());
        self.discard_buffered(partitions);
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.paused.remove(tp);
        }
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    /// Commits (with enable.auto.commit), tells the listener, and leaves the group.
    pub async fn close(mut self) -> Result<()> {
        let in_group = self.subscription.is_group() && group::lock(&self.state).stable;
        if in_group {
            if self.cfg.enable_auto_commit {
                if let Err(e) = self.commit_sync().await {
                    tracing::warn!("commit on close failed: {e}");
                }
            }
            let revoked = self.assignment();
            self.call_listener(rebalance::Callback::Revoked, &revoked).await?;
            let group = self.group_id()?.to_string();
            let _ = group::leave(&self.cluster, &self.cfg, &group, &self.state).await;
        }
        group::lock(&self.state).closed = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        group::lock(&self.state).closed = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}
