//! A follower partition's side of replication, driven by the replica fetcher: append what the
//! leader sent (kept as the leader wrote it), learn the leader's high watermark and log start,
//! and truncate a suffix the leader does not have (KIP-101/KIP-279, with the diverging epoch the
//! leader names in its fetch response, KIP-595), or restart at the leader's log start.
//!
//! Every change is applied only while the partition still follows the leader and leader epoch
//! the fetch was sent under: a response that arrives after a leadership change is dropped.

use super::divergence::truncation_offset;
use super::partition::Partition;
use strom_storage::StorageError;

/// Where a follower fetches from next, and under which leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
    pub leader: i32,
    pub leader_epoch: i32,
}

/// What the leader's fetch response said for one partition.
#[derive(Debug, Clone, Copy)]
pub struct LeaderProgress {
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl Partition {
    /// The follower's next fetch, or `None` when this broker leads the partition or no broker
    /// does.
    pub fn fetch_position(&self) -> Option<FetchPosition> {
        let (leo, epoch, start) = self
            .with_log(|log| Ok((log.log_end_offset(), log.latest_epoch().unwrap_or(-1), log.log_start_offset())))
            .ok()?;
        let state = self.state();
        (!state.is_leader() && state.leader >= 0).then_some(FetchPosition {
            fetch_offset: leo,
            last_fetched_epoch: epoch,
            log_start_offset: start,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
        })
    }

    fn still_following(&self, at: &FetchPosition) -> bool {
        let state = self.state();
        !state.is_leader() && state.leader == at.leader && state.leader_epoch == at.leader_epoch
    }

    /// Appends the records of a fetch response sent for `at`. Returns the new log end offset, or
    /// `None` if the leadership changed since the fetch was sent (nothing is applied then).
    pub fn append_from_leader(
        &self,
        at: &FetchPosition,
        records: &[u8],
        leader: LeaderProgress,
        now_ms: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.with_log(|log| {
            if !self.still_following(at) || log.log_end_offset() != at.fetch_offset {
                return Ok(None);
            }
            if !records.is_empty() {
                log.append_as_follower(records, now_ms)?;
            }
            let leo = log.log_end_offset();
            if leader.log_start_offset > log.log_start_offset() {
                // The leader deleted records (retention, DeleteRecords): so does the follower.
                log.delete_records_before(leader.log_start_offset.min(leo))?;
            }
            let mut state = self.state();
            state.local_append(leo);
            state.follower_high_watermark(leader.high_watermark);
            // Ended transactions below the HW no longer hold the LSO back (nor memory).
            log.on_high_watermark(state.high_watermark);
            self.publish(&state);
            Ok(Some(leo))
        })
    }

    /// The leader answered that this log diverged: its epoch `epoch` (the largest it has that is
    /// not after ours) ends at `end_offset`. Truncates as Kafka's `getOffsetTruncationState`
    /// does and returns the new log end; the next fetch asks again with the then last epoch
    /// until the leader finds no divergence.
    pub fn truncate_on_divergence(
        &self,
        at: &FetchPosition,
        epoch: i32,
        end_offset: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.with_log(|log| {
            if !self.still_following(at) {
                return Ok(None);
            }
            let leo = log.log_end_offset();
            let target = truncation_offset(leo, log.end_offset_for_epoch(epoch), epoch, end_offset);
            if target < leo {
                tracing::info!(
                    topic = %self.topic, partition = self.index, from = leo, to = target, leader = at.leader,
                    leader_epoch = at.leader_epoch, "truncating a suffix the leader does not have"
                );
                log.truncate_to(target)?;
            }
            let mut state = self.state();
            state.truncate_to(log.log_end_offset());
            self.publish(&state);
            Ok(Some(log.log_end_offset()))
        })
    }

    /// The leader cannot serve our fetch offset. Below its log start: restart the log there.
    /// Above its log end (`leader_end`, a leader elected uncleanly): truncate to it.
    pub fn reset_to_leader(
        &self,
        at: &FetchPosition,
        leader_start: i64,
        leader_end: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.with_log(|log| {
            if !self.still_following(at) {
                return Ok(None);
            }
            let leo = log.log_end_offset();
            if leader_end >= 0 && leader_end < leo {
                tracing::warn!(
                    topic = %self.topic, partition = self.index, from = leo, to = leader_end,
                    "the leader's log ends before ours (an unclean election): truncating to it"
                );
                log.truncate_to(leader_end)?;
            } else if leader_start > leo {
                log.truncate_fully_and_start_at(leader_start)?;
            }
            let mut state = self.state();
            state.restart_at(log.log_end_offset());
            self.publish(&state);
            Ok(Some(log.log_end_offset()))
        })
    }
}
