//! ApiVersions: the versions of each API Strom fully implements. Only versions whose every field
//! and semantic Strom honours are advertised; clients pick the highest common version.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use strom_protocol::messages::api_versions_response::ApiVersion;
use strom_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use strom_protocol::ResponseError;

/// (API, min version, max version) that Strom serves.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::WriteTxnMarkers, 0, 1),
    // v4+ is batched for brokers (KIP-890); EndTxn v5 bumps the epoch per transaction (TV2).
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    // v0 was removed in Kafka 4.0 (KIP-896).
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// What a controller-only node (`process.roles=controller`) serves besides Strom's private keys,
/// as Kafka's controller listener does: the quorum's description and the admin operations a
/// client may send with `--bootstrap-controller`. It hosts no partitions and no groups.
const CONTROLLER_ONLY: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::DescribeQuorum,
    ApiKey::UnregisterBroker,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
];

/// The supported version range of an API key, if this node serves it (`broker`: the node has
/// the broker role).
pub fn supported(key: i16, broker: bool) -> Option<(ApiKey, (i16, i16))> {
    served(broker).find(|(k, _, _)| *k as i16 == key).map(|(k, min, max)| (*k, (*min, *max)))
}

fn served(broker: bool) -> impl Iterator<Item = &'static (ApiKey, i16, i16)> {
    SUPPORTED.iter().filter(move |(k, _, _)| broker || CONTROLLER_ONLY.contains(k))
}

fn api_list(broker: bool) -> Vec<ApiVersion> {
    served(broker)
        .map(|(k, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect()
}

/// The answer to an ApiVersions request of a version Strom does not know (sent as v0).
pub fn unsupported_version_response(broker: bool) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = ResponseError::UnsupportedVersion.code();
    resp.api_keys = api_list(broker);
    resp
}

pub async fn handle(broker: &Broker, _ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = api_list(broker.config.cluster.roles.broker);
    resp
}

#[cfg(test)]
mod tests {
    use super::SUPPORTED;

    /// Every advertised version is one the codec can decode and encode (and so one the
    /// differential test in strom-protocol checks against kafka-protocol).
    #[test]
    fn every_advertised_version_is_in_the_codec() {
        for (key, min, max) in SUPPORTED {
            let (lo, hi) = key.valid_versions();
            assert!(lo <= *min && *max <= hi, "{key:?} advertises v{min}-v{max}, the codec has v{lo}-v{hi}");
        }
    }
}
