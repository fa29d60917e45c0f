//! Partition state changes the controller makes: leader elections after broker changes, ISR
//! removal of fenced brokers, unclean election when a topic allows it, and the leaders' ISR
//! changes (Kafka's AlterPartition), each checked against the partition epoch it was based on.
//!
//! ```text
//!  broker fenced ─▶ out of every ISR it is in (unless it is the last member) ─▶ partitions it led:
//!                   first live ISR member in replica order ─▶ none? unclean allowed? first live
//!                   replica, ISR = [it] (data loss, logged) ─▶ otherwise leader -1 (offline)
//!  AlterPartition(leader, leader epoch, partition epoch, ISR) ─▶ epochs match, members live
//!                   replicas ─▶ new ISR, partition epoch + 1
//! ```
//! A leader resends a proposal whose answer it did not get; a resent change that is already
//! committed gets the committed partition back, not INVALID_UPDATE_VERSION, so the leader can
//! tell "done" from "overtaken".
//! The leader epoch grows only when the leader changes; every change grows the partition epoch.

use crate::controller::{Controller, Proposal};
use crate::error::MetadataError;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::MetadataRecord;
use uuid::Uuid;

/// What a partition leader asks the controller to set (AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IsrChange {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

impl Controller {
    /// A leader's ISR change. Answers the partition as it is afterwards.
    pub fn alter_partition(
        &self,
        image: &MetadataImage,
        change: IsrChange,
    ) -> Result<Proposal<PartitionImage>, MetadataError> {
        let b = image.brokers.get(&change.broker_id).ok_or(MetadataError::BrokerNotRegistered(change.broker_id))?;
        if b.epoch != change.broker_epoch {
            return Err(MetadataError::StaleBrokerEpoch {
                broker_id: change.broker_id,
                expected: b.epoch,
                got: change.broker_epoch,
            });
        }
        let topic = image
            .topic_by_id(&change.topic_id)
            .ok_or_else(|| MetadataError::UnknownTopic(change.topic_id.to_string()))?;
        let p = topic
            .partitions
            .get(&change.partition)
            .ok_or_else(|| MetadataError::UnknownTopic(format!("{}-{}", topic.name, change.partition)))?;
        if p.leader != change.broker_id {
            return Err(MetadataError::NotLeader { leader: p.leader });
        }
        if change.leader_epoch != p.leader_epoch {
            return Err(MetadataError::FencedLeaderEpoch { current: p.leader_epoch, got: change.leader_epoch });
        }
        let mut isr = change.isr.clone();
        isr.sort_unstable();
        isr.dedup();
        let mut current = p.isr.clone();
        current.sort_unstable();
        if change.partition_epoch < p.partition_epoch && current == isr {
            // A retry of a change already committed (its answer was lost): the same answer.
            return Ok(Proposal::new(Vec::new(), p.clone()));
        }
        if change.partition_epoch != p.partition_epoch {
            return Err(MetadataError::InvalidUpdateVersion {
                current: p.partition_epoch,
                got: change.partition_epoch,
            });
        }
        if !isr.contains(&p.leader) {
            return Err(MetadataError::InvalidRequest("the leader must stay in the ISR".into()));
        }
        let live = |id: i32| image.brokers.get(&id).is_some_and(|b| b.can_serve(&topic.topic_id, change.partition));
        if let Some(bad) = isr.iter().find(|r| !p.replicas.contains(r) || !live(**r)) {
            return Err(MetadataError::IneligibleReplica(format!(
                "broker {bad} cannot join the ISR of {}-{}: it is not a live replica",
                topic.name, change.partition
            )));
        }
        if current == isr {
            return Ok(Proposal::new(Vec::new(), p.clone()));
        }
        let mut after = p.clone();
        after.isr = isr;
        after.partition_epoch += 1;
        // The last target replica to catch up completes a reassignment in progress.
        crate::reassignment::complete_if_caught_up(image, topic, &mut after);
        Ok(Proposal::new(vec![state_record(topic.topic_id, &after)], after))
    }

    /// The partition changes that `changes` (broker records) call for, see the module comment.
    pub(crate) fn partition_changes_after(
        &self,
        image: &MetadataImage,
        changes: &[MetadataRecord],
    ) -> Vec<MetadataRecord> {
        let mut after = image.clone();
        changes.iter().for_each(|r| after.apply(r));
        let mut out = Vec::new();
        for t in after.topics.values() {
            let unclean_allowed = t
                .configs
                .get("unclean.leader.election.enable")
                // The cluster-wide dynamic default (KIP-226) wins over the static setting.
                .or_else(|| after.cluster_configs.get("unclean.leader.election.enable"))
                .map_or(self.settings.unclean_leader_election_enable, |v| v.eq_ignore_ascii_case("true"));
            for p in t.partitions.values() {
                // A replica serves if its broker is unfenced and its log directory did not fail.
                let live = |id: i32| after.brokers.get(&id).is_some_and(|b| b.can_serve(&t.topic_id, p.partition));
                let mut isr: Vec<i32> = p.isr.iter().copied().filter(|r| live(*r)).collect();
                if isr.is_empty() {
                    // The last member keeps its place: it has everything acknowledged, and may
                    // lead again when it returns (Kafka keeps the last ISR member the same way).
                    isr = p.isr.clone();
                }
                let mut leader = if p.leader >= 0 && live(p.leader) {
                    p.leader
                } else {
                    p.replicas.iter().copied().find(|r| isr.contains(r) && live(*r)).unwrap_or(-1)
                };
                if leader < 0 && unclean_allowed {
                    if let Some(r) = p.replicas.iter().copied().find(|r| live(*r)) {
                        tracing::warn!(
                            topic = %t.name, partition = p.partition, leader = r, lost_isr = ?p.isr,
                            "unclean leader election: no in-sync replica is alive, electing an out-of-sync replica; \
                             records acknowledged after it fell behind are lost"
                        );
                        leader = r;
                        isr = vec![r];
                    }
                }
                if leader == p.leader && isr == p.isr {
                    continue;
                }
                let leader_epoch = if leader == p.leader { p.leader_epoch } else { p.leader_epoch + 1 };
                out.push(partition_record(t, p, isr, leader, leader_epoch));
            }
        }
        out
    }
}

pub(crate) fn partition_record(
    t: &TopicImage,
    p: &PartitionImage,
    isr: Vec<i32>,
    leader: i32,
    leader_epoch: i32,
) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id: t.topic_id,
        partition: p.partition,
        replicas: p.replicas.clone(),
        isr,
        leader,
        leader_epoch,
        partition_epoch: p.partition_epoch + 1,
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    }
}

/// The record that sets a partition to `after` (its partition epoch already the next one).
pub(crate) fn state_record(topic_id: uuid::Uuid, after: &PartitionImage) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition: after.partition,
        replicas: after.replicas.clone(),
        isr: after.isr.clone(),
        leader: after.leader,
        leader_epoch: after.leader_epoch,
        partition_epoch: after.partition_epoch,
        adding_replicas: after.adding_replicas.clone(),
        removing_replicas: after.removing_replicas.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{ControllerSettings, CreateTopicSpec};
    use crate::records::BrokerEndpoint;

    struct Cluster {
        c: Controller,
        image: MetadataImage,
        epochs: Vec<i64>,
    }

    impl Cluster {
        fn new(unclean: bool) -> Cluster {
            let settings = ControllerSettings::for_tests(1, 3, unclean);
            let mut cluster = Cluster { c: Controller::new(settings), image: MetadataImage::default(), epochs: vec![] };
            for id in 1..=3 {
                let endpoints = vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }];
                let p =
                    cluster.c.register_broker(&cluster.image, id, Uuid::new_v4(), endpoints, None).expect("register");
                let epoch = cluster.commit(p);
                cluster.epochs.push(epoch);
            }
            let spec = CreateTopicSpec {
                name: "t".into(),
                num_partitions: 1,
                replication_factor: 3,
                assignments: vec![],
                configs: vec![],
            };
            let p = cluster.c.create_topic(&cluster.image, spec, false).expect("create");
            cluster.commit(p);
            cluster
        }

        fn commit<T>(&mut self, p: Proposal<T>) -> T {
            p.records.iter().for_each(|r| self.image.apply(r));
            self.image.offset += 1;
            p.value
        }

        fn partition(&self) -> PartitionImage {
            self.image.topic("t").expect("t").partitions[&0].clone()
        }

        fn fence(&mut self, id: i32) {
            let p = self.c.fence_broker(&self.image, id).expect("fence");
            self.commit(p);
        }

        fn alter(&self, broker: i32, isr: Vec<i32>) -> Result<Proposal<PartitionImage>, MetadataError> {
            let p = self.partition();
            let change = IsrChange {
                broker_id: broker,
                broker_epoch: self.epochs[broker as usize - 1],
                topic_id: self.image.topic("t").expect("t").topic_id,
                partition: 0,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr,
            };
            self.c.alter_partition(&self.image, change)
        }
    }

    #[test]
    fn a_replica_in_a_failed_log_directory_leaves_the_isr_until_its_broker_registers_again() {
        let mut c = Cluster::new(false);
        let start = c.partition();
        let leader = start.leader;
        let topic_id = c.image.topic("t").expect("t").topic_id;
        let p = c.c.replicas_offline(&c.image, leader, c.epochs[leader as usize - 1], vec![(topic_id, 0)]);
        c.commit(p.expect("offline"));
        let p = c.partition();
        assert!(p.leader != leader && !p.isr.contains(&leader), "{p:?}");
        assert_eq!(p.leader_epoch, start.leader_epoch + 1);
        // The new leader may not take it back into the ISR while its directory is offline.
        let mut isr = p.isr.clone();
        isr.push(leader);
        let new_leader = p.leader;
        assert!(matches!(c.alter(new_leader, isr.clone()), Err(MetadataError::IneligibleReplica(_))));
        // A new incarnation (restarted, directory repaired) may catch up and rejoin.
        let endpoints = vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }];
        let r = c.c.register_broker(&c.image, leader, Uuid::new_v4(), endpoints, None).expect("register");
        let epoch = c.commit(r);
        c.epochs[leader as usize - 1] = epoch;
        assert!(c.alter(new_leader, isr).is_ok());
        // A report for an older incarnation is refused.
        let stale = c.c.replicas_offline(&c.image, leader, epoch - 1, vec![(topic_id, 0)]);
        assert!(matches!(stale, Err(MetadataError::StaleBrokerEpoch { .. })));
    }

    #[test]
    fn fencing_shrinks_isrs_and_moves_leadership_within_the_isr() {
        let mut c = Cluster::new(false);
        let start = c.partition();
        assert_eq!((start.replicas.len(), start.isr.len()), (3, 3));
        let leader = start.leader;
        let follower = *start.replicas.iter().find(|r| **r != leader).expect("follower");
        c.fence(follower);
        let p = c.partition();
        assert_eq!(
            (p.leader, p.leader_epoch),
            (leader, start.leader_epoch),
            "a follower leaving keeps the leader epoch"
        );
        assert!(!p.isr.contains(&follower) && p.isr.len() == 2);
        assert_eq!(p.partition_epoch, start.partition_epoch + 1);
        c.fence(leader);
        let p = c.partition();
        assert_eq!(p.isr.len(), 1);
        assert_eq!(p.leader, p.isr[0], "the last live ISR member leads");
        assert_eq!(p.leader_epoch, start.leader_epoch + 1);
        let last = p.leader;
        c.fence(last);
        let p = c.partition();
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![last]), "offline; the last ISR member keeps its place");
        // The out-of-sync follower returns: still offline, unclean election is off.
        let hb = c.c.broker_heartbeat(&c.image, follower, c.epochs[follower as usize - 1], 1).expect("hb");
        c.commit(hb);
        assert_eq!(c.partition().leader, -1);
        // The last ISR member returns: it leads again.
        let hb = c.c.broker_heartbeat(&c.image, last, c.epochs[last as usize - 1], 1).expect("hb");
        c.commit(hb);
        assert_eq!(c.partition().leader, last);
    }

    #[test]
    fn unclean_election_picks_a_live_out_of_sync_replica_only_when_allowed() {
        let mut c = Cluster::new(true);
        let p = c.partition();
        let isr_last = p.replicas[2];
        for r in p.replicas.clone() {
            if r != isr_last {
                c.fence(r);
            }
        }
        c.fence(isr_last);
        assert_eq!(c.partition().leader, -1, "nobody live");
        let out_of_sync = p.replicas[0];
        let hb = c.c.broker_heartbeat(&c.image, out_of_sync, c.epochs[out_of_sync as usize - 1], 1).expect("hb");
        c.commit(hb);
        let after = c.partition();
        assert_eq!((after.leader, after.isr.clone()), (out_of_sync, vec![out_of_sync]), "unclean leader");
    }

    #[test]
    fn alter_partition_checks_leader_epochs_and_members() {
        let mut c = Cluster::new(false);
        let p = c.partition();
        let leader = p.leader;
        let others: Vec<i32> = p.replicas.iter().copied().filter(|r| *r != leader).collect();
        let follower = others[0];
        assert!(matches!(c.alter(follower, vec![follower]), Err(MetadataError::NotLeader { .. })));
        assert!(matches!(c.alter(leader, vec![others[0]]), Err(MetadataError::InvalidRequest(_))));
        let shrink = c.alter(leader, vec![leader, others[0]]).expect("shrink");
        let after = c.commit(shrink);
        assert_eq!(after, c.partition());
        assert_eq!((after.isr.len(), after.partition_epoch), (2, p.partition_epoch + 1));
        // A proposal based on the old partition epoch is refused.
        let mut stale = IsrChange {
            broker_id: leader,
            broker_epoch: c.epochs[leader as usize - 1],
            topic_id: c.image.topic("t").expect("t").topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: p.isr.clone(),
        };
        assert!(matches!(
            c.c.alter_partition(&c.image, stale.clone()),
            Err(MetadataError::InvalidUpdateVersion { .. })
        ));
        // The shrink sent again (its answer lost) is answered with the committed partition.
        let mut resent = stale.clone();
        resent.isr = vec![leader, others[0]];
        let again = c.c.alter_partition(&c.image, resent).expect("a resent change");
        assert!(again.records.is_empty());
        assert_eq!(again.value, after);
        stale.partition_epoch = after.partition_epoch;
        stale.leader_epoch -= 1;
        assert!(matches!(c.c.alter_partition(&c.image, stale), Err(MetadataError::FencedLeaderEpoch { .. })));
        // A fenced broker may not join.
        c.fence(others[1]);
        assert!(matches!(c.alter(leader, p.replicas.clone()), Err(MetadataError::IneligibleReplica(_))));
    }
}
