//! Assignors (being written).
