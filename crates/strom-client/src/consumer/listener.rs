//! The rebalance listener, as in Kafka's ConsumerRebalanceListener: told which partitions go
//! (to commit what was processed) and which come (to seek to a stored position).

use super::offsets::OffsetAndMetadata;
use crate::TopicPartition;
use std::collections::BTreeMap;

/// What a listener may do during a rebalance. Commits requested here are made synchronously
/// before the rebalance goes on, so the next owner starts from them.
pub struct RebalanceContext<'a> {
    pub(crate) positions: &'a mut BTreeMap<TopicPartition, i64>,
    pub(crate) commits: BTreeMap<TopicPartition, OffsetAndMetadata>,
}

impl RebalanceContext<'_> {
    /// The next offset this consumer would read from `tp`, if known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// Starts `tp` at `offset` (in on_partitions_assigned: the position kept elsewhere).
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) {
        self.positions.insert(tp.clone(), offset);
    }

    /// Commits the current positions of `partitions`.
    pub fn commit_positions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(p) = self.positions.get(tp) {
                self.commits.insert(tp.clone(), OffsetAndMetadata::new(*p));
            }
        }
    }

    /// Commits the given offsets.
    pub fn commit(&mut self, offsets: BTreeMap<TopicPartition, OffsetAndMetadata>) {
        self.commits.extend(offsets);
    }
}

pub trait RebalanceListener: Send {
    /// Called before partitions are taken away (eager: all of them at each rebalance;
    /// cooperative: only those that move).
    fn on_partitions_revoked(&mut self, _ctx: &mut RebalanceContext<'_>, _partitions: &[TopicPartition]) {}

    /// Called with the partitions newly assigned, before fetching from them.
    fn on_partitions_assigned(&mut self, _ctx: &mut RebalanceContext<'_>, _partitions: &[TopicPartition]) {}

    /// Called when the membership was lost (evicted, fenced): the partitions already have other
    /// owners, so committing is pointless. Defaults to on_partitions_revoked, as in Kafka.
    fn on_partitions_lost(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(ctx, partitions);
    }
}
