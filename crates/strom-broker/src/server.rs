//! Start-up and shutdown: the data directory and its `meta.properties`, the metadata store, the
//! hosted partitions, the listener, and the background housekeeping (roll, flush, retention,
//! checkpoints).

pub use crate::meta_properties::base64url;

use crate::config::dynamic::DynamicConfig;
use crate::config::BrokerConfig;
use crate::group::GroupManager;
use crate::metadata::transport::RaftTransport;
use crate::metadata::MetadataStore;
use crate::purgatory::FetchPurgatory;
use crate::replica::fetcher::ReplicaFetchers;
use crate::replica::isr::IsrProposals;
use crate::replica::ReplicaManager;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strom_metadata::controller::ControllerSettings;
use strom_metadata::{BrokerEndpoint, ControllerOp, OpAnswer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("{0}")]
    MetaProperties(String),
    #[error("metadata: {0}")]
    Metadata(#[from] strom_metadata::MetadataError),
    #[error("storage: {0}")]
    Storage(#[from] strom_storage::StorageError),
}

/// Shared state of a running broker, handed to every connection.
pub struct Broker {
    /// The static config (server.properties and overrides). Keys that change at run time
    /// (KIP-226) are read from [`Broker::dynamic`].
    pub config: Arc<BrokerConfig>,
    /// The config in force, dynamic broker configs included.
    pub dynamic: Arc<DynamicConfig>,
    pub cluster_id: String,
    /// The host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: i32,
    pub metadata: MetadataStore,
    pub replicas: ReplicaManager,
    pub fetch_purgatory: FetchPurgatory,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::fetch_session::FetchSessionCache,
    pub groups: GroupManager,
    /// The transaction coordinator of the `__transaction_state` partitions this broker leads.
    pub txns: crate::txn::TxnManager,
    /// Where leaders' ISR change proposals go (the ISR task, `replica/isr.rs`).
    pub isr_proposals: IsrProposals,
    pub fetchers: ReplicaFetchers,
    /// Replication throttles (reassignments): bytes sent to and fetched for throttled replicas.
    pub replication_quotas: crate::replica::quota::ReplicationQuotas,
    /// This process's registration id (a new one per start).
    pub incarnation_id: uuid::Uuid,
}

/// A running broker. Dropping it does not stop it; call [`BrokerHandle::shutdown`].
pub struct BrokerHandle {
    pub local_addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl BrokerHandle {
    /// Stops accepting, closes connections, flushes every log and writes the checkpoints and the
    /// clean-shutdown marker.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        if !self.broker.config.cluster.is_single_node() && self.broker.config.cluster.roles.broker {
            // Controlled shutdown: fenced first, so that the controller moves this broker's
            // leaderships now rather than after broker.session.timeout.ms.
            let fence = ControllerOp::FenceBroker { broker_id: self.broker.config.node_id };
            match tokio::time::timeout(Duration::from_secs(5), self.broker.metadata.write(fence)).await {
                Ok(Ok(_)) => tracing::info!("controlled shutdown: fenced, leaderships moved"),
                Ok(Err(e)) => {
                    tracing::warn!("controlled shutdown could not fence this broker: {}", e.message.unwrap_or_default())
                }
                Err(_) => tracing::warn!("controlled shutdown: the controller did not answer in time"),
            }
        }
        let _ = self.stop.send(true);
        self.broker.fetchers.stop_all();
        while self.tasks.join_next().await.is_some() {}
        let broker = Arc::clone(&self.broker);
        tokio::task::spawn_blocking(move || {
            broker.metadata.stop();
            broker.replicas.shutdown()
        })
        .await
        .map_err(|e| StartError::MetaProperties(format!("shutdown task failed: {e}")))??;
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Starts a broker: opens the data directory, binds the listener and spawns the accept loop and
/// housekeeping. Returns once the broker accepts connections.
pub async fn start(config: BrokerConfig) -> Result<BrokerHandle, StartError> {
    let started = std::time::Instant::now();
    let config = Arc::new(config);
    let data_dir = config.data_dir().to_path_buf();
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| StartError::DataDir { path: data_dir.display().to_string(), source })?;
    let cluster_id =
        crate::meta_properties::load_or_create(&data_dir, config.node_id, config.cluster.is_single_node())?;

    let settings = ControllerSettings {
        node_id: config.node_id,
        default_num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        delete_topic_enable: config.delete_topic_enable,
        broker_session_timeout_ms: config.cluster.broker_session_timeout_ms as i64,
        unclean_leader_election_enable: config.cluster.unclean_leader_election_enable,
    };
    let (stop, stop_rx) = watch::channel(false);
    let (voters, transport) = if config.cluster.is_single_node() {
        (vec![(config.node_id as u64, String::new())], RaftTransport::none())
    } else {
        let voters = config.cluster.voters.iter().map(|v| (v.id as u64, format!("{}:{}", v.host, v.port))).collect();
        let peers = config
            .cluster
            .voters
            .iter()
            .filter(|v| v.id != config.node_id)
            .map(|v| (v.id as u64, v.host.clone(), v.port))
            .collect();
        // An observer (not a voter) takes no part in Raft: it only fetches the committed log.
        let transport = if config.cluster.roles.controller {
            RaftTransport::start(peers, stop_rx.clone())
        } else {
            RaftTransport::none()
        };
        (voters, transport)
    };
    let cfg = Arc::clone(&config);
    let dynamic = Arc::new(DynamicConfig::new(Arc::clone(&config)));
    let dyn_cfg = Arc::clone(&dynamic);
    let (metadata, replicas) = tokio::task::spawn_blocking(move || -> Result<_, StartError> {
        let metadata = MetadataStore::open(cfg.data_dir(), settings, voters, transport)?;
        // The dynamic configs already committed apply from the first partition opened.
        dyn_cfg.apply(&metadata.image());
        let replicas =
            ReplicaManager::open(Arc::clone(&cfg), dyn_cfg, &metadata.image(), cfg.cluster.is_single_node())?;
        Ok((metadata, replicas))
    })
    .await
    .map_err(|e| StartError::MetaProperties(format!("start-up task failed: {e}")))??;

    let bind_host = if config.listener.host.is_empty() { "0.0.0.0" } else { config.listener.host.as_str() };
    let bind_addr = format!("{bind_host}:{}", config.listener.port);
    let listener =
        TcpListener::bind(&bind_addr).await.map_err(|source| StartError::Bind { addr: bind_addr.clone(), source })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: bind_addr, source })?;
    let (advertised_host, advertised_port) = match &config.advertised_listener {
        Some(l) if !l.host.is_empty() => (l.host.clone(), if l.port == 0 { local_addr.port() } else { l.port }),
        _ if config.listener.host.is_empty() || config.listener.host == "0.0.0.0" => {
            ("localhost".to_string(), local_addr.port())
        }
        _ => (config.listener.host.clone(), local_addr.port()),
    };
    let partitions = replicas.all().len();
    let (isr_proposals, isr_proposals_rx) = tokio::sync::mpsc::unbounded_channel();
    let broker = Arc::new(Broker {
        config: Arc::clone(&config),
        dynamic,
        cluster_id: cluster_id.clone(),
        advertised_host,
        advertised_port: advertised_port as i32,
        metadata,
        replicas,
        fetch_purgatory: FetchPurgatory::default(),
        fetch_sessions: crate::fetch_session::FetchSessionCache::new(config.fetch_session_cache_slots),
        groups: GroupManager::new(&config),
        txns: crate::txn::TxnManager::new(&config),
        isr_proposals,
        fetchers: ReplicaFetchers::default(),
        replication_quotas: Default::default(),
        incarnation_id: uuid::Uuid::new_v4(),
    });
    {
        // The partitions this node follows by the image it opened with; the publisher keeps
        // the fetchers in line from here on.
        let b = Arc::clone(&broker);
        let image = broker.metadata.image();
        let reconciled = tokio::task::spawn_blocking(move || b.replicas.reconcile(&image))
            .await
            .map_err(|e| StartError::MetaProperties(format!("start-up task failed: {e}")))??;
        broker.fetchers.update(&broker, reconciled.following);
    }
    {
        let b = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || b.groups.load(&b))
            .await
            .map_err(|e| StartError::MetaProperties(format!("loading consumer groups failed: {e}")))?;
        // The transactional ids of the __transaction_state partitions led from the start.
        let led: Vec<_> = broker
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.topic == crate::txn::store::TXN_TOPIC && p.is_leader())
            .map(|p| (p.index, crate::replica::RoleChange::BecameLeader))
            .collect();
        broker.txns.leadership_moved(&broker, &led);
    }
    let mut tasks = JoinSet::new();
    // A controller-only node's one listener is its controller listener (bound just below).
    let separate_controller_listener = !config.cluster.is_single_node() && config.cluster.roles.broker;
    if let (true, Some(l)) = (separate_controller_listener, &config.cluster.controller_listener) {
        let host = if l.host.is_empty() { "0.0.0.0" } else { l.host.as_str() };
        let addr = format!("{host}:{}", l.port);
        let controller_listener =
            TcpListener::bind(&addr).await.map_err(|source| StartError::Bind { addr: addr.clone(), source })?;
        tracing::info!(listener = %addr, "controller listener started");
        tasks.spawn(accept_loop(Arc::clone(&broker), controller_listener, stop_rx.clone()));
    }
    tasks.spawn(accept_loop(Arc::clone(&broker), listener, stop_rx.clone()));
    tasks.spawn(housekeeping(Arc::clone(&broker), stop_rx.clone()));
    if config.cleaner.enable {
        let cleaner = Arc::new(
            crate::replica::cleaner::LogCleaner::open(&data_dir, config.cleaner.io_max_bytes_per_second)
                .map_err(StartError::Storage)?,
        );
        tasks.spawn(crate::replica::cleaner::supervise(Arc::clone(&broker), cleaner, stop_rx.clone()));
    }
    tasks.spawn(crate::replica::isr::run(Arc::clone(&broker), isr_proposals_rx, stop_rx.clone()));
    if let Some(committed) = broker.metadata.take_committed() {
        tasks.spawn(crate::metadata::publisher::run(Arc::clone(&broker), committed, stop_rx.clone()));
    }
    {
        let b = Arc::clone(&broker);
        let timers_stop = stop_rx.clone();
        tasks.spawn(async move { b.groups.run_timers(&b, timers_stop).await });
    }
    {
        let b = Arc::clone(&broker);
        let timers_stop = stop_rx.clone();
        tasks.spawn(async move { b.txns.run_timers(&b, timers_stop).await });
    }
    let registration = ControllerOp::RegisterBroker {
        broker_id: config.node_id,
        incarnation_id: broker.incarnation_id,
        endpoints: vec![BrokerEndpoint {
            name: config.listener.name.clone(),
            host: broker.advertised_host.clone(),
            port: broker.advertised_port as u16,
        }],
        rack: config.cluster.rack.clone(),
    };
    // A sole node registers before it serves; a cluster node once the quorum has a leader.
    let epoch = if config.cluster.is_single_node() {
        let answer = broker.metadata.write(registration.clone()).await.map_err(|e| {
            StartError::MetaProperties(format!("registering the broker failed: {}", e.message.unwrap_or_default()))
        })?;
        match answer {
            OpAnswer::BrokerEpoch(epoch) => Some(epoch),
            _ => None,
        }
    } else {
        None
    };
    if config.cluster.roles.broker {
        tasks.spawn(crate::lifecycle::run(Arc::clone(&broker), registration, epoch, stop_rx.clone()));
    }
    tasks.spawn(crate::lifecycle::expire_sessions(Arc::clone(&broker), stop_rx.clone()));
    tasks.spawn(crate::lifecycle::rebalance_leaders(Arc::clone(&broker), stop_rx.clone()));
    // Announces deliberate faults (debug builds only) before the first request meets them.
    crate::fault_injection::ack_before_high_watermark();
    let started_as = if config.cluster.roles.broker { "broker" } else { "controller (no broker role)" };
    tracing::info!(
        node_id = config.node_id,
        %cluster_id,
        listener = %local_addr,
        advertised = %format!("{}:{}", broker.advertised_host, broker.advertised_port),
        data_dir = %data_dir.display(),
        partitions,
        "Strom {started_as} started in {} ms",
        started.elapsed().as_millis()
    );
    Ok(BrokerHandle { local_addr, broker, stop, tasks })
}

async fn accept_loop(broker: Arc<Broker>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let max_connections = broker.dynamic.current().max_connections;
                    if connections.len() >= max_connections {
                        tracing::warn!(%peer, "refusing connection: max.connections ({max_connections}) reached");
                        continue;
                    }
                    connections.spawn(crate::net::connection::serve(Arc::clone(&broker), stream, peer));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Periodic log maintenance on a blocking thread: time-based roll and flush, retention every
/// `log.retention.check.interval.ms`, checkpoints every `log.flush.offset.checkpoint.interval.ms`.
async fn housekeeping(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let tick = Duration::from_millis(broker.config.log_flush_scheduler_interval_ms.clamp(10, 1000));
    let retention_every = Duration::from_millis(broker.config.log_retention_check_interval_ms);
    let checkpoint_every = Duration::from_millis(broker.config.log_flush_offset_checkpoint_interval_ms);
    let mut last_retention = tokio::time::Instant::now();
    let mut last_checkpoint = tokio::time::Instant::now();
    // Replicas in failed log directories the controller has not been told of yet, and whether a
    // report is under way.
    let offline_replicas: Arc<std::sync::Mutex<Vec<(uuid::Uuid, i32)>>> = Arc::default();
    let reporting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let retention_due = last_retention.elapsed() >= retention_every;
        let checkpoint_due = last_checkpoint.elapsed() >= checkpoint_every;
        if retention_due {
            last_retention = tokio::time::Instant::now();
        }
        if checkpoint_due {
            last_checkpoint = tokio::time::Instant::now();
        }
        let b = Arc::clone(&broker);
        let failed = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for p in b.replicas.all().into_iter().filter(|p| !p.is_offline()) {
                if let Err(e) = p.housekeeping(now, retention_due) {
                    tracing::warn!(topic = %p.topic, partition = p.index, "log maintenance failed: {e}");
                }
                if let Err(e) = p.flush_rolled_segments() {
                    tracing::warn!(topic = %p.topic, partition = p.index, "flushing rolled segments failed: {e}");
                }
            }
            if checkpoint_due {
                if let Err(e) = b.replicas.write_checkpoints() {
                    tracing::warn!("writing checkpoints failed: {e}");
                }
            }
            b.replicas.handle_failed_dirs()
        })
        .await
        .unwrap_or_default();
        if broker.config.cluster.is_single_node() {
            // No other replica to move to: its offline partitions answer KAFKA_STORAGE_ERROR.
            continue;
        }
        let mut pending = offline_replicas.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(failed.iter().map(|p| (p.topic_id, p.index)));
        if !pending.is_empty() && !reporting.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // The controller moves their leaderships and takes them out of the ISR; told from
            // a task of its own (the maintenance above must not wait for the controller), again
            // at the next tick until it answers.
            let partitions = std::mem::take(&mut *pending);
            let (b, left, flag) = (Arc::clone(&broker), Arc::clone(&offline_replicas), Arc::clone(&reporting));
            tokio::spawn(async move {
                let not_told = report_offline_replicas(&b, partitions).await;
                left.lock().unwrap_or_else(|p| p.into_inner()).extend(not_told);
                flag.store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
    }
}

/// Tells the controller about replicas in failed log directories; returns those still to tell.
async fn report_offline_replicas(broker: &Broker, partitions: Vec<(uuid::Uuid, i32)>) -> Vec<(uuid::Uuid, i32)> {
    let image = broker.metadata.image();
    // Only this process's own registration: a report on the previous one would be wiped by
    // the registration that replaces it.
    let Some(me) = image.brokers.get(&broker.config.node_id).filter(|b| b.incarnation_id == broker.incarnation_id)
    else {
        return partitions;
    };
    let op = ControllerOp::ReplicasOffline {
        broker_id: broker.config.node_id,
        broker_epoch: me.epoch,
        partitions: partitions.clone(),
    };
    match tokio::time::timeout(Duration::from_secs(5), broker.metadata.write(op)).await {
        Ok(Ok(_)) => {
            tracing::info!(partitions = partitions.len(), "controller told: replicas in a failed log directory");
            Vec::new()
        }
        Ok(Err(e)) => {
            tracing::warn!("telling the controller about offline replicas failed, will retry: {e:?}");
            partitions
        }
        Err(_) => partitions,
    }
}
