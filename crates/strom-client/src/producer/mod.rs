//! The producer: partitioning, batching, sending.

pub mod partitioner;
