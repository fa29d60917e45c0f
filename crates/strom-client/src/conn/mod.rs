//! Talking to brokers: pipelined connections, version negotiation, cluster metadata.

pub mod cluster;
pub mod connection;
pub mod versions;

pub use cluster::{Cluster, ClusterConfig, PartitionInfo, TopicInfo};
pub use connection::BrokerConnection;
