//! Committed offsets in memory, rebuilt from `__consumer_offsets` at start-up and updated after
//! each durable commit. The topic is the source of truth; this is its materialised view.

use super::records::CommittedOffset;
use std::collections::{BTreeMap, HashMap};

/// (topic, partition)
pub type TopicPartitionKey = (String, i32);

#[derive(Default)]
pub struct OffsetStore {
    by_group: HashMap<String, BTreeMap<TopicPartitionKey, CommittedOffset>>,
}

impl OffsetStore {
    /// Applies a commit (`Some`) or a tombstone (`None`) in log order.
    pub fn apply(&mut self, group: &str, topic: &str, partition: i32, value: Option<CommittedOffset>) {
        match value {
            Some(v) => {
                self.by_group.entry(group.to_string()).or_default().insert((topic.to_string(), partition), v);
            }
            None => {
                if let Some(offsets) = self.by_group.get_mut(group) {
                    offsets.remove(&(topic.to_string(), partition));
                    if offsets.is_empty() {
                        self.by_group.remove(group);
                    }
                }
            }
        }
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.by_group.get(group)?.get(&(topic.to_string(), partition))
    }

    /// Every committed offset of a group, ordered by topic and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(TopicPartitionKey, CommittedOffset)> {
        self.by_group.get(group).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    /// Groups that have committed offsets.
    pub fn groups(&self) -> Vec<String> {
        self.by_group.keys().cloned().collect()
    }

    /// Forgets the offsets of the groups `unload` names (their coordinator moved away).
    pub fn remove_groups(&mut self, unload: impl Fn(&str) -> bool) {
        self.by_group.retain(|g, _| !unload(g));
    }

    /// Takes over every group of `other` (loaded from a partition this broker now leads).
    pub fn absorb(&mut self, other: OffsetStore) {
        self.by_group.extend(other.by_group);
    }

    /// Offsets of `group` committed before `cutoff_ms` (offsets.retention.minutes).
    pub fn expired(&self, group: &str, cutoff_ms: i64) -> Vec<TopicPartitionKey> {
        self.by_group
            .get(group)
            .map(|m| m.iter().filter(|(_, v)| v.commit_timestamp_ms < cutoff_ms).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(offset: i64, ts: i64) -> Option<CommittedOffset> {
        Some(CommittedOffset { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: ts })
    }

    #[test]
    fn latest_commit_wins_and_tombstones_delete() {
        let mut s = OffsetStore::default();
        s.apply("g", "t", 0, off(5, 1));
        s.apply("g", "t", 0, off(9, 2));
        s.apply("g", "t", 1, off(3, 3));
        assert_eq!(s.get("g", "t", 0).map(|c| c.offset), Some(9));
        assert_eq!(s.expired("g", 3), vec![("t".to_string(), 0)]);
        s.apply("g", "t", 0, None);
        s.apply("g", "t", 1, None);
        assert!(!s.has_offsets("g"));
    }
}
