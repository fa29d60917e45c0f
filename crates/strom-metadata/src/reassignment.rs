//! Partition reassignment (KIP-455, AlterPartitionReassignments), as KRaft's controller does it:
//!
//! ```text
//!  start:   target T, current replicas C (the merged list if one is in progress)
//!           adding = T − C, removing = C − T (ascending), replicas = T then removing; ISR as is
//!  adding replicas fetch, catch up and join the ISR (AlterPartition)
//!  complete (checked on every ISR change and at the start): ISR − removing ⊇ T
//!           replicas = T, ISR = ISR − removing, adding = removing = []; a leader being removed
//!           hands over to the first target replica in the ISR
//!  cancel:  replicas = merged − adding, ISR = ISR − adding, adding = removing = []
//! ```
//! Removed replicas stop and delete their logs when their broker sees the new replica set.

use crate::controller::{Controller, Proposal};
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::partition_change::state_record;
use serde::{Deserialize, Serialize};

/// Why a partition's reassignment was refused (Kafka's error codes, mapped by the broker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReassignmentError {
    UnknownTopicOrPartition(String),
    InvalidReplicaAssignment(String),
    InvalidReplicationFactor(String),
    NoReassignmentInProgress,
}

/// One partition's reassignment asked for: `Some(target)` starts (or replaces) one, `None`
/// cancels the one in progress.
pub type ReassignmentRequest = (String, i32, Option<Vec<i32>>);

pub type ReassignmentOutcome = (String, i32, Result<(), ReassignmentError>);

impl Controller {
    /// Starts or cancels reassignments; each partition is answered on its own, and the changes
    /// of all that succeeded commit together.
    pub fn alter_reassignments(
        &self,
        image: &MetadataImage,
        requests: Vec<ReassignmentRequest>,
        allow_replication_factor_change: bool,
    ) -> Proposal<Vec<ReassignmentOutcome>> {
        let mut records = Vec::new();
        let mut outcomes = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (topic, partition, target) in requests {
            if !seen.insert((topic.clone(), partition)) {
                let twice = format!("The partition {topic}:{partition} is reassigned twice in one request.");
                outcomes.push((topic, partition, Err(ReassignmentError::InvalidReplicaAssignment(twice))));
                continue;
            }
            let found = image.topic(&topic).ok_or_else(|| {
                ReassignmentError::UnknownTopicOrPartition(format!("Unable to find a topic named {topic}."))
            });
            let result = found.and_then(|t| {
                let p = t.partitions.get(&partition).ok_or_else(|| {
                    ReassignmentError::UnknownTopicOrPartition(format!("Unable to find partition {topic}:{partition}."))
                })?;
                let after = match &target {
                    Some(target) => start(image, t, p, target, allow_replication_factor_change)?,
                    None => cancel(image, t, p)?,
                };
                if &after != p {
                    records.push(state_record(t.topic_id, &after));
                }
                Ok(())
            });
            outcomes.push((topic, partition, result));
        }
        Proposal::new(records, outcomes)
    }
}

/// Kafka's validateManualPartitionAssignment: not empty, every broker registered, none twice.
fn validate(image: &MetadataImage, target: &[i32]) -> Result<(), ReassignmentError> {
    let invalid = |m: String| Err(ReassignmentError::InvalidReplicaAssignment(m));
    if target.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if !image.brokers.contains_key(id) {
            return invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if i > 0 && sorted[i - 1] == *id {
            return invalid(format!("The manual partition assignment includes the broker {id} more than once."));
        }
    }
    Ok(())
}

fn start(
    image: &MetadataImage,
    t: &TopicImage,
    p: &PartitionImage,
    target: &[i32],
    allow_replication_factor_change: bool,
) -> Result<PartitionImage, ReassignmentError> {
    validate(image, target)?;
    let current_rf = if p.is_reassigning() { p.target_replicas().len() } else { p.replicas.len() };
    if !allow_replication_factor_change && target.len() != current_rf {
        return Err(ReassignmentError::InvalidReplicationFactor(format!(
            "The replication factor is changed from {current_rf} to {}",
            target.len()
        )));
    }
    let mut removing: Vec<i32> = p.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
    removing.sort_unstable();
    let mut adding: Vec<i32> = target.iter().copied().filter(|r| !p.replicas.contains(r)).collect();
    adding.sort_unstable();
    let mut after = p.clone();
    after.replicas = target.iter().copied().chain(removing.iter().copied()).collect();
    after.adding_replicas = adding;
    after.removing_replicas = removing;
    complete_if_caught_up(image, t, &mut after);
    if after != *p {
        after.partition_epoch = p.partition_epoch + 1;
    }
    Ok(after)
}

fn cancel(image: &MetadataImage, t: &TopicImage, p: &PartitionImage) -> Result<PartitionImage, ReassignmentError> {
    if !p.is_reassigning() {
        return Err(ReassignmentError::NoReassignmentInProgress);
    }
    let mut after = p.clone();
    after.replicas = p.original_replicas();
    after.isr = p.isr.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
    if after.isr.is_empty() {
        return Err(ReassignmentError::InvalidReplicaAssignment(format!(
            "Unable to revert partition assignment for {}:{} because it would require an unclean leader election.",
            t.name, p.partition
        )));
    }
    after.adding_replicas.clear();
    after.removing_replicas.clear();
    elect_if_needed(image, t, &mut after, p.leader_epoch);
    after.partition_epoch = p.partition_epoch + 1;
    Ok(after)
}

/// Completes the reassignment of `p` (already carrying its new ISR) if every target replica
/// is in the ISR: the partition then has exactly the target replicas. Returns whether it did.
pub(crate) fn complete_if_caught_up(image: &MetadataImage, t: &TopicImage, p: &mut PartitionImage) -> bool {
    if !p.is_reassigning() {
        return false;
    }
    let isr: Vec<i32> = p.isr.iter().copied().filter(|r| !p.removing_replicas.contains(r)).collect();
    let replicas = p.target_replicas();
    if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
        return false;
    }
    let leader_epoch = p.leader_epoch;
    p.replicas = replicas;
    p.isr = isr;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    elect_if_needed(image, t, p, leader_epoch);
    true
}

/// Keeps the leader if it is still a live ISR member, else the first replica (in the new order)
/// that is: Kafka's electAnyLeader after a reassignment changes the replica set.
fn elect_if_needed(image: &MetadataImage, t: &TopicImage, p: &mut PartitionImage, leader_epoch: i32) {
    let live = |id: i32| image.brokers.get(&id).is_some_and(|b| b.can_serve(&t.topic_id, p.partition));
    if p.leader >= 0 && p.isr.contains(&p.leader) && live(p.leader) {
        return;
    }
    let leader = p.replicas.iter().copied().find(|r| p.isr.contains(r) && live(*r)).unwrap_or(-1);
    if leader != p.leader {
        p.leader = leader;
        p.leader_epoch = leader_epoch + 1;
    }
}

/// A reassignment in progress as ListPartitionReassignments answers it: (topic, partition,
/// replicas, adding, removing).
pub type Ongoing = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The reassignments in progress, of the partitions asked for (None: all).
pub fn ongoing_reassignments(image: &MetadataImage, asked: Option<&[(String, Vec<i32>)]>) -> Vec<Ongoing> {
    let wanted = |topic: &str, partition: i32| {
        asked.is_none_or(|a| a.iter().any(|(t, ps)| t == topic && ps.contains(&partition)))
    };
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values().map(move |p| (t, p)))
        .filter(|(t, p)| p.is_reassigning() && wanted(&t.name, p.partition))
        .map(|(t, p)| {
            (t.name.clone(), p.partition, p.replicas.clone(), p.adding_replicas.clone(), p.removing_replicas.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{ControllerSettings, CreateTopicSpec};
    use crate::partition_change::IsrChange;
    use crate::records::BrokerEndpoint;
    use uuid::Uuid;

    fn cluster() -> (Controller, MetadataImage, Vec<i64>) {
        let settings = ControllerSettings::for_tests(1, 3, false);
        let c = Controller::new(settings);
        let mut image = MetadataImage::default();
        let mut epochs = Vec::new();
        for id in 1..=4 {
            let endpoints = vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }];
            let p = c.register_broker(&image, id, Uuid::new_v4(), endpoints, None).expect("register");
            p.records.iter().for_each(|r| image.apply(r));
            epochs.push(p.value);
        }
        let spec = CreateTopicSpec {
            name: "t".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, vec![1, 2, 3])],
            configs: vec![],
        };
        let p = c.create_topic(&image, spec, false).expect("create");
        p.records.iter().for_each(|r| image.apply(r));
        (c, image, epochs)
    }

    fn partition(image: &MetadataImage) -> PartitionImage {
        image.topic("t").expect("t").partitions[&0].clone()
    }

    #[test]
    fn a_reassignment_adds_then_completes_when_the_target_is_in_sync_and_the_leader_hands_over() {
        let (c, mut image, epochs) = cluster();
        assert_eq!(partition(&image).leader, 1);
        let p = c.alter_reassignments(&image, vec![("t".into(), 0, Some(vec![2, 3, 4]))], true);
        assert_eq!(p.value[0].2, Ok(()));
        p.records.iter().for_each(|r| image.apply(r));
        let during = partition(&image);
        assert_eq!(
            (during.replicas.clone(), during.adding_replicas.clone(), during.removing_replicas.clone()),
            (vec![2, 3, 4, 1], vec![4], vec![1])
        );
        assert_eq!((during.leader, during.isr.clone()), (1, vec![1, 2, 3]), "the ISR and leader stay");
        assert_eq!(ongoing_reassignments(&image, None).len(), 1);
        // Broker 4 catches up: the leader adds it to the ISR, which completes the reassignment.
        let change = IsrChange {
            broker_id: 1,
            broker_epoch: epochs[0],
            topic_id: image.topic("t").expect("t").topic_id,
            partition: 0,
            leader_epoch: during.leader_epoch,
            partition_epoch: during.partition_epoch,
            isr: vec![1, 2, 3, 4],
        };
        let done = c.alter_partition(&image, change).expect("expand");
        done.records.iter().for_each(|r| image.apply(r));
        let after = partition(&image);
        assert_eq!((after.replicas.clone(), after.isr.clone()), (vec![2, 3, 4], vec![2, 3, 4]));
        assert!(!after.is_reassigning());
        assert_eq!((after.leader, after.leader_epoch), (2, during.leader_epoch + 1), "the removed leader hands over");
        assert!(ongoing_reassignments(&image, None).is_empty());
    }

    #[test]
    fn cancelling_reverts_and_bad_targets_are_refused_with_kafkas_errors() {
        let (c, mut image, _) = cluster();
        let cancel = c.alter_reassignments(&image, vec![("t".into(), 0, None)], true);
        assert_eq!(cancel.value[0].2, Err(ReassignmentError::NoReassignmentInProgress));
        let p = c.alter_reassignments(&image, vec![("t".into(), 0, Some(vec![2, 3, 4]))], true);
        p.records.iter().for_each(|r| image.apply(r));
        let cancel = c.alter_reassignments(&image, vec![("t".into(), 0, None)], true);
        assert_eq!(cancel.value[0].2, Ok(()));
        cancel.records.iter().for_each(|r| image.apply(r));
        let after = partition(&image);
        assert_eq!((after.replicas.clone(), after.isr.clone(), after.leader), (vec![2, 3, 1], vec![1, 2, 3], 1));
        assert!(!after.is_reassigning());
        for (target, allow, want) in [
            (vec![], true, "an empty replica list"),
            (vec![1, 9], true, "broker 9, but no such broker is registered"),
            (vec![2, 2, 3], true, "the broker 2 more than once"),
            (vec![1, 2], false, "The replication factor is changed from 3 to 2"),
        ] {
            let p = c.alter_reassignments(&image, vec![("t".into(), 0, Some(target))], allow);
            let err = format!("{:?}", p.value[0].2);
            assert!(err.contains(want), "{err}");
            assert!(p.records.is_empty());
        }
        let unknown = c.alter_reassignments(&image, vec![("t".into(), 5, Some(vec![1]))], true);
        assert!(matches!(unknown.value[0].2, Err(ReassignmentError::UnknownTopicOrPartition(_))));
    }
}
