//! The preferred read replica (KIP-392): which replica a consumer that names its rack
//! (`client.rack`, Fetch v11+) should read from, by Kafka's `RackAwareReplicaSelector`. Pure;
//! the fetch handler gathers the candidates (the leader and the in-sync followers whose log
//! reaches the fetch offset) and answers `preferred_read_replica` when a follower is chosen.

/// A replica a consumer may read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub id: i32,
    pub rack: Option<String>,
    pub log_end_offset: i64,
    /// Milliseconds since the replica last caught up with the leader (0 for the leader).
    pub since_caught_up_ms: i64,
}

/// Kafka's `RackAwareReplicaSelector`: the leader when it is in the client's rack or no replica
/// is; otherwise the most caught-up replica of the client's rack (highest log end, then most
/// recently caught up, then highest id, as `ReplicaView.comparator()`). Returns the follower to
/// read from, or `None` for the leader.
pub fn rack_aware(client_rack: &str, leader: &ReplicaView, followers: &[ReplicaView]) -> Option<i32> {
    if client_rack.is_empty() || leader.rack.as_deref() == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|f| f.rack.as_deref() == Some(client_rack))
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.since_caught_up_ms.cmp(&a.since_caught_up_ms))
                .then(a.id.cmp(&b.id))
        })
        .map(|f| f.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: &str, log_end_offset: i64, since_caught_up_ms: i64) -> ReplicaView {
        ReplicaView { id, rack: Some(rack.to_string()), log_end_offset, since_caught_up_ms }
    }

    #[test]
    fn a_consumer_reads_in_its_own_rack() {
        let leader = view(1, "a", 100, 0);
        let followers = [view(2, "b", 90, 5), view(3, "c", 100, 0), view(4, "b", 95, 50), view(5, "b", 95, 10)];
        assert_eq!(rack_aware("b", &leader, &followers), Some(5), "most caught up, then most recent");
        assert_eq!(rack_aware("c", &leader, &followers), Some(3));
        assert_eq!(rack_aware("a", &leader, &followers), None, "the leader shares the rack");
        assert_eq!(rack_aware("z", &leader, &followers), None, "no replica in the rack: the leader");
        assert_eq!(rack_aware("", &leader, &followers), None, "no rack named: the leader");
        let tie = [view(2, "b", 95, 10), view(6, "b", 95, 10)];
        assert_eq!(rack_aware("b", &leader, &tie), Some(6), "then the highest id");
        let unracked = ReplicaView { rack: None, ..view(7, "", 100, 0) };
        assert_eq!(rack_aware("b", &leader, &[unracked]), None);
    }
}
