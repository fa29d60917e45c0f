//! The plans of `strom cluster drain` and `strom cluster rebalance`, as pure functions of the
//! current assignment: which replicas move where. Each move keeps the replica's position in the
//! list (so a drained preferred leader's place goes to its replacement), and the least loaded
//! broker that does not hold the partition yet takes it (lowest id on a tie).

use std::collections::BTreeMap;

/// Partition → replicas, in order (the first is the preferred leader).
pub type Assignment = BTreeMap<(String, i32), Vec<i32>>;

fn loads(assignment: &Assignment, brokers: &[i32]) -> BTreeMap<i32, usize> {
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for r in assignment.values().flatten() {
        if let Some(n) = load.get_mut(r) {
            *n += 1;
        }
    }
    load
}

/// The new replicas of every partition that has one on `broker`, moved to the other brokers.
pub fn drain(assignment: &Assignment, brokers: &[i32], broker: i32) -> Result<Assignment, String> {
    let others: Vec<i32> = brokers.iter().copied().filter(|b| *b != broker).collect();
    let mut load = loads(assignment, &others);
    let mut plan = Assignment::new();
    for ((topic, partition), replicas) in assignment {
        let Some(at) = replicas.iter().position(|r| *r == broker) else { continue };
        let to = load
            .iter()
            .filter(|(b, _)| !replicas.contains(b))
            .min_by_key(|(b, n)| (**n, **b))
            .map(|(b, _)| *b)
            .ok_or_else(|| {
                format!(
                    "cannot drain broker {broker}: {topic}-{partition} has {} replicas and only {} other brokers hold none of it",
                    replicas.len(),
                    others.iter().filter(|b| !replicas.contains(b)).count()
                )
            })?;
        *load.entry(to).or_default() += 1;
        let mut target = replicas.clone();
        target[at] = to;
        plan.insert((topic.clone(), *partition), target);
    }
    Ok(plan)
}

/// Moves replicas from the most to the least loaded brokers until their counts differ by at
/// most one, then reorders replica lists so that each broker is the preferred leader of about
/// as many partitions as the others. Returns only the partitions that change.
pub fn rebalance(assignment: &Assignment, brokers: &[i32]) -> Assignment {
    let mut target = assignment.clone();
    let mut load = loads(&target, brokers);
    for _ in 0..assignment.values().map(Vec::len).sum::<usize>() {
        let (Some((&high, &h)), Some((&low, &l))) =
            (load.iter().max_by_key(|(b, n)| (**n, -**b)), load.iter().min_by_key(|(b, n)| (**n, **b)))
        else {
            break;
        };
        if h <= l + 1 {
            break;
        }
        let Some(replicas) = target.values_mut().find(|r| r.contains(&high) && !r.contains(&low)) else { break };
        let at = replicas.iter().position(|r| *r == high).unwrap_or_default();
        replicas[at] = low;
        *load.entry(high).or_default() -= 1;
        *load.entry(low).or_default() += 1;
    }
    // Preferred leaders: the first replica of each partition.
    for _ in 0..assignment.len() {
        let mut firsts: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
        for r in target.values() {
            *firsts.entry(r[0]).or_default() += 1;
        }
        let (Some((&high, &h)), Some((&low, &l))) =
            (firsts.iter().max_by_key(|(b, n)| (**n, -**b)), firsts.iter().min_by_key(|(b, n)| (**n, **b)))
        else {
            break;
        };
        if h <= l + 1 {
            break;
        }
        let Some(replicas) = target.values_mut().find(|r| r[0] == high && r.contains(&low)) else { break };
        let at = replicas.iter().position(|r| *r == low).unwrap_or_default();
        replicas.swap(0, at);
    }
    target.into_iter().filter(|(k, v)| assignment.get(k) != Some(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_three(partitions: i32) -> Assignment {
        (0..partitions).map(|p| (("t".to_string(), p), vec![1 + p % 3, 1 + (p + 1) % 3, 1 + (p + 2) % 3])).collect()
    }

    #[test]
    fn drain_moves_every_replica_off_the_broker_keeping_positions_and_spreading_load() {
        let mut a = on_three(6);
        a.insert(("u".into(), 0), vec![1, 2]);
        let plan = drain(&a, &[1, 2, 3, 4], 3).expect("plan");
        assert_eq!(plan.len(), 6, "every partition with a replica on 3");
        for (k, target) in &plan {
            assert!(!target.contains(&3) && target.contains(&4), "{k:?}: {target:?}");
            let before = &a[k];
            let at = before.iter().position(|r| *r == 3).expect("had 3");
            assert_eq!(target[at], 4, "the replacement takes the drained replica's place");
        }
        assert!(drain(&on_three(2), &[1, 2, 3], 3).is_err(), "RF 3 cannot live on 2 brokers");
    }

    #[test]
    fn rebalance_spreads_replicas_and_preferred_leaders_over_a_new_broker() {
        let a = on_three(4); // 12 replicas on 3 brokers, broker 4 new and empty
        let plan = rebalance(&a, &[1, 2, 3, 4]);
        let mut after = a.clone();
        after.extend(plan.clone());
        let load = loads(&after, &[1, 2, 3, 4]);
        assert!(load.values().all(|n| *n == 3), "{load:?}");
        let mut firsts: BTreeMap<i32, usize> = BTreeMap::new();
        for r in after.values() {
            *firsts.entry(r[0]).or_default() += 1;
        }
        assert!(firsts.values().all(|n| *n == 1), "each broker leads one of four partitions: {firsts:?}");
        assert!(after.values().all(|r| r.len() == 3 && r.iter().collect::<std::collections::BTreeSet<_>>().len() == 3));
        assert!(rebalance(&after, &[1, 2, 3, 4]).is_empty(), "balanced: nothing to do");
    }
}
