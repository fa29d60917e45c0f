//! The transaction coordinator: the state of each transactional id in `__transaction_state`
//! (`records`, `state`), the core that answers producers without I/O (`coordinator`), and its
//! adapter (`manager`, `store`, `markers`). docs/transactions-reference.md is the Kafka
//! behaviour they follow; docs/decisions.md says where Strom differs and what is not there yet.

pub mod coordinator;
pub mod manager;
pub mod markers;
pub mod records;
pub mod state;
pub mod store;

pub use manager::TxnManager;
