//! DescribeCluster (KIP-700): cluster id, controller and brokers, used by Kafka's admin tools.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use strom_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = StrBytes::from_string(broker.cluster_id.clone());
    resp.controller_id = BrokerId(broker.config.node_id);
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_authorized_operations = i32::MIN;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(broker.config.node_id);
    b.host = StrBytes::from_string(broker.advertised_host.clone());
    b.port = broker.advertised_port;
    resp.brokers = vec![b];
    resp
}
