//! Committed offsets in memory, rebuilt from `__consumer_offsets` at start-up and updated after
//! each durable commit. The topic is the source of truth; this is its materialised view.
//!
//! A commit is first *staged* (appended, not yet replicated) and becomes visible to OffsetFetch
//! only once the ISR has it, as Kafka's `pendingOffsetCommits`: an offset a new coordinator
//! might not find is never handed out. Each value remembers the log offset of its record, so
//! that commits completing out of order never replace a later one, and a delete (tombstone) or
//! an unload drops the pending commits it overtakes.

use super::records::CommittedOffset;
use std::collections::{BTreeMap, HashMap};

/// (topic, partition)
pub type TopicPartitionKey = (String, i32);

#[derive(Default)]
pub struct OffsetStore {
    /// The committed offset of each partition and the log offset of its record.
    by_group: HashMap<String, BTreeMap<TopicPartitionKey, (CommittedOffset, i64)>>,
    /// The log offset of the latest commit appended and not yet replicated, per partition.
    pending: HashMap<String, BTreeMap<TopicPartitionKey, i64>>,
}

impl OffsetStore {
    /// Applies a commit (`Some`) or a tombstone (`None`) whose record is at `record_offset`, in
    /// log order (loading, deletes). A tombstone also drops a pending commit of the partition.
    pub fn apply(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<CommittedOffset>,
        record_offset: i64,
    ) {
        let key = (topic.to_string(), partition);
        match value {
            Some(v) => {
                self.by_group.entry(group.to_string()).or_default().insert(key, (v, record_offset));
            }
            None => {
                if let Some(offsets) = self.by_group.get_mut(group) {
                    offsets.remove(&key);
                    if offsets.is_empty() {
                        self.by_group.remove(group);
                    }
                }
                self.forget_pending(group, &key, None);
            }
        }
    }

    /// A commit was appended at `record_offset` and waits for the ISR.
    pub fn stage(&mut self, group: &str, topic: &str, partition: i32, record_offset: i64) {
        let pending = self.pending.entry(group.to_string()).or_default();
        let latest = pending.entry((topic.to_string(), partition)).or_insert(record_offset);
        *latest = (*latest).max(record_offset);
    }

    /// A staged commit reached the ISR (`Some`) or failed (`None`). It becomes the committed
    /// offset unless a delete overtook it or a later commit is already visible.
    pub fn complete(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<CommittedOffset>,
        record_offset: i64,
    ) {
        let key = (topic.to_string(), partition);
        let still_pending = self.pending.get(group).and_then(|p| p.get(&key)).is_some_and(|&o| o >= record_offset);
        if let (true, Some(v)) = (still_pending, value) {
            let offsets = self.by_group.entry(group.to_string()).or_default();
            if offsets.get(&key).is_none_or(|(_, at)| *at < record_offset) {
                offsets.insert(key.clone(), (v, record_offset));
            }
        }
        self.forget_pending(group, &key, Some(record_offset));
    }

    /// Drops the pending commit of a partition (`at`: only if it is that one).
    fn forget_pending(&mut self, group: &str, key: &TopicPartitionKey, at: Option<i64>) {
        if let Some(pending) = self.pending.get_mut(group) {
            if at.is_none_or(|at| pending.get(key) == Some(&at)) {
                pending.remove(key);
            }
            if pending.is_empty() {
                self.pending.remove(group);
            }
        }
    }

    /// The partitions of `group` with a commit waiting for the ISR.
    pub fn pending_partitions(&self, group: &str) -> Vec<TopicPartitionKey> {
        self.pending.get(group).map(|p| p.keys().cloned().collect()).unwrap_or_default()
    }

    /// Drops every pending commit of `group` (it is being deleted).
    pub fn forget_group_pending(&mut self, group: &str) {
        self.pending.remove(group);
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.by_group.get(group)?.get(&(topic.to_string(), partition)).map(|(v, _)| v)
    }

    /// Every committed offset of a group, ordered by topic and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(TopicPartitionKey, CommittedOffset)> {
        self.by_group
            .get(group)
            .map(|m| m.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    /// Groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.by_group.keys().cloned().collect()
    }

    /// Forgets the offsets of the groups `unload` names (their coordinator moved away), pending
    /// commits included: the new coordinator reads them from the log, if they got there.
    pub fn remove_groups(&mut self, unload: impl Fn(&str) -> bool) {
        self.by_group.retain(|g, _| !unload(g));
        self.pending.retain(|g, _| !unload(g));
    }

    /// Takes over every group of `other` (loaded from a partition this broker now leads).
    pub fn absorb(&mut self, other: OffsetStore) {
        self.by_group.extend(other.by_group);
        self.pending.extend(other.pending);
    }

    /// Offsets of `group` committed before `cutoff_ms` (offsets.retention.minutes).
    pub fn expired(&self, group: &str, cutoff_ms: i64) -> Vec<TopicPartitionKey> {
        self.by_group
            .get(group)
            .map(|m| m.iter().filter(|(_, (v, _))| v.commit_timestamp_ms < cutoff_ms).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(offset: i64, ts: i64) -> Option<CommittedOffset> {
        Some(CommittedOffset { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: ts })
    }

    fn committed(s: &OffsetStore) -> Option<i64> {
        s.get("g", "t", 0).map(|c| c.offset)
    }

    #[test]
    fn latest_commit_wins_and_tombstones_delete() {
        let mut s = OffsetStore::default();
        s.apply("g", "t", 0, off(5, 1), 10);
        s.apply("g", "t", 0, off(9, 2), 11);
        s.apply("g", "t", 1, off(3, 3), 12);
        assert_eq!(committed(&s), Some(9));
        assert_eq!(s.expired("g", 3), vec![("t".to_string(), 0)]);
        s.apply("g", "t", 0, None, 13);
        s.apply("g", "t", 1, None, 14);
        assert!(!s.has_offsets("g"));
    }

    #[test]
    fn a_commit_is_visible_only_once_replicated_and_never_replaces_a_later_one() {
        let mut s = OffsetStore::default();
        s.stage("g", "t", 0, 20);
        assert_eq!(committed(&s), None, "not replicated yet");
        s.stage("g", "t", 0, 21);
        // The later commit's waiter wakes first: the earlier one must not take it back.
        s.complete("g", "t", 0, off(9, 2), 21);
        s.complete("g", "t", 0, off(5, 1), 20);
        assert_eq!(committed(&s), Some(9));
        // A failed commit leaves the committed offset as it was.
        s.stage("g", "t", 0, 22);
        s.complete("g", "t", 0, None, 22);
        assert_eq!(committed(&s), Some(9));
        assert!(s.pending.is_empty());
    }

    #[test]
    fn a_partition_named_twice_in_one_commit_keeps_the_value_completed_first() {
        // The manager completes a commit's values last first, as the log replays them.
        let mut s = OffsetStore::default();
        s.stage("g", "t", 0, 50);
        s.complete("g", "t", 0, off(12, 1), 50);
        s.complete("g", "t", 0, off(11, 1), 50);
        assert_eq!(committed(&s), Some(12));
        assert_eq!(s.pending_partitions("g"), Vec::<TopicPartitionKey>::new());
    }

    #[test]
    fn a_delete_or_unload_overtakes_pending_commits() {
        let mut s = OffsetStore::default();
        s.apply("g", "t", 0, off(4, 1), 1);
        s.stage("g", "t", 0, 30);
        s.apply("g", "t", 0, None, 31);
        s.complete("g", "t", 0, off(7, 2), 30);
        assert_eq!(committed(&s), None, "the delete came after the commit in the log");
        s.stage("g", "t", 0, 40);
        s.remove_groups(|g| g == "g");
        s.complete("g", "t", 0, off(8, 3), 40);
        assert_eq!(committed(&s), None, "unloaded: the new coordinator reads the log");
    }

    #[test]
    fn offsets_loaded_above_the_high_watermark_stay_hidden_until_replicated() {
        // A new coordinator's load: 9 below the HW, 12 above it (staged), then absorbed.
        let mut loaded = OffsetStore::default();
        loaded.apply("g", "t", 0, off(9, 1), 30);
        loaded.stage("g", "t", 0, 31);
        let mut s = OffsetStore::default();
        s.absorb(loaded);
        assert_eq!(committed(&s), Some(9), "only what the ISR has");
        s.complete("g", "t", 0, off(12, 1), 31);
        assert_eq!(committed(&s), Some(12), "visible once the HW passed it");
        // Leadership moved before the HW did: the held commit never shows.
        let mut loaded = OffsetStore::default();
        loaded.stage("g", "t", 1, 40);
        s.absorb(loaded);
        s.complete("g", "t", 1, None, 40);
        assert_eq!(s.get("g", "t", 1), None);
    }
}
