//! Deterministic simulation of replication: the real controller ([`Controller`]: registration,
//! sessions, fencing, elections, AlterPartition) and the real replica state machine
//! ([`ReplicaState`]: HW, ISR, acks) with the real divergence decisions, on three brokers whose
//! logs are models (values with their leader epochs, the storage's own leader epoch cache).
//! Messages (fetches, AlterPartition, heartbeats, registrations) cross a simulated network with
//! delay and loss; brokers lag on metadata, crash (kill -9: the log survives, the process state
//! does not), pause (SIGSTOP) and come back; the active controller fails over (its sessions are
//! lost, as KRaft's are). One seeded generator drives everything, so a failing seed replays
//! exactly: `STROM_SIM_SEED=<seed> cargo nextest run --workspace -E 'test(replication_simulation)'`
//! (`STROM_SIM_SEEDS=<n>` runs seeds 1..=n; CI runs 200).
//!
//! Checked after every step:
//! - one leader per leader epoch, in every broker's state and in the controller's image;
//! - a leader's HW never passes the log end of a member of its ISR, and no broker's HW goes back
//!   within one process life;
//! - no offset below a leader's HW ever holds two different values (what consumers read is
//!   never rewritten), and no replica truncates below its own HW (no unclean elections here);
//! - every acknowledged (`acks=all`, `min.insync.replicas=2`) record is in the log of every
//!   leader of a later epoch, at its offset.
//!
//! After the faults stop: every replica's log is the leader's, the ISR is full, and every
//! acknowledged record is there exactly once.

mod invariants;
mod log;
mod messages;

use super::divergence::{diverging_epoch, truncation_offset};
use super::state::{IsrAnswer, ReplicaCommand, ReplicaError, ReplicaState};
use log::SimLog;
use messages::{FetchAt, FetchReply, InFlight, Msg};
use std::collections::{BTreeMap, HashMap};
use strom_metadata::controller::ControllerSettings;
use strom_metadata::sim_rng::SimRng as Rng;
use strom_metadata::{
    BrokerEndpoint, Controller, CreateTopicSpec, IsrChange, MetadataError, MetadataImage, MetadataRecord,
    PartitionImage, Proposal,
};
use uuid::Uuid;

const BROKERS: i32 = 3;
const MIN_ISR: usize = 2;
const LAG_TIME_MAX_MS: i64 = 200;
const SESSION_TIMEOUT_MS: i64 = 300;
const HEARTBEAT_MS: u64 = 50;
const FAULT_STEPS: u64 = 2_500;
const HEAL_STEPS: u64 = 3_000;

const CONTROLLER: i32 = 0;

struct Broker {
    id: i32,
    up: bool,
    paused_until: u64,
    /// Counts process starts; messages of an earlier life are ignored.
    life: u64,
    incarnation: Uuid,
    broker_epoch: Option<i64>,
    /// Partitions take their roles only once this process's registration is applied
    /// (`ReplicaManager::roles_active`).
    roles_active: bool,
    /// The committed metadata batches this broker has applied (durable across restarts).
    applied: usize,
    image: MetadataImage,
    state: ReplicaState,
    log: SimLog,
    checkpointed_hw: i64,
    fetch_in_flight: bool,
    next_fetch_at: u64,
    next_heartbeat_at: u64,
    next_tick_at: u64,
    /// `acks=all` produces waiting for the HW: (leader epoch, end offset, values).
    waiting: Vec<(i32, i64, Vec<u64>)>,
    last_hw: i64,
}

struct Sim {
    seed: u64,
    rng: Rng,
    now: u64,
    seq: u64,
    net: Vec<InFlight>,
    controller: Controller,
    controller_up_at: u64,
    image: MetadataImage,
    batches: Vec<Vec<MetadataRecord>>,
    topic_id: Uuid,
    brokers: Vec<Broker>,
    next_value: u64,
    /// Every acknowledged record: offset → (value, leader epoch it was acknowledged in).
    acked: BTreeMap<i64, (u64, i32)>,
    /// What consumers could read: offset → value, from every leader's log below its HW.
    committed: Vec<u64>,
    leaders_by_epoch: HashMap<i32, i32>,
    history: Vec<String>,
    faults: bool,
}

fn settings() -> ControllerSettings {
    ControllerSettings {
        node_id: -1,
        default_num_partitions: 1,
        default_replication_factor: BROKERS as i16,
        delete_topic_enable: true,
        broker_session_timeout_ms: SESSION_TIMEOUT_MS,
        unclean_leader_election_enable: false,
    }
}

fn endpoints(id: i32) -> Vec<BrokerEndpoint> {
    vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "sim".into(), port: 9000 + id as u16 }]
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            seed,
            rng: Rng(seed),
            now: 0,
            seq: 0,
            net: Vec::new(),
            controller: Controller::new(settings()),
            controller_up_at: 0,
            image: MetadataImage::default(),
            batches: Vec::new(),
            topic_id: Uuid::nil(),
            brokers: Vec::new(),
            next_value: 0,
            acked: BTreeMap::new(),
            committed: Vec::new(),
            leaders_by_epoch: HashMap::new(),
            history: Vec::new(),
            faults: true,
        };
        let mut epochs = Vec::new();
        for id in 1..=BROKERS {
            let p = sim.controller.register_broker(
                &sim.image,
                id,
                Uuid::from_u64_pair(seed, id as u64),
                endpoints(id),
                None,
            );
            epochs.push(sim.commit(p.expect("register")));
        }
        let spec = CreateTopicSpec {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: BROKERS as i16,
            assignments: vec![],
            configs: vec![],
        };
        let p = sim.controller.create_topic(&sim.image, spec, false).expect("create");
        sim.topic_id = sim.commit(p).topic_id;
        for id in 1..=BROKERS {
            sim.brokers.push(Broker {
                id,
                up: true,
                paused_until: 0,
                life: 0,
                incarnation: Uuid::from_u64_pair(seed, id as u64),
                roles_active: false,
                broker_epoch: Some(epochs[id as usize - 1]),
                applied: 0,
                image: MetadataImage::default(),
                state: ReplicaState::new(id, LAG_TIME_MAX_MS, 0, 0),
                log: SimLog::empty(),
                checkpointed_hw: 0,
                fetch_in_flight: false,
                next_fetch_at: 0,
                next_heartbeat_at: 0,
                next_tick_at: 0,
                waiting: Vec::new(),
                last_hw: 0,
            });
        }
        sim
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self.history.iter().rev().take(40).collect();
        panic!(
            "seed {}: {what}\nat {} ms; recent events (newest first):\n{}\nstates: {:#?}\nlogs: {:?}",
            self.seed,
            self.now,
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            self.brokers.iter().map(|b| (b.id, b.log.leo(), &b.state)).collect::<Vec<_>>(),
            self.brokers.iter().map(|b| (b.id, b.log.values.clone())).collect::<Vec<_>>()
        )
    }

    fn note(&mut self, event: String) {
        self.history.push(format!("{:>6} {event}", self.now));
    }

    /// Commits a controller proposal: the quorum orders it after everything before it.
    fn commit<T>(&mut self, p: Proposal<T>) -> T {
        if !p.records.is_empty() {
            for r in &p.records {
                self.image.apply(r);
            }
            self.image.offset += 1;
            self.controller.committed(&p.records);
            let summary: Vec<String> = p.records.iter().map(|r| format!("{r:?}")).collect();
            self.history.push(format!("{:>6} committed {}", self.now, summary.join("; ")));
            self.batches.push(p.records);
        }
        p.value
    }

    fn send(&mut self, from: i32, to: i32, msg: Msg) {
        self.seq += 1;
        let lost = self.faults && self.rng.chance_per_mille(20);
        let delay = 1 + self.rng.below(if self.faults { 15 } else { 3 });
        // A lost fetch or AlterPartition surfaces at its sender as an error once it times out;
        // lost registrations and heartbeats are simply sent again later.
        let (at, to, from, msg) = match (lost, msg) {
            (true, Msg::Fetch { life, at, .. }) => {
                (self.now + 100, from, to, Msg::FetchReply { life, at, reply: FetchReply::Error })
            }
            (true, Msg::AlterIsr { life, change }) => {
                (self.now + 100, from, to, Msg::AlterIsrDone { life, change, answer: IsrAnswer::Unknown })
            }
            (true, Msg::Register { .. } | Msg::Heartbeat { .. }) => return,
            (_, msg) => (self.now + delay, to, from, msg),
        };
        self.net.push(InFlight { at, seq: self.seq, to, from, msg });
    }

    fn broker(&mut self, id: i32) -> &mut Broker {
        &mut self.brokers[id as usize - 1]
    }

    fn running(&self, id: i32) -> bool {
        let b = &self.brokers[id as usize - 1];
        b.up && b.paused_until <= self.now
    }

    fn run(&mut self) {
        for step in 0..FAULT_STEPS + HEAL_STEPS {
            if step == FAULT_STEPS {
                self.heal();
            }
            self.now += 1 + self.rng.below(3);
            self.deliver();
            self.controller_tick();
            for id in 1..=BROKERS {
                if self.running(id) {
                    self.broker_step(id);
                }
            }
            if self.faults {
                if self.rng.chance_per_mille(20) {
                    self.produce();
                }
                self.nemesis();
            } else if step < FAULT_STEPS + HEAL_STEPS / 2 && self.rng.chance_per_mille(20) {
                self.produce();
            }
            self.check();
        }
        self.check_converged();
    }

    fn heal(&mut self) {
        self.faults = false;
        self.note("heal".into());
        for id in 1..=BROKERS {
            self.broker(id).paused_until = 0;
            if !self.brokers[id as usize - 1].up {
                self.restart(id);
            }
        }
        self.controller_up_at = self.controller_up_at.min(self.now);
    }

    fn nemesis(&mut self) {
        let id = 1 + self.rng.below(BROKERS as u64) as i32;
        match self.rng.below(1000) {
            0..=2 if self.brokers.iter().filter(|b| b.up).count() == BROKERS as usize => {
                self.note(format!("kill -9 broker {id}"));
                self.crash(id);
            }
            3..=5 if !self.brokers[id as usize - 1].up => {
                self.note(format!("restart broker {id}"));
                self.restart(id);
            }
            6..=7 => {
                let pause = 50 + self.rng.below(600);
                self.note(format!("SIGSTOP broker {id} for {pause} ms"));
                self.broker(id).paused_until = self.now + pause;
            }
            8 => {
                self.note("controller failover".into());
                self.controller = Controller::new(settings());
                self.controller_up_at = self.now + 20 + self.rng.below(100);
            }
            _ => {}
        }
    }

    fn crash(&mut self, id: i32) {
        let b = self.broker(id);
        b.up = false;
        b.waiting.clear();
        // Sometimes the controller sees the process gone (connections closed, port refusing).
        if self.rng.chance_per_mille(500) {
            if let Ok(p) = self.controller.fence_broker(&self.image, id) {
                self.commit(p);
            }
        }
    }

    /// A new process on the surviving log and metadata: the replica state starts from the log
    /// and the checkpointed HW, and takes a role once its new registration is applied.
    fn restart(&mut self, id: i32) {
        let now = self.now;
        let seed = self.seed;
        let b = self.broker(id);
        b.up = true;
        b.paused_until = 0;
        b.life += 1;
        b.broker_epoch = None;
        b.fetch_in_flight = false;
        b.waiting.clear();
        b.state = ReplicaState::new(id, LAG_TIME_MAX_MS, b.log.leo(), b.checkpointed_hw.min(b.log.leo()));
        b.last_hw = b.state.high_watermark;
        b.roles_active = false;
        b.incarnation = Uuid::from_u64_pair(seed ^ b.life, id as u64);
        b.next_heartbeat_at = now;
    }

    fn controller_tick(&mut self) {
        if self.now < self.controller_up_at {
            return;
        }
        let p = self.controller.expire_sessions(&self.image, self.now as i64);
        self.commit(p);
    }

    fn deliver(&mut self) {
        loop {
            let now = self.now;
            let due = self
                .net
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    m.at <= now && (m.to == CONTROLLER || self.running(m.to) || !self.brokers[m.to as usize - 1].up)
                })
                .min_by_key(|(_, m)| (m.at, m.seq))
                .map(|(i, _)| i);
            let Some(i) = due else { return };
            let m = self.net.swap_remove(i);
            if m.to == CONTROLLER {
                self.at_controller(m.from, m.msg);
            } else if self.brokers[m.to as usize - 1].up {
                self.at_broker(m.to, m.from, m.msg);
            } else if let Msg::Fetch { from, life, at } = m.msg {
                // The connection to a dead broker fails; the fetcher backs off and tries again.
                let reply = Msg::FetchReply { life, at, reply: FetchReply::Error };
                self.net.push(InFlight { at: self.now + 100, seq: m.seq, to: from, from: m.to, msg: reply });
            }
        }
    }

    fn at_controller(&mut self, from: i32, msg: Msg) {
        if self.now < self.controller_up_at {
            // No active controller: the request times out.
            if let Msg::AlterIsr { life, change } = msg {
                self.send(CONTROLLER, from, Msg::AlterIsrDone { life, change, answer: IsrAnswer::Unknown });
            }
            return;
        }
        let image = self.image.clone();
        match msg {
            Msg::Register { incarnation, life } => {
                if let Ok(p) = self.controller.register_broker(&image, from, incarnation, endpoints(from), None) {
                    let broker_epoch = self.commit(p);
                    self.send(CONTROLLER, from, Msg::Registered { life, broker_epoch });
                }
            }
            Msg::Heartbeat { broker_epoch } => {
                if let Ok(p) = self.controller.broker_heartbeat(&image, from, broker_epoch, self.now as i64) {
                    self.commit(p);
                }
            }
            Msg::AlterIsr { change, life } => {
                // As the ISR task tells the controller's answers apart.
                let answer = match self.controller.alter_partition(&image, change.clone()) {
                    Ok(p) => {
                        self.commit(p);
                        IsrAnswer::Accepted
                    }
                    Err(MetadataError::InvalidUpdateVersion { .. }) => IsrAnswer::Outdated,
                    Err(_) => IsrAnswer::Refused,
                };
                self.send(CONTROLLER, from, Msg::AlterIsrDone { life, change, answer });
            }
            other => self.fail(format!("controller got {other:?}")),
        }
    }

    fn at_broker(&mut self, id: i32, from: i32, msg: Msg) {
        let life = self.brokers[id as usize - 1].life;
        match msg {
            Msg::Registered { life: l, broker_epoch } if l == life => self.broker(id).broker_epoch = Some(broker_epoch),
            Msg::AlterIsrDone { life: l, change, answer } if l == life => {
                let unknown = self.broker(id).state.isr_answered(&change.isr, change.partition_epoch, answer);
                if unknown {
                    let resend =
                        ReplicaCommand::ProposeIsr { isr: change.isr, partition_epoch: change.partition_epoch };
                    self.carry_out(id, vec![resend]);
                }
            }
            Msg::Fetch { from, life: their_life, at } => {
                let reply = self.serve_fetch(id, from, at);
                self.send(id, from, Msg::FetchReply { life: their_life, at, reply });
            }
            Msg::FetchReply { life: l, at, reply } if l == life => self.fetched(id, from, at, reply),
            _ => {}
        }
        self.settle_produces(id);
    }

    /// The leader's side of a replica fetch, as the fetch handler does it.
    fn serve_fetch(&mut self, id: i32, follower: i32, at: FetchAt) -> FetchReply {
        let now = self.now as i64;
        let b = &mut self.brokers[id as usize - 1];
        if !b.state.is_leader() || at.leader_epoch != b.state.leader_epoch {
            return FetchReply::Error;
        }
        let log = &b.log;
        match diverging_epoch(at.last_fetched_epoch, at.fetch_offset, |e| log.end_offset_for_epoch(e)) {
            Err(_) => return FetchReply::OutOfRange { leader_end: b.log.leo() },
            Ok(Some((epoch, end_offset))) => return FetchReply::Diverging { epoch, end_offset },
            Ok(None) => {}
        }
        let commands = match b.state.follower_fetch(follower, at.fetch_offset, now) {
            Ok(c) => c,
            Err(ReplicaError::OffsetOutOfRange) => return FetchReply::OutOfRange { leader_end: b.log.leo() },
            Err(_) => return FetchReply::Error,
        };
        let from = at.fetch_offset as usize;
        let to = (from + 1 + self.rng.below(8) as usize).min(self.brokers[id as usize - 1].log.values.len());
        let records = self.brokers[id as usize - 1].log.values[from..to].to_vec();
        self.carry_out(id, commands);
        FetchReply::Records { records, high_watermark: self.brokers[id as usize - 1].state.high_watermark }
    }

    /// The follower's side, as `follower.rs` does it.
    fn fetched(&mut self, id: i32, leader: i32, at: FetchAt, reply: FetchReply) {
        let b = &mut self.brokers[id as usize - 1];
        b.fetch_in_flight = false;
        let still_following =
            !b.state.is_leader() && b.state.leader == at.leader && b.state.leader_epoch == at.leader_epoch;
        if !still_following {
            return;
        }
        let before = b.log.leo();
        let hw = b.state.high_watermark;
        match reply {
            FetchReply::Records { records, high_watermark } => {
                if b.log.leo() != at.fetch_offset {
                    return;
                }
                b.log.append(&records);
                b.state.local_append(b.log.leo());
                b.state.follower_high_watermark(high_watermark);
                if records.is_empty() {
                    b.next_fetch_at = self.now + 5;
                }
            }
            FetchReply::Diverging { epoch, end_offset } => {
                let target = truncation_offset(b.log.leo(), b.log.end_offset_for_epoch(epoch), epoch, end_offset);
                b.log.truncate_to(target);
                b.state.truncate_to(b.log.leo());
            }
            FetchReply::OutOfRange { leader_end } => {
                if leader_end < b.log.leo() {
                    b.log.truncate_to(leader_end);
                }
                b.state.restart_at(b.log.leo());
            }
            FetchReply::Error => b.next_fetch_at = self.now + 20,
        }
        let after = b.log.leo();
        if after < before {
            let note =
                format!("broker {id} truncated {before} → {after} following {leader} (epoch {})", at.leader_epoch);
            self.note(note);
            if after < hw {
                self.fail(format!("broker {id} truncated to {after}, below its high watermark {hw}"));
            }
        }
    }

    fn broker_step(&mut self, id: i32) {
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
            if let Some(p) = partition_of(&b.image).filter(|_| b.roles_active) {
                let (commands, change) = b.state.apply_partition(&p, now as i64);
                if change.is_some() {
                    let note = format!("broker {id} {change:?} in epoch {} (isr {:?})", p.leader_epoch, p.isr);
                    self.note(note);
                }
                self.carry_out(id, commands);
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
        if now >= b.next_tick_at {
            b.next_tick_at = now + LAG_TIME_MAX_MS as u64 / 2;
            let commands = b.state.tick(now as i64);
            self.carry_out(id, commands);
        }
        let b = &mut self.brokers[id as usize - 1];
        if self.rng.chance_per_mille(50) {
            b.checkpointed_hw = b.state.high_watermark;
        }
        if !b.fetch_in_flight && now >= b.next_fetch_at && !b.state.is_leader() && b.state.leader > 0 {
            let at = FetchAt {
                fetch_offset: b.log.leo(),
                last_fetched_epoch: b.log.latest_epoch(),
                leader: b.state.leader,
                leader_epoch: b.state.leader_epoch,
            };
            b.fetch_in_flight = true;
            let life = b.life;
            self.send(id, at.leader, Msg::Fetch { from: id, life, at });
        }
        self.settle_produces(id);
    }

    fn carry_out(&mut self, id: i32, commands: Vec<ReplicaCommand>) {
        for c in commands {
            if let ReplicaCommand::ProposeIsr { isr, partition_epoch } = c {
                let b = &self.brokers[id as usize - 1];
                let Some(broker_epoch) = b.broker_epoch else {
                    self.broker(id).state.isr_answered(&isr, partition_epoch, IsrAnswer::Refused);
                    continue;
                };
                let change = IsrChange {
                    broker_id: id,
                    broker_epoch,
                    topic_id: self.topic_id,
                    partition: 0,
                    leader_epoch: b.state.leader_epoch,
                    partition_epoch,
                    isr,
                };
                let life = b.life;
                self.send(id, CONTROLLER, Msg::AlterIsr { change, life });
            }
        }
    }

    /// A client writes to a broker that believes it leads, with `acks=all`.
    fn produce(&mut self) {
        let leaders: Vec<i32> =
            (1..=BROKERS).filter(|&id| self.running(id) && self.brokers[id as usize - 1].state.is_leader()).collect();
        if leaders.is_empty() {
            return;
        }
        let id = leaders[self.rng.below(leaders.len() as u64) as usize];
        let count = 1 + self.rng.below(3);
        let values: Vec<u64> = (0..count).map(|i| self.next_value + i).collect();
        self.next_value += count;
        let b = &mut self.brokers[id as usize - 1];
        if b.state.check_min_isr(MIN_ISR).is_err() {
            return;
        }
        let epoch = b.state.leader_epoch;
        let records: Vec<(u64, i32)> = values.iter().map(|v| (*v, epoch)).collect();
        b.log.append(&records);
        let commands = b.state.local_append(b.log.leo());
        b.waiting.push((epoch, b.log.leo(), values));
        self.carry_out(id, commands);
        self.settle_produces(id);
    }

    /// Answers waiting produces as `wait_for_high_watermark` does: acknowledged once the HW
    /// passes them under the same leadership, failed when the leadership moved.
    fn settle_produces(&mut self, id: i32) {
        let b = &mut self.brokers[id as usize - 1];
        let (leading, epoch, hw) = (b.state.is_leader(), b.state.leader_epoch, b.state.high_watermark);
        let mut acked = Vec::new();
        b.waiting.retain(|(e, end, values)| {
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
            self.acked.insert(offset, (value, epoch));
        }
    }
}

fn partition_of(image: &MetadataImage) -> Option<PartitionImage> {
    image.topic("t").and_then(|t| t.partitions.get(&0)).cloned()
}

#[test]
fn replication_simulation_keeps_acknowledged_writes_under_faults() {
    let seeds: Vec<u64> = match std::env::var("STROM_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("STROM_SIM_SEED is a number")],
        // STROM_SIM_SEEDS=N for a longer run than CI's.
        Err(_) => (1..=std::env::var("STROM_SIM_SEEDS").map_or(200, |n| n.parse().expect("a count"))).collect(),
    };
    let mut acked = 0;
    for seed in seeds {
        let mut sim = Sim::new(seed);
        sim.run();
        assert!(sim.next_value > 0, "seed {seed}: nothing was written");
        acked += sim.acked.len();
    }
    assert!(acked > 0, "no write was ever acknowledged");
}
