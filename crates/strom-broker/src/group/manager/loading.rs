//! How a broker becomes and stops being a group coordinator: loading the groups of the
//! `__consumer_offsets` partitions it leads, forgetting those it lost, and the commits a load
//! found above the high watermark, which wait for the ISR before they are handed out.

use super::{GroupManager, OffsetStore};
use crate::group::{records, store};
use crate::replica::RoleChange;
use crate::server::{now_ms, Broker};
use std::collections::HashMap;
use std::sync::Arc;

impl GroupManager {
    /// Rebuilds groups and offsets from the `__consumer_offsets` partitions this broker leads
    /// (at start-up, before clients connect).
    pub fn load(&self, broker: &Arc<Broker>) {
        let led: Vec<i32> = broker
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.topic == store::OFFSETS_TOPIC && p.is_leader())
            .map(|p| p.index)
            .collect();
        let (offsets, groups, held) = store::load(broker, Some(&led));
        let now = now_ms();
        let mut inner = self.lock();
        inner.offsets = offsets;
        inner.settling = held.iter().map(|h| (h.partition.index, h.leader_epoch)).collect();
        for (group_id, stored) in groups {
            inner.coordinator.restore(group_id, stored, now);
        }
        drop(inner);
        store::release_when_replicated(broker, held);
    }

    /// This broker started or stopped leading `__consumer_offsets` partitions: it loads their
    /// groups from the log (everything the old coordinator wrote that reached this replica) or
    /// forgets them, as Kafka's coordinator does on election and resignation. Requests of a
    /// forgotten group that were waiting get COORDINATOR_NOT_AVAILABLE and find the new one.
    pub fn leadership_moved(&self, broker: &Arc<Broker>, changes: &[(i32, RoleChange)]) {
        let Some(topic) = broker.metadata.image().topic(store::OFFSETS_TOPIC).cloned() else { return };
        let count = topic.partitions.len() as i32;
        let of = |partitions: &[i32]| {
            let partitions = partitions.to_vec();
            move |group: &str| partitions.contains(&records::partition_for_group(group, count))
        };
        let moved: Vec<i32> = changes.iter().map(|(p, _)| *p).collect();
        let gained: Vec<i32> =
            changes.iter().filter(|(_, c)| *c == RoleChange::BecameLeader).map(|(p, _)| *p).collect();
        let (offsets, groups, held) = if gained.is_empty() {
            (OffsetStore::default(), HashMap::new(), Vec::new())
        } else {
            store::load(broker, Some(&gained))
        };
        let now = now_ms();
        let mut inner = self.lock();
        for id in inner.coordinator.remove_groups(of(&moved)) {
            inner.joins.remove(&id);
            inner.syncs.remove(&id);
        }
        inner.offsets.remove_groups(of(&moved));
        inner.offsets.absorb(offsets);
        for p in &moved {
            inner.settling.remove(p);
        }
        inner.settling.extend(held.iter().map(|h| (h.partition.index, h.leader_epoch)));
        for (group_id, stored) in groups {
            inner.coordinator.restore(group_id, stored, now);
        }
        drop(inner);
        store::release_when_replicated(broker, held);
        self.deadlines_changed();
        tracing::info!(gained = ?gained, moved = ?moved, "group coordinator partitions changed");
    }

    /// Loaded commits that were above the high watermark reached the ISR (`replicated`) or
    /// the leadership moved first: they become visible, or the new coordinator reads the log.
    pub(in crate::group) fn loaded_offsets_replicated(&self, held: store::HeldOffsets, replicated: bool) {
        let mut inner = self.lock();
        if inner.settling.get(&held.partition.index) == Some(&held.leader_epoch) {
            inner.settling.remove(&held.partition.index);
        }
        for (group, topic, partition, value, record_offset) in held.values.into_iter().rev() {
            inner.offsets.complete(&group, &topic, partition, replicated.then_some(value), record_offset);
        }
    }

    /// Whether the groups of `__consumer_offsets` partition `partition` wait for loaded commits
    /// to reach the ISR (see `Inner::settling`).
    pub fn settling(&self, partition: i32) -> bool {
        self.lock().settling.contains_key(&partition)
    }
}
