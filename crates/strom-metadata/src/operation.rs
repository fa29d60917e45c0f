//! Controller operations as data, so that a broker that is not the active controller can forward
//! one to the controller that is (KRaft forwards admin requests the same way), and the answers
//! that come back.

use crate::controller::{Controller, CreateTopicSpec, Proposal};
use crate::error::MetadataError;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::partition_change::IsrChange;
use crate::records::BrokerEndpoint;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerOp {
    CreateTopic {
        spec: CreateTopicSpec,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    AlterTopicConfigs {
        name: String,
        changes: Vec<(String, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    },
    /// Dynamic broker configs (KIP-226) of one broker, or the cluster-wide default (`None`).
    AlterBrokerConfigs {
        broker_id: Option<i32>,
        changes: Vec<(String, Option<String>)>,
        replace_all: bool,
        validate_only: bool,
    },
    AllocateProducerId,
    RegisterBroker {
        broker_id: i32,
        incarnation_id: uuid::Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    },
    UnregisterBroker {
        broker_id: i32,
    },
    BrokerHeartbeat {
        broker_id: i32,
        broker_epoch: i64,
    },
    /// Run periodically on the active controller: fence brokers whose session expired.
    ExpireBrokerSessions,
    /// Fence a broker now (controlled shutdown).
    FenceBroker {
        broker_id: i32,
    },
    /// Preferred or unclean leader election (ElectLeaders) on some partitions or all (None).
    ElectLeaders {
        election: crate::election::ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Run periodically on the active controller when `auto.leader.rebalance.enable`.
    RebalanceLeaders {
        imbalance_percentage: u32,
    },
    /// Start or cancel (`None`) reassignments (AlterPartitionReassignments, KIP-455).
    AlterReassignments {
        requests: Vec<crate::reassignment::ReassignmentRequest>,
        allow_replication_factor_change: bool,
    },
    /// A broker's replicas in a failed log directory (JBOD).
    ReplicasOffline {
        broker_id: i32,
        broker_epoch: i64,
        partitions: Vec<(uuid::Uuid, i32)>,
    },
    /// A partition leader's ISR change (Kafka's AlterPartition).
    AlterPartition {
        change: IsrChange,
    },
    /// The quorum as its leader sees it (DescribeQuorum); answered by the quorum layer, not the
    /// controller.
    DescribeQuorum,
}

/// DescribeQuorum's view of one voter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoterProgress {
    pub id: i32,
    pub log_end_offset: i64,
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

/// The metadata quorum as the active controller describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<VoterProgress>,
    /// Observers that fetched from this leader, with the log end each last asked from.
    #[serde(default)]
    pub observers: Vec<VoterProgress>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OpAnswer {
    Topic(TopicImage),
    Done,
    ProducerId(i64),
    BrokerEpoch(i64),
    Quorum(QuorumDescription),
    Partition(PartitionImage),
    Elections(Vec<(String, i32, crate::election::ElectionOutcome)>),
    Reassignments(Vec<crate::reassignment::ReassignmentOutcome>),
}

impl Controller {
    /// Runs one operation against `image`.
    pub fn run(
        &mut self,
        image: &MetadataImage,
        op: ControllerOp,
        now_ms: i64,
    ) -> Result<Proposal<OpAnswer>, MetadataError> {
        Ok(match op {
            ControllerOp::CreateTopic { spec, validate_only } => {
                self.create_topic(image, spec, validate_only)?.map(OpAnswer::Topic)
            }
            ControllerOp::DeleteTopic { name } => self.delete_topic(image, &name)?.map(OpAnswer::Topic),
            ControllerOp::CreatePartitions { name, total, assignments, validate_only } => {
                self.create_partitions(image, &name, total, assignments, validate_only)?.map(|()| OpAnswer::Done)
            }
            ControllerOp::AlterTopicConfigs { name, changes, replace_all, validate_only } => {
                self.alter_topic_configs(image, &name, changes, replace_all, validate_only)?.map(|()| OpAnswer::Done)
            }
            ControllerOp::AlterBrokerConfigs { broker_id, changes, replace_all, validate_only } => self
                .alter_broker_configs(image, broker_id, changes, replace_all, validate_only)?
                .map(|()| OpAnswer::Done),
            ControllerOp::AllocateProducerId => self.allocate_producer_id(image)?.map(OpAnswer::ProducerId),
            ControllerOp::RegisterBroker { broker_id, incarnation_id, endpoints, rack } => {
                self.register_broker(image, broker_id, incarnation_id, endpoints, rack)?.map(OpAnswer::BrokerEpoch)
            }
            ControllerOp::BrokerHeartbeat { broker_id, broker_epoch } => {
                self.broker_heartbeat(image, broker_id, broker_epoch, now_ms)?.map(|()| OpAnswer::Done)
            }
            ControllerOp::ExpireBrokerSessions => self.expire_sessions(image, now_ms).map(|()| OpAnswer::Done),
            ControllerOp::FenceBroker { broker_id } => self.fence_broker(image, broker_id)?.map(|()| OpAnswer::Done),
            ControllerOp::DescribeQuorum => {
                return Err(MetadataError::InvalidRequest("DescribeQuorum is answered by the quorum".into()))
            }
            ControllerOp::AlterPartition { change } => self.alter_partition(image, change)?.map(OpAnswer::Partition),
            ControllerOp::ElectLeaders { election, partitions } => {
                self.elect_leaders(image, election, partitions).map(OpAnswer::Elections)
            }
            ControllerOp::RebalanceLeaders { imbalance_percentage } => {
                self.rebalance_leaders(image, imbalance_percentage).map(OpAnswer::Elections)
            }
            ControllerOp::AlterReassignments { requests, allow_replication_factor_change } => {
                self.alter_reassignments(image, requests, allow_replication_factor_change).map(OpAnswer::Reassignments)
            }
            ControllerOp::ReplicasOffline { broker_id, broker_epoch, partitions } => {
                self.replicas_offline(image, broker_id, broker_epoch, partitions)?.map(|()| OpAnswer::Done)
            }
            ControllerOp::UnregisterBroker { broker_id } => {
                self.unregister_broker(image, broker_id)?.map(|()| OpAnswer::Done)
            }
        })
    }
}

impl OpAnswer {
    pub fn into_topic(self) -> Result<TopicImage, MetadataError> {
        match self {
            OpAnswer::Topic(t) => Ok(t),
            other => Err(MetadataError::InvalidRequest(format!("expected a topic, the controller answered {other:?}"))),
        }
    }

    pub fn into_producer_id(self) -> Result<i64, MetadataError> {
        match self {
            OpAnswer::ProducerId(id) => Ok(id),
            other => {
                Err(MetadataError::InvalidRequest(format!("expected a producer id, the controller answered {other:?}")))
            }
        }
    }
}
