//! The async adapter around the transaction coordinator core: it allocates producer ids, makes
//! the core's writes durable in `__transaction_state`, sends its markers, drives its timers, and
//! loads and unloads the partitions this broker leads.

use super::coordinator::{Answer, Effect, Step, TxnCoordinator, Write};
use super::{markers, store};
use crate::replica::RoleChange;
use crate::server::{now_ms, Broker};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use strom_metadata::ControllerOp;
use strom_protocol::ResponseError;

pub struct TxnManager {
    core: Mutex<TxnCoordinator>,
    /// Partitions this broker leads whose state is still being read (or whose records are not
    /// all below the high watermark yet): their ids get COORDINATOR_LOAD_IN_PROGRESS.
    loading: Mutex<HashSet<i32>>,
}

impl TxnManager {
    pub fn new(config: &crate::config::BrokerConfig) -> TxnManager {
        TxnManager {
            core: Mutex::new(TxnCoordinator::new(config.transactions.coordinator_settings())),
            loading: Mutex::new(HashSet::new()),
        }
    }

    fn core(&self) -> MutexGuard<'_, TxnCoordinator> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the id's partition is not ready here: still loading, or led under a newer
    /// epoch than the one loaded (this broker lost and regained it without noticing a role
    /// change), which starts a load.
    fn loading(&self, broker: &Arc<Broker>, transactional_id: &str) -> bool {
        let partition = self.core().partition_for(transactional_id);
        if self.loading.lock().unwrap_or_else(|p| p.into_inner()).contains(&partition) {
            return true;
        }
        self.reload_if_stale(broker, partition)
    }

    /// Starts a load of `partition` if this broker leads it under another epoch than the one
    /// the core has; says whether it did.
    fn reload_if_stale(&self, broker: &Arc<Broker>, partition: i32) -> bool {
        let Some(p) = broker.replicas.get(store::TXN_TOPIC, partition) else { return false };
        let loaded = self.core().coordinator_epoch(partition);
        if p.is_leader() && loaded.is_some_and(|e| e != p.leader_epoch()) {
            tracing::info!(partition, "reloading {} under leader epoch {}", store::TXN_TOPIC, p.leader_epoch());
            self.leadership_moved(broker, &[(partition, RoleChange::BecameLeader)]);
            return true;
        }
        false
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Answer {
        if self.loading(broker, transactional_id) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        // A producer id for a new id or a used-up epoch (taken whether needed or not: ids are
        // reserved in blocks, so this is cheap).
        let fresh = broker
            .metadata
            .write(ControllerOp::AllocateProducerId)
            .await
            .and_then(|a| a.into_producer_id().map_err(crate::errors::KafkaError::from))
            .map_err(|e| e.code)?;
        let step = self.core().init_producer_id(transactional_id, timeout_ms, expected, fresh, now_ms());
        self.drive(broker, step).await
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub async fn add_partitions(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Answer {
        if self.loading(broker, transactional_id) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let step = self.core().add_partitions(transactional_id, producer_id, producer_epoch, partitions, now_ms());
        self.drive(broker, step).await
    }

    /// EndTxn.
    pub async fn end_txn(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Answer {
        if self.loading(broker, transactional_id) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let step = self.core().end_txn(transactional_id, producer_id, producer_epoch, commit, now_ms());
        self.drive(broker, step).await
    }

    async fn drive(&self, broker: &Arc<Broker>, step: Step) -> Answer {
        match step {
            Step::Answer(a) => a,
            Step::Write(w) => {
                let result = store::write(broker, &w).await;
                let (answer, effects) = self.core().written(w, result);
                run_effects(broker, effects);
                answer.unwrap_or(Ok(None))
            }
        }
    }

    /// This broker started or stopped leading `__transaction_state` partitions: the gained
    /// ones are read (and serve once what was read is below the high watermark), the lost
    /// ones forgotten.
    pub fn leadership_moved(&self, broker: &Arc<Broker>, changes: &[(i32, RoleChange)]) {
        for &(partition, change) in changes {
            self.core().unload(partition);
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            loading.remove(&partition);
            if change != RoleChange::BecameLeader {
                continue;
            }
            loading.insert(partition);
            drop(loading);
            let b = Arc::clone(broker);
            tokio::runtime::Handle::current().spawn(async move { load(&b, partition).await });
        }
    }

    /// Runs `tick` every `transaction.abort.timed.out.transaction.cleanup.interval.ms` until `stop`.
    pub async fn run_timers(&self, broker: &Arc<Broker>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_millis(broker.config.transactions.abort_timed_out_interval_ms.max(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            let loaded = self.core().loaded();
            for (partition, _) in loaded {
                self.reload_if_stale(broker, partition);
            }
            let effects = self.core().tick(now_ms());
            run_effects(broker, effects);
        }
    }
}

/// Reads a gained partition and hands it to the core once its records are replicated.
async fn load(broker: &Arc<Broker>, partition: i32) {
    let forget = || {
        broker.txns.loading.lock().unwrap_or_else(|e| e.into_inner()).remove(&partition);
    };
    let Some(p) = broker.replicas.get(store::TXN_TOPIC, partition) else { return forget() };
    let epoch = p.leader_epoch();
    let (records, end) = loop {
        if !p.is_leader() || p.leader_epoch() != epoch {
            return forget();
        }
        let part = Arc::clone(&p);
        match tokio::task::spawn_blocking(move || store::read_all(&part)).await {
            Ok(Ok(read)) => break read,
            Ok(Err(e)) => tracing::error!(partition, "loading {} failed, retrying: {e}", store::TXN_TOPIC),
            Err(e) => tracing::error!(partition, "loading {} failed, retrying: {e}", store::TXN_TOPIC),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // As a new group coordinator: nothing a predecessor may not have had is acted on.
    loop {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        match p.wait_for_high_watermark(end, epoch, deadline).await {
            Ok(_) => break,
            Err(ResponseError::RequestTimedOut) => continue,
            // The leadership moved: the next leader loads.
            Err(_) => return forget(),
        }
    }
    let manager = &broker.txns;
    let mut loading = manager.loading.lock().unwrap_or_else(|e| e.into_inner());
    if !loading.contains(&partition) || p.leader_epoch() != epoch {
        return;
    }
    let count = records.len();
    let partitions = broker.metadata.image().topic(store::TXN_TOPIC).map_or(0, |t| t.partitions.len() as i32);
    let mut core = manager.core();
    core.set_partition_count(partitions);
    let effects = core.load(partition, epoch, records);
    drop(core);
    loading.remove(&partition);
    drop(loading);
    tracing::info!(partition, records = count, "loaded transactional ids of {}", store::TXN_TOPIC);
    run_effects(broker, effects);
}

/// Performs the core's effects on tasks: writes, then what they lead to; markers, then the
/// CompleteX write once they are all in.
fn run_effects(broker: &Arc<Broker>, effects: Vec<Effect>) {
    for effect in effects {
        let b = Arc::clone(broker);
        tokio::runtime::Handle::current().spawn(async move {
            match effect {
                Effect::Write(w) => write_then(&b, w).await,
                Effect::SendMarkers(m) => {
                    if let Some(outcome) = markers::deliver(&b, &m).await {
                        let effects = b.txns.core().markers_written(
                            m.log_partition,
                            m.coordinator_epoch,
                            &m.transactional_id,
                            outcome,
                            now_ms(),
                        );
                        run_effects(&b, effects);
                    }
                }
            }
        });
    }
}

async fn write_then(broker: &Arc<Broker>, w: Write) {
    let result = store::write(broker, &w).await;
    let (_, effects) = broker.txns.core().written(w, result);
    run_effects(broker, effects);
}
