//! Which version of each API to use with a broker: the highest that both this client and the
//! broker (from its ApiVersions answer) speak.

use crate::error::{ClientError, Result};
use std::collections::HashMap;
use strom_protocol::messages::ApiKey;

/// The versions this client can encode and decode correctly, per API. Fetch stops at 12 because
/// v13+ addresses topics by id only.
pub const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 2, 7),
    (ApiKey::Metadata, 4, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::JoinGroup, 1, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UnregisterBroker, 0, 0),
];

/// A broker's ApiVersions answer.
#[derive(Debug, Clone, Default)]
pub struct BrokerVersions {
    ranges: HashMap<i16, (i16, i16)>,
}

impl BrokerVersions {
    pub fn new(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> BrokerVersions {
        BrokerVersions { ranges: ranges.into_iter().map(|(k, min, max)| (k, (min, max))).collect() }
    }

    /// The version to use for `api`.
    pub fn pick(&self, api: ApiKey) -> Result<i16> {
        let (_, cmin, cmax) = CLIENT_VERSIONS
            .iter()
            .find(|(k, ..)| *k == api)
            .copied()
            .ok_or_else(|| ClientError::Protocol(format!("{api:?} is not used by this client")))?;
        let unsupported = || ClientError::UnsupportedVersion { api: format!("{api:?}"), min: cmin, max: cmax };
        let (bmin, bmax) = self.ranges.get(&(api as i16)).copied().ok_or_else(unsupported)?;
        let v = cmax.min(bmax);
        if v < cmin.max(bmin) {
            return Err(unsupported());
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_common_version() {
        let b = BrokerVersions::new([(ApiKey::Produce as i16, 0, 11), (ApiKey::Fetch as i16, 0, 6)]);
        assert_eq!(b.pick(ApiKey::Produce).expect("produce"), 9);
        assert_eq!(b.pick(ApiKey::Fetch).expect("fetch"), 6);
        assert!(b.pick(ApiKey::Metadata).is_err(), "not advertised");
        let old = BrokerVersions::new([(ApiKey::Produce as i16, 0, 2)]);
        assert!(matches!(old.pick(ApiKey::Produce), Err(ClientError::UnsupportedVersion { .. })));
    }

    /// Every version the client may pick is one the codec can encode and decode.
    #[test]
    fn every_client_version_is_in_the_codec() {
        for (key, min, max) in CLIENT_VERSIONS {
            let (lo, hi) = key.valid_versions();
            assert!(lo <= *min && *max <= hi, "{key:?} v{min}-v{max} is used, the codec has v{lo}-v{hi}");
        }
    }
}
