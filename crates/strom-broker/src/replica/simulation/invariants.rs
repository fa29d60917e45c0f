//! The invariants the replication simulation checks after every step, and at the end once
//! the faults have stopped (see the parent module). Each leader's log is checked once per
//! offset and per acknowledgement within one leadership (one process life, one leader epoch):
//! below its HW a leader's log only grows while it leads.

use super::{partition_of, Sim, Verified, BROKERS, PARTITIONS};

impl Sim {
    pub(super) fn check(&mut self) {
        for partition in 0..PARTITIONS {
            if let Some(p) = partition_of(&self.image, partition) {
                self.one_leader(partition, p.leader_epoch, p.leader, "the controller's image");
            }
            for i in 0..self.brokers.len() {
                if self.brokers[i].up {
                    self.check_replica(i, partition);
                }
            }
        }
    }

    fn check_replica(&mut self, i: usize, partition: i32) {
        let (id, life) = (self.brokers[i].id, self.brokers[i].life);
        let r = &mut self.brokers[i].replicas[partition as usize];
        let (hw, last_hw) = (r.state.high_watermark, r.last_hw);
        if hw < last_hw {
            self.fail(format!("broker {id}'s HW of t-{partition} went back from {last_hw} to {hw}"));
        }
        r.last_hw = hw;
        if !r.state.is_leader() {
            return;
        }
        let epoch = r.state.leader_epoch;
        if (r.verified.life, r.verified.epoch) != (life, epoch) {
            r.verified = Verified { life, epoch, below: 0, acks: 0 };
        }
        self.one_leader(partition, epoch, id, "a broker's state");
        let r = &self.brokers[i].replicas[partition as usize];
        for m in r.state.isr.clone() {
            let leo = self.brokers[m as usize - 1].replicas[partition as usize].log.leo();
            if leo < hw {
                self.fail(format!("leader {id}'s HW {hw} of t-{partition} passes ISR member {m}'s log end {leo}"));
            }
        }
        // What consumers read below the HW is never rewritten.
        let r = &self.brokers[i].replicas[partition as usize];
        let record = &mut self.partitions[partition as usize];
        let mut rewritten = None;
        for offset in r.verified.below..hw {
            let value = r.log.values[offset as usize].0;
            match record.committed.get(offset as usize) {
                Some(v) if *v != value => rewritten = Some((offset, *v, value)),
                Some(_) => {}
                None => record.committed.push(value),
            }
        }
        if let Some((offset, before, now)) = rewritten {
            self.fail(format!("t-{partition} offset {offset} read as {before} and later as {now} (leader {id})"));
        }
        // Every acknowledged record is in every later leader's log.
        let record = &self.partitions[partition as usize];
        let missing = record.acked_order[r.verified.acks..]
            .iter()
            .find(|(offset, value, acked_in)| {
                *acked_in <= epoch && r.log.values.get(*offset as usize).is_none_or(|(v, _)| v != value)
            })
            .copied();
        if let Some((offset, value, acked_in)) = missing {
            self.fail(format!(
                "acknowledged {value}@{offset} of t-{partition} (epoch {acked_in}) is not in the log of leader {id} of epoch {epoch}"
            ));
        }
        let acks = record.acked_order.len();
        let r = &mut self.brokers[i].replicas[partition as usize];
        r.verified.below = r.verified.below.max(hw);
        r.verified.acks = acks;
    }

    fn one_leader(&mut self, partition: i32, epoch: i32, leader: i32, seen_in: &str) {
        if leader < 0 {
            return;
        }
        let leaders = &mut self.partitions[partition as usize].leaders_by_epoch;
        let e = epoch as usize;
        if leaders.len() <= e {
            leaders.resize(e + 1, -1);
        }
        let other = leaders[e];
        if other < 0 {
            leaders[e] = leader;
        } else if other != leader {
            self.fail(format!("t-{partition}: leader epoch {epoch} has two leaders, {other} and {leader} ({seen_in})"));
        }
    }

    pub(super) fn check_converged(&mut self) {
        for partition in 0..PARTITIONS {
            self.check_partition_converged(partition);
        }
    }

    fn check_partition_converged(&mut self, partition: i32) {
        let Some(p) = partition_of(&self.image, partition) else { self.fail("the topic is gone".into()) };
        if p.leader < 0 || p.isr.len() != BROKERS as usize {
            self.fail(format!("t-{partition} not healed: {p:?}"));
        }
        let leader = &self.brokers[p.leader as usize - 1].replicas[partition as usize];
        if leader.state.high_watermark != leader.log.leo() {
            let (hw, leo) = (leader.state.high_watermark, leader.log.leo());
            self.fail(format!("t-{partition}: the leader's HW {hw} is not its log end {leo}"));
        }
        for b in &self.brokers {
            if b.replicas[partition as usize].log.values != leader.log.values {
                self.fail(format!("broker {}'s log of t-{partition} differs from the leader {}'s", b.id, p.leader));
            }
        }
        for (offset, (value, _)) in &self.partitions[partition as usize].acked {
            if leader.log.values.get(*offset as usize).map(|(v, _)| *v) != Some(*value) {
                self.fail(format!("acknowledged {value}@{offset} of t-{partition} lost"));
            }
        }
        let mut values: Vec<u64> = leader.log.values.iter().map(|(v, _)| *v).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() != leader.log.values.len() {
            self.fail(format!("a value appears twice in the log of t-{partition}"));
        }
    }
}
