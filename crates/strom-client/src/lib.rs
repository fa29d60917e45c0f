//! strom-client: a Kafka client in Rust that needs no C library. It follows the Kafka protocol,
//! not Strom's internals, so it works against Apache Kafka as well as Strom.
//!
//! ```text
//!  Producer ──▶ partitioner ──▶ accumulator (per-partition batches) ──▶ sender ──┐
//!  Consumer ──▶ group membership (assignors) + fetcher ───────────────────────────┼─▶ Cluster
//!  Admin ─────────────────────────────────────────────────────────────────────────┘   (metadata, one
//!                                                                                       pipelined connection
//!                                                                                       per broker)
//! ```

pub mod consumer;
pub mod producer;
pub mod types;

pub use types::TopicPartition;
