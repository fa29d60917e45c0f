//! The fetching side of KIP-227, Java's FetchSessionHandler, for Strom's followers and
//! strom-client's consumer: the first fetch to a broker opens a session (epoch 0) naming every
//! partition; later fetches name only the partitions whose fetch position changed and list the
//! ones no longer fetched as forgotten, so a fetcher of many quiet partitions sends and receives
//! almost nothing. Any session error starts over with a full fetch.

use crate::messages::fetch_request::{FetchPartition, ForgottenTopic};
use crate::messages::{FetchRequest, FetchResponse, TopicName};
use crate::StrBytes;
use std::collections::HashMap;

/// (topic, partition)
type Key = (String, i32);

#[derive(Debug, Default, Clone)]
pub struct FetchSessionClient {
    session_id: i32,
    /// The epoch of the next request: 0 opens a session.
    next_epoch: i32,
    /// What the session holds for each partition, as last sent.
    sent: HashMap<Key, FetchPartition>,
    /// What the request in flight will make the session hold, once answered.
    pending: Option<HashMap<Key, FetchPartition>>,
}

fn same_position(a: &FetchPartition, b: &FetchPartition) -> bool {
    a.fetch_offset == b.fetch_offset
        && a.current_leader_epoch == b.current_leader_epoch
        && a.last_fetched_epoch == b.last_fetched_epoch
        && a.log_start_offset == b.log_start_offset
        && a.partition_max_bytes == b.partition_max_bytes
}

impl FetchSessionClient {
    /// Turns a full fetch request (every partition to fetch) into the session's next request.
    pub fn prepare(&mut self, mut req: FetchRequest) -> FetchRequest {
        let wanted: HashMap<Key, FetchPartition> = req
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| ((t.topic.0.to_string(), p.partition), p.clone())))
            .collect();
        req.session_id = self.session_id;
        req.session_epoch = self.next_epoch;
        if self.session_id != 0 && self.next_epoch > 0 {
            for t in &mut req.topics {
                let name = t.topic.0.to_string();
                t.partitions
                    .retain(|p| self.sent.get(&(name.clone(), p.partition)).is_none_or(|s| !same_position(s, p)));
            }
            req.topics.retain(|t| !t.partitions.is_empty());
            let mut forgotten: HashMap<String, Vec<i32>> = HashMap::new();
            for (topic, partition) in self.sent.keys().filter(|k| !wanted.contains_key(*k)) {
                forgotten.entry(topic.clone()).or_default().push(*partition);
            }
            req.forgotten_topics_data = forgotten
                .into_iter()
                .map(|(topic, partitions)| {
                    ForgottenTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect();
        }
        self.pending = Some(wanted);
        req
    }

    /// The leader answered the prepared request without a top-level error.
    pub fn answered(&mut self, resp: &FetchResponse) {
        let Some(sent) = self.pending.take() else { return };
        if self.next_epoch == 0 {
            // A full fetch: a session if the leader made one (else full fetches go on).
            self.session_id = resp.session_id;
            self.next_epoch = if resp.session_id > 0 { 1 } else { 0 };
        } else {
            self.next_epoch = if self.next_epoch == i32::MAX { 1 } else { self.next_epoch + 1 };
        }
        self.sent = sent;
    }

    /// A session error, a failed request or a new connection: the next fetch is a full one,
    /// naming the old session so that the broker closes it (Java's `nextCloseExisting`) rather
    /// than keep its slot.
    pub fn reset(&mut self) {
        *self = FetchSessionClient { session_id: self.session_id, ..FetchSessionClient::default() };
    }

    /// Whether the next request is incremental.
    #[cfg(test)]
    fn in_session(&self) -> bool {
        self.session_id != 0 && self.next_epoch > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::fetch_request::FetchTopic;

    fn full(offsets: &[(i32, i64)]) -> FetchRequest {
        let partitions =
            offsets.iter().map(|&(p, o)| FetchPartition::default().with_partition(p).with_fetch_offset(o)).collect();
        let t = FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("t"))).with_partitions(partitions);
        FetchRequest::default().with_topics(vec![t])
    }

    fn named(req: &FetchRequest) -> Vec<i32> {
        req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.partition)).collect()
    }

    #[test]
    fn after_the_first_fetch_only_changed_positions_and_forgotten_partitions_are_sent() {
        let mut s = FetchSessionClient::default();
        let first = s.prepare(full(&[(0, 5), (1, 7), (2, 9)]));
        assert_eq!((first.session_id, first.session_epoch, named(&first)), (0, 0, vec![0, 1, 2]));
        let resp = FetchResponse::default().with_session_id(42);
        s.answered(&resp);
        assert!(s.in_session());
        // Partition 1 moved on, partition 2 is no longer fetched.
        let next = s.prepare(full(&[(0, 5), (1, 8)]));
        assert_eq!((next.session_id, next.session_epoch, named(&next)), (42, 1, vec![1]));
        assert_eq!(next.forgotten_topics_data[0].partitions, vec![2]);
        s.answered(&resp);
        let quiet = s.prepare(full(&[(0, 5), (1, 8)]));
        assert_eq!((quiet.session_epoch, named(&quiet), quiet.forgotten_topics_data.len()), (2, vec![], 0));
        // An error starts over with a full fetch, which closes the old session.
        s.reset();
        let again = s.prepare(full(&[(0, 5), (1, 8)]));
        assert_eq!((again.session_id, again.session_epoch, named(&again)), (42, 0, vec![0, 1]));
        // A leader that makes no session: full fetches go on.
        s.answered(&FetchResponse::default());
        let plain = s.prepare(full(&[(0, 5)]));
        assert_eq!((plain.session_id, plain.session_epoch), (0, 0));
    }
}
