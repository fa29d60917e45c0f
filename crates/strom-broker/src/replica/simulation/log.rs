//! The model of a replica's log in the replication simulation: values with their leader
//! epochs, and the storage's own leader epoch cache (in memory) for the divergence decisions.

use strom_storage::LeaderEpochCache;

/// A replica's log: each offset's value and leader epoch, and the storage's epoch cache.
pub(super) struct SimLog {
    pub(super) values: Vec<(u64, i32)>,
    epochs: LeaderEpochCache,
}

impl SimLog {
    pub(super) fn empty() -> SimLog {
        SimLog { values: Vec::new(), epochs: LeaderEpochCache::in_memory() }
    }
    pub(super) fn leo(&self) -> i64 {
        self.values.len() as i64
    }
    pub(super) fn latest_epoch(&self) -> i32 {
        self.epochs.latest_epoch().unwrap_or(-1)
    }
    /// Appends records as `Log::append` (leader) and `append_as_follower` do: a record of an
    /// epoch new to the log starts that epoch in the cache.
    pub(super) fn append(&mut self, records: &[(u64, i32)]) {
        for &(value, epoch) in records {
            if self.epochs.latest_epoch() != Some(epoch) {
                assert!(self.epochs.latest_epoch() < Some(epoch), "appended epoch {epoch} after a later one");
                self.epochs.assign(epoch, self.leo()).expect("in memory");
            }
            self.values.push((value, epoch));
        }
    }
    pub(super) fn truncate_to(&mut self, offset: i64) {
        self.values.truncate(offset as usize);
        self.epochs.truncate_from_end(offset).expect("in memory");
    }
    pub(super) fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.leo())
    }
}
