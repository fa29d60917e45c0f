//! Deterministic simulation of the metadata quorum: 3 or 5 cores over a simulated network (delay,
//! loss, duplication, reordering, partitions) and a simulated disk (only what a `Persist`
//! command wrote survives a crash), driven by one seeded generator, plus an observer that
//! fetches the committed log from any voter (stale ones too) and is crashed and restarted. Every step checks Raft's
//! safety properties; after the faults end, every node must converge on the same log holding
//! every acknowledged proposal exactly once. A failing seed replays exactly:
//! `STROM_SIM_SEED=<seed> cargo test -p strom-metadata simulation`.

use super::*;
use crate::sim_rng::SimRng as Rng;
use bytes::Bytes;
use protobuf::Message as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The replicated state machine of the simulation: the applied values in order.
#[derive(Default, Clone)]
struct Machine {
    applied_index: u64,
    values: Vec<u64>,
}

impl Machine {
    fn encode(&self) -> Bytes {
        let mut out = self.applied_index.to_be_bytes().to_vec();
        self.values.iter().for_each(|v| out.extend_from_slice(&v.to_be_bytes()));
        Bytes::from(out)
    }
    fn decode(data: &[u8]) -> Machine {
        let words: Vec<u64> =
            data.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes"))).collect();
        Machine { applied_index: words[0], values: words[1..].to_vec() }
    }
}

struct Node {
    core: Option<QuorumCore>,
    disk: PersistentState,
    machine: Machine,
}

/// The node id of the simulation's observer (not a voter).
const OBSERVER: u64 = 100;

struct ObserverNode {
    core: Option<ObserverCore>,
    disk: PersistentState,
    machine: Machine,
    /// Answers on their way: (deliver at, chunk).
    inbox: Vec<(u64, ObserverChunk)>,
}

struct InFlight {
    deliver_at: u64,
    seq: u64,
    to: u64,
    bytes: Vec<u8>,
}

struct Sim {
    rng: Rng,
    seed: u64,
    now: u64,
    nodes: BTreeMap<u64, Node>,
    network: Vec<InFlight>,
    seq: u64,
    /// Directed links that drop everything.
    cut: BTreeSet<(u64, u64)>,
    loss_percent: u64,
    /// The first (term, value) applied at each index by any node: every node must agree.
    committed: BTreeMap<u64, (u64, Option<u64>)>,
    leaders: HashMap<u64, u64>,
    proposed: BTreeMap<u64, u64>,
    acknowledged: BTreeSet<u64>,
    next_value: u64,
    history: Vec<String>,
    observer: ObserverNode,
}

fn settings(id: u64, voters: &[u64], seed: u64) -> QuorumSettings {
    QuorumSettings {
        node_id: id,
        voters: voters.to_vec(),
        election_ticks: 10,
        heartbeat_ticks: 2,
        max_append_bytes: 4096,
        seed,
    }
}

impl Sim {
    fn new(seed: u64, size: u64) -> Sim {
        let voters: Vec<u64> = (1..=size).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let core = QuorumCore::restore(settings(id, &voters, seed), PersistentState::default()).expect("core");
                (id, Node { core: Some(core), disk: PersistentState::default(), machine: Machine::default() })
            })
            .collect();
        Sim {
            rng: Rng(seed),
            seed,
            now: 0,
            nodes,
            network: Vec::new(),
            seq: 0,
            cut: BTreeSet::new(),
            loss_percent: 0,
            committed: BTreeMap::new(),
            leaders: HashMap::new(),
            proposed: BTreeMap::new(),
            acknowledged: BTreeSet::new(),
            next_value: 1,
            history: Vec::new(),
            observer: ObserverNode {
                core: Some(ObserverCore::restore(OBSERVER, PersistentState::default()).0),
                disk: PersistentState::default(),
                machine: Machine::default(),
                inbox: Vec::new(),
            },
        }
    }

    fn voters(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<_> = self.history.iter().rev().take(30).rev().collect();
        panic!("seed {}: at tick {}: {what}\nlast events:\n{tail:#?}", self.seed, self.now)
    }

    /// Executes the commands of one node, in order, as an adapter would.
    fn run_commands(&mut self, id: u64) {
        loop {
            let commands = match self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                Some(core) => core.poll(),
                None => return,
            };
            if commands.is_empty() {
                break;
            }
            for command in commands {
                self.execute(id, command);
            }
        }
        self.check_leader(id);
        self.maybe_compact(id);
    }

    fn execute(&mut self, id: u64, command: QuorumCommand) {
        match command {
            QuorumCommand::Persist(batch) => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.disk.apply(&batch);
            }
            QuorumCommand::Send(messages) => {
                for m in messages {
                    let delay = 1 + self.rng.below(3);
                    let copies = if self.rng.chance(2) { 2 } else { 1 };
                    for _ in 0..copies {
                        self.seq += 1;
                        self.network.push(InFlight {
                            deliver_at: self.now + delay + self.rng.below(2),
                            seq: self.seq,
                            to: m.to,
                            bytes: m.write_to_bytes().expect("encode"),
                        });
                    }
                }
            }
            QuorumCommand::RestoreSnapshot { index, data, .. } => {
                let machine = Machine::decode(&data);
                if machine.applied_index != index {
                    self.fail(format!("node {id}: snapshot at {index} holds a machine at {}", machine.applied_index));
                }
                let before = self.machine(id).applied_index;
                if index <= before {
                    self.fail(format!("node {id}: a snapshot at {index} took its state back from {before}"));
                }
                self.history.push(format!("t{} n{id} restored snapshot at {index}", self.now));
                *self.machine(id) = machine;
            }
            QuorumCommand::Apply(entries) => {
                for e in entries {
                    self.apply(id, e);
                }
            }
        }
    }

    fn machine(&mut self, id: u64) -> &mut Machine {
        match id {
            OBSERVER => &mut self.observer.machine,
            _ => &mut self.nodes.get_mut(&id).expect("node").machine,
        }
    }

    fn apply(&mut self, id: u64, e: Committed) {
        let value = (!e.data.is_empty()).then(|| u64::from_be_bytes(e.data[..8].try_into().expect("8 bytes")));
        let machine = self.machine(id);
        if e.index != machine.applied_index + 1 {
            let at = machine.applied_index;
            self.fail(format!("node {id} applied {} after {at}", e.index));
        }
        machine.applied_index = e.index;
        if let Some(v) = value {
            if machine.values.contains(&v) {
                self.fail(format!("node {id} applied value {v} twice"));
            }
            machine.values.push(v);
        }
        match self.committed.get(&e.index) {
            Some(&(term, v)) if (term, v) != (e.term, value) => self.fail(format!(
                "node {id} applied ({}, {value:?}) at index {} where another applied ({term}, {v:?})",
                e.term, e.index
            )),
            Some(_) => {}
            None => {
                self.committed.insert(e.index, (e.term, value));
            }
        }
        if let Some(v) = value {
            if self.proposed.get(&v) == Some(&id) {
                self.acknowledged.insert(v);
            }
        }
    }

    fn check_leader(&mut self, id: u64) {
        let Some(core) = self.nodes.get(&id).and_then(|n| n.core.as_ref()) else { return };
        let status = core.status();
        if status.is_leader {
            match self.leaders.get(&status.term) {
                Some(&other) if other != id => {
                    self.fail(format!("two leaders in term {}: {other} and {id}", status.term))
                }
                Some(_) => {}
                None => {
                    self.history.push(format!("t{} n{id} leader of term {}", self.now, status.term));
                    self.leaders.insert(status.term, id);
                }
            }
        }
    }

    fn maybe_compact(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        let Some(core) = node.core.as_mut() else { return };
        let applied = node.machine.applied_index;
        if applied >= core.snapshot_index() + 15 {
            let command = core.compact(applied, node.machine.encode());
            self.execute(id, command);
        }
    }

    fn crash(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("node");
        if node.core.take().is_some() {
            self.history.push(format!("t{} n{id} crashed", self.now));
            self.network.retain(|m| m.to != id);
        }
    }

    fn restart(&mut self, id: u64) {
        let voters = self.voters();
        let node = self.nodes.get_mut(&id).expect("node");
        if node.core.is_some() {
            return;
        }
        let seed = self.seed.wrapping_add(self.now);
        let core = QuorumCore::restore(settings(id, &voters, seed), node.disk.clone()).expect("restart");
        let snapshot = &node.disk.snapshot;
        node.machine =
            if snapshot.get_metadata().index == 0 { Machine::default() } else { Machine::decode(&snapshot.data) };
        node.core = Some(core);
        self.history.push(format!("t{} n{id} restarted", self.now));
    }

    fn propose(&mut self) {
        let alive: Vec<u64> = self.nodes.iter().filter(|(_, n)| n.core.is_some()).map(|(id, _)| *id).collect();
        if alive.is_empty() {
            return;
        }
        let id = alive[self.rng.below(alive.len() as u64) as usize];
        self.propose_at(id);
    }

    fn deliver(&mut self) {
        let now = self.now;
        let mut due: Vec<InFlight> = Vec::new();
        let mut i = 0;
        while i < self.network.len() {
            if self.network[i].deliver_at <= now {
                due.push(self.network.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|m| (m.deliver_at, m.seq));
        for m in due {
            let message = RaftMessage::parse_from_bytes(&m.bytes).expect("decode");
            if self.cut.contains(&(message.from, m.to)) || self.rng.chance(self.loss_percent) {
                continue;
            }
            let Some(core) = self.nodes.get_mut(&m.to).and_then(|n| n.core.as_mut()) else { continue };
            if let Err(e) = core.step(message) {
                self.fail(format!("node {} rejected a message: {e}", m.to));
            }
            self.run_commands(m.to);
        }
    }

    /// The observer asks a random live voter for what follows its log; the answer arrives a
    /// little later (possibly after a newer one, or after the observer restarted).
    fn observer_fetch(&mut self) {
        let Some(from) = self.observer.core.as_ref().map(|c| c.next_index()) else { return };
        let alive: Vec<u64> = self.nodes.iter().filter(|(_, n)| n.core.is_some()).map(|(id, _)| *id).collect();
        if alive.is_empty() {
            return;
        }
        let voter = alive[self.rng.below(alive.len() as u64) as usize];
        let chunk = self.nodes[&voter].core.as_ref().expect("alive").serve_observer(from, 64);
        let at = self.now + 1 + self.rng.below(4);
        self.observer.inbox.push((at, chunk));
    }

    fn observer_receive(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.observer.inbox).into_iter().partition(|m| m.0 <= now);
        self.observer.inbox = later;
        for (_, chunk) in due {
            let Some(core) = self.observer.core.as_mut() else { return };
            let commands = match core.receive(chunk) {
                Ok(c) => c,
                Err(why) => {
                    self.history.push(format!("t{now} observer ignored an answer: {why}"));
                    continue;
                }
            };
            for command in commands {
                match command {
                    QuorumCommand::Persist(batch) => self.observer.disk.apply(&batch),
                    other => self.execute(OBSERVER, other),
                }
            }
            let core = self.observer.core.as_mut().expect("alive");
            if core.applied() >= core.snapshot_index() + 15 {
                let command = core.compact(self.observer.machine.encode());
                if let QuorumCommand::Persist(batch) = command {
                    self.observer.disk.apply(&batch);
                }
            }
        }
    }

    fn observer_crash_or_restart(&mut self) {
        if self.observer.core.take().is_some() {
            self.observer.inbox.clear();
            self.history.push(format!("t{} observer crashed", self.now));
            return;
        }
        let (core, commands) = ObserverCore::restore(OBSERVER, self.observer.disk.clone());
        self.observer.core = Some(core);
        self.observer.machine = Machine::default();
        self.history.push(format!("t{} observer restarted", self.now));
        for command in commands {
            self.execute(OBSERVER, command);
        }
    }

    fn tick(&mut self) {
        self.now += 1;
        if self.rng.chance(40) {
            self.observer_fetch();
        }
        self.observer_receive();
        for id in self.voters() {
            if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                core.tick();
            }
            self.run_commands(id);
        }
        self.deliver();
    }

    fn nemesis(&mut self) {
        let voters = self.voters();
        let pick = |rng: &mut Rng| voters[rng.below(voters.len() as u64) as usize];
        match self.rng.below(100) {
            0..=2 => {
                let id = pick(&mut self.rng);
                self.crash(id);
            }
            3..=7 => {
                let id = pick(&mut self.rng);
                self.restart(id);
            }
            8..=9 => {
                // Isolate one node both ways.
                let id = pick(&mut self.rng);
                for &o in &voters {
                    if o != id {
                        self.cut.insert((id, o));
                        self.cut.insert((o, id));
                    }
                }
                self.history.push(format!("t{} isolate n{id}", self.now));
            }
            10 => {
                // One-way loss.
                let (a, b) = (pick(&mut self.rng), pick(&mut self.rng));
                if a != b {
                    self.cut.insert((a, b));
                    self.history.push(format!("t{} cut n{a}->n{b}", self.now));
                }
            }
            11..=13 => {
                self.cut.clear();
                self.history.push(format!("t{} heal network", self.now));
            }
            14 => self.loss_percent = self.rng.below(30),
            15 => self.observer_crash_or_restart(),
            16..=18 => {
                // A report that the leader is gone: true after a crash, possibly wrong (a
                // live leader) otherwise; it must never break safety either way.
                let (id, leader) = (pick(&mut self.rng), pick(&mut self.rng));
                if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                    core.leader_gone(leader);
                    self.history.push(format!("t{} n{id} told n{leader} is gone", self.now));
                }
                self.run_commands(id);
            }
            _ => {}
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
        self.loss_percent = 0;
        for id in self.voters() {
            self.restart(id);
        }
        if self.observer.core.is_none() {
            self.observer_crash_or_restart();
        }
        self.history.push(format!("t{} heal all", self.now));
    }

    /// Runs until every node applied the same last index under one leader, or fails.
    fn converge(&mut self) {
        // Entries proposed by a leader that then lost its leadership may still be committed by
        // the next leader; one more proposal after healing makes every node apply them.
        let deadline = self.now + 2_000;
        let mut proposed_after_heal = false;
        while self.now < deadline {
            self.tick();
            let leader =
                self.nodes.values().filter_map(|n| n.core.as_ref()).find(|c| c.is_leader()).map(|c| c.status());
            if let Some(l) = leader {
                if !proposed_after_heal {
                    self.propose_at(l.node_id);
                    proposed_after_heal = true;
                    continue;
                }
                let applied: BTreeSet<u64> = self.nodes.values().map(|n| n.machine.applied_index).collect();
                if applied.len() == 1 && applied.contains(&l.commit_index) && l.commit_index == l.last_index {
                    return;
                }
            }
        }
        let statuses: Vec<_> = self
            .nodes
            .values()
            .map(|n| {
                (n.core.as_ref().map(|c| c.status()), n.machine.applied_index, n.disk.snapshot.get_metadata().index)
            })
            .collect();
        self.fail(format!("the cluster did not converge after healing: {statuses:#?}"));
    }

    fn propose_at(&mut self, id: u64) {
        let value = self.next_value;
        let core = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()).expect("alive");
        if core.propose(value.to_be_bytes().to_vec()).is_ok() {
            self.next_value += 1;
            self.proposed.insert(value, id);
        }
        self.run_commands(id);
    }

    /// Lets the observer fetch until it holds what the voters applied.
    fn observer_catch_up(&mut self) {
        let target = self.nodes.values().map(|n| n.machine.applied_index).max().unwrap_or(0);
        let deadline = self.now + 2_000;
        while self.observer.machine.applied_index < target {
            if self.now > deadline {
                self.fail(format!("the observer stopped at {} of {target}", self.observer.machine.applied_index));
            }
            self.observer_fetch();
            self.tick();
        }
    }

    fn check_final(&self) {
        let reference = &self.nodes.values().next().expect("nodes").machine.values;
        for (id, node) in &self.nodes {
            if &node.machine.values != reference {
                self.fail(format!("node {id} ended with a different history"));
            }
        }
        if &self.observer.machine.values != reference {
            self.fail("the observer ended with a different history".into());
        }
        let present: BTreeSet<u64> = reference.iter().copied().collect();
        if let Some(lost) = self.acknowledged.iter().find(|v| !present.contains(v)) {
            self.fail(format!("acknowledged value {lost} was lost"));
        }
    }

    /// A fingerprint of the whole run, to show that a seed replays exactly.
    fn fingerprint(&self) -> String {
        format!("{:?} {:?} {}", self.history, self.committed, self.now)
    }
}

fn run(seed: u64) -> Sim {
    let size = if seed.is_multiple_of(3) { 5 } else { 3 };
    let mut sim = Sim::new(seed, size);
    for _ in 0..400 {
        sim.nemesis();
        if sim.rng.chance(30) {
            sim.propose();
        }
        sim.tick();
    }
    sim.heal();
    sim.converge();
    sim.observer_catch_up();
    sim.check_final();
    sim
}

#[test]
fn many_seeds_keep_raft_safe_and_converge() {
    let seeds: Vec<u64> = match std::env::var("STROM_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("STROM_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("STROM_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
            (0..count).collect()
        }
    };
    let (mut acknowledged, mut leaders, mut observed, mut observer_snapshots) = (0, 0, 0, 0);
    for seed in seeds {
        let sim = run(seed);
        acknowledged += sim.acknowledged.len();
        leaders += sim.leaders.len();
        observed += sim.observer.machine.values.len();
        observer_snapshots += sim.history.iter().filter(|h| h.contains("n100 restored snapshot")).count();
    }
    // The runs must have done real work, not merely stayed safe by doing nothing.
    assert!(acknowledged > 0 && leaders > 0, "acknowledged {acknowledged}, leaders {leaders}");
    assert!(observed > 0 && observer_snapshots > 0, "observer: {observed} values, {observer_snapshots} snapshots");
}

#[test]
fn a_seed_replays_exactly() {
    assert_eq!(run(7).fingerprint(), run(7).fingerprint());
}

#[test]
fn a_single_voter_commits_alone() {
    let mut sim = Sim::new(1, 1);
    for _ in 0..40 {
        sim.tick();
    }
    sim.propose_at(1);
    sim.tick();
    assert_eq!(sim.acknowledged.len(), 1);
}

/// Ticks until a node other than `old` leads; the ticks it took.
fn ticks_to_new_leader(sim: &mut Sim, old: u64) -> u64 {
    let start = sim.now;
    while !sim.nodes.iter().any(|(id, n)| *id != old && n.core.as_ref().is_some_and(|c| c.is_leader())) {
        assert!(sim.now - start < 500, "no new leader");
        sim.tick();
    }
    sim.now - start
}

#[test]
fn followers_told_the_leader_is_gone_elect_a_new_one_sooner() {
    let (mut reported, mut unreported) = (Vec::new(), Vec::new());
    for seed in 0..40 {
        for report in [true, false] {
            let mut sim = Sim::new(seed, 3);
            ticks_to_new_leader(&mut sim, 0);
            let old = (1..=3).find(|id| sim.nodes[id].core.as_ref().is_some_and(|c| c.is_leader())).expect("leader");
            // Let the followers hear from the leader, so that they hold a lease.
            for _ in 0..5 {
                sim.tick();
            }
            sim.crash(old);
            // What the leader sent before it died arrives first (a closed connection is seen
            // after the data in it); then the followers find its port refusing connections.
            for _ in 0..5 {
                sim.tick();
            }
            if report {
                for id in (1..=3).filter(|&id| id != old) {
                    sim.nodes.get_mut(&id).and_then(|n| n.core.as_mut()).expect("live").leader_gone(old);
                    sim.run_commands(id);
                }
            }
            let took = 5 + ticks_to_new_leader(&mut sim, old);
            if report {
                reported.push(took)
            } else {
                unreported.push(took)
            }
        }
    }
    // Without a report nobody votes before a whole election timeout (10 ticks) has passed; with
    // one, only the random part of the timeout remains, plus the votes' round trips.
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (r, u) = (median(&mut reported.clone()), median(&mut unreported.clone()));
    assert!(r + 5 < u, "median {r} vs {u}: reported {reported:?}, unreported {unreported:?}");
}
