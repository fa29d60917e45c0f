//! The pieces the built-in partitioners share: a small lock-free random source and Kafka's
//! `StickyPartitionCache` (KIP-480).

use super::{to_positive, PartitionerContext};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Takes a lock even if another thread panicked while holding it: every critical section here
/// leaves the map consistent (single inserts or assignments), so the data is still good.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Random numbers for partition choice. Partition choice needs spread, not secrecy, and the
/// crate takes no `rand` dependency: this is SplitMix64 (a Weyl sequence through a xorshift-multiply
/// finaliser), whose state advances with one `fetch_add`, so concurrent senders never block on it.
#[derive(Debug)]
pub(super) struct Rng {
    state: AtomicU64,
}

impl Rng {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// Seeded from the clock and a process-wide instance counter, so two partitioners created in
    /// the same nanosecond still diverge.
    pub(super) fn new() -> Rng {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        Rng::with_seed(nanos ^ instance.wrapping_mul(Self::GAMMA).rotate_left(17))
    }

    /// A fixed sequence, for tests that must not depend on luck.
    pub(super) fn with_seed(seed: u64) -> Rng {
        Rng { state: AtomicU64::new(seed) }
    }

    fn next_u64(&self) -> u64 {
        let mut z = self.state.fetch_add(Self::GAMMA, Ordering::Relaxed).wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`, drawn the way Kafka does: `toPositive(random.nextInt()) % n`.
    /// `n` must be at least 1.
    pub(super) fn below(&self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        to_positive((self.next_u64() >> 32) as u32 as i32) as usize % n
    }
}

/// Where a topic's keyless records go right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sticky {
    /// Records go to this partition.
    On(i32),
    /// The batch for this partition is done; the next record picks another partition.
    Leaving(i32),
}

/// Kafka's `StickyPartitionCache`: one sticky partition per topic, kept until the batch for it is
/// done, so keyless records fill one batch at a time instead of trickling into every partition
/// (KIP-480: fewer, fuller batches and lower latency).
///
/// Java picks the next partition inside `onNewBatch`; here `on_new_batch` only marks the topic as
/// leaving its partition and the next `partition` call picks, so the choice uses the availability
/// known at that moment (the trait's `on_new_batch` does not receive the available partitions).
#[derive(Debug)]
pub(super) struct StickyPartitionCache {
    topics: Mutex<HashMap<String, Sticky>>,
    rng: Rng,
}

impl StickyPartitionCache {
    pub(super) fn new(rng: Rng) -> StickyPartitionCache {
        StickyPartitionCache { topics: Mutex::new(HashMap::new()), rng }
    }

    /// The sticky partition for `ctx.topic`, choosing one if there is none yet or the last batch
    /// is done.
    pub(super) fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
        let mut topics = lock(&self.topics);
        let previous = match topics.get(ctx.topic) {
            // Java keeps the sticky partition even if its leader went away meanwhile; only a
            // partition that no longer exists at all (topic recreated smaller) is dropped.
            Some(Sticky::On(p)) if (0..ctx.partition_count.max(1)).contains(p) => return *p,
            Some(Sticky::On(p) | Sticky::Leaving(p)) => Some(*p),
            None => None,
        };
        let next = self.choose(ctx, previous);
        match topics.get_mut(ctx.topic) {
            Some(state) => *state = Sticky::On(next),
            None => {
                topics.insert(ctx.topic.to_owned(), Sticky::On(next));
            }
        }
        next
    }

    /// The batch for `previous_partition` of `topic` is done. Like Java, a stale notice (the topic
    /// has already moved to another partition) changes nothing, so concurrent senders that fill
    /// the same batch move the topic once, not once each.
    pub(super) fn on_new_batch(&self, topic: &str, previous_partition: i32) {
        if let Some(state) = lock(&self.topics).get_mut(topic) {
            if *state == Sticky::On(previous_partition) {
                *state = Sticky::Leaving(previous_partition);
            }
        }
    }

    /// A random partition other than `avoid`: among the available partitions if any, otherwise
    /// among all. When only `avoid` is possible it is returned.
    ///
    /// Java, when no partition is available, draws from all partitions without excluding the old
    /// one; excluding it here too is equally random and keeps "a new batch moves on" true.
    fn choose(&self, ctx: &PartitionerContext<'_>, avoid: Option<i32>) -> i32 {
        let available = ctx.available_partitions;
        if !available.is_empty() {
            let others = available.iter().filter(|&&p| Some(p) != avoid).count();
            if others == 0 {
                return available[0];
            }
            let pick = self.rng.below(others);
            return available.iter().copied().filter(|&p| Some(p) != avoid).nth(pick).unwrap_or(available[0]);
        }
        let count = ctx.partition_count.max(1);
        match avoid {
            Some(old) if (0..count).contains(&old) && count > 1 => {
                let pick = self.rng.below(count as usize - 1) as i32;
                if pick >= old {
                    pick + 1
                } else {
                    pick
                }
            }
            _ => self.rng.below(count as usize) as i32,
        }
    }
}
