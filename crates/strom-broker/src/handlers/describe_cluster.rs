//! DescribeCluster (KIP-700): cluster id, controller and brokers, used by Kafka's admin tools.

use super::cluster_view::{controller_id, live_brokers};
use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use strom_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use strom_protocol::StrBytes;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = StrBytes::from_string(broker.cluster_id.clone());
    resp.controller_id = BrokerId(controller_id(broker));
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_authorized_operations = i32::MIN;
    resp.brokers = live_brokers(broker)
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
