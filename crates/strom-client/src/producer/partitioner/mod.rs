//! Partitioners: which partition a record without an explicit partition goes to.
//!
//! Kafka's choices, bit-exact where Kafka is deterministic: a keyed record goes to
//! `toPositive(murmur2(key)) % partitions`, exactly where the Java producer puts it, so Strom
//! and Java producers writing the same keys keep per-key order. Pick one with `partitioner.class`
//! (see [`partitioner_by_name`]) or hand your own to `Producer::with_partitioner`.
//!
//! ```text
//!  record ──► partition set? ──yes──► that partition
//!                 │ no
//!                 ▼
//!        Partitioner::partition(ctx) ──► partition ──► accumulator batch
//!                                                         │ batch full
//!        Partitioner::on_new_batch(topic, …, partition) ◄─┘  (sticky partitioners move on)
//! ```
//!
//! | name (`partitioner.class`)      | keyed record          | keyless record            |
//! |---------------------------------|-----------------------|---------------------------|
//! | `default`, `murmur2_random`     | murmur2 (as Java)     | sticky (KIP-480)          |
//! | `uniform_sticky`                | sticky                | sticky                    |
//! | `round_robin`                   | next in rotation      | next in rotation          |
//! | `random`                        | uniformly random      | uniformly random          |
//!
//! A partitioner of your own is any [`Partitioner`]; this one routes by the key's first byte:
//!
//! ```
//! use strom_client::producer::partitioner::{DefaultPartitioner, Partitioner, PartitionerContext};
//!
//! /// Keys starting with the same byte share a partition; keyless records use Kafka's default.
//! struct FirstBytePartitioner {
//!     fallback: DefaultPartitioner,
//! }
//!
//! impl Partitioner for FirstBytePartitioner {
//!     fn partition(&self, ctx: &PartitionerContext<'_>) -> i32 {
//!         match ctx.key.and_then(|key| key.first()) {
//!             Some(&byte) => i32::from(byte) % ctx.partition_count.max(1),
//!             None => self.fallback.partition(ctx),
//!         }
//!     }
//!
//!     fn on_new_batch(&self, topic: &str, partition_count: i32, previous_partition: i32) {
//!         self.fallback.on_new_batch(topic, partition_count, previous_partition);
//!     }
//! }
//!
//! let partitioner = FirstBytePartitioner { fallback: DefaultPartitioner::new() };
//! let ctx = PartitionerContext {
//!     topic: "events",
//!     key: Some(b"b-order-17"),
//!     partition_count: 4,
//!     available_partitions: &[0, 1, 2, 3],
//! };
//! assert_eq!(partitioner.partition(&ctx), 2); // b'b' is 98, and 98 % 4 == 2
//!
//! // The producer takes it like the built-in ones:
//! let _boxed: Box<dyn Partitioner> = Box::new(partitioner);
//! ```

mod builtin;
mod hash;
mod sticky;
#[cfg(test)]
mod tests;

pub use builtin::{DefaultPartitioner, RandomPartitioner, RoundRobinPartitioner, UniformStickyPartitioner};
pub use hash::{murmur2, partition_for_key, to_positive};

/// What the partitioner sees of a record and the cluster.
#[derive(Debug, Clone, Copy)]
pub struct PartitionerContext<'a> {
    /// The record's topic: sticky and round-robin state is kept per topic.
    pub topic: &'a str,
    /// The serialized key; `None` for a keyless record (an empty key is a key, as in Java).
    pub key: Option<&'a [u8]>,
    /// How many partitions the topic has: keys hash over all of them, available or not, so a
    /// key does not move while a broker is down.
    pub partition_count: i32,
    /// Partitions whose leader is currently known/available (Kafka's
    /// `availablePartitionsForTopic`); may be empty. Keyless choices prefer these, so records do
    /// not wait on a partition without a leader.
    pub available_partitions: &'a [i32],
}

/// Chooses the partition of a record that has none set. Called concurrently from every task that
/// sends, hence `Send + Sync` and `&self`: keep state behind a lock or atomics.
pub trait Partitioner: Send + Sync {
    /// The partition for this record, in `0..ctx.partition_count`.
    fn partition(&self, ctx: &PartitionerContext<'_>) -> i32;

    /// Called when a batch for `topic` is sent/full (KIP-480 "onNewBatch"/KIP-794): sticky
    /// partitioners move on. `previous_partition` is the partition whose batch is done; ignore the call if it is not
    /// the one you are sticking to (another sender already moved the topic on).
    fn on_new_batch(&self, topic: &str, partition_count: i32, previous_partition: i32) {
        let _ = (topic, partition_count, previous_partition);
    }
}

/// The built-in partitioner for a `partitioner.class` value, or `None` if the name is unknown.
///
/// Accepts the short names `default` (also `murmur2_random`, librdkafka's name for the same
/// keyed behaviour), `round_robin`, `random`, `uniform_sticky` — case-insensitive, with `-` or no
/// separator instead of `_` — and the Java class names
/// `org.apache.kafka.clients.producer.internals.DefaultPartitioner`,
/// `org.apache.kafka.clients.producer.RoundRobinPartitioner` and
/// `org.apache.kafka.clients.producer.UniformStickyPartitioner`, so a Java producer's
/// properties file works unchanged.
pub fn partitioner_by_name(name: &str) -> Option<Box<dyn Partitioner>> {
    let normalized: String =
        name.trim().chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    let partitioner: Box<dyn Partitioner> = match normalized.as_str() {
        "default" | "murmur2random" | "org.apache.kafka.clients.producer.internals.defaultpartitioner" => {
            Box::new(DefaultPartitioner::new())
        }
        "roundrobin" | "org.apache.kafka.clients.producer.roundrobinpartitioner" => {
            Box::new(RoundRobinPartitioner::new())
        }
        "random" => Box::new(RandomPartitioner::new()),
        "uniformsticky" | "org.apache.kafka.clients.producer.uniformstickypartitioner" => {
            Box::new(UniformStickyPartitioner::new())
        }
        _ => return None,
    };
    Some(partitioner)
}
