//! The Kafka error codes the group coordinator answers with, as constants so that the state
//! machine reads like Kafka's (a test pins each to Kafka's code in `strom_protocol::ResponseError`).

pub const NONE: i16 = 0;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;

#[cfg(test)]
mod tests {
    use strom_protocol::ResponseError as E;

    #[test]
    fn codes_match_kafka() {
        let pairs = [
            (super::COORDINATOR_NOT_AVAILABLE, E::CoordinatorNotAvailable),
            (super::ILLEGAL_GENERATION, E::IllegalGeneration),
            (super::INCONSISTENT_GROUP_PROTOCOL, E::InconsistentGroupProtocol),
            (super::INVALID_GROUP_ID, E::InvalidGroupId),
            (super::UNKNOWN_MEMBER_ID, E::UnknownMemberId),
            (super::INVALID_SESSION_TIMEOUT, E::InvalidSessionTimeout),
            (super::REBALANCE_IN_PROGRESS, E::RebalanceInProgress),
            (super::NON_EMPTY_GROUP, E::NonEmptyGroup),
            (super::GROUP_ID_NOT_FOUND, E::GroupIdNotFound),
            (super::MEMBER_ID_REQUIRED, E::MemberIdRequired),
            (super::GROUP_MAX_SIZE_REACHED, E::GroupMaxSizeReached),
            (super::FENCED_INSTANCE_ID, E::FencedInstanceId),
        ];
        for (ours, kafka) in pairs {
            assert_eq!(ours, kafka.code(), "{kafka:?}");
        }
    }
}
