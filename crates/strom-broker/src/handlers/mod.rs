//! One file per Kafka API. Each handler parses what it needs from the request, calls the core
//! (replica manager, metadata store) and builds the response; error codes come from
//! [`crate::errors`].

pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod broker_configs;
pub mod cluster_view;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod reassignments;
mod record_checks;
pub mod sync_group;
pub(crate) mod topics;
pub mod unregister_broker;
pub mod write_txn_markers;

pub use topics::{ensure_topic, unknown_topic, TopicLookup};
