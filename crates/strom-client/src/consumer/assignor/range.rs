//! Kafka's RangeAssignor: per topic, the subscribed members in order, each taking a contiguous
//! range; with n partitions and m members each gets n / m and the first n % m one more.

use super::{member_order, Assignor, GroupAssignment, MemberSubscription};
use crate::TopicPartition;
use std::collections::BTreeMap;

pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, counts: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment {
        let mut out: GroupAssignment = members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
        for (topic, n) in counts {
            let mut subscribed: Vec<&MemberSubscription> =
                members.iter().filter(|m| m.topics.contains(topic)).collect();
            if subscribed.is_empty() {
                continue;
            }
            subscribed.sort_by(|a, b| member_order(a, b));
            let m = subscribed.len() as i32;
            let (per, extra) = (n / m, n % m);
            let mut next = 0;
            for (i, member) in subscribed.iter().enumerate() {
                let take = per + i32::from((i as i32) < extra);
                let parts = out.entry(member.member_id.clone()).or_default();
                parts.extend((next..next + take).map(|p| TopicPartition::new(topic.clone(), p)));
                next += take;
            }
        }
        out
    }
}
