//! Routes a request frame to its API handler: checks the version against what Strom advertises,
//! decodes the body, runs the handler, encodes the response with the request's correlation id.

use crate::handlers::{self, api_versions};
use crate::metadata::forward::{decode_forward_frame, encode_forward_answer, ForwardedOutcome, STROM_FORWARD_API_KEY};
use crate::metadata::observer::{decode_observer_fetch_frame, encode_observer_answer, STROM_OBSERVER_FETCH_API_KEY};
use crate::metadata::transport::{decode_raft_frame, STROM_RAFT_API_KEY};
use crate::net::zero_copy::{self, ResponsePart};
use crate::server::Broker;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use strom_protocol::frame::{decode_request_header, encode_response, peek_key_version_correlation};
use strom_protocol::messages::*;
use strom_protocol::Decodable;

/// What the connection does after a request.
pub enum Outcome {
    Respond(BytesMut),
    /// A response in parts, some of them sent from files (Fetch).
    RespondParts(Vec<ResponsePart>),
    /// Produce with acks=0: Kafka sends nothing back.
    NoResponse,
    /// The request could not be understood; Kafka closes the connection.
    Close(String),
}

/// Everything a handler may want to know about the request besides its body.
pub struct RequestContext {
    pub header: RequestHeader,
    pub api_version: i16,
    pub peer: SocketAddr,
}

pub async fn dispatch(broker: &std::sync::Arc<Broker>, mut frame: Bytes, peer: SocketAddr) -> Outcome {
    let (key, version, correlation_id) = match peek_key_version_correlation(&frame) {
        Ok(t) => t,
        Err(e) => return Outcome::Close(e.to_string()),
    };
    if key == STROM_RAFT_API_KEY {
        return match decode_raft_frame(&frame) {
            Ok(message) => {
                broker.metadata.step(message);
                Outcome::NoResponse
            }
            Err(e) => Outcome::Close(e),
        };
    }
    if key == STROM_OBSERVER_FETCH_API_KEY {
        return match decode_observer_fetch_frame(&frame) {
            Ok((correlation_id, fetch)) => match broker.metadata.serve_observer(fetch).await {
                Some(chunk) => Outcome::Respond(encode_observer_answer(correlation_id, &chunk)),
                None => Outcome::Close("this node is not a voter of the metadata quorum".into()),
            },
            Err(e) => Outcome::Close(e),
        };
    }
    if key == STROM_FORWARD_API_KEY {
        return match decode_forward_frame(&frame) {
            Ok((correlation_id, op)) => {
                let outcome = ForwardedOutcome::from_result(broker.metadata.write_here(op).await);
                Outcome::Respond(encode_forward_answer(correlation_id, &outcome))
            }
            Err(e) => Outcome::Close(e),
        };
    }
    let Some((api_key, range)) = api_versions::supported(key, broker.config.cluster.roles.broker) else {
        return Outcome::Close(format!("unsupported API key {key} (correlation id {correlation_id})"));
    };
    if version < range.0 || version > range.1 {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with UNSUPPORTED_VERSION and our version list.
            let body = api_versions::unsupported_version_response(broker.config.cluster.roles.broker);
            return respond(api_key, 0, correlation_id, &body);
        }
        return Outcome::Close(format!(
            "{api_key:?} v{version} is not supported (supported: v{}-v{})",
            range.0, range.1
        ));
    }
    let header = match decode_request_header(&mut frame) {
        Ok((_, header)) => header,
        Err(e) => return Outcome::Close(e.to_string()),
    };
    let ctx = RequestContext { header, api_version: version, peer };

    macro_rules! call {
        ($req:ty, $handler:expr) => {{
            let req = match <$req>::decode(&mut frame, version) {
                Ok(req) => req,
                Err(e) => return Outcome::Close(format!("malformed {api_key:?} v{version} request: {e}")),
            };
            let resp = $handler(broker, &ctx, req).await;
            respond(api_key, version, correlation_id, &resp)
        }};
    }

    match api_key {
        ApiKey::ApiVersions => call!(ApiVersionsRequest, handlers::api_versions::handle),
        ApiKey::Metadata => call!(MetadataRequest, handlers::metadata::handle),
        ApiKey::Produce => {
            let req = match ProduceRequest::decode(&mut frame, version) {
                Ok(req) => req,
                Err(e) => return Outcome::Close(format!("malformed Produce v{version} request: {e}")),
            };
            match handlers::produce::handle(broker, &ctx, req).await {
                Some(resp) => respond(api_key, version, correlation_id, &resp),
                None => Outcome::NoResponse,
            }
        }
        ApiKey::Fetch => {
            let req = match FetchRequest::decode(&mut frame, version) {
                Ok(req) => req,
                Err(e) => return Outcome::Close(format!("malformed Fetch v{version} request: {e}")),
            };
            zero_copy::respond_fetch(version, correlation_id, handlers::fetch::handle(broker, &ctx, req).await)
        }
        ApiKey::ListOffsets => call!(ListOffsetsRequest, handlers::list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => {
            call!(OffsetForLeaderEpochRequest, handlers::offset_for_leader_epoch::handle)
        }
        ApiKey::CreateTopics => call!(CreateTopicsRequest, handlers::create_topics::handle),
        ApiKey::DeleteTopics => call!(DeleteTopicsRequest, handlers::delete_topics::handle),
        ApiKey::CreatePartitions => call!(CreatePartitionsRequest, handlers::create_partitions::handle),
        ApiKey::DescribeConfigs => call!(DescribeConfigsRequest, handlers::describe_configs::handle),
        ApiKey::AlterConfigs => call!(AlterConfigsRequest, handlers::alter_configs::handle),
        ApiKey::IncrementalAlterConfigs => {
            call!(IncrementalAlterConfigsRequest, handlers::incremental_alter_configs::handle)
        }
        ApiKey::DescribeCluster => call!(DescribeClusterRequest, handlers::describe_cluster::handle),
        ApiKey::DescribeLogDirs => call!(DescribeLogDirsRequest, handlers::describe_log_dirs::handle),
        ApiKey::ElectLeaders => call!(ElectLeadersRequest, handlers::elect_leaders::handle),
        ApiKey::AlterPartitionReassignments => {
            call!(AlterPartitionReassignmentsRequest, handlers::reassignments::alter)
        }
        ApiKey::ListPartitionReassignments => call!(ListPartitionReassignmentsRequest, handlers::reassignments::list),
        ApiKey::DescribeQuorum => call!(DescribeQuorumRequest, handlers::describe_quorum::handle),
        ApiKey::UnregisterBroker => call!(UnregisterBrokerRequest, handlers::unregister_broker::handle),
        ApiKey::InitProducerId => call!(InitProducerIdRequest, handlers::init_producer_id::handle),
        ApiKey::DeleteRecords => call!(DeleteRecordsRequest, handlers::delete_records::handle),
        ApiKey::WriteTxnMarkers => call!(WriteTxnMarkersRequest, handlers::write_txn_markers::handle),
        ApiKey::FindCoordinator => call!(FindCoordinatorRequest, handlers::find_coordinator::handle),
        ApiKey::JoinGroup => call!(JoinGroupRequest, handlers::join_group::handle),
        ApiKey::SyncGroup => call!(SyncGroupRequest, handlers::sync_group::handle),
        ApiKey::Heartbeat => call!(HeartbeatRequest, handlers::heartbeat::handle),
        ApiKey::LeaveGroup => call!(LeaveGroupRequest, handlers::leave_group::handle),
        ApiKey::OffsetCommit => call!(OffsetCommitRequest, handlers::offset_commit::handle),
        ApiKey::OffsetFetch => call!(OffsetFetchRequest, handlers::offset_fetch::handle),
        ApiKey::ListGroups => call!(ListGroupsRequest, handlers::list_groups::handle),
        ApiKey::DescribeGroups => call!(DescribeGroupsRequest, handlers::describe_groups::handle),
        ApiKey::DeleteGroups => call!(DeleteGroupsRequest, handlers::delete_groups::handle),
        ApiKey::OffsetDelete => call!(OffsetDeleteRequest, handlers::offset_delete::handle),
        // Transaction APIs with schemas but no handlers yet (issue 16): AddOffsetsToTxn and
        // TxnOffsetCommit wait for transactional offsets in the group coordinator. Not
        // advertised, so `supported` above refuses them before they get here.
        ApiKey::AddPartitionsToTxn => call!(AddPartitionsToTxnRequest, handlers::add_partitions_to_txn::handle),
        ApiKey::EndTxn => call!(EndTxnRequest, handlers::end_txn::handle),
        ApiKey::AddOffsetsToTxn | ApiKey::TxnOffsetCommit | ApiKey::DescribeTransactions | ApiKey::ListTransactions => {
            Outcome::Close(format!("{api_key:?} is not served yet"))
        }
    }
}

fn respond<R: strom_protocol::Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Outcome {
    match encode_response(api_key, version, correlation_id, body) {
        Ok(buf) => Outcome::Respond(buf),
        Err(e) => {
            tracing::error!("cannot encode {api_key:?} v{version} response: {e}");
            Outcome::Close(e.to_string())
        }
    }
}
