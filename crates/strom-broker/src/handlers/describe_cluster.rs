//! DescribeCluster (KIP-700): cluster id, controller and brokers, used by Kafka's admin tools.
//! With endpoint type CONTROLLER (KIP-919, `--bootstrap-controller`) a node with the controller
//! role describes the quorum's voters instead, naming the active controller; a request for the
//! endpoint type of a role this node does not have gets MISMATCHED_ENDPOINT_TYPE, as Kafka's.

use super::cluster_view::{controller_id, live_brokers, LiveBroker};
use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use strom_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use strom_protocol::{ResponseError, StrBytes};

/// KIP-919's endpoint types.
const BROKER_ENDPOINT: i8 = 1;
const CONTROLLER_ENDPOINT: i8 = 2;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = StrBytes::from_string(broker.cluster_id.clone());
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_authorized_operations = i32::MIN;
    let roles = &broker.config.cluster.roles;
    let (nodes, controller) = match req.endpoint_type {
        BROKER_ENDPOINT if roles.broker => (live_brokers(broker), controller_id(broker)),
        CONTROLLER_ENDPOINT if roles.controller => controllers(broker),
        requested => {
            // Version 0 cannot name the endpoint type: a controller-only node cannot answer it.
            let (code, message) = if ctx.api_version == 0 {
                // Kafka's controllers serve DescribeCluster from v1 (KIP-919) only.
                (ResponseError::UnsupportedVersion, "DescribeCluster v0 is for brokers; this node is a controller")
            } else if requested == BROKER_ENDPOINT || requested == CONTROLLER_ENDPOINT {
                (ResponseError::MismatchedEndpointType, "this node has no role of the requested endpoint type")
            } else {
                (ResponseError::UnsupportedEndpointType, "unknown endpoint type")
            };
            resp.error_code = code.code();
            resp.error_message = Some(StrBytes::from_static_str(message));
            return resp;
        }
    };
    resp.controller_id = BrokerId(controller);
    resp.brokers = nodes
        .into_iter()
        .map(|l| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(l.id);
            b.host = StrBytes::from_string(l.host);
            b.port = l.port;
            b.rack = l.rack.map(StrBytes::from_string);
            b
        })
        .collect();
    resp
}

/// The quorum's voters on their controller listeners, and the active controller (-1 while
/// there is none).
fn controllers(broker: &Broker) -> (Vec<LiveBroker>, i32) {
    let voters = &broker.config.cluster.voters;
    if voters.is_empty() {
        // A sole node is its own quorum, reached on its one listener.
        let me = LiveBroker {
            id: broker.config.node_id,
            host: broker.advertised_host.clone(),
            port: broker.advertised_port,
            rack: None,
        };
        return (vec![me], broker.config.node_id);
    }
    let nodes =
        voters.iter().map(|v| LiveBroker { id: v.id, host: v.host.clone(), port: v.port as i32, rack: None }).collect();
    let leader = broker.metadata.quorum_status().leader.map(|l| l as i32).unwrap_or(-1);
    (nodes, leader)
}
