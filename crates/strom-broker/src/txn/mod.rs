//! The transaction coordinator (issue 16, being built): the state of each transactional id and
//! its records in `__transaction_state`. The coordinator core and its APIs come next; see
//! docs/transactions-reference.md for the Kafka behaviour they follow.

pub mod coordinator;
pub mod manager;
pub mod markers;
pub mod records;
pub mod state;
pub mod store;

pub use manager::TxnManager;
