//! Kafka's RoundRobinAssignor: all partitions in topic/partition order, dealt to the members in
//! order, skipping members that do not subscribe to the partition's topic.

use super::{member_order, subscribed_partitions, Assignor, GroupAssignment, MemberSubscription};
use std::collections::BTreeMap;

pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(&self, counts: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment {
        let mut out: GroupAssignment = members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
        let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
        ordered.sort_by(|a, b| member_order(a, b));
        if ordered.is_empty() {
            return out;
        }
        let mut next = 0;
        for tp in subscribed_partitions(counts, members) {
            for _ in 0..ordered.len() {
                let m = ordered[next % ordered.len()];
                next += 1;
                if m.topics.contains(&tp.topic) {
                    out.entry(m.member_id.clone()).or_default().push(tp);
                    break;
                }
            }
        }
        out
    }
}
