//! Where a new partition's replicas go, as Kafka's `AdminUtils` places them with a fixed start
//! (so a plan is reproducible): without racks, round robin over the live brokers starting at a
//! partition-dependent one; when every live broker names its rack (`broker.rack`), over the
//! brokers interleaved by rack (rack a, b, c, a, b, c, ...), each partition's followers chosen so
//! that its replicas span as many racks as there are, and then as many brokers. The first replica
//! is the preferred leader.

use crate::image::MetadataImage;
use std::collections::{BTreeMap, BTreeSet};

/// The replicas of `partition`, `rf` of them, over `brokers` (distinct, live, at least `rf`).
pub(crate) fn assign_replicas(image: &MetadataImage, brokers: &[i32], partition: i32, rf: usize) -> Vec<i32> {
    let with_racks: Vec<(i32, Option<&str>)> =
        brokers.iter().map(|b| (*b, image.brokers.get(b).and_then(|i| i.rack.as_deref()))).collect();
    place(&with_racks, partition, rf)
}

/// The same placement over brokers given with their racks (`kafka-reassign-partitions
/// --generate` plans with it): rack-aware only when every broker has a rack.
pub fn place(brokers: &[(i32, Option<&str>)], partition: i32, rf: usize) -> Vec<i32> {
    assert!(rf <= brokers.len(), "{rf} replicas over {} brokers", brokers.len());
    let racks: Option<BTreeMap<i32, &str>> = brokers.iter().map(|(b, r)| r.map(|r| (*b, r))).collect();
    let brokers: Vec<i32> = brokers.iter().map(|(b, _)| *b).collect();
    match racks {
        Some(racks) if !racks.is_empty() => rack_aware(&racks, partition, rf),
        _ => (0..rf).map(|i| brokers[(partition as usize + i) % brokers.len()]).collect(),
    }
}

/// Kafka's `assignReplicasToBrokersRackAware` with start index 0 and replica shift 0.
fn rack_aware(racks: &BTreeMap<i32, &str>, partition: i32, rf: usize) -> Vec<i32> {
    let arranged = rack_alternated(racks);
    let n = arranged.len();
    let num_racks = racks.values().collect::<BTreeSet<_>>().len();
    let p = partition.max(0) as usize;
    // The followers' shift grows by one every time the leaders have gone round all brokers.
    let shift = p / n;
    let first = p % n;
    let leader = arranged[first];
    let mut replicas = vec![leader];
    let mut racks_used: BTreeSet<&str> = BTreeSet::from([racks[&leader]]);
    let mut k = 0;
    while replicas.len() < rf {
        let broker = arranged[replica_index(first, shift * num_racks, k, n)];
        let rack = racks[&broker];
        let new_rack_or_all_used = !racks_used.contains(rack) || racks_used.len() == num_racks;
        let new_broker_or_all_used = !replicas.contains(&broker) || replicas.len() == n;
        if new_rack_or_all_used && new_broker_or_all_used {
            replicas.push(broker);
            racks_used.insert(rack);
        }
        k += 1;
        assert!(k <= 4 * n * n, "placement of {rf} replicas over {n} brokers did not finish");
    }
    replicas
}

/// Kafka's `replicaIndex`: the k-th candidate after `first`, never `first` itself.
fn replica_index(first: usize, shift: usize, k: usize, n: usize) -> usize {
    let step = 1 + (shift + k) % (n - 1);
    (first + step) % n
}

/// The brokers ordered by alternating racks (racks and brokers in ascending order).
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (b, r) in racks {
        by_rack.entry(r).or_default().push(*b);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| by_rack.values().filter_map(move |bs| bs.get(i).copied())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{BrokerEndpoint, MetadataRecord};
    use uuid::Uuid;

    fn image(racks: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (id, rack) in racks {
            image.apply(&MetadataRecord::RegisterBroker {
                broker_id: *id,
                incarnation_id: Uuid::new_v4(),
                broker_epoch: 1,
                endpoints: vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "h".into(), port: 1 }],
                rack: rack.map(str::to_string),
                fenced: false,
            });
        }
        image
    }

    #[test]
    fn replicas_span_every_rack_and_leaders_spread_evenly() {
        let racks = [(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, Some("b")), (5, Some("c")), (6, Some("c"))];
        let img = image(&racks);
        let brokers: Vec<i32> = (1..=6).collect();
        let mut leaders = BTreeMap::new();
        for p in 0..60 {
            let replicas = assign_replicas(&img, &brokers, p, 3);
            let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
            assert_eq!(distinct.len(), 3, "partition {p}: {replicas:?}");
            let rack_set: BTreeSet<&str> = replicas.iter().map(|b| racks[*b as usize - 1].1.unwrap()).collect();
            assert_eq!(rack_set.len(), 3, "partition {p} spans every rack: {replicas:?}");
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        assert!(leaders.values().all(|n| *n == 10), "leaders spread evenly: {leaders:?}");
    }

    #[test]
    fn more_replicas_than_racks_fill_racks_first_then_brokers() {
        let img = image(&[(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, Some("b"))]);
        for p in 0..8 {
            let replicas = assign_replicas(&img, &[1, 2, 3, 4], p, 3);
            let racks: BTreeSet<bool> = replicas.iter().map(|b| *b <= 2).collect();
            assert_eq!(racks.len(), 2, "both racks: {replicas:?}");
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
        }
    }

    #[test]
    fn without_racks_on_every_broker_placement_is_round_robin() {
        let img = image(&[(1, Some("a")), (2, None), (3, Some("b"))]);
        assert_eq!(assign_replicas(&img, &[1, 2, 3], 1, 3), vec![2, 3, 1]);
        assert_eq!(assign_replicas(&image(&[]), &[1, 2, 3], 0, 2), vec![1, 2]);
    }
}
