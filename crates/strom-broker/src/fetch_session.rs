//! Incremental fetch sessions (KIP-227), Kafka's FetchSessionCache: a client that fetches many
//! partitions sends them once, then only what changed (new offsets, partitions added, forgotten
//! ones); the broker answers only the partitions with something new (records, a moved high
//! watermark or log start, an error).
//!
//! ```text
//!  session id, epoch   meaning
//!  0, -1               no session: a full fetch, answered in full (session id 0)
//!  0 or id, 0          a full fetch that opens a new session (closing `id`): its id in the answer
//!  id, -1              closes `id`; a full fetch without a session
//!  id, n > 0           an incremental fetch of session `id`, whose epoch must be n
//! ```
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions. When it is full, a new
//! session takes the slot of one idle for two minutes, else of a smaller one that is not a
//! follower's (followers' sessions are privileged, as in Kafka), else it is not created (id 0).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::{FetchRequest, FetchResponse};
use strom_protocol::ResponseError;

/// How long a session must be idle before any new session may take its slot.
const EVICTION_MS: i64 = 120_000;

/// A partition of a session: what the client last asked, and what it was last told.
#[derive(Debug, Clone)]
struct CachedPartition {
    request: FetchPartition,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// (topic name, or its id from Fetch v13 on) and partition.
type PartitionKey = (String, uuid::Uuid, i32);

#[derive(Debug)]
struct Session {
    epoch: i32,
    privileged: bool,
    last_used_ms: i64,
    partitions: SessionPartitions,
}

/// A session's partitions by key, and their order (added last, or served last, at the end):
/// lookups stay constant-time for sessions of thousands of partitions.
#[derive(Debug, Default)]
struct SessionPartitions {
    by_key: HashMap<PartitionKey, CachedPartition>,
    order: Vec<PartitionKey>,
}

impl SessionPartitions {
    fn from_list(list: Vec<(PartitionKey, CachedPartition)>) -> SessionPartitions {
        let mut out = SessionPartitions::default();
        for (key, cached) in list {
            out.upsert(key, cached);
        }
        out
    }

    fn upsert(&mut self, key: PartitionKey, cached: CachedPartition) {
        if self.by_key.insert(key.clone(), cached).is_none() {
            self.order.push(key);
        }
    }

    fn remove_all(&mut self, gone: &HashSet<PartitionKey>) {
        if gone.is_empty() {
            return;
        }
        self.by_key.retain(|k, _| !gone.contains(k));
        self.order.retain(|k| !gone.contains(k));
    }

    /// Moves `served` to the end, keeping the order within each part.
    fn move_to_end(&mut self, served: &HashSet<PartitionKey>) {
        if served.is_empty() {
            return;
        }
        let (last, mut first): (Vec<_>, Vec<_>) = self.order.drain(..).partition(|k| served.contains(k));
        first.extend(last);
        self.order = first;
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn in_order(&self) -> impl Iterator<Item = (&PartitionKey, &CachedPartition)> {
        self.order.iter().filter_map(|k| self.by_key.get(k).map(|c| (k, c)))
    }
}

/// What a fetch request is, as far as sessions go (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionContext {
    Sessionless,
    /// A full fetch that opens a session when the answer is ready.
    Full {
        privileged: bool,
    },
    /// An incremental fetch of session `id` (its epoch already advanced).
    Incremental {
        id: i32,
    },
}

pub struct FetchSessionCache {
    slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

fn key_of(topic: &FetchTopic, partition: i32, use_ids: bool) -> PartitionKey {
    if use_ids {
        (String::new(), topic.topic_id, partition)
    } else {
        (topic.topic.0.to_string(), uuid::Uuid::nil(), partition)
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSessionCache {
    pub fn new(slots: usize) -> FetchSessionCache {
        FetchSessionCache { slots, sessions: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the request's session fields, closing or updating its session. For an incremental
    /// fetch `req` is rewritten to name every partition of the session (as last asked), so that
    /// the fetch reads them all. `Err` is the top-level error code to answer with.
    pub fn begin(
        &self,
        req: &mut FetchRequest,
        version: i16,
        privileged: bool,
        now_ms: i64,
    ) -> Result<SessionContext, ResponseError> {
        if version < 7 {
            return Ok(SessionContext::Sessionless);
        }
        let use_ids = version >= 13;
        let mut sessions = self.lock();
        match (req.session_id, req.session_epoch) {
            (id, -1) => {
                sessions.remove(&id);
                Ok(SessionContext::Sessionless)
            }
            (id, 0) => {
                sessions.remove(&id);
                Ok(SessionContext::Full { privileged })
            }
            (id, epoch) => {
                let session = sessions.get_mut(&id).ok_or(ResponseError::FetchSessionIdNotFound)?;
                if session.epoch != epoch {
                    return Err(ResponseError::InvalidFetchSessionEpoch);
                }
                for topic in &req.topics {
                    for p in &topic.partitions {
                        let key = key_of(topic, p.partition, use_ids);
                        match session.partitions.by_key.get_mut(&key) {
                            Some(cached) => cached.request = p.clone(),
                            None => session.partitions.upsert(key, cached_from(p, None)),
                        }
                    }
                }
                let mut gone = HashSet::new();
                for forgotten in &req.forgotten_topics_data {
                    for partition in &forgotten.partitions {
                        let key = if use_ids {
                            (String::new(), forgotten.topic_id, *partition)
                        } else {
                            (forgotten.topic.0.to_string(), uuid::Uuid::nil(), *partition)
                        };
                        gone.insert(key);
                    }
                }
                session.partitions.remove_all(&gone);
                session.epoch = next_epoch(session.epoch);
                session.last_used_ms = now_ms;
                req.topics = rebuild_topics(&session.partitions, use_ids);
                Ok(SessionContext::Incremental { id })
            }
        }
    }

    /// Completes the answer: opens the session of a full fetch (its id in the answer), or keeps
    /// only the partitions with news for an incremental one. `has_records(t, p)` says whether
    /// partition `p` of topic `t` of the response carries records. Returns the partitions kept,
    /// by (topic index, partition index) in the response as it was, for the caller to remap what
    /// it holds beside it.
    pub fn finish(
        &self,
        context: &SessionContext,
        req: &FetchRequest,
        resp: &mut FetchResponse,
        version: i16,
        now_ms: i64,
        has_records: impl Fn(usize, usize) -> bool,
    ) -> Vec<(usize, usize)> {
        let use_ids = version >= 13;
        let all: Vec<(usize, usize)> = resp
            .responses
            .iter()
            .enumerate()
            .flat_map(|(t, topic)| (0..topic.partitions.len()).map(move |p| (t, p)))
            .collect();
        match context {
            SessionContext::Sessionless => {
                resp.session_id = 0;
                all
            }
            SessionContext::Full { privileged } => {
                let answered = answered(resp, use_ids);
                let mut partitions = Vec::new();
                for topic in &req.topics {
                    for p in &topic.partitions {
                        let key = key_of(topic, p.partition, use_ids);
                        let values = answered.get(&key).copied();
                        partitions.push((key, cached_from(p, values)));
                    }
                }
                resp.session_id = self.create(partitions, *privileged, now_ms);
                all
            }
            SessionContext::Incremental { id } => {
                resp.session_id = *id;
                let mut sessions = self.lock();
                let Some(session) = sessions.get_mut(id) else { return all };
                let mut kept = Vec::new();
                let mut served: HashSet<PartitionKey> = HashSet::new();
                for (t, topic) in resp.responses.iter().enumerate() {
                    for (i, p) in topic.partitions.iter().enumerate() {
                        let key = if use_ids {
                            (String::new(), topic.topic_id, p.partition_index)
                        } else {
                            (topic.topic.0.to_string(), uuid::Uuid::nil(), p.partition_index)
                        };
                        let Some(cached) = session.partitions.by_key.get_mut(&key) else {
                            continue;
                        };
                        let news = p.error_code != 0
                            || has_records(t, i)
                            || p.high_watermark != cached.high_watermark
                            || p.last_stable_offset != cached.last_stable_offset
                            || p.log_start_offset != cached.log_start_offset
                            || p.preferred_read_replica.0 >= 0
                            || p.diverging_epoch.epoch >= 0;
                        if has_records(t, i) {
                            served.insert(key.clone());
                        }
                        if news {
                            // After an error nothing is known: the next answer tells all again
                            // (Kafka's maybeUpdateResponseData).
                            let known = |v: i64| if p.error_code == 0 { v } else { -1 };
                            cached.high_watermark = known(p.high_watermark);
                            cached.last_stable_offset = known(p.last_stable_offset);
                            cached.log_start_offset = known(p.log_start_offset);
                            kept.push((t, i));
                        }
                    }
                }
                // Kafka's fairness: partitions that returned records go to the end, so that the
                // next fetch's max_bytes reaches the others first.
                session.partitions.move_to_end(&served);
                drop(sessions);
                retain_partitions(resp, &kept);
                kept
            }
        }
    }

    /// A new session with these partitions, if a slot can be had; its id, or 0.
    fn create(&self, partitions: Vec<(PartitionKey, CachedPartition)>, privileged: bool, now_ms: i64) -> i32 {
        let mut sessions = self.lock();
        if sessions.len() >= self.slots {
            let stale =
                sessions.iter().filter(|(_, s)| now_ms - s.last_used_ms > EVICTION_MS).map(|(id, _)| *id).next();
            let smaller = || {
                sessions
                    .iter()
                    .filter(|(_, s)| !s.privileged && (privileged || s.partitions.len() < partitions.len()))
                    .min_by_key(|(_, s)| (s.partitions.len(), s.last_used_ms))
                    .map(|(id, _)| *id)
            };
            match stale.or_else(smaller) {
                Some(id) => {
                    sessions.remove(&id);
                }
                None => return 0,
            }
        }
        let mut id = new_session_id();
        while id == 0 || sessions.contains_key(&id) {
            id = new_session_id();
        }
        let fetcher = if privileged { "a follower" } else { "a consumer" };
        tracing::info!(session_id = id, partitions = partitions.len(), "opened a fetch session for {fetcher}");
        let partitions = SessionPartitions::from_list(partitions);
        sessions.insert(id, Session { epoch: 1, privileged, last_used_ms: now_ms, partitions });
        id
    }
}

fn new_session_id() -> i32 {
    (uuid::Uuid::new_v4().as_u64_pair().0 & 0x7FFF_FFFF) as i32
}

/// The response's values of each partition: (HW, LSO, log start), by key.
fn answered(resp: &FetchResponse, use_ids: bool) -> HashMap<PartitionKey, (i64, i64, i64)> {
    let mut out = HashMap::new();
    for t in &resp.responses {
        for p in &t.partitions {
            let key = if use_ids {
                (String::new(), t.topic_id, p.partition_index)
            } else {
                (t.topic.0.to_string(), uuid::Uuid::nil(), p.partition_index)
            };
            out.insert(key, (p.high_watermark, p.last_stable_offset, p.log_start_offset));
        }
    }
    out
}

fn cached_from(p: &FetchPartition, answered: Option<(i64, i64, i64)>) -> CachedPartition {
    let (high_watermark, last_stable_offset, log_start_offset) = answered.unwrap_or((-1, -1, -1));
    CachedPartition { request: p.clone(), high_watermark, last_stable_offset, log_start_offset }
}

/// The session's partitions as a request's topics, in session order.
fn rebuild_topics(partitions: &SessionPartitions, use_ids: bool) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((name, id, _), cached) in partitions.in_order() {
        let same = |t: &FetchTopic| if use_ids { t.topic_id == *id } else { t.topic.0.as_str() == name.as_str() };
        match topics.last_mut().filter(|t| same(t)) {
            Some(t) => t.partitions.push(cached.request.clone()),
            None => {
                let mut t = FetchTopic::default();
                t.topic = strom_protocol::messages::TopicName(strom_protocol::StrBytes::from_string(name.clone()));
                t.topic_id = *id;
                t.partitions = vec![cached.request.clone()];
                topics.push(t);
            }
        }
    }
    topics
}

/// Keeps only the listed (topic index, partition index) of the response; empty topics go.
fn retain_partitions(resp: &mut FetchResponse, kept: &[(usize, usize)]) {
    let kept: HashSet<(usize, usize)> = kept.iter().copied().collect();
    for (t, topic) in resp.responses.iter_mut().enumerate() {
        let mut i = 0;
        topic.partitions.retain(|_| {
            let keep = kept.contains(&(t, i));
            i += 1;
            keep
        });
    }
    resp.responses.retain(|t| !t.partitions.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::messages::fetch_request::ForgottenTopic;
    use strom_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use strom_protocol::messages::TopicName;
    use strom_protocol::StrBytes;

    fn request(id: i32, epoch: i32, partitions: &[i32]) -> FetchRequest {
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions = partitions.iter().map(|&p| FetchPartition::default().with_partition(p)).collect();
        let mut req = FetchRequest::default();
        req.session_id = id;
        req.session_epoch = epoch;
        req.topics = vec![t];
        req
    }

    fn response(req: &FetchRequest, hw: i64) -> FetchResponse {
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions = req.topics[0]
            .partitions
            .iter()
            .map(|p| {
                let mut d = PartitionData::default();
                d.partition_index = p.partition;
                d.high_watermark = hw + i64::from(p.partition);
                d
            })
            .collect();
        let mut resp = FetchResponse::default();
        resp.responses = vec![t];
        resp
    }

    /// One whole exchange: the partitions answered (by index) and the session id.
    fn fetch(cache: &FetchSessionCache, mut req: FetchRequest, hw: i64, records: &[i32]) -> (Vec<i32>, i32) {
        let ctx = cache.begin(&mut req, 12, false, 0).expect("a valid session request");
        let mut resp = response(&req, hw);
        let parts: Vec<i32> = req.topics[0].partitions.iter().map(|p| p.partition).collect();
        cache.finish(&ctx, &req, &mut resp, 12, 0, |_, i| records.contains(&parts[i]));
        let mut answered: Vec<i32> = resp
            .responses
            .first()
            .map(|t| t.partitions.iter().map(|p| p.partition_index).collect())
            .unwrap_or_default();
        answered.sort_unstable();
        (answered, resp.session_id)
    }

    #[test]
    fn an_incremental_fetch_answers_only_what_changed() {
        let cache = FetchSessionCache::new(10);
        let (all, id) = fetch(&cache, request(0, 0, &[0, 1, 2]), 100, &[]);
        assert_eq!(all, vec![0, 1, 2], "a full fetch answers everything");
        assert!(id > 0, "and opens a session");
        // Nothing changed: nothing in the answer, though every partition was read.
        assert_eq!(fetch(&cache, request(id, 1, &[]), 100, &[]), (vec![], id));
        // Partition 1 has records, the high watermarks of all moved on.
        assert_eq!(fetch(&cache, request(id, 2, &[]), 100, &[1]).0, vec![1]);
        assert_eq!(fetch(&cache, request(id, 3, &[]), 200, &[]).0, vec![0, 1, 2]);
        // A partition added, one forgotten.
        let mut req = request(id, 4, &[7]);
        let mut forgotten = ForgottenTopic::default();
        forgotten.topic = TopicName(StrBytes::from_static_str("t"));
        forgotten.partitions = vec![0];
        req.forgotten_topics_data = vec![forgotten];
        assert_eq!(fetch(&cache, req, 200, &[]).0, vec![7], "only the new partition has news");
        assert_eq!(fetch(&cache, request(id, 5, &[]), 300, &[]).0, vec![1, 2, 7]);
        // Partition 1 returned records: the next fetch reads it last.
        assert_eq!(fetch(&cache, request(id, 6, &[]), 400, &[1]).0, vec![1, 2, 7]);
        let mut req = request(id, 7, &[]);
        cache.begin(&mut req, 12, false, 0).expect("begin");
        let order: Vec<i32> = req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.partition)).collect();
        assert_eq!(order, vec![2, 7, 1]);
    }

    #[test]
    fn wrong_session_ids_and_epochs_are_refused_and_epoch_minus_one_closes() {
        let cache = FetchSessionCache::new(10);
        let (_, id) = fetch(&cache, request(0, 0, &[0]), 1, &[]);
        let err = |req: FetchRequest| cache.begin(&mut req.clone(), 12, false, 0).expect_err("refused");
        assert_eq!(err(request(id + 1, 1, &[])), ResponseError::FetchSessionIdNotFound);
        assert_eq!(err(request(id, 7, &[])), ResponseError::InvalidFetchSessionEpoch);
        assert_eq!(fetch(&cache, request(id, -1, &[0]), 1, &[]), (vec![0], 0), "closed, answered in full");
        assert!(cache.is_empty());
        assert_eq!(err(request(id, 1, &[])), ResponseError::FetchSessionIdNotFound);
    }

    #[test]
    fn a_full_cache_gives_way_to_larger_and_privileged_sessions_only() {
        let cache = FetchSessionCache::new(1);
        let (_, big) = fetch(&cache, request(0, 0, &[0, 1, 2]), 1, &[]);
        assert_eq!(fetch(&cache, request(0, 0, &[0]), 1, &[]).1, 0, "a smaller session gets no slot");
        let (_, bigger) = fetch(&cache, request(0, 0, &[0, 1, 2, 3]), 1, &[]);
        assert!(bigger > 0 && cache.begin(&mut request(big, 1, &[]), 12, false, 0).is_err(), "the smaller one went");
        let mut follower = request(0, 0, &[0]);
        let ctx = cache.begin(&mut follower, 12, true, 0).expect("begin");
        let mut resp = response(&follower, 1);
        cache.finish(&ctx, &follower, &mut resp, 12, 0, |_, _| false);
        assert!(resp.session_id > 0, "a follower's session takes a consumer's slot");
        // Idle past the eviction time, any session gives way.
        let mut late = request(0, 0, &[0]);
        let ctx = cache.begin(&mut late, 12, false, EVICTION_MS + 1).expect("begin");
        let mut resp = response(&late, 1);
        cache.finish(&ctx, &late, &mut resp, 12, EVICTION_MS + 1, |_, _| false);
        assert!(resp.session_id > 0);
    }
}
