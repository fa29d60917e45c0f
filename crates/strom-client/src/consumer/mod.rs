//! The consumer: group membership, fetching, offsets.

pub mod assignor;
