//! Where a follower's log parts from its leader's after a leadership change (KIP-101, KIP-279,
//! with the diverging epoch of KIP-595 in the fetch response instead of a separate
//! OffsetForLeaderEpoch round trip). Both sides are pure decisions over a log's leader epoch
//! cache (`end_offset_for_epoch`: the largest epoch ≤ the one asked that the log holds, and where
//! the next epoch starts), shared by the partition and the replication simulation.

/// The follower's last fetched epoch cannot be placed in the leader's log at all (Kafka answers
/// OFFSET_OUT_OF_RANGE, and the follower resets to the leader's log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplaceable;

/// Leader side: a follower fetching at `fetch_offset` whose last batch has `last_fetched_epoch`
/// has diverged when that epoch ends in the leader's log before `fetch_offset` or is not in it:
/// returns (the largest epoch ≤ it the leader holds, where that epoch ends). `lookup` is the
/// leader log's `end_offset_for_epoch`.
pub fn diverging_epoch(
    last_fetched_epoch: i32,
    fetch_offset: i64,
    lookup: impl FnOnce(i32) -> (i32, i64),
) -> Result<Option<(i32, i64)>, Unplaceable> {
    if last_fetched_epoch < 0 {
        return Ok(None);
    }
    let (epoch, end) = lookup(last_fetched_epoch);
    if epoch < 0 || end < 0 {
        return Err(Unplaceable);
    }
    Ok((epoch < last_fetched_epoch || end < fetch_offset).then_some((epoch, end)))
}

/// Follower side, as Kafka's `getOffsetTruncationState`: the leader said its epoch `epoch` ends
/// at `leader_end`; `own` is the follower log's `end_offset_for_epoch(epoch)`. Returns the
/// offset to truncate to (the log end when nothing is cut). When the follower does not hold
/// `epoch` itself it cuts to the end of its own epoch below it and asks again with the epoch it
/// then ends with, until both logs agree.
pub fn truncation_offset(log_end_offset: i64, own: (i32, i64), epoch: i32, leader_end: i64) -> i64 {
    let (own_epoch, own_end) = own;
    if own_epoch < 0 {
        // We hold no epoch as old as the leader's answer: trust its end offset.
        leader_end.min(log_end_offset)
    } else if own_epoch != epoch {
        own_end.min(log_end_offset)
    } else {
        own_end.min(leader_end).min(log_end_offset)
    }
}
