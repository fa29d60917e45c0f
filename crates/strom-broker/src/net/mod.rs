//! Client connections: framing, bounds, and the per-connection request loop.

pub mod connection;
pub mod zero_copy;
