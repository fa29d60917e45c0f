//! The documented examples of each assignor, codec round trips, and a randomized check that
//! every assignor hands each subscribed partition to exactly one subscribed member.

use super::*;
use crate::TopicPartition;

fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        member_id: id.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        generation_id: -1,
        ..Default::default()
    }
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn counts(c: &[(&str, i32)]) -> BTreeMap<String, i32> {
    c.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

#[test]
fn range_gives_the_first_members_the_extra_partitions() {
    // RangeAssignor's Javadoc: t0 and t1 with 3 partitions each, C0 and C1.
    let a = RangeAssignor
        .assign(&counts(&[("t0", 3), ("t1", 3)]), &[member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])]);
    assert_eq!(a["C0"], vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]);
    assert_eq!(a["C1"], vec![tp("t0", 2), tp("t1", 2)]);
}

#[test]
fn round_robin_deals_in_order_skipping_unsubscribed_members() {
    // RoundRobinAssignor's Javadoc: t0 (1 partition), t1 (2), t2 (3); C0 ⊂ {t0}, C1 ⊂ {t0,t1}, C2 ⊂ {t0,t1,t2}.
    let a = RoundRobinAssignor.assign(
        &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
        &[member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])],
    );
    assert_eq!(a["C0"], vec![tp("t0", 0)]);
    assert_eq!(a["C1"], vec![tp("t1", 0)]);
    assert_eq!(a["C2"], vec![tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]);
}

#[test]
fn sticky_keeps_ownership_and_moves_the_minimum() {
    let c = counts(&[("t", 6)]);
    let mut a = member("A", &["t"]);
    let mut b = member("B", &["t"]);
    a.owned_partitions = vec![tp("t", 0), tp("t", 2), tp("t", 4)];
    b.owned_partitions = vec![tp("t", 1), tp("t", 3), tp("t", 5)];
    let kept = StickyAssignor.assign(&c, &[a.clone(), b.clone()]);
    assert_eq!(kept["A"], a.owned_partitions, "already balanced: nothing moves");
    assert_eq!(kept["B"], b.owned_partitions);
    let newcomer = member("C", &["t"]);
    let after = StickyAssignor.assign(&c, &[a.clone(), b.clone(), newcomer.clone()]);
    assert_eq!(after["A"].len() + after["B"].len() + after["C"].len(), 6);
    assert!(after.values().all(|p| p.len() == 2), "{after:?}");
    let moved = a.owned_partitions.iter().chain(&b.owned_partitions).filter(|p| after["C"].contains(p)).count();
    assert_eq!(moved, 2, "only the newcomer's share moves");
    assert!(after["A"].iter().all(|p| a.owned_partitions.contains(p)));

    // Cooperative: partitions changing owner are withheld for the follow-up round.
    let coop = CooperativeStickyAssignor.assign(&c, &[a.clone(), b.clone(), newcomer]);
    assert!(coop["C"].is_empty(), "C gets them after A and B revoke: {coop:?}");
    assert_eq!(coop["A"].len() + coop["B"].len(), 4);
}

#[test]
fn codec_round_trips_every_subscription_version() {
    let owned = vec![tp("a", 1), tp("b", 0)];
    for version in 0..=3 {
        let bytes = encode_subscription(&["a".into(), "b".into()], None, &owned, 7, Some("rack1"), version);
        let m = decode_subscription("m1", Some("i1"), &bytes).expect("decode");
        assert_eq!(m.topics, vec!["a", "b"]);
        assert_eq!(m.owned_partitions, if version >= 1 { owned.clone() } else { vec![] }, "v{version}");
        assert_eq!(m.generation_id, if version >= 2 { 7 } else { -1 });
        assert_eq!(m.rack_id.as_deref(), if version >= 3 { Some("rack1") } else { None });
        assert_eq!(m.group_instance_id.as_deref(), Some("i1"));
    }
    let parts = vec![tp("a", 0), tp("a", 2), tp("b", 1)];
    assert_eq!(decode_assignment(&encode_assignment(&parts, None)).expect("decode"), parts);
    assert!(decode_assignment(&Bytes::new()).expect("empty").is_empty());
    assert!(decode_subscription("m", None, &Bytes::from_static(&[0, 0, 0])).is_err());
}

#[test]
fn names_and_class_names_resolve() {
    for (name, expected) in [
        ("range", "range"),
        ("org.apache.kafka.clients.consumer.RoundRobinAssignor", "roundrobin"),
        ("cooperative-sticky", "cooperative-sticky"),
        ("org.apache.kafka.clients.consumer.StickyAssignor", "sticky"),
    ] {
        assert_eq!(assignor_by_name(name).map(|a| a.name()), Some(expected));
    }
    assert!(assignor_by_name("fancy").is_none());
}

#[test]
fn every_assignor_assigns_each_partition_once_to_a_subscriber() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let topics = ["a", "b", "c"];
    for round in 0..300 {
        let c: BTreeMap<String, i32> = topics.iter().map(|t| (t.to_string(), 1 + next(8) as i32)).collect();
        let members: Vec<MemberSubscription> = (0..1 + next(6))
            .map(|i| {
                let mut subs: Vec<&str> = topics.iter().copied().filter(|_| next(2) == 0).collect();
                if subs.is_empty() {
                    subs.push("a");
                }
                let mut m = member(&format!("m{i}"), &subs);
                m.owned_partitions = (0..next(4)).map(|_| tp(topics[next(3) as usize], next(8) as i32)).collect();
                m
            })
            .collect();
        for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
            let a = assignor_by_name(name).expect("assignor").assign(&c, &members);
            let mut seen = BTreeSet::new();
            for (m, parts) in &a {
                let sub = members.iter().find(|x| &x.member_id == m).expect("a member");
                for p in parts {
                    assert!(sub.topics.contains(&p.topic), "round {round} {name}: {m} got {p} without subscribing");
                    assert!(p.partition < c[&p.topic], "round {round} {name}: {p} does not exist");
                    assert!(seen.insert(p.clone()), "round {round} {name}: {p} assigned twice");
                }
            }
            if name != "cooperative-sticky" {
                assert_eq!(seen, subscribed_partitions(&c, &members).into_iter().collect(), "round {round} {name}");
            }
        }
    }
}

use std::collections::BTreeSet;
