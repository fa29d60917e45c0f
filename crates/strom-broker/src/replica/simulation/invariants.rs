//! The invariants the replication simulation checks after every step, and at the end once
//! the faults have stopped (see the parent module).

use super::{partition_of, Sim, BROKERS};

impl Sim {
    pub(super) fn check(&mut self) {
        if let Some(p) = partition_of(&self.image) {
            self.one_leader(p.leader_epoch, p.leader, "the controller's image");
        }
        for i in 0..self.brokers.len() {
            let b = &self.brokers[i];
            if !b.up {
                continue;
            }
            let (id, hw, last_hw) = (b.id, b.state.high_watermark, b.last_hw);
            if hw < last_hw {
                self.fail(format!("broker {id}'s HW went back from {last_hw} to {hw}"));
            }
            self.brokers[i].last_hw = hw;
            let b = &self.brokers[i];
            if !b.state.is_leader() {
                continue;
            }
            let epoch = b.state.leader_epoch;
            self.one_leader(epoch, id, "a broker's state");
            let b = &self.brokers[i];
            for r in b.state.isr.clone() {
                let leo = self.brokers[r as usize - 1].log.leo();
                if leo < hw {
                    self.fail(format!("leader {id}'s HW {hw} passes ISR member {r}'s log end {leo}"));
                }
            }
            // What consumers read below the HW is never rewritten.
            for offset in 0..hw as usize {
                let value = self.brokers[i].log.values[offset].0;
                match self.committed.get(offset) {
                    Some(v) if *v != value => {
                        self.fail(format!("offset {offset} read as {v} and later as {value} (leader {id})"))
                    }
                    Some(_) => {}
                    None => self.committed.push(value),
                }
            }
            // Every acknowledged record is in every later leader's log.
            let log = &self.brokers[i].log;
            let missing = self
                .acked
                .iter()
                .find(|(offset, (value, acked_in))| {
                    *acked_in <= epoch && log.values.get(**offset as usize).is_none_or(|(v, _)| v != value)
                })
                .map(|(o, v)| (*o, *v));
            if let Some((offset, (value, acked_in))) = missing {
                self.fail(format!(
                    "acknowledged {value}@{offset} (epoch {acked_in}) is not in the log of leader {id} of epoch {epoch}"
                ));
            }
        }
    }

    fn one_leader(&mut self, epoch: i32, leader: i32, seen_in: &str) {
        if leader < 0 {
            return;
        }
        if let Some(other) = self.leaders_by_epoch.insert(epoch, leader) {
            if other != leader {
                self.fail(format!("leader epoch {epoch} has two leaders, {other} and {leader} ({seen_in})"));
            }
        }
    }

    pub(super) fn check_converged(&mut self) {
        let Some(p) = partition_of(&self.image) else { self.fail("the topic is gone".into()) };
        if p.leader < 0 || p.isr.len() != BROKERS as usize {
            self.fail(format!("not healed: {p:?}"));
        }
        let leader = &self.brokers[p.leader as usize - 1];
        if leader.state.high_watermark != leader.log.leo() {
            self.fail(format!("leader's HW {} is not its log end {}", leader.state.high_watermark, leader.log.leo()));
        }
        for b in &self.brokers {
            if b.log.values != leader.log.values {
                self.fail(format!("broker {}'s log differs from the leader {}'s", b.id, leader.id));
            }
        }
        for (offset, (value, _)) in &self.acked {
            if leader.log.values.get(*offset as usize).map(|(v, _)| *v) != Some(*value) {
                self.fail(format!("acknowledged {value}@{offset} lost"));
            }
        }
        let mut values: Vec<u64> = leader.log.values.iter().map(|(v, _)| *v).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() != leader.log.values.len() {
            self.fail("a value appears twice in the log".into());
        }
    }
}
