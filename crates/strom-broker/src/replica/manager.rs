//! Keeps the hosted partitions in line with the metadata image: opens logs for new partitions,
//! deletes the data of removed topics, pushes config changes down to the logs, and writes the
//! checkpoints that let a restart skip recovery.

use super::log_config::log_config_for;
use super::partition::Partition;
use super::partition_metadata;
use super::state::ReplicaCommand;
use super::state::RoleChange;
use crate::config::dynamic::DynamicConfig;
use crate::config::BrokerConfig;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use strom_metadata::MetadataImage;
use strom_storage::{DirHealth, LoadSummary, LogDirs, StorageError, TopicPartition};

type PartitionKey = (String, i32);

/// What applying an image changed for the rest of the broker.
#[derive(Default)]
pub struct Reconciled {
    /// Replica-state commands (a higher high watermark after an ISR change) to carry out.
    pub commands: Vec<(Arc<Partition>, Vec<ReplicaCommand>)>,
    /// The partitions this broker follows (another live leader), for the replica fetchers.
    pub following: Vec<Arc<Partition>>,
    /// Partitions this broker started or stopped leading (the group coordinator loads and
    /// unloads the groups of `__consumer_offsets` partitions on these).
    pub role_changes: Vec<(Arc<Partition>, RoleChange)>,
}

pub struct ReplicaManager {
    config: Arc<BrokerConfig>,
    /// The config in force: each reconcile gives every log the current defaults.
    dynamic: Arc<DynamicConfig>,
    logs: LogDirs,
    /// Log directories whose failure was handled (see [`Self::handle_failed_dirs`]).
    failed_dirs: Mutex<Vec<PathBuf>>,
    /// The metadata offset of the image the manager opened with: a partition of that image not
    /// found on disk may be in a failed directory; one created later is new.
    opened_at: u64,
    partitions: RwLock<HashMap<PartitionKey, Arc<Partition>>>,
    /// Whether partitions take the roles the image gives them. A cluster node starts without:
    /// its image may lag the quorum (it could lead an epoch long over, or follow a dead leader
    /// and truncate to its log), so its partitions are opened but neither lead nor follow until
    /// the publisher has applied this process's own registration, and with it everything
    /// committed before (Kafka's broker waits for the same catch-up before it leads or follows).
    roles_active: AtomicBool,
    /// Partition directories found at start-up on a cluster node, whose image may be stale:
    /// those the caught-up image does not know are removed then.
    unknown_at_start: Mutex<Vec<(TopicPartition, PathBuf)>>,
}

impl ReplicaManager {
    /// Opens the log directory and every partition the image says this broker hosts. Partition
    /// directories that the image no longer knows (topics deleted while the broker was down)
    /// are removed when `image_is_complete`: a sole voter's image holds everything committed.
    /// A cluster node's may lag behind the quorum until it has caught up, and removing a
    /// partition the node merely has not heard of yet would lose data: its unknown directories
    /// are removed by [`Self::activate_roles`], once caught up, if still unknown then.
    pub fn open(
        config: Arc<BrokerConfig>,
        dynamic: Arc<DynamicConfig>,
        image: &MetadataImage,
        image_is_complete: bool,
    ) -> Result<ReplicaManager, StorageError> {
        let (logs, found) = LogDirs::open(&config.log_dirs)?;
        let manager = ReplicaManager {
            config,
            dynamic,
            logs,
            failed_dirs: Mutex::new(Vec::new()),
            opened_at: image.offset,
            partitions: RwLock::new(HashMap::new()),
            roles_active: AtomicBool::new(image_is_complete),
            unknown_at_start: Mutex::new(Vec::new()),
        };
        // Nothing waits on a partition yet, and the fetchers start with the publisher's first image.
        manager.reconcile(image)?;
        manager.log_recovery_summary();
        if image_is_complete {
            remove_stray(found, image, manager.config.node_id);
        } else {
            *manager.unknown_at_start.lock().unwrap_or_else(|p| p.into_inner()) = found;
        }
        Ok(manager)
    }

    /// One line at start-up saying whether the logs needed recovery and what it did.
    fn log_recovery_summary(&self) {
        let summaries: Vec<_> = self.all().iter().filter_map(|p| p.load_summary()).collect();
        let recovered: Vec<_> = summaries.iter().filter(|s| !s.clean_shutdown).collect();
        if summaries.is_empty() {
            return;
        }
        if recovered.is_empty() {
            tracing::info!(partitions = summaries.len(), "loaded logs after a clean shutdown: no recovery needed");
            return;
        }
        let sum = |f: fn(&&LoadSummary) -> u64| recovered.iter().map(f).sum::<u64>();
        tracing::warn!(
            partitions = recovered.len(),
            segments_scanned = sum(|s| s.segments_recovered as u64),
            bytes_scanned = sum(|s| s.bytes_scanned),
            bytes_truncated = sum(|s| s.bytes_truncated),
            segments_deleted = sum(|s| s.segments_deleted as u64),
            "recovered logs after an unclean shutdown"
        );
    }

    /// From now on partitions lead and follow as `image` (caught up with the quorum) says (see
    /// `roles_active`); partition directories unknown at start-up and still unknown are removed.
    pub fn activate_roles(&self, image: &MetadataImage) {
        if !self.roles_active.swap(true, Ordering::SeqCst) {
            tracing::info!("caught up with the metadata quorum: partitions take their roles");
            let mut unknown = std::mem::take(&mut *self.unknown_at_start.lock().unwrap_or_else(|p| p.into_inner()));
            // Open partitions are the reconcile's to delete (it stops their roles first).
            let open = self.read_map();
            unknown.retain(|(tp, _)| !open.contains_key(&(tp.topic.clone(), tp.partition)));
            drop(open);
            remove_stray(unknown, image, self.config.node_id);
        }
    }

    fn roles_active(&self) -> bool {
        self.roles_active.load(Ordering::SeqCst)
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.read_map().get(&(topic.to_string(), partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read_map().values().cloned().collect()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PartitionKey, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the image: creates what is new, deletes what is gone (or was re-created under a
    /// new topic id, or moved to other brokers by a reassignment), refreshes configs of the rest, and makes each partition lead or follow as
    /// the image says. Returns what the replica fetchers and the purgatories need to hear.
    pub fn reconcile(&self, image: &MetadataImage) -> Result<Reconciled, StorageError> {
        let mut out = Reconciled::default();
        let now = crate::server::now_ms();
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        // A replica set can change back and forth (moved away, then back), so only an image that
        // has caught up with the quorum may remove a partition for no longer listing this broker.
        let caught_up = self.roles_active();
        let stale: Vec<PartitionKey> = map
            .iter()
            .filter(|((topic, p), part)| {
                // Deleted, re-created, or reassigned away from this broker.
                image.topic(topic).is_none_or(|t| {
                    t.topic_id != part.topic_id
                        || t.partitions.get(p).is_none_or(|p| caught_up && !p.replicas.contains(&self.config.node_id))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(part) = map.remove(&key) {
                // Reassigned away: it takes the new state first, so a leader stops leading (its
                // waiting produces fail over, the group coordinator unloads its groups).
                let moved =
                    image.topic(&key.0).filter(|t| t.topic_id == part.topic_id).and_then(|t| t.partitions.get(&key.1));
                if let Some(p) = moved {
                    let (_, change) = part.apply_metadata(p, now);
                    if let Some(change) = change {
                        out.role_changes.push((Arc::clone(&part), change));
                    }
                }
                let tp = TopicPartition { topic: key.0.clone(), partition: key.1 };
                if part.is_offline() {
                    // Its files stay in the failed directory; if that comes back, the partition
                    // is removed at start-up as one the image does not know.
                    tracing::info!(partition = %tp, "forgot a deleted partition of an offline log directory");
                } else if let Err(e) = part.delete() {
                    // The other partitions still get their roles; a directory failure takes the
                    // directory offline.
                    tracing::error!(partition = %tp, "deleting the partition's data failed: {e}");
                    if strom_storage::is_dir_failure(&e) {
                        part.dir.fail(&e);
                    }
                } else {
                    tracing::info!(topic = %key.0, partition = key.1, "deleted partition data");
                }
                self.logs.forget(&tp);
            }
        }
        let defaults = self.dynamic.current();
        for topic in image.topics.values() {
            let config = log_config_for(&defaults, &topic.configs);
            for p in topic.partitions.values() {
                if !p.replicas.contains(&self.config.node_id) {
                    continue;
                }
                let key = (topic.name.clone(), p.partition);
                let part = match map.get(&key) {
                    Some(existing) => {
                        existing.set_config(config.clone())?;
                        Arc::clone(existing)
                    }
                    None => {
                        let part = self.open_partition(image, topic, p, config.clone())?;
                        map.insert(key, Arc::clone(&part));
                        part
                    }
                };
                if !self.roles_active() {
                    continue;
                }
                let (commands, change) = part.apply_metadata(p, now);
                if let Some(change) = change {
                    out.role_changes.push((Arc::clone(&part), change));
                }
                if !commands.is_empty() {
                    out.commands.push((Arc::clone(&part), commands));
                }
                // A partition of a failed log directory has no log to fetch into.
                if p.leader != self.config.node_id && p.leader >= 0 && !part.is_offline() {
                    out.following.push(part);
                }
            }
        }
        Ok(out)
    }

    /// Opens the log of a partition this broker hosts and has not opened yet, in the directory
    /// it lives in (a new one goes to the least loaded). A partition whose directory is offline
    /// is hosted without a log: it answers KAFKA_STORAGE_ERROR. So is one of the start-up image
    /// not found anywhere while a directory is offline: its data may be in the failed directory,
    /// and an empty log in its place could lead and lose it (Kafka refuses to recreate such a
    /// log for the same reason); a partition created later is new and goes to a live directory.
    fn open_partition(
        &self,
        image: &MetadataImage,
        topic: &strom_metadata::TopicImage,
        p: &strom_metadata::PartitionImage,
        config: strom_storage::LogConfig,
    ) -> Result<Arc<Partition>, StorageError> {
        let tp = TopicPartition { topic: topic.name.clone(), partition: p.partition };
        let lag = self.config.cluster.replica_lag_time_max_ms as i64;
        let hosted = |log: Option<strom_storage::Log>, dir: Arc<DirHealth>, hw: i64| {
            Arc::new(Partition::new(
                topic.name.clone(),
                topic.topic_id,
                p.partition,
                (log, dir),
                self.config.node_id,
                lag,
                hw,
            ))
        };
        let offline_dir = match self.logs.dir_of(&tp) {
            Some(dir) if dir.is_offline() => Some(dir),
            None if self.logs.any_offline() && image.offset <= self.opened_at => {
                self.logs.healths().into_iter().find(|d| d.is_offline())
            }
            _ => None,
        };
        if let Some(dir) = offline_dir {
            tracing::warn!(partition = %tp, dir = %dir.path.display(), "partition offline: its log directory failed");
            return Ok(hosted(None, dir, 0));
        }
        let opened = (|| {
            let (dir, health) = self.logs.partition_dir(&tp)?;
            if dir.exists() && partition_metadata::belongs_to_other_topic(&dir, topic.topic_id) {
                // Left by a topic of the same name that was deleted while this node did not
                // hear of it: never serve that data as the new topic's.
                tracing::warn!(partition = %tp, "removing data of an older topic of the same name");
                std::fs::remove_dir_all(&dir)
                    .map_err(|source| StorageError::Io { context: format!("remove {}", dir.display()), source })?;
            }
            let hw = self.logs.checkpointed_high_watermark(&tp);
            let (log, _) = self.logs.open_log(tp.clone(), config)?;
            partition_metadata::write(&dir, topic.topic_id)
                .map_err(|source| StorageError::Io { context: format!("write {}", dir.display()), source })?;
            Ok((log, health, hw))
        })();
        match opened {
            Ok((log, health, hw)) => Ok(hosted(Some(log), health, hw)),
            Err(e) if strom_storage::is_dir_failure(&e) || matches!(e, StorageError::LogDirOffline { .. }) => {
                let dir = self.logs.dir_of(&tp).unwrap_or_else(|| self.logs.healths().remove(0));
                dir.fail(&e);
                Ok(hosted(None, dir, 0))
            }
            Err(e) => Err(e),
        }
    }

    /// This broker's log directories, in `log.dirs` order.
    pub fn log_dirs(&self) -> Vec<Arc<DirHealth>> {
        self.logs.healths()
    }

    /// Partitions of log directories that failed since the last call: their logs are dropped
    /// (files untouched) and they are returned, for the controller to move their leadership.
    /// Every directory offline stops the process, as Kafka's broker halts: it cannot serve.
    pub fn handle_failed_dirs(&self) -> Vec<Arc<Partition>> {
        let mut handled = self.failed_dirs.lock().unwrap_or_else(|p| p.into_inner());
        let newly: Vec<Arc<DirHealth>> =
            self.logs.healths().into_iter().filter(|d| d.is_offline() && !handled.contains(&d.path)).collect();
        if newly.is_empty() {
            return Vec::new();
        }
        let offline: Vec<Arc<Partition>> =
            self.all().into_iter().filter(|p| newly.iter().any(|d| Arc::ptr_eq(d, &p.dir))).collect();
        for p in &offline {
            p.drop_offline_log();
        }
        for d in &newly {
            let count = offline.iter().filter(|p| Arc::ptr_eq(d, &p.dir)).count();
            tracing::error!(dir = %d.path.display(), partitions = count, "log directory offline: its partitions answer KAFKA_STORAGE_ERROR");
            handled.push(d.path.clone());
        }
        if self.logs.all_offline() {
            tracing::error!("every log directory is offline: shutting down (the broker cannot serve)");
            std::process::exit(1);
        }
        offline
    }

    /// Writes the recovery-point, log-start-offset and high-watermark checkpoint files.
    pub fn write_checkpoints(&self) -> Result<(), StorageError> {
        let entries: Vec<_> = self
            .all()
            .iter()
            .filter_map(|p| {
                let (rp, start, hw) = p.checkpoint_offsets()?;
                Some((TopicPartition { topic: p.topic.clone(), partition: p.index }, rp, start, hw))
            })
            .collect();
        self.write_checkpoint_files(entries)
    }

    fn write_checkpoint_files(&self, entries: Vec<(TopicPartition, i64, i64, i64)>) -> Result<(), StorageError> {
        self.logs.write_checkpoints(entries)
    }

    /// Clean shutdown: flush and close every log, write checkpoints and the clean-shutdown marker
    /// so that the next start needs no recovery scan.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        let partitions = self.all();
        let mut entries = Vec::with_capacity(partitions.len());
        // Directories where a log could not be flushed or closed: not marked clean, so that
        // the next start recovers them; the other directories still shut down cleanly.
        let mut unclean: Vec<PathBuf> = Vec::new();
        for p in partitions.iter().filter(|p| !p.is_offline()) {
            if let Err(e) = p.flush() {
                tracing::error!(topic = %p.topic, partition = p.index, "flush at shutdown failed: {e}");
                unclean.push(p.dir.path.clone());
                continue;
            }
            if let Some((rp, start, hw)) = p.checkpoint_offsets() {
                entries.push((TopicPartition { topic: p.topic.clone(), partition: p.index }, rp, start, hw));
            }
            if let Err(e) = p.close() {
                tracing::error!(topic = %p.topic, partition = p.index, "closing the log failed: {e}");
                unclean.push(p.dir.path.clone());
                if strom_storage::is_dir_failure(&e) {
                    p.dir.fail(&e);
                }
            }
        }
        self.write_checkpoint_files(entries)?;
        self.logs.mark_clean_shutdown(&unclean)
    }
}

/// Whether `image` places a replica of `tp` on broker `node_id`.
fn hosts(image: &MetadataImage, tp: &TopicPartition, node_id: i32) -> bool {
    image.topic(&tp.topic).and_then(|t| t.partitions.get(&tp.partition)).is_some_and(|p| p.replicas.contains(&node_id))
}

/// Removes the directories of partitions the caught-up `image` places nowhere on this broker:
/// topics deleted meanwhile, and replicas moved to other brokers while this one was down (as
/// Kafka removes stray logs at start-up).
fn remove_stray(found: Vec<(TopicPartition, PathBuf)>, image: &MetadataImage, node_id: i32) {
    for (tp, path) in found.into_iter().filter(|(tp, _)| !hosts(image, tp, node_id)) {
        tracing::info!(partition = %tp, "removing data of a partition this broker no longer holds");
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), "could not remove stray partition directory: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::MetadataRecord;
    use uuid::Uuid;

    #[test]
    fn a_cluster_node_removes_unknown_partition_data_only_once_caught_up() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (deleted, created, moved) =
            (tmp.path().join("deleted-0"), tmp.path().join("created-0"), tmp.path().join("created-1"));
        for d in [&deleted, &created, &moved] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let config = BrokerConfig { log_dirs: vec![tmp.path().to_path_buf()], ..Default::default() };
        // The image a cluster node starts with may lag the quorum: it proves nothing.
        let config = Arc::new(config);
        let dynamic = Arc::new(DynamicConfig::new(Arc::clone(&config)));
        let manager = ReplicaManager::open(config, dynamic, &MetadataImage::default(), false).expect("open");
        assert!(deleted.exists() && created.exists() && moved.exists(), "nothing removed on a stale image");
        let mut caught_up = MetadataImage::default();
        let topic_id = Uuid::new_v4();
        caught_up.apply(&MetadataRecord::Topic { name: "created".into(), topic_id });
        let me = manager.config.node_id;
        for (partition, replicas) in [(0, vec![me, me + 1]), (1, vec![me + 1, me + 2])] {
            caught_up.apply(&MetadataRecord::Partition {
                topic_id,
                partition,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
            });
        }
        manager.activate_roles(&caught_up);
        assert!(!deleted.exists(), "a partition the caught-up image does not know is removed");
        assert!(created.exists(), "a partition with a replica here is kept");
        assert!(!moved.exists(), "a partition moved to other brokers while this one was down is removed");
    }
}
