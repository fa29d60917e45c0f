//! The partitioners Kafka ships, plus librdkafka's `random`.

use super::sticky::{lock, Rng, StickyPartitionCache};
use super::{partition_for_key, to_positive, Partitioner, PartitionerContext};
use std::collections::HashMap;
use std::sync::Mutex;

/// Kafka's `DefaultPartitioner` (2.4+): a keyed record goes to
/// `toPositive(murmur2(key)) % partition_count`, over all partitions as in Java, so it lands
/// where a Java producer would put it; a keyless record goes to the topic's sticky partition
/// (KIP-480), which changes when the batch for it is done.
#[derive(Debug)]
pub struct DefaultPartitioner {
    sticky: StickyPartitionCache,
}

impl DefaultPartitioner {
    /// A partitioner with its own random source, seeded from the clock.
    pub fn new() -> DefaultPartitioner {
        DefaultPartitioner { sticky: StickyPartitionCache::new(Rng::new()) }
    }

    /// A partitioner whose keyless choices follow a fixed sequence, for reproducible tests.
    pub fn with_seed(seed: u64) -> DefaultPartitioner {
        DefaultPartitioner { sticky: StickyPartitionCache::new(Rng::with_seed(seed)) }
    }
}

impl Default for DefaultPartitioner {
    fn default() -> Self {
        DefaultPartitioner::new()
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
        match ctx.key {
            Some(key) => partition_for_key(key, ctx.partition_count),
            None => self.sticky.partition(ctx),
        }
    }

    fn on_new_batch(&self, topic: &str, _partition_count: i32, previous_partition: i32) {
        self.sticky.on_new_batch(topic, previous_partition);
    }
}

/// Kafka's `UniformStickyPartitioner`: sticky for every record, keyed or not, for producers that
/// want full batches and do not need per-key ordering.
#[derive(Debug)]
pub struct UniformStickyPartitioner {
    sticky: StickyPartitionCache,
}

impl UniformStickyPartitioner {
    /// A partitioner with its own random source, seeded from the clock.
    pub fn new() -> UniformStickyPartitioner {
        UniformStickyPartitioner { sticky: StickyPartitionCache::new(Rng::new()) }
    }

    /// A partitioner whose choices follow a fixed sequence, for reproducible tests.
    pub fn with_seed(seed: u64) -> UniformStickyPartitioner {
        UniformStickyPartitioner { sticky: StickyPartitionCache::new(Rng::with_seed(seed)) }
    }
}

impl Default for UniformStickyPartitioner {
    fn default() -> Self {
        UniformStickyPartitioner::new()
    }
}

impl Partitioner for UniformStickyPartitioner {
    fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
        self.sticky.partition(ctx)
    }

    fn on_new_batch(&self, topic: &str, _partition_count: i32, previous_partition: i32) {
        self.sticky.on_new_batch(topic, previous_partition);
    }
}

/// Kafka's `RoundRobinPartitioner`: a per-topic counter starting at 0, record `n` goes to
/// `available[toPositive(n) % available.len()]` (or `toPositive(n) % partition_count` when no
/// partition is available). Ignores the key.
///
/// Since KAFKA-17632 (Kafka 3.9/4.0) Java also replays the last partition in `partition()` after
/// `onNewBatch`, because Java's producer partitions a record a second time when it opens a new
/// batch and the counter would otherwise skip partitions (KAFKA-9965). Strom's producer calls
/// [`Partitioner::on_new_batch`] after the record is placed and never partitions a record twice,
/// so the plain counter already gives the strict rotation that fix restores.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    counters: Mutex<HashMap<String, i32>>,
}

impl RoundRobinPartitioner {
    /// A partitioner whose rotation starts at the first partition of every topic, as in Java.
    pub fn new() -> RoundRobinPartitioner {
        RoundRobinPartitioner::default()
    }

    #[cfg(test)]
    pub(super) fn set_counter_for_tests(&self, topic: &str, value: i32) {
        lock(&self.counters).insert(topic.to_owned(), value);
    }

    /// Java's `AtomicInteger.getAndIncrement()`, wrapping past `i32::MAX` like Java.
    fn next_value(&self, topic: &str) -> i32 {
        let mut counters = lock(&self.counters);
        match counters.get_mut(topic) {
            Some(counter) => {
                let value = *counter;
                *counter = value.wrapping_add(1);
                value
            }
            None => {
                counters.insert(topic.to_owned(), 1);
                0
            }
        }
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
        let next = to_positive(self.next_value(ctx.topic));
        let available = ctx.available_partitions;
        if available.is_empty() {
            // No partition is available: give a non-available one, as Java does.
            next % ctx.partition_count.max(1)
        } else {
            available[next as usize % available.len()]
        }
    }
}

/// librdkafka's `random` partitioner (Java has none): each record goes to a uniformly random
/// available partition (any partition when none is available). Ignores the key.
#[derive(Debug)]
pub struct RandomPartitioner {
    rng: Rng,
}

impl RandomPartitioner {
    /// A partitioner with its own random source, seeded from the clock.
    pub fn new() -> RandomPartitioner {
        RandomPartitioner { rng: Rng::new() }
    }

    /// A partitioner whose choices follow a fixed sequence, for reproducible tests.
    pub fn with_seed(seed: u64) -> RandomPartitioner {
        RandomPartitioner { rng: Rng::with_seed(seed) }
    }
}

impl Default for RandomPartitioner {
    fn default() -> Self {
        RandomPartitioner::new()
    }
}

impl Partitioner for RandomPartitioner {
    fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
        let available = ctx.available_partitions;
        if available.is_empty() {
            self.rng.below(ctx.partition_count.max(1) as usize) as i32
        } else {
            available[self.rng.below(available.len())]
        }
    }
}
