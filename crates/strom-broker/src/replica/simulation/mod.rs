//! Deterministic simulation of replication: the real controller ([`Controller`]: registration,
//! sessions, fencing, elections, AlterPartition) and the real replica state machine
//! ([`ReplicaState`]: HW, ISR, acks) with the real divergence decisions, on three brokers that
//! each hold a replica of every partition of one topic (leaders spread by the controller's
//! placement), whose logs are models (values with their leader epochs, the storage's own leader
//! epoch cache). Messages (fetches, AlterPartition, heartbeats, registrations) cross a simulated
//! network with delay, reordering, loss and duplication; brokers lag on metadata, crash (kill
//! -9: the log survives, the process state does not), pause (SIGSTOP) and come back; the active
//! controller fails over (its sessions are lost, as KRaft's are). One seeded generator drives
//! everything, so a failing seed replays exactly:
//! `STROM_SIM_SEED=<seed> cargo nextest run --workspace -E 'test(replication_simulation)'`.
//! CI runs 200 long seeds and 10,000 short ones (`STROM_SIM_SEEDS=<n>` and
//! `STROM_SIM_SHORT_SEEDS=<n>` for other counts).
//!
//! Checked after every step, per partition:
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
//!
//! `seeded_bug` runs the same seeds against a state machine with a deliberate HW bug (a new
//! leader's HW ignores ISR members that have not fetched from it yet) and must find it.

mod broker;
mod invariants;
mod log;
mod messages;

use super::state::{IsrAnswer, ReplicaCommand, ReplicaState};
use log::SimLog;
use messages::{FetchReply, InFlight, Msg};
use std::collections::BTreeMap;
use strom_metadata::controller::ControllerSettings;
use strom_metadata::sim_rng::SimRng as Rng;
use strom_metadata::{
    BrokerEndpoint, Controller, CreateTopicSpec, MetadataError, MetadataImage, MetadataRecord, PartitionImage, Proposal,
};
use uuid::Uuid;

const BROKERS: i32 = 3;
const PARTITIONS: i32 = 3;
const MIN_ISR: usize = 2;
const LAG_TIME_MAX_MS: i64 = 200;
const SESSION_TIMEOUT_MS: i64 = 300;
const HEARTBEAT_MS: u64 = 50;

const CONTROLLER: i32 = 0;

/// How long a seed runs: steps with faults, then steps without (the heal).
#[derive(Clone, Copy)]
struct Length {
    faults: u64,
    heal: u64,
}

const LONG: Length = Length { faults: 2_500, heal: 3_000 };
const SHORT: Length = Length { faults: 700, heal: 1_300 };

/// One broker's replica of one partition.
struct Replica {
    state: ReplicaState,
    log: SimLog,
    checkpointed_hw: i64,
    /// The request id of the fetch in flight (its correlation id).
    fetch_in_flight: Option<u64>,
    next_fetch_at: u64,
    /// `acks=all` produces waiting for the HW: (leader epoch, end offset, values).
    waiting: Vec<(i32, i64, Vec<u64>)>,
    last_hw: i64,
    /// How far the invariants have checked this replica's log as a leader, in the leadership
    /// `(life, leader epoch)`: offsets below the HW, and acknowledged records (a leader's log
    /// below its HW only grows while it leads in one epoch and one process life).
    verified: Verified,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Verified {
    life: u64,
    epoch: i32,
    below: i64,
    acks: usize,
}

impl Replica {
    fn new(id: i32) -> Replica {
        Replica {
            state: ReplicaState::new(id, LAG_TIME_MAX_MS, 0, 0),
            log: SimLog::empty(),
            checkpointed_hw: 0,
            fetch_in_flight: None,
            next_fetch_at: 0,
            waiting: Vec::new(),
            last_hw: 0,
            verified: Verified::default(),
        }
    }
}

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
    next_heartbeat_at: u64,
    next_tick_at: u64,
    /// One per partition, by partition index.
    replicas: Vec<Replica>,
}

/// What happened to one partition, for the invariants.
#[derive(Default)]
struct PartitionRecord {
    /// Every acknowledged record: offset → (value, leader epoch it was acknowledged in).
    acked: BTreeMap<i64, (u64, i32)>,
    /// The same, in the order acknowledged (the invariants check each leader's log against a
    /// growing prefix of it).
    acked_order: Vec<(i64, u64, i32)>,
    /// What consumers could read: offset → value, from every leader's log below its HW.
    committed: Vec<u64>,
    /// The leader of each leader epoch seen, by epoch (-1: none seen).
    leaders_by_epoch: Vec<i32>,
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
    partitions: Vec<PartitionRecord>,
    history: Vec<String>,
    faults: bool,
    length: Length,
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
    fn new(seed: u64, length: Length) -> Sim {
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
            partitions: (0..PARTITIONS).map(|_| PartitionRecord::default()).collect(),
            history: Vec::new(),
            faults: true,
            length,
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
            num_partitions: PARTITIONS,
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
                next_heartbeat_at: 0,
                next_tick_at: 0,
                replicas: (0..PARTITIONS).map(|_| Replica::new(id)).collect(),
            });
        }
        sim
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self.history.iter().rev().take(40).collect();
        let states: Vec<_> =
            self.brokers.iter().flat_map(|b| b.replicas.iter().map(move |r| (b.id, r.log.leo(), &r.state))).collect();
        panic!(
            "seed {}: {what}\nat {} ms; recent events (newest first):\n{}\nstates: {:#?}",
            self.seed,
            self.now,
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
            states
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
        // A retransmission the receiver sees twice (a resent request, a replayed answer).
        if self.faults && self.rng.chance_per_mille(10) {
            let again = self.now + 1 + self.rng.below(30);
            self.net.push(InFlight { at: again, seq: self.seq, to, from, msg: msg.clone() });
            self.seq += 1;
        }
        self.net.push(InFlight { at, seq: self.seq, to, from, msg });
    }

    fn broker(&mut self, id: i32) -> &mut Broker {
        &mut self.brokers[id as usize - 1]
    }

    fn replica(&mut self, id: i32, partition: i32) -> &mut Replica {
        &mut self.brokers[id as usize - 1].replicas[partition as usize]
    }

    fn running(&self, id: i32) -> bool {
        let b = &self.brokers[id as usize - 1];
        b.up && b.paused_until <= self.now
    }

    fn run(&mut self) {
        let Length { faults, heal } = self.length;
        for step in 0..faults + heal {
            if step == faults {
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
                if self.rng.chance_per_mille(40) {
                    self.produce();
                }
                self.nemesis();
            } else if step < faults + heal / 2 && self.rng.chance_per_mille(40) {
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
        b.replicas.iter_mut().for_each(|r| r.waiting.clear());
        // Sometimes the controller sees the process gone (connections closed, port refusing).
        if self.rng.chance_per_mille(500) {
            if let Ok(p) = self.controller.fence_broker(&self.image, id) {
                self.commit(p);
            }
        }
    }

    /// A new process on the surviving logs and metadata: each replica's state starts from its
    /// log and checkpointed HW, and takes a role once the new registration is applied.
    fn restart(&mut self, id: i32) {
        let now = self.now;
        let seed = self.seed;
        let b = self.broker(id);
        b.up = true;
        b.paused_until = 0;
        b.life += 1;
        b.broker_epoch = None;
        for r in &mut b.replicas {
            r.fetch_in_flight = None;
            r.waiting.clear();
            r.state = ReplicaState::new(id, LAG_TIME_MAX_MS, r.log.leo(), r.checkpointed_hw.min(r.log.leo()));
            r.last_hw = r.state.high_watermark;
        }
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
        match msg {
            Msg::Register { incarnation, life } => {
                if let Ok(p) = self.controller.register_broker(&self.image, from, incarnation, endpoints(from), None) {
                    let broker_epoch = self.commit(p);
                    self.send(CONTROLLER, from, Msg::Registered { life, broker_epoch });
                }
            }
            Msg::Heartbeat { broker_epoch } => {
                if let Ok(p) = self.controller.broker_heartbeat(&self.image, from, broker_epoch, self.now as i64) {
                    self.commit(p);
                }
            }
            Msg::AlterIsr { change, life } => {
                // As the ISR task tells the controller's answers apart.
                let answer = match self.controller.alter_partition(&self.image, change.clone()) {
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
        let partition = match msg {
            Msg::Registered { life: l, broker_epoch } if l == life => {
                self.broker(id).broker_epoch = Some(broker_epoch);
                return;
            }
            Msg::AlterIsrDone { life: l, change, answer } if l == life => {
                let p = change.partition;
                let unknown = self.replica(id, p).state.isr_answered(&change.isr, change.partition_epoch, answer);
                if unknown {
                    let resend =
                        ReplicaCommand::ProposeIsr { isr: change.isr, partition_epoch: change.partition_epoch };
                    self.carry_out(id, p, vec![resend]);
                }
                p
            }
            Msg::Fetch { from, life: their_life, at } => {
                let reply = self.serve_fetch(id, from, at);
                self.send(id, from, Msg::FetchReply { life: their_life, at, reply });
                at.partition
            }
            Msg::FetchReply { life: l, at, reply } if l == life => {
                self.fetched(id, from, at, reply);
                at.partition
            }
            _ => return,
        };
        self.settle_produces(id, partition);
    }
}

fn partition_of(image: &MetadataImage, partition: i32) -> Option<PartitionImage> {
    image.topic("t").and_then(|t| t.partitions.get(&partition)).cloned()
}

/// `STROM_SIM_SEED`, or seeds `first..first + count` (`count` from `var`, else `default`).
fn seeds(var: &str, default: u64, first: u64) -> Vec<u64> {
    match std::env::var("STROM_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("STROM_SIM_SEED is a number")],
        Err(_) => (first..first + std::env::var(var).map_or(default, |n| n.parse().expect("a count"))).collect(),
    }
}

fn run_seeds(seeds: &[u64], length: Length) {
    let mut acked = 0;
    for &seed in seeds {
        let mut sim = Sim::new(seed, length);
        sim.run();
        assert!(sim.next_value > 0, "seed {seed}: nothing was written");
        acked += sim.partitions.iter().map(|p| p.acked.len()).sum::<usize>();
    }
    assert!(acked > 0, "no write was ever acknowledged");
}

#[test]
fn replication_simulation_keeps_acknowledged_writes_under_faults() {
    run_seeds(&seeds("STROM_SIM_SEEDS", 200, 1), LONG);
}

/// 10,000 short seeds of their own (apart from the long test's), in four tests that the test
/// runner spreads over the cores.
fn short_seeds(quarter: u64) -> Vec<u64> {
    let all = seeds("STROM_SIM_SHORT_SEEDS", 10_000, 1_000_000);
    let per = all.len().div_ceil(4);
    all.into_iter().skip(quarter as usize * per).take(per).collect()
}

#[test]
fn replication_simulation_short_seeds_1_of_4() {
    run_seeds(&short_seeds(0), SHORT);
}

#[test]
fn replication_simulation_short_seeds_2_of_4() {
    run_seeds(&short_seeds(1), SHORT);
}

#[test]
fn replication_simulation_short_seeds_3_of_4() {
    run_seeds(&short_seeds(2), SHORT);
}

#[test]
fn replication_simulation_short_seeds_4_of_4() {
    run_seeds(&short_seeds(3), SHORT);
}

#[test]
fn replication_simulation_finds_a_seeded_high_watermark_bug() {
    let _bug = super::state::seeded_bug::HwIgnoresUnfetchedMembers::on();
    let found = (1..=2_000u64).find_map(|seed| {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Sim::new(seed, SHORT).run()));
        result.err().map(|e| (seed, e.downcast_ref::<String>().cloned().unwrap_or_default()))
    });
    let (seed, message) = found.expect("2,000 seeds did not find a HW that ignores ISR members");
    let what = message.lines().next().unwrap_or_default().to_string();
    assert!(
        ["read as", "is not in the log of leader", "passes ISR member", "below its high watermark", "lost"]
            .iter()
            .any(|m| what.contains(m)),
        "seed {seed} failed for another reason: {what}"
    );
    println!("the seeded bug was found by seed {seed}: {what}");
}
