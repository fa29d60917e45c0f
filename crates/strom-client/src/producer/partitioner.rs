//! Partitioners (being written).
