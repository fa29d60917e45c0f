//! Consumer groups: the classic rebalance protocol and committed offsets.
//!
//! ```text
//!  JoinGroup/SyncGroup/Heartbeat/LeaveGroup ─▶ GroupManager (async adapter, one mutex)
//!                                                 │   ├─ coordinator: classic::GroupCoordinator (state machine, no I/O)
//!                                                 │   └─ offsets: OffsetStore (view of __consumer_offsets)
//!  OffsetCommit/OffsetFetch/... ──────────────────┘
//!                                                 ▼
//!                               store: records appended to __consumer_offsets (partition = hash(group) % 50)
//! ```
//! Delayed answers (a JoinGroup waiting for the round to complete, a follower's SyncGroup waiting
//! for the leader) are oneshot channels keyed by a request id that the coordinator hands back in
//! its effects. A timer task drives session and rebalance timeouts.

pub mod classic;
mod manager;
pub mod offsets;
pub mod records;
pub mod store;

pub use manager::{CommitIdentity, GroupInfo, GroupManager, GroupSummary, MemberInfo, OffsetToCommit};
