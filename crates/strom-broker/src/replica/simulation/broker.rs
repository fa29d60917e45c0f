//! A simulated broker's side of replication, per partition: serving and handling replica
//! fetches (as the fetch handler and `follower.rs` do), applying metadata, heartbeats, ISR
//! proposals, and `acks=all` produces answered as `wait_for_high_watermark` answers them.

use super::super::divergence::{diverging_epoch, truncation_offset};
use super::super::state::{IsrAnswer, ReplicaCommand, ReplicaError};
use super::messages::{FetchAt, FetchReply, Msg};
use super::{partition_of, Sim, BROKERS, CONTROLLER, HEARTBEAT_MS, LAG_TIME_MAX_MS, MIN_ISR, PARTITIONS};
use strom_metadata::{IsrChange, MetadataRecord};

impl Sim {
    /// The leader's side of a replica fetch, as the fetch handler does it.
    pub(super) fn serve_fetch(&mut self, id: i32, follower: i32, at: FetchAt) -> FetchReply {
        let now = self.now as i64;
        let r = self.replica(id, at.partition);
        if !r.state.is_leader() || at.leader_epoch != r.state.leader_epoch {
            return FetchReply::Error;
        }
        let log = &r.log;
        match diverging_epoch(at.last_fetched_epoch, at.fetch_offset, |e| log.end_offset_for_epoch(e)) {
            Err(_) => return FetchReply::OutOfRange { leader_end: r.log.leo() },
            Ok(Some((epoch, end_offset))) => return FetchReply::Diverging { epoch, end_offset },
            Ok(None) => {}
        }
        let commands = match r.state.follower_fetch(follower, at.fetch_offset, now) {
            Ok(c) => c,
            Err(ReplicaError::OffsetOutOfRange) => return FetchReply::OutOfRange { leader_end: r.log.leo() },
            Err(_) => return FetchReply::Error,
        };
        let from = at.fetch_offset as usize;
        let more = 1 + self.rng.below(8) as usize;
        let r = self.replica(id, at.partition);
        let to = (from + more).min(r.log.values.len());
        let records = r.log.values[from..to].to_vec();
        self.carry_out(id, at.partition, commands);
        FetchReply::Records { records, high_watermark: self.replica(id, at.partition).state.high_watermark }
    }

    /// The follower's side, as `follower.rs` does it. An answer to another request than the
    /// one in flight (a duplicate) is dropped, as a response with another correlation id.
    pub(super) fn fetched(&mut self, id: i32, leader: i32, at: FetchAt, reply: FetchReply) {
        let now = self.now;
        let r = self.replica(id, at.partition);
        if r.fetch_in_flight != Some(at.request) {
            return;
        }
        r.fetch_in_flight = None;
        let still_following =
            !r.state.is_leader() && r.state.leader == at.leader && r.state.leader_epoch == at.leader_epoch;
        if !still_following {
            return;
        }
        let before = r.log.leo();
        let hw = r.state.high_watermark;
        match reply {
            FetchReply::Records { records, high_watermark } => {
                if r.log.leo() != at.fetch_offset {
                    return;
                }
                r.log.append(&records);
                r.state.local_append(r.log.leo());
                r.state.follower_high_watermark(high_watermark);
                if records.is_empty() {
                    r.next_fetch_at = now + 5;
                }
            }
            FetchReply::Diverging { epoch, end_offset } => {
                let target = truncation_offset(r.log.leo(), r.log.end_offset_for_epoch(epoch), epoch, end_offset);
                r.log.truncate_to(target);
                r.state.truncate_to(r.log.leo());
            }
            FetchReply::OutOfRange { leader_end } => {
                if leader_end < r.log.leo() {
                    r.log.truncate_to(leader_end);
                }
                r.state.restart_at(r.log.leo());
            }
            FetchReply::Error => r.next_fetch_at = now + 20,
        }
        let after = r.log.leo();
        if after < before {
            let p = at.partition;
            let note = format!(
                "broker {id} truncated t-{p} {before} → {after} following {leader} (epoch {})",
                at.leader_epoch
            );
            self.note(note);
            if after < hw {
                self.fail(format!("broker {id} truncated t-{p} to {after}, below its high watermark {hw}"));
            }
        }
    }

    pub(super) fn broker_step(&mut self, id: i32) {
        let now = self.now;
        // Metadata arrives with some lag, in order.
        if self.brokers[id as usize - 1].applied < self.batches.len() && self.rng.chance_per_mille(400) {
            let b = &mut self.brokers[id as usize - 1];
            let batch = &self.batches[b.applied];
            batch.iter().for_each(|r| b.image.apply(r));
            b.applied += 1;
            let own_registration = batch.iter().any(|r| {
                matches!(r, MetadataRecord::RegisterBroker { broker_id, incarnation_id, .. }
                    if *broker_id == id && *incarnation_id == b.incarnation)
            });
            b.roles_active |= own_registration;
            for partition in 0..PARTITIONS {
                let b = &mut self.brokers[id as usize - 1];
                let Some(p) = partition_of(&b.image, partition).filter(|_| b.roles_active) else { continue };
                let (commands, change) = b.replicas[partition as usize].state.apply_partition(&p, now as i64);
                if change.is_some() {
                    let note =
                        format!("broker {id} t-{partition} {change:?} in epoch {} (isr {:?})", p.leader_epoch, p.isr);
                    self.note(note);
                }
                self.carry_out(id, partition, commands);
            }
        }
        let b = &mut self.brokers[id as usize - 1];
        if now >= b.next_heartbeat_at {
            b.next_heartbeat_at = now + HEARTBEAT_MS;
            let msg = match b.broker_epoch {
                Some(broker_epoch) => Msg::Heartbeat { broker_epoch },
                // Registration is retried until the controller answers it.
                None => Msg::Register { incarnation: b.incarnation, life: b.life },
            };
            self.send(id, CONTROLLER, msg);
        }
        let b = &mut self.brokers[id as usize - 1];
        let tick = now >= b.next_tick_at;
        if tick {
            b.next_tick_at = now + LAG_TIME_MAX_MS as u64 / 2;
        }
        for partition in 0..PARTITIONS {
            self.replica_step(id, partition, tick);
        }
    }

    fn replica_step(&mut self, id: i32, partition: i32, tick: bool) {
        let now = self.now;
        if tick {
            let commands = self.replica(id, partition).state.tick(now as i64);
            self.carry_out(id, partition, commands);
        }
        let checkpoint = self.rng.chance_per_mille(50);
        let life = self.brokers[id as usize - 1].life;
        let request = self.seq;
        let r = self.replica(id, partition);
        if checkpoint {
            r.checkpointed_hw = r.state.high_watermark;
        }
        if r.fetch_in_flight.is_none() && now >= r.next_fetch_at && !r.state.is_leader() && r.state.leader > 0 {
            let at = FetchAt {
                request,
                partition,
                fetch_offset: r.log.leo(),
                last_fetched_epoch: r.log.latest_epoch(),
                leader: r.state.leader,
                leader_epoch: r.state.leader_epoch,
            };
            r.fetch_in_flight = Some(request);
            self.send(id, at.leader, Msg::Fetch { from: id, life, at });
        }
        self.settle_produces(id, partition);
    }

    pub(super) fn carry_out(&mut self, id: i32, partition: i32, commands: Vec<ReplicaCommand>) {
        for c in commands {
            if let ReplicaCommand::ProposeIsr { isr, partition_epoch } = c {
                let b = &self.brokers[id as usize - 1];
                let Some(broker_epoch) = b.broker_epoch else {
                    self.replica(id, partition).state.isr_answered(&isr, partition_epoch, IsrAnswer::Refused);
                    continue;
                };
                let change = IsrChange {
                    broker_id: id,
                    broker_epoch,
                    topic_id: self.topic_id,
                    partition,
                    leader_epoch: b.replicas[partition as usize].state.leader_epoch,
                    partition_epoch,
                    isr,
                };
                let life = b.life;
                self.send(id, CONTROLLER, Msg::AlterIsr { change, life });
            }
        }
    }

    /// A client writes to a broker that believes it leads a random partition, with `acks=all`.
    pub(super) fn produce(&mut self) {
        let partition = self.rng.below(PARTITIONS as u64) as i32;
        let leaders: Vec<i32> = (1..=BROKERS)
            .filter(|&id| {
                self.running(id) && self.brokers[id as usize - 1].replicas[partition as usize].state.is_leader()
            })
            .collect();
        if leaders.is_empty() {
            return;
        }
        let id = leaders[self.rng.below(leaders.len() as u64) as usize];
        let count = 1 + self.rng.below(3);
        let values: Vec<u64> = (0..count).map(|i| self.next_value + i).collect();
        self.next_value += count;
        let r = self.replica(id, partition);
        if r.state.check_min_isr(MIN_ISR).is_err() {
            return;
        }
        let epoch = r.state.leader_epoch;
        let records: Vec<(u64, i32)> = values.iter().map(|v| (*v, epoch)).collect();
        r.log.append(&records);
        let commands = r.state.local_append(r.log.leo());
        r.waiting.push((epoch, r.log.leo(), values));
        self.carry_out(id, partition, commands);
        self.settle_produces(id, partition);
    }

    /// Answers waiting produces as `wait_for_high_watermark` does: acknowledged once the HW
    /// passes them under the same leadership, failed when the leadership moved.
    pub(super) fn settle_produces(&mut self, id: i32, partition: i32) {
        let r = self.replica(id, partition);
        if r.waiting.is_empty() {
            return;
        }
        let (leading, epoch, hw) = (r.state.is_leader(), r.state.leader_epoch, r.state.high_watermark);
        let mut acked = Vec::new();
        r.waiting.retain(|(e, end, values)| {
            if !leading || *e != epoch {
                return false;
            }
            if hw >= *end {
                let first = *end - values.len() as i64;
                acked.extend(values.iter().enumerate().map(|(i, v)| (first + i as i64, *v, *e)));
                return false;
            }
            true
        });
        for (offset, value, epoch) in acked {
            let record = &mut self.partitions[partition as usize];
            if let Some((before, in_epoch)) = record.acked.insert(offset, (value, epoch)) {
                self.fail(format!(
                    "t-{partition} offset {offset} acknowledged as {before} (epoch {in_epoch}), then as {value}"
                ));
            }
            record.acked_order.push((offset, value, epoch));
        }
    }
}
