//! Kafka's sticky assignors: a balanced assignment (partition counts differ by at most one where
//! subscriptions allow) that keeps each member's current partitions as far as balance permits.
//! The cooperative variant (KIP-429) withholds partitions that change owner: their owner
//! revokes them first, and they are assigned in the follow-up rebalance.

use super::{member_order, subscribed_partitions, Assignor, GroupAssignment, MemberSubscription, RebalanceProtocol};
use crate::TopicPartition;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct StickyAssignor;
pub struct CooperativeStickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn assign(&self, counts: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment {
        sticky_assign(counts, members)
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(&self, counts: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment {
        let mut out = sticky_assign(counts, members);
        let owner = previous_owners(members);
        for (member, parts) in out.iter_mut() {
            parts.retain(|tp| owner.get(tp).is_none_or(|o| o == member));
        }
        out
    }
}

/// Who owned each partition last; a claim from a higher generation wins a conflict.
fn previous_owners(members: &[MemberSubscription]) -> HashMap<TopicPartition, String> {
    let mut owners: HashMap<TopicPartition, (i32, String)> = HashMap::new();
    let mut ordered: Vec<&MemberSubscription> = members.iter().collect();
    ordered.sort_by(|a, b| member_order(a, b));
    for m in ordered {
        for tp in &m.owned_partitions {
            let claim = (m.generation_id, m.member_id.clone());
            match owners.get(tp) {
                Some((g, _)) if *g >= m.generation_id => {}
                _ => {
                    owners.insert(tp.clone(), claim);
                }
            }
        }
    }
    owners.into_iter().map(|(tp, (_, m))| (tp, m)).collect()
}

fn sticky_assign(counts: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> GroupAssignment {
    let mut out: GroupAssignment = members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
    if members.is_empty() {
        return out;
    }
    let all = subscribed_partitions(counts, members);
    let valid: BTreeSet<&TopicPartition> = all.iter().collect();
    let subs: HashMap<&str, &MemberSubscription> = members.iter().map(|m| (m.member_id.as_str(), m)).collect();
    // Quota for equal subscriptions: floor for everybody, ceil for `total % members` of them.
    let floor = all.len() / members.len();
    let mut ceil_slots = all.len() % members.len();
    // Members keeping the most go first, so the extra slots go to those that already hold more.
    let owners = previous_owners(members);
    let mut kept: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
    for (tp, member) in &owners {
        let Some(m) = subs.get(member.as_str()) else { continue };
        if valid.contains(tp) && m.topics.contains(&tp.topic) {
            kept.entry(m.member_id.as_str()).or_default().push(tp.clone());
        }
    }
    let mut order: Vec<&MemberSubscription> = members.iter().collect();
    order.sort_by(|a, b| {
        let ka = kept.get(a.member_id.as_str()).map_or(0, Vec::len);
        let kb = kept.get(b.member_id.as_str()).map_or(0, Vec::len);
        kb.cmp(&ka).then_with(|| member_order(a, b))
    });
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
    for m in &order {
        let mut mine = kept.remove(m.member_id.as_str()).unwrap_or_default();
        mine.sort();
        let allowed = if ceil_slots > 0 && mine.len() > floor {
            ceil_slots -= 1;
            floor + 1
        } else {
            floor
        };
        mine.truncate(allowed.max(floor));
        taken.extend(mine.iter().cloned());
        out.insert(m.member_id.clone(), mine);
    }
    // The rest go, in order, to the eligible member holding the fewest.
    for tp in all.into_iter().filter(|tp| !taken.contains(tp)) {
        let target = members
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .min_by(|a, b| out[&a.member_id].len().cmp(&out[&b.member_id].len()).then_with(|| member_order(a, b)));
        if let Some(m) = target {
            out.get_mut(&m.member_id).expect("every member has an entry").push(tp);
        }
    }
    for parts in out.values_mut() {
        parts.sort();
    }
    out
}
