//! ElectLeaders (KIP-460, `kafka-leader-election` / `strom leader-election`): a preferred
//! election makes each partition's first assigned replica its leader again, if that replica is
//! live and in the ISR; an unclean one gives a partition without a leader a live replica even
//! out of the ISR (records acknowledged after it fell behind are lost). Kafka's outcomes per
//! partition: done, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION.

use crate::controller::{Controller, Proposal};
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::partition_change::partition_record;
use serde::{Deserialize, Serialize};

/// Which election (Kafka's ElectionType: 0 preferred, 1 unclean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// What happened to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    Elected,
    /// The partition already has the leader this election would give it.
    NotNeeded,
    /// The preferred replica is not live or not in the ISR.
    PreferredNotAvailable,
    /// No live replica could lead.
    EligibleNotAvailable,
    UnknownPartition,
}

impl Controller {
    /// Runs an election on `partitions` (None: every partition); the outcome of each partition
    /// asked for, or, for None, of each partition where an election was needed.
    pub fn elect_leaders(
        &self,
        image: &MetadataImage,
        election: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Proposal<Vec<(String, i32, ElectionOutcome)>> {
        let live = |id: i32, t: &TopicImage, p: &PartitionImage| {
            image.brokers.get(&id).is_some_and(|b| b.can_serve(&t.topic_id, p.partition))
        };
        let all = partitions.is_none();
        let asked: Vec<(String, i32)> = partitions.unwrap_or_else(|| {
            image.topics.values().flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p))).collect()
        });
        let mut records = Vec::new();
        let mut outcomes = Vec::new();
        for (topic, partition) in asked {
            let Some((t, p)) = image.topic(&topic).and_then(|t| Some((t, t.partitions.get(&partition)?))) else {
                outcomes.push((topic, partition, ElectionOutcome::UnknownPartition));
                continue;
            };
            let (outcome, change) = match election {
                ElectionType::Preferred => {
                    let preferred = p.replicas.first().copied().unwrap_or(-1);
                    if p.leader == preferred {
                        (ElectionOutcome::NotNeeded, None)
                    } else if preferred >= 0 && p.isr.contains(&preferred) && live(preferred, t, p) {
                        (ElectionOutcome::Elected, Some((preferred, p.isr.clone())))
                    } else {
                        (ElectionOutcome::PreferredNotAvailable, None)
                    }
                }
                ElectionType::Unclean if p.leader >= 0 => (ElectionOutcome::NotNeeded, None),
                ElectionType::Unclean => {
                    // A live ISR member first (a clean election after all), else any live replica.
                    let in_isr = p.replicas.iter().copied().find(|r| p.isr.contains(r) && live(*r, t, p));
                    match in_isr.or_else(|| p.replicas.iter().copied().find(|r| live(*r, t, p))) {
                        Some(r) if p.isr.contains(&r) => (ElectionOutcome::Elected, Some((r, p.isr.clone()))),
                        Some(r) => {
                            tracing::warn!(topic = %t.name, partition, leader = r, lost_isr = ?p.isr,
                                "unclean leader election asked for: electing an out-of-sync replica");
                            (ElectionOutcome::Elected, Some((r, vec![r])))
                        }
                        None => (ElectionOutcome::EligibleNotAvailable, None),
                    }
                }
            };
            if let Some((leader, isr)) = change {
                records.push(partition_record(t, p, isr, leader, p.leader_epoch + 1));
            }
            // Asked for everything: partitions that needed nothing are left out, as in Kafka.
            if !(all && outcome == ElectionOutcome::NotNeeded) {
                outcomes.push((topic, partition, outcome));
            }
        }
        Proposal::new(records, outcomes)
    }
}

impl Controller {
    /// Kafka's automatic leader rebalance: for every broker whose share of the partitions it
    /// prefers (it is their first replica) led by another broker is above `percentage` %, a
    /// preferred election on those partitions where it is live and in the ISR.
    pub fn rebalance_leaders(
        &self,
        image: &MetadataImage,
        percentage: u32,
    ) -> Proposal<Vec<(String, i32, ElectionOutcome)>> {
        let mut candidates = Vec::new();
        for b in image.brokers.values().filter(|b| !b.fenced) {
            let preferred: Vec<(&TopicImage, &PartitionImage)> = image
                .topics
                .values()
                .flat_map(|t| t.partitions.values().map(move |p| (t, p)))
                .filter(|(_, p)| p.replicas.first() == Some(&b.id))
                .collect();
            let elsewhere: Vec<_> = preferred.iter().filter(|(_, p)| p.leader != b.id).collect();
            if preferred.is_empty() || elsewhere.len() * 100 <= percentage as usize * preferred.len() {
                continue;
            }
            candidates.extend(
                elsewhere
                    .into_iter()
                    .filter(|(t, p)| p.isr.contains(&b.id) && b.can_serve(&t.topic_id, p.partition))
                    .map(|(t, p)| (t.name.clone(), p.partition)),
            );
        }
        if candidates.is_empty() {
            return Proposal::new(Vec::new(), Vec::new());
        }
        self.elect_leaders(image, ElectionType::Preferred, Some(candidates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{ControllerSettings, CreateTopicSpec};
    use crate::records::{BrokerEndpoint, MetadataRecord};
    use uuid::Uuid;

    fn cluster() -> (Controller, MetadataImage) {
        let settings = ControllerSettings::for_tests(1, 3, false);
        let mut c = Controller::new(settings);
        let mut image = MetadataImage::default();
        let commit = |image: &mut MetadataImage, records: Vec<MetadataRecord>| {
            records.iter().for_each(|r| image.apply(r));
            image.offset += 1;
        };
        for id in 1..=3 {
            let endpoints = vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 9090 }];
            let p = c.register_broker(&image, id, Uuid::new_v4(), endpoints, None).expect("register");
            commit(&mut image, p.records);
        }
        let spec = CreateTopicSpec {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 3,
            assignments: vec![],
            configs: vec![],
        };
        let p = c.create_topic(&image, spec, false).expect("create");
        commit(&mut image, p.records);
        let fence = c.fence_broker(&image, image.topic("t").expect("t").partitions[&0].leader).expect("fence");
        commit(&mut image, fence.records);
        (c, image)
    }

    #[test]
    fn a_preferred_election_gives_the_first_replica_back_its_leadership() {
        let (c, mut image) = cluster();
        let p = image.topic("t").expect("t").partitions[&0].clone();
        let preferred = p.replicas[0];
        assert_ne!(p.leader, preferred, "the preferred leader was fenced");
        let asked = Some(vec![("t".to_string(), 0), ("nope".to_string(), 0)]);
        let proposal = c.elect_leaders(&image, ElectionType::Preferred, asked.clone());
        assert_eq!(proposal.value[0].2, ElectionOutcome::PreferredNotAvailable, "fenced and out of the ISR");
        assert_eq!(proposal.value[1].2, ElectionOutcome::UnknownPartition);
        // Back, caught up: in the ISR again.
        let b = image.brokers.get_mut(&preferred).expect("broker");
        b.fenced = false;
        let mut back = p.clone();
        back.isr.push(preferred);
        image.topics.get_mut("t").expect("t").partitions.insert(0, back);
        // The automatic rebalance finds the same: 1 of 1 preferred partitions led elsewhere.
        let auto = c.rebalance_leaders(&image, 10);
        assert_eq!(auto.value, vec![("t".to_string(), 0, ElectionOutcome::Elected)]);
        let proposal = c.elect_leaders(&image, ElectionType::Preferred, asked);
        assert_eq!(proposal.value[0].2, ElectionOutcome::Elected);
        proposal.records.iter().for_each(|r| image.apply(r));
        let after = &image.topic("t").expect("t").partitions[&0];
        assert_eq!((after.leader, after.leader_epoch), (preferred, p.leader_epoch + 1));
        assert!(c.rebalance_leaders(&image, 10).value.is_empty(), "balanced");
        // Everything asked for: nothing needed, nothing reported.
        assert!(c.elect_leaders(&image, ElectionType::Preferred, None).value.is_empty());
        let again = c.elect_leaders(&image, ElectionType::Preferred, Some(vec![("t".to_string(), 0)]));
        assert_eq!(again.value[0].2, ElectionOutcome::NotNeeded);
    }
}
