//! Several log directories (`log.dirs`, JBOD), Kafka's LogManager over its roots: a new partition
//! goes to the live directory holding the fewest partitions; a directory whose files fail with an
//! I/O error goes offline as a whole (its partitions answer KAFKA_STORAGE_ERROR) while the others
//! keep serving; a directory that cannot be opened at start-up is offline from the start.
//!
//! ```text
//!  LogDirs ── Dir 0: LogManager(root, checkpoints)  health: online
//!          ├─ Dir 1: LogManager(root, checkpoints)  health: offline (failed at 12:03: ENOTDIR)
//!          └─ placement: partition → dir index
//! ```
//!
//! A full disk (ENOSPC) is not a directory failure: the write that failed is rolled back, the
//! partition answers KAFKA_STORAGE_ERROR until space is freed, and writes resume by themselves.
//! (Kafka takes the directory offline on ENOSPC as on any I/O error.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{LogConfig, TopicPartition};
use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::manager::LogManager;

/// Whether one log directory still serves. Shared by the directory and its partitions: the
/// first failing file operation of any of them takes the whole directory offline.
#[derive(Debug)]
pub struct DirHealth {
    pub path: PathBuf,
    offline: AtomicBool,
}

impl DirHealth {
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Takes the directory offline because of `error`; true the first time.
    pub fn fail(&self, error: &dyn std::fmt::Display) -> bool {
        let first = !self.offline.swap(true, Ordering::SeqCst);
        if first {
            tracing::error!(dir = %self.path.display(), "log directory failed, its partitions go offline: {error}");
        }
        first
    }

    /// The error every operation on a partition of an offline directory gets.
    pub fn offline_error(&self) -> StorageError {
        StorageError::LogDirOffline { path: self.path.clone() }
    }
}

/// Whether `e` means the directory cannot be trusted any more: any error the operating system
/// reported, except a full disk or quota (retried once space is freed) and the errors that are
/// about the process rather than the disk (out of file descriptors or memory, interrupted).
pub fn is_dir_failure(e: &StorageError) -> bool {
    const NOT_THE_DISK: &[i32] = &[
        4,   // EINTR
        11,  // EAGAIN
        12,  // ENOMEM
        23,  // ENFILE
        24,  // EMFILE
        28,  // ENOSPC
        122, // EDQUOT
    ];
    match e {
        StorageError::Io { source, .. } => source.raw_os_error().is_some_and(|c| !NOT_THE_DISK.contains(&c)),
        StorageError::Fsync { .. } => true,
        _ => false,
    }
}

struct Dir {
    health: Arc<DirHealth>,
    /// None when the directory could not be opened at start-up.
    manager: Option<LogManager>,
}

pub struct LogDirs {
    dirs: Vec<Dir>,
    /// Which directory each known partition lives in.
    placement: Mutex<HashMap<TopicPartition, usize>>,
}

impl LogDirs {
    /// Opens every directory; one that cannot be opened is offline from the start (logged), as
    /// long as one can. The same partition in two directories is refused, as Kafka does: which
    /// copy is right is the operator's call. Returns the partition directories found.
    pub fn open(paths: &[PathBuf]) -> Result<(LogDirs, Vec<(TopicPartition, PathBuf)>)> {
        let mut dirs = Vec::new();
        let mut found: Vec<(TopicPartition, PathBuf)> = Vec::new();
        let mut placement: HashMap<TopicPartition, usize> = HashMap::new();
        let mut first_error = None;
        for (i, path) in paths.iter().enumerate() {
            let health = Arc::new(DirHealth { path: path.clone(), offline: AtomicBool::new(false) });
            match LogManager::open(path.clone()) {
                Ok((manager, partitions)) => {
                    for (tp, dir) in partitions {
                        if let Some(&other) = placement.get(&tp) {
                            return Err(StorageError::Corrupt {
                                path: dir,
                                reason: format!(
                                    "duplicate log directories for {tp} are found in both {} and {}: \
                                     delete one of the two",
                                    paths[other].display(),
                                    path.display()
                                ),
                            });
                        }
                        placement.insert(tp.clone(), i);
                        found.push((tp, dir));
                    }
                    dirs.push(Dir { health, manager: Some(manager) });
                }
                Err(e) => {
                    health.fail(&e);
                    first_error.get_or_insert(e);
                    dirs.push(Dir { health, manager: None });
                }
            }
        }
        if dirs.iter().all(|d| d.manager.is_none()) {
            return Err(first_error.unwrap_or_else(|| StorageError::Corrupt {
                path: PathBuf::new(),
                reason: "no log directory configured (log.dirs is empty)".into(),
            }));
        }
        found.sort();
        Ok((LogDirs { dirs, placement: Mutex::new(placement) }, found))
    }

    fn placement(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, usize>> {
        self.placement.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory `tp` lives in, if it has one.
    pub fn dir_of(&self, tp: &TopicPartition) -> Option<Arc<DirHealth>> {
        self.placement().get(tp).map(|&i| Arc::clone(&self.dirs[i].health))
    }

    /// Where a partition not yet placed would go: the live directory with the fewest partitions
    /// (ties: the first listed), Kafka's rule. None when every directory is offline.
    fn least_loaded(&self, placement: &HashMap<TopicPartition, usize>) -> Option<usize> {
        let mut counts = vec![0usize; self.dirs.len()];
        placement.values().for_each(|&i| counts[i] += 1);
        (0..self.dirs.len()).filter(|&i| self.is_live(i)).min_by_key(|&i| (counts[i], i))
    }

    fn is_live(&self, i: usize) -> bool {
        self.dirs[i].manager.is_some() && !self.dirs[i].health.is_offline()
    }

    /// The partition's directory path, placing it first if new.
    pub fn partition_dir(&self, tp: &TopicPartition) -> Result<(PathBuf, Arc<DirHealth>)> {
        let i = self.place(tp)?;
        let dir = &self.dirs[i];
        Ok((dir.health.path.join(tp.to_string()), Arc::clone(&dir.health)))
    }

    /// The index of the live directory `tp` lives in, placing it first if new.
    fn place(&self, tp: &TopicPartition) -> Result<usize> {
        let mut placement = self.placement();
        let i = match placement.get(tp) {
            Some(&i) => i,
            None => {
                let i = self.least_loaded(&placement).ok_or_else(|| self.dirs[0].health.offline_error())?;
                placement.insert(tp.clone(), i);
                i
            }
        };
        if !self.is_live(i) {
            return Err(self.dirs[i].health.offline_error());
        }
        Ok(i)
    }

    /// Opens (creating if needed) the log of `tp` in its directory (see `LogManager::open_log`).
    pub fn open_log(&self, tp: TopicPartition, config: LogConfig) -> Result<(Log, Arc<DirHealth>)> {
        let i = self.place(&tp)?;
        let health = Arc::clone(&self.dirs[i].health);
        let manager = self.dirs[i].manager.as_ref().ok_or_else(|| health.offline_error())?;
        match manager.open_log(tp, config) {
            Ok(log) => Ok((log, health)),
            Err(e) => {
                if is_dir_failure(&e) {
                    health.fail(&e);
                }
                Err(e)
            }
        }
    }

    /// Forgets where a deleted partition lived.
    pub fn forget(&self, tp: &TopicPartition) {
        self.placement().remove(tp);
    }

    /// Whether any directory is offline (a partition not found may then be in it).
    pub fn any_offline(&self) -> bool {
        (0..self.dirs.len()).any(|i| !self.is_live(i))
    }

    /// Whether every directory is offline (Kafka's broker stops then).
    pub fn all_offline(&self) -> bool {
        (0..self.dirs.len()).all(|i| !self.is_live(i))
    }

    /// Every directory's health, in `log.dirs` order.
    pub fn healths(&self) -> Vec<Arc<DirHealth>> {
        self.dirs.iter().map(|d| Arc::clone(&d.health)).collect()
    }

    /// The high watermark checkpointed for `tp` (0 when none was).
    pub fn checkpointed_high_watermark(&self, tp: &TopicPartition) -> i64 {
        let i = self.placement().get(tp).copied();
        i.and_then(|i| self.dirs[i].manager.as_ref()).map_or(0, |m| m.checkpointed_high_watermark(tp))
    }

    /// Writes each live directory's checkpoint files from (partition, recovery point, log
    /// start, high watermark); a directory whose write fails goes offline, the others are
    /// still written. Returns the first failure.
    pub fn write_checkpoints(&self, entries: Vec<(TopicPartition, i64, i64, i64)>) -> Result<()> {
        let placement = self.placement().clone();
        let mut per_dir: Vec<Vec<(TopicPartition, i64, i64, i64)>> = vec![Vec::new(); self.dirs.len()];
        for e in entries {
            if let Some(&i) = placement.get(&e.0) {
                per_dir[i].push(e);
            }
        }
        let mut first = Ok(());
        for (i, entries) in per_dir.into_iter().enumerate() {
            let Some(manager) = self.dirs[i].manager.as_ref().filter(|_| self.is_live(i)) else { continue };
            let result =
                manager.write_high_watermarks(entries.iter().map(|(tp, _, _, hw)| (tp.clone(), *hw))).and_then(|()| {
                    manager.write_checkpoints(entries.into_iter().map(|(tp, rp, start, _)| (tp, rp, start)))
                });
            if let Err(e) = result {
                if is_dir_failure(&e) {
                    self.dirs[i].health.fail(&e);
                }
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Marks every live directory cleanly shut down, except those where closing a log failed
    /// (`skip`): they are recovered at the next start.
    pub fn mark_clean_shutdown(&self, skip: &[PathBuf]) -> Result<()> {
        for (i, dir) in self.dirs.iter().enumerate() {
            if skip.contains(&dir.health.path) {
                continue;
            }
            if let Some(manager) = dir.manager.as_ref().filter(|_| self.is_live(i)) {
                manager.mark_clean_shutdown()?;
            }
        }
        Ok(())
    }

    /// The first directory (it also holds the metadata log and the node's own files).
    pub fn first(&self) -> &Path {
        &self.dirs[0].health.path
    }
}
