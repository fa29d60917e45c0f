//! The replica state of one partition on one broker, Kafka's ISR protocol as a pure state
//! machine (no I/O, no clock of its own): events in, commands out, invariants asserted.
//!
//! ```text
//!  events                                   commands
//!  become_leader / become_follower   ──▶    CompleteUpTo { high_watermark }   (delayed produces)
//!  local_append(leo)                 ──▶    ProposeIsr { isr, partition_epoch } (AlterPartition)
//!  follower_fetch(replica, offset)
//!  tick(now)  /  isr_committed(...)
//! ```
//!
//! The leader tracks each follower's log end offset (the offset it fetches from) and when it was
//! last caught up. The high watermark is the smallest LEO in the ISR and never goes back; the ISR
//! shrinks when a member has not caught up for `replica.lag.time.max.ms` and grows when a
//! follower reaches the high watermark, each change proposed to the controller with the
//! partition epoch it is based on, one at a time. While an expansion is pending the high
//! watermark already counts the new member (KIP-497's "maximal ISR"), so a proposal in flight
//! never lets it pass a replica that may join.
//!
//! `Partition` holds one per hosted partition; produce, the leader's fetch handler, the replica
//! fetcher and the ISR task (`isr.rs`) drive it; the randomised test below checks it on its own.

use std::collections::BTreeMap;
use strom_metadata::PartitionImage;

/// What the state machine asks its adapter to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaCommand {
    /// Produces waiting for `acks=all` whose last offset is below this are answered.
    CompleteUpTo { high_watermark: i64 },
    /// Ask the controller to set the ISR (AlterPartition), based on `partition_epoch`.
    ProposeIsr { isr: Vec<i32>, partition_epoch: i32 },
}

/// How the controller answered an ISR proposal (AlterPartition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsrAnswer {
    /// Committed, or already committed: the change arrives with the metadata.
    Accepted,
    /// Based on an older partition epoch (INVALID_UPDATE_VERSION): a newer state is committed and
    /// arrives with the metadata. It may be this very change, committed by an attempt whose
    /// answer was lost, so the proposal keeps bounding the HW until then.
    Outdated,
    /// Refused, nothing committed (a member not live, a stale leader or broker epoch).
    Refused,
    /// No answer (a timeout, no active controller): it may have committed; send it again.
    Unknown,
}

/// A change of this broker's role for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    BecameLeader,
    StoppedLeading,
}

/// Why a leader-side event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaError {
    NotLeader,
    /// The fetch comes from a broker that is not a replica of the partition.
    UnknownReplica,
    /// A fetch past the leader's log end.
    OffsetOutOfRange,
    /// Fewer ISR members than `min.insync.replicas` (NOT_ENOUGH_REPLICAS).
    NotEnoughReplicas,
}

#[derive(Debug, Clone)]
struct Follower {
    /// The follower's log end offset as its last fetch said (-1: not fetched yet this term).
    leo: i64,
    /// The follower's log start offset as its last fetch said (-1: not known).
    log_start: i64,
    last_caught_up_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ReplicaState {
    node_id: i32,
    lag_time_max_ms: i64,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// This broker's log end offset.
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// Leader only: the followers' progress.
    followers: BTreeMap<i32, Follower>,
    /// Leader only: the ISR change proposed and not yet committed.
    pending_isr: Option<Vec<i32>>,
    /// The leader's LEO when each follower fetched last, to tell "caught up" (fetched everything
    /// the leader had at its previous fetch) as Kafka does.
    leo_at_last_fetch: BTreeMap<i32, i64>,
}

impl ReplicaState {
    /// A replica with the given log end offset and checkpointed high watermark, not yet leading
    /// or following.
    pub fn new(node_id: i32, lag_time_max_ms: i64, log_end_offset: i64, high_watermark: i64) -> ReplicaState {
        assert!(high_watermark <= log_end_offset, "high watermark beyond the log end");
        ReplicaState {
            node_id,
            lag_time_max_ms,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            leader: -1,
            log_end_offset,
            high_watermark,
            followers: BTreeMap::new(),
            pending_isr: None,
            leo_at_last_fetch: BTreeMap::new(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.node_id
    }

    /// The metadata made this broker the leader for `leader_epoch`.
    pub fn become_leader(
        &mut self,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        now_ms: i64,
    ) -> Vec<ReplicaCommand> {
        assert!(leader_epoch >= self.leader_epoch, "leader epochs never go back");
        assert!(isr.contains(&self.node_id), "a leader is in its own ISR");
        self.leader_epoch = leader_epoch;
        self.partition_epoch = partition_epoch;
        self.leader = self.node_id;
        self.followers = replicas
            .iter()
            .filter(|r| **r != self.node_id)
            .map(|r| (*r, Follower { leo: -1, log_start: -1, last_caught_up_ms: now_ms }))
            .collect();
        self.leo_at_last_fetch.clear();
        self.replicas = replicas;
        self.isr = isr;
        self.pending_isr = None;
        self.advance_high_watermark()
    }

    /// The metadata made `leader` the leader for `leader_epoch`; this broker follows.
    pub fn become_follower(
        &mut self,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
    ) {
        assert!(leader_epoch >= self.leader_epoch, "leader epochs never go back");
        self.leader_epoch = leader_epoch;
        self.partition_epoch = partition_epoch;
        self.leader = leader;
        self.replicas = replicas;
        self.isr = isr;
        self.followers.clear();
        self.pending_isr = None;
    }

    /// Brings the state in line with the partition's metadata: leader or follower of a new
    /// leader epoch, or a committed ISR change. Returns the commands the change causes and
    /// whether this broker started or stopped leading.
    pub fn apply_partition(&mut self, p: &PartitionImage, now_ms: i64) -> (Vec<ReplicaCommand>, Option<RoleChange>) {
        let was_leading = self.is_leader();
        let me_leading = p.leader == self.node_id;
        let new_term = p.leader_epoch > self.leader_epoch || me_leading != was_leading;
        let commands = if new_term && me_leading {
            self.become_leader(p.leader_epoch, p.partition_epoch, p.replicas.clone(), p.isr.clone(), now_ms)
        } else if new_term {
            self.become_follower(p.leader, p.leader_epoch, p.partition_epoch, p.replicas.clone(), p.isr.clone());
            Vec::new()
        } else {
            self.replicas_changed(&p.replicas, now_ms);
            self.isr_committed(p.isr.clone(), p.partition_epoch)
        };
        let change = match (was_leading, self.is_leader()) {
            (false, true) => Some(RoleChange::BecameLeader),
            (true, false) => Some(RoleChange::StoppedLeading),
            _ => None,
        };
        (commands, change)
    }

    /// The replica set changed within one leadership (a reassignment adds replicas, or removes
    /// them when it completes): a leader starts tracking the new followers and forgets the
    /// removed ones.
    fn replicas_changed(&mut self, replicas: &[i32], now_ms: i64) {
        if self.replicas == replicas {
            return;
        }
        if self.is_leader() {
            self.followers.retain(|r, _| replicas.contains(r));
            self.leo_at_last_fetch.retain(|r, _| replicas.contains(r));
            for r in replicas.iter().filter(|r| **r != self.node_id) {
                self.followers.entry(*r).or_insert(Follower { leo: -1, log_start: -1, last_caught_up_ms: now_ms });
            }
        }
        self.replicas = replicas.to_vec();
    }

    /// Before an `acks=all` append: refuse when the ISR is below `min.insync.replicas`.
    pub fn check_min_isr(&self, min_insync_replicas: usize) -> Result<(), ReplicaError> {
        if !self.is_leader() {
            return Err(ReplicaError::NotLeader);
        }
        if self.isr.len() < min_insync_replicas {
            return Err(ReplicaError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// The local log grew (leader: a produce; follower: fetched batches appended).
    pub fn local_append(&mut self, log_end_offset: i64) -> Vec<ReplicaCommand> {
        assert!(log_end_offset >= self.log_end_offset, "the log end only grows by appends");
        self.log_end_offset = log_end_offset;
        if self.is_leader() {
            self.advance_high_watermark()
        } else {
            Vec::new()
        }
    }

    /// A follower truncated its log (to match a new leader). After a clean election that is
    /// never below the high watermark (the new leader has everything committed); after an
    /// unclean one it can be, and the high watermark follows the log down.
    pub fn truncate_to(&mut self, offset: i64) {
        assert!(!self.is_leader(), "a leader never truncates");
        if offset < self.high_watermark {
            tracing::warn!(offset, high_watermark = self.high_watermark, "truncated below the high watermark");
            self.high_watermark = offset;
        }
        self.log_end_offset = offset;
    }

    /// A follower's log was reset to follow the leader (restarted at its log start, or cut to
    /// its end after an unclean election): the log now ends at `offset`.
    pub fn restart_at(&mut self, offset: i64) {
        assert!(!self.is_leader(), "a leader never resets its log");
        // Restarted past our end at the leader's log start, which is below the leader's HW.
        self.high_watermark = if offset > self.log_end_offset { offset } else { self.high_watermark.min(offset) };
        self.log_end_offset = offset;
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// A follower learnt the leader's high watermark from a fetch response.
    pub fn follower_high_watermark(&mut self, leader_hw: i64) {
        assert!(!self.is_leader());
        let hw = leader_hw.min(self.log_end_offset);
        if hw > self.high_watermark {
            self.high_watermark = hw;
        }
    }

    /// Leader: follower `replica` fetched from `fetch_offset` (its log end). Returns the
    /// commands (a higher HW, an ISR expansion) it causes.
    pub fn follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<Vec<ReplicaCommand>, ReplicaError> {
        if !self.is_leader() {
            return Err(ReplicaError::NotLeader);
        }
        if fetch_offset > self.log_end_offset {
            return Err(ReplicaError::OffsetOutOfRange);
        }
        let previous_leader_leo = self.leo_at_last_fetch.insert(replica, self.log_end_offset);
        let follower = self.followers.get_mut(&replica).ok_or(ReplicaError::UnknownReplica)?;
        follower.leo = fetch_offset;
        // Caught up: it has everything the leader had now, or at its previous fetch.
        if fetch_offset >= self.log_end_offset || previous_leader_leo.is_some_and(|p| fetch_offset >= p) {
            follower.last_caught_up_ms = now_ms;
        }
        let mut commands = self.advance_high_watermark();
        commands.extend(self.maybe_expand_isr(replica));
        Ok(commands)
    }

    /// Leader: follower `replica` said its log starts at `log_start` (every replica fetch does).
    pub fn follower_log_start(&mut self, replica: i32, log_start: i64) {
        if let Some(f) = self.followers.get_mut(&replica) {
            f.log_start = log_start;
        }
    }

    /// Leader: the followers a consumer reading from `fetch_offset` may be sent to (KIP-392):
    /// ISR members whose log holds that offset (it starts at or before it and reaches it), as
    /// (id, log end, ms since last caught up). Out-of-sync followers are left out, as Kafka
    /// does: the consumer would fall behind with them.
    pub fn read_replica_candidates(&self, fetch_offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        if !self.is_leader() {
            return Vec::new();
        }
        self.followers
            .iter()
            .filter(|(id, f)| self.isr.contains(id) && f.leo >= fetch_offset && f.log_start <= fetch_offset)
            .map(|(id, f)| (*id, f.leo, (now_ms - f.last_caught_up_ms).max(0)))
            .collect()
    }

    /// Leader: time passed; a member not caught up for `replica.lag.time.max.ms` leaves the ISR.
    pub fn tick(&mut self, now_ms: i64) -> Vec<ReplicaCommand> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return Vec::new();
        }
        let lagging: Vec<i32> = self
            .isr
            .iter()
            .filter(|r| **r != self.node_id)
            .filter(|r| self.followers.get(r).is_some_and(|f| now_ms - f.last_caught_up_ms > self.lag_time_max_ms))
            .copied()
            .collect();
        if lagging.is_empty() {
            return Vec::new();
        }
        let isr: Vec<i32> = self.isr.iter().filter(|r| !lagging.contains(r)).copied().collect();
        self.propose(isr)
    }

    /// The controller committed an ISR change (ours or its own, e.g. after fencing a broker).
    pub fn isr_committed(&mut self, isr: Vec<i32>, partition_epoch: i32) -> Vec<ReplicaCommand> {
        if partition_epoch <= self.partition_epoch {
            return Vec::new();
        }
        self.partition_epoch = partition_epoch;
        self.isr = isr;
        self.pending_isr = None;
        if self.is_leader() {
            self.advance_high_watermark()
        } else {
            Vec::new()
        }
    }

    /// The controller answered the proposal of `isr` based on `partition_epoch`. Returns whether
    /// to send it again: only a proposal still pending whose outcome is unknown is resent, and
    /// only a refusal forgets it (the next event proposes afresh). Forgetting a proposal that
    /// may have committed would let the HW pass a member that the committed ISR holds.
    pub fn isr_answered(&mut self, isr: &[i32], partition_epoch: i32, answer: IsrAnswer) -> bool {
        let still_pending =
            self.is_leader() && self.partition_epoch == partition_epoch && self.pending_isr.as_deref() == Some(isr);
        if !still_pending {
            return false;
        }
        match answer {
            IsrAnswer::Accepted | IsrAnswer::Outdated => false,
            IsrAnswer::Refused => {
                self.pending_isr = None;
                false
            }
            IsrAnswer::Unknown => true,
        }
    }

    fn maybe_expand_isr(&mut self, replica: i32) -> Vec<ReplicaCommand> {
        if self.pending_isr.is_some() || self.isr.contains(&replica) {
            return Vec::new();
        }
        let caught_up = self.followers.get(&replica).is_some_and(|f| f.leo >= self.high_watermark && f.leo >= 0);
        if !caught_up {
            return Vec::new();
        }
        let mut isr = self.isr.clone();
        isr.push(replica);
        isr.sort_unstable();
        self.propose(isr)
    }

    fn propose(&mut self, isr: Vec<i32>) -> Vec<ReplicaCommand> {
        self.pending_isr = Some(isr.clone());
        vec![ReplicaCommand::ProposeIsr { isr, partition_epoch: self.partition_epoch }]
    }

    /// The members whose LEO bounds the high watermark: the ISR, plus a member a pending
    /// expansion would add.
    fn maximal_isr(&self) -> Vec<i32> {
        let mut members = self.isr.clone();
        if let Some(pending) = &self.pending_isr {
            members.extend(pending.iter().filter(|r| !self.isr.contains(r)));
        }
        members
    }

    fn advance_high_watermark(&mut self) -> Vec<ReplicaCommand> {
        let mut candidate = self.log_end_offset;
        for r in self.maximal_isr() {
            if r == self.node_id {
                continue;
            }
            match self.followers.get(&r) {
                Some(f) if f.leo >= 0 => candidate = candidate.min(f.leo),
                _ if seeded_bug::HwIgnoresUnfetchedMembers::is_on() => {}
                // A member that has not fetched in this leader's term holds the HW where it is.
                _ => candidate = candidate.min(self.high_watermark),
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            self.check_invariants();
            return vec![ReplicaCommand::CompleteUpTo { high_watermark: candidate }];
        }
        self.check_invariants();
        Vec::new()
    }

    /// What this state guarantees by itself; the bound by the followers' true logs is checked
    /// by the randomised test against a model (a follower's reported offset crossed the network).
    fn check_invariants(&self) {
        assert!(self.high_watermark <= self.log_end_offset, "HW {} > LEO {}", self.high_watermark, self.log_end_offset);
    }
}

/// Deliberate bugs for the replication simulation to find (tests only; always off otherwise).
pub(crate) mod seeded_bug {
    #[cfg(test)]
    thread_local! {
        static ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// A new leader's HW ignores the ISR members that have not fetched from it yet (instead of
    /// holding the HW where it is until they have), so it can pass what they hold.
    pub(crate) struct HwIgnoresUnfetchedMembers;

    impl HwIgnoresUnfetchedMembers {
        /// On for this thread until the guard is dropped.
        #[cfg(test)]
        pub(crate) fn on() -> HwIgnoresUnfetchedMembers {
            ON.with(|on| on.set(true));
            HwIgnoresUnfetchedMembers
        }

        #[cfg(test)]
        pub(crate) fn is_on() -> bool {
            ON.with(|on| on.get())
        }

        #[cfg(not(test))]
        pub(crate) fn is_on() -> bool {
            false
        }
    }

    #[cfg(test)]
    impl Drop for HwIgnoresUnfetchedMembers {
        fn drop(&mut self) {
            ON.with(|on| on.set(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Random appends, follower fetches (each follower's true log in a model), ticks and ISR
    /// commits that the "controller" accepts after a delay when the partition epoch matches.
    /// At every step: HW never goes back, never passes the LEO of any ISR member or of a member
    /// a pending expansion adds, and every offset reported complete is below every ISR member's
    /// true log end.
    #[test]
    fn random_histories_keep_the_high_watermark_safe() {
        for seed in 1..=500u64 {
            let mut rng = Rng(seed * 0x9E37_79B9 + 1);
            let lag = 100;
            let mut leader = ReplicaState::new(1, lag, 0, 0);
            let replicas = vec![1, 2, 3];
            leader.become_leader(0, 0, replicas.clone(), replicas.clone(), 0);
            let mut follower_leo: BTreeMap<i32, i64> = BTreeMap::from([(2, 0), (3, 0)]);
            let mut in_flight: Option<(Vec<i32>, i32, u64)> = None;
            let mut committed_epoch = 0;
            let mut last_hw = 0;
            let mut now = 0;
            for step in 0..400u64 {
                now += rng.below(20) as i64;
                let mut commands = Vec::new();
                match rng.below(10) {
                    0..=2 => commands.extend(leader.local_append(leader.log_end_offset + 1 + rng.below(5) as i64)),
                    3..=6 => {
                        let r = 2 + rng.below(2) as i32;
                        // Follower 3 is sometimes stuck, to make the ISR shrink.
                        if !(r == 3 && seed % 3 == 0 && step > 100 && step < 250) {
                            let leo = follower_leo.get_mut(&r).expect("follower");
                            *leo = (*leo + rng.below(6) as i64).min(leader.log_end_offset);
                            commands.extend(leader.follower_fetch(r, *leo, now).expect("fetch"));
                        }
                    }
                    7 => commands.extend(leader.tick(now)),
                    _ => {
                        if let Some((isr, epoch, at)) = in_flight.take() {
                            if step >= at {
                                if epoch == committed_epoch {
                                    committed_epoch += 1;
                                    commands.extend(leader.isr_committed(isr, committed_epoch));
                                } else {
                                    leader.isr_answered(&isr, epoch, IsrAnswer::Refused);
                                }
                            } else {
                                in_flight = Some((isr, epoch, at));
                            }
                        }
                    }
                }
                for c in commands {
                    match c {
                        ReplicaCommand::CompleteUpTo { high_watermark } => {
                            for r in &leader.isr {
                                if let Some(leo) = follower_leo.get(r) {
                                    assert!(
                                        high_watermark <= *leo,
                                        "seed {seed}: acknowledged {high_watermark} beyond member {r} at {leo}"
                                    );
                                }
                            }
                        }
                        ReplicaCommand::ProposeIsr { isr, partition_epoch } => {
                            assert!(isr.contains(&1), "the leader never leaves its ISR");
                            in_flight = Some((isr, partition_epoch, step + rng.below(5)));
                        }
                    }
                }
                assert!(leader.high_watermark >= last_hw, "seed {seed}: HW went back");
                last_hw = leader.high_watermark;
                for r in leader.maximal_isr() {
                    if let Some(leo) = follower_leo.get(&r) {
                        assert!(leader.high_watermark <= *leo, "seed {seed}: HW beyond ISR member {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_stuck_follower_leaves_the_isr_and_min_isr_refuses_acks_all() {
        let mut s = ReplicaState::new(1, 100, 0, 0);
        s.become_leader(0, 0, vec![1, 2, 3], vec![1, 2, 3], 0);
        s.local_append(10);
        s.follower_fetch(2, 10, 50).expect("fetch");
        assert_eq!(s.high_watermark, 0, "follower 3 has not fetched: the HW waits for it");
        s.follower_fetch(3, 10, 60).expect("fetch");
        assert_eq!(s.high_watermark, 10);
        s.local_append(20);
        s.follower_fetch(2, 20, 120).expect("fetch");
        let commands = s.tick(200);
        assert_eq!(commands, vec![ReplicaCommand::ProposeIsr { isr: vec![1, 2], partition_epoch: 0 }]);
        assert_eq!(s.check_min_isr(3), Ok(()), "the shrink is only proposed, not committed yet");
        let commands = s.isr_committed(vec![1, 2], 1);
        assert_eq!(commands, vec![ReplicaCommand::CompleteUpTo { high_watermark: 20 }]);
        assert_eq!(s.check_min_isr(3), Err(ReplicaError::NotEnoughReplicas));
        assert_eq!(s.check_min_isr(2), Ok(()));
        // The follower comes back, reaches the HW and is proposed for the ISR again.
        let commands = s.follower_fetch(3, 20, 300).expect("fetch");
        assert_eq!(commands, vec![ReplicaCommand::ProposeIsr { isr: vec![1, 2, 3], partition_epoch: 1 }]);
    }
}
