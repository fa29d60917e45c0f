//! Flushes of a partition's log. Every fsync runs on a blocking thread, never on an async worker
//! (`strom_storage::mark_async_worker`), and the flushes of one log are serialised: a flush taken
//! under the log's lock syncs without it, and another caller that needs the same data durable
//! (a produce whose records the first flush took along) must wait until that one is done, and a
//! later flush must not move the recovery point past files the first one has not synced yet.
//!
//! ```text
//!  append (async worker, log lock): flush.messages/flush.ms reached → flush target = log end
//!  produce: flush_needed(end)? ─▶ spawn_blocking: flush lock ─▶ take (log lock) ─▶ fsync ─▶ mark
//!  follower / __consumer_offsets: the same with "whatever was asked for"
//!  housekeeping, roll flush, shutdown: flush lock ─▶ their own flush
//! ```

use super::Partition;
use std::sync::{Arc, MutexGuard};
use strom_storage::StorageError;

impl Partition {
    /// Held by every flush of this log. Blocking threads only: it is held across fsyncs.
    pub(super) fn serialise_flushes(&self) -> MutexGuard<'_, ()> {
        self.flush_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether appends asked for a flush that `through` (the end of the caller's own append;
    /// None: whatever was asked for) still waits for. Cheap: callable on an async worker.
    pub fn flush_needed(&self, through: Option<i64>) -> Result<bool, StorageError> {
        self.with_log(|log| Ok(log.flush_needed(through)))
    }

    /// Runs the flush `through` needs, if it is still needed once the flushes before it are done.
    /// Call on a blocking thread.
    pub fn flush_through(&self, through: Option<i64>) -> Result<(), StorageError> {
        let _serial = self.serialise_flushes();
        let Some(pending) = self.with_log(|log| Ok(log.take_requested_flush(through)))? else { return Ok(()) };
        self.check(pending.sync())?;
        self.with_log(|log| {
            log.mark_flushed(&pending);
            Ok(())
        })
    }

    /// [`Self::flush_through`] from async code: on a blocking thread, only when needed.
    pub async fn flush_if_requested(self: &Arc<Self>, through: Option<i64>) -> Result<(), StorageError> {
        if !self.flush_needed(through)? {
            return Ok(());
        }
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.flush_through(through))
            .await
            .map_err(|e| StorageError::Io { context: "flush task".into(), source: std::io::Error::other(e) })?
    }
}
