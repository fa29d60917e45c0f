//! Replication throttles (Kafka's ReplicationQuotaManager), set by reassignments: a leader
//! sends nothing more to a throttled replica that is out of the ISR while its rate over the
//! last 11 one-second windows (Kafka's replication.quota.window.num and .size.seconds) exceeds
//! `leader.replication.throttled.rate`; a follower leaves such partitions out of its fetches
//! beyond `follower.replication.throttled.rate`. Which replicas are throttled is a topic's
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`:
//! `partition:broker,...` or `*`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;
use strom_metadata::MetadataImage;

const WINDOWS: u64 = 11;

/// Bytes per one-second window, over the last `WINDOWS` windows.
pub struct ReplicationQuota {
    start: Instant,
    windows: Mutex<VecDeque<(u64, u64)>>,
}

impl Default for ReplicationQuota {
    fn default() -> ReplicationQuota {
        ReplicationQuota { start: Instant::now(), windows: Mutex::new(VecDeque::new()) }
    }
}

impl ReplicationQuota {
    fn second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    pub fn record(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.second();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match w.back_mut() {
            Some((s, b)) if *s == now => *b += bytes as u64,
            _ => w.push_back((now, bytes as u64)),
        }
        while w.front().is_some_and(|(s, _)| *s + WINDOWS <= now) {
            w.pop_front();
        }
    }

    /// Whether the rate of the recorded bytes is above `rate` bytes per second (never for
    /// Kafka's unset value, `Long.MAX_VALUE`).
    pub fn exceeded(&self, rate: u64) -> bool {
        if rate >= i64::MAX as u64 {
            return false;
        }
        let now = self.second();
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let live = w.iter().filter(|(s, _)| *s + WINDOWS > now);
        let (oldest, bytes) = live.fold((now, 0u64), |(o, b), (s, n)| (o.min(*s), b + n));
        let elapsed = (now - oldest + 1) as f64;
        bytes as f64 / elapsed > rate as f64
    }
}

#[derive(Default)]
pub struct ReplicationQuotas {
    pub leader: ReplicationQuota,
    pub follower: ReplicationQuota,
}

/// Whether the topic's throttled-replicas config (`key`) names this broker's replica of
/// `partition`.
pub fn is_throttled(image: &MetadataImage, topic: &str, key: &str, partition: i32, broker: i32) -> bool {
    let Some(value) = image.topic(topic).and_then(|t| t.configs.get(key)) else { return false };
    let value = value.trim();
    value == "*"
        || value.split(',').any(|e| {
            e.trim()
                .split_once(':')
                .is_some_and(|(p, b)| p.trim().parse() == Ok(partition) && b.trim().parse() == Ok(broker))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_over_the_windows_and_unset_never_throttles() {
        let q = ReplicationQuota::default();
        assert!(!q.exceeded(1_000));
        q.record(5_000);
        assert!(q.exceeded(1_000), "5000 bytes in the first second");
        assert!(!q.exceeded(10_000));
        assert!(!q.exceeded(i64::MAX as u64));
    }

    #[test]
    fn throttled_replica_lists_are_kafkas() {
        let mut image = MetadataImage::default();
        let id = uuid::Uuid::new_v4();
        image.apply(&strom_metadata::MetadataRecord::Topic { name: "t".into(), topic_id: id });
        let set = |image: &mut MetadataImage, v: &str| {
            image.apply(&strom_metadata::MetadataRecord::Config {
                topic: "t".into(),
                key: "leader.replication.throttled.replicas".into(),
                value: Some(v.into()),
            })
        };
        set(&mut image, "0:1, 1:2");
        let key = "leader.replication.throttled.replicas";
        assert!(is_throttled(&image, "t", key, 0, 1));
        assert!(is_throttled(&image, "t", key, 1, 2));
        assert!(!is_throttled(&image, "t", key, 0, 2));
        assert!(!is_throttled(&image, "t", "follower.replication.throttled.replicas", 0, 1));
        set(&mut image, "*");
        assert!(is_throttled(&image, "t", key, 7, 9));
    }
}
