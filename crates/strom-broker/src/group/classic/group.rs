//! One group's state: members, generation, chosen protocol, leader, and the round in progress.

use super::types::{GroupState, JoinResponse, JoinedMember, RequestId};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata) in preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the round to complete.
    pub pending_join: Option<RequestId>,
    /// A SyncGroup waiting for the leader's assignment.
    pub pending_sync: Option<RequestId>,
    pub session_deadline_ms: i64,
    /// Order of joining; the first present member becomes leader when the old one is gone.
    pub join_order: u64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
}

#[derive(Debug)]
pub(super) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → current member id (KIP-345).
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to use them (KIP-394).
    pub pending_members: HashMap<String, i64>,
    /// When the current join round completes whether or not everyone rejoined.
    pub rebalance_deadline_ms: Option<i64>,
    /// The first round of an empty group waits group.initial.rebalance.delay.ms for more members.
    pub initial_join: bool,
    /// A member joined during the initial delay, so the delay is extended once more.
    pub initial_member_added: bool,
    /// Members that have not yet sent SyncGroup for the current generation; they are removed
    /// when the rebalance timeout passes without it.
    pub awaiting_sync: HashSet<String>,
    pub round_started_ms: i64,
    pub state_timestamp_ms: i64,
    pub next_join_order: u64,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: None,
            initial_join: false,
            initial_member_added: false,
            awaiting_sync: HashSet::new(),
            round_started_ms: now_ms,
            state_timestamp_ms: now_ms,
            next_join_order: 0,
        }
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// Protocols every member supports, in the order the first-joined member prefers them.
    pub fn common_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.values().min_by_key(|m| m.join_order) else { return Vec::new() };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect()
    }

    /// Whether a member with these protocols can join (shares one with everybody).
    pub fn accepts_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let common = self.common_protocols();
        protocols.iter().any(|(n, _)| common.contains(n))
    }

    /// Kafka's selectProtocol: each member votes for its most preferred protocol among those all
    /// members support; the most votes win (ties: the first in the candidates' order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.common_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    /// KIP-345: a request naming a static instance under a member id that is not its current one.
    pub fn is_static_member_fenced(&self, instance: Option<&str>, member_id: &str) -> bool {
        instance.and_then(|i| self.static_members.get(i)).is_some_and(|current| current != member_id)
    }

    pub fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| m.rebalance_timeout_ms as i64).max().unwrap_or(0)
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            let mut ms: Vec<&Member> = self.members.values().collect();
            ms.sort_by_key(|m| m.join_order);
            ms.iter()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            skip_assignment: false,
            members,
        }
    }
}
