//! The admin client: topics, partitions, configs, consumer groups and their offsets, records,
//! the cluster. Each call is one or a few Kafka admin requests.

mod elections;
mod groups;
mod log_dirs;
mod quorum;
mod reassignments;
mod topics;

pub use elections::ElectionResult;
pub use groups::{ConsumerGroupDescription, ConsumerGroupListing, MemberDescription};
pub use log_dirs::{LogDirDescription, ReplicaInfo};
pub use quorum::{QuorumInfo, QuorumReplica};
pub use reassignments::{OngoingReassignment, ReassignmentResult};
pub use topics::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource, ConfigSynonym, NewTopic};

use crate::config::Properties;
use crate::conn::{Cluster, ClusterConfig};
use crate::error::Result;
use std::sync::Arc;
use strom_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse};
use strom_protocol::{Decodable, Encodable};

pub struct Admin {
    cluster: Arc<Cluster>,
}

/// A broker as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerDescription>,
}

impl Admin {
    pub async fn new(props: &Properties) -> Result<Admin> {
        let mut config = ClusterConfig::from_properties(props, "strom-admin")?;
        // Admin metadata requests must never create topics as a side effect.
        config.allow_auto_create_topics = false;
        Ok(Admin { cluster: Cluster::connect(config).await? })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Sends to the active controller (topic and config changes go there).
    async fn send_to_controller<Req: Encodable, Resp: Decodable>(&self, api: ApiKey, req: &Req) -> Result<Resp> {
        let controller = self.cluster.snapshot().controller_id;
        if controller >= 0 {
            if let Ok((_, r)) = self.cluster.send_to(controller, api, req).await {
                return Ok(r);
            }
        }
        self.cluster.send_any(api, req).await
    }

    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let mut req = DescribeClusterRequest::default();
        req.include_cluster_authorized_operations = false;
        let resp: DescribeClusterResponse = self.cluster.send_any(ApiKey::DescribeCluster, &req).await?;
        if resp.error_code != 0 {
            return Err(crate::ClientError::kafka(resp.error_code, resp.error_message.map(|m| m.to_string())));
        }
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id.to_string(),
            controller_id: resp.controller_id.0,
            brokers: resp
                .brokers
                .iter()
                .map(|b| BrokerDescription {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
        })
    }
}
