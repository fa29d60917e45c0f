//! A randomized model test: simulated clients that follow the classic protocol (and sometimes
//! leave, crash, go quiet or come back) drive the coordinator with a random clock. Invariants:
//! generations never go back; within one generation every member sees the same leader and no
//! partition is handed to two members; every deferred request is answered in the end.

use super::tests::{request, settings, Inbox, SESSION};
use super::*;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};

const PARTITIONS: usize = 12;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Out,
    Joining(RequestId),
    Syncing(RequestId, i32),
    Stable(i32),
    Crashed,
}

struct Client {
    member_id: String,
    phase: Phase,
}

struct World {
    c: GroupCoordinator,
    inbox: Inbox,
    clients: Vec<Client>,
    next_rid: RequestId,
    outstanding: HashSet<RequestId>,
    leaders: HashMap<i32, String>,
    owners: BTreeMap<(i32, usize), String>,
    last_generation: i32,
}

impl World {
    fn rid(&mut self) -> RequestId {
        self.next_rid += 1;
        self.next_rid
    }

    fn join(&mut self, i: usize, now: i64) {
        let rid = self.rid();
        let member = self.clients[i].member_id.clone();
        let (reply, fx) = self.c.join_group(rid, request("g", &member, None, &[("range", "")]), now);
        self.inbox.take(fx);
        match reply {
            Reply::Now(r) if r.error == codes::MEMBER_ID_REQUIRED => {
                self.clients[i].member_id = r.member_id;
                self.join(i, now);
            }
            Reply::Now(r) => self.on_join(i, r, now),
            Reply::Later => {
                self.outstanding.insert(rid);
                self.clients[i].phase = Phase::Joining(rid);
            }
        }
    }

    fn on_join(&mut self, i: usize, r: JoinResponse, now: i64) {
        if r.error != codes::NONE {
            if r.error == codes::UNKNOWN_MEMBER_ID {
                self.clients[i].member_id.clear();
            }
            self.clients[i].phase = Phase::Out;
            return;
        }
        let leader = self.leaders.entry(r.generation_id).or_insert_with(|| r.leader.clone());
        assert_eq!(*leader, r.leader, "one leader per generation");
        let plan: Vec<(String, Bytes)> = if r.leader == r.member_id {
            let ids: Vec<String> = r.members.iter().map(|m| m.member_id.clone()).collect();
            ids.iter()
                .enumerate()
                .map(|(k, id)| {
                    let mine: Vec<String> =
                        (0..PARTITIONS).filter(|p| p % ids.len() == k).map(|p| p.to_string()).collect();
                    (id.clone(), Bytes::from(mine.join(",")))
                })
                .collect()
        } else {
            Vec::new()
        };
        let rid = self.rid();
        let req = SyncRequest {
            group_id: "g".into(),
            generation_id: r.generation_id,
            member_id: r.member_id,
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: plan,
        };
        let (reply, fx) = self.c.sync_group(rid, req, now);
        self.inbox.take(fx);
        match reply {
            Reply::Now(s) => self.on_sync(i, r.generation_id, s),
            Reply::Later => {
                self.outstanding.insert(rid);
                self.clients[i].phase = Phase::Syncing(rid, r.generation_id);
            }
        }
    }

    fn on_sync(&mut self, i: usize, generation: i32, s: SyncResponse) {
        if s.error != codes::NONE {
            if s.error == codes::UNKNOWN_MEMBER_ID || s.error == codes::ILLEGAL_GENERATION {
                self.clients[i].member_id.clear();
            }
            self.clients[i].phase = Phase::Out;
            return;
        }
        let me = self.clients[i].member_id.clone();
        for p in std::str::from_utf8(&s.assignment).expect("utf8").split(',').filter(|p| !p.is_empty()) {
            let p: usize = p.parse().expect("partition");
            if let Some(owner) = self.owners.insert((generation, p), me.clone()) {
                assert_eq!(owner, me, "partition {p} owned twice in generation {generation}");
            }
        }
        self.clients[i].phase = Phase::Stable(generation);
    }

    /// Hands delivered deferred replies to their (live) clients.
    fn deliver(&mut self, now: i64) {
        let joins = std::mem::take(&mut self.inbox.joins);
        let syncs = std::mem::take(&mut self.inbox.syncs);
        for (rid, r) in joins {
            assert!(self.outstanding.remove(&rid), "join {rid} answered twice or never asked");
            if let Some(i) = self.clients.iter().position(|c| c.phase == Phase::Joining(rid)) {
                self.on_join(i, r, now);
            }
        }
        for (rid, s) in syncs {
            assert!(self.outstanding.remove(&rid), "sync {rid} answered twice or never asked");
            if let Some(i) = self.clients.iter().position(|c| matches!(c.phase, Phase::Syncing(r, _) if r == rid)) {
                let Phase::Syncing(_, generation) = self.clients[i].phase else { unreachable!() };
                self.on_sync(i, generation, s);
            }
        }
        if let Some(g) = self.c.snapshot("g") {
            assert!(g.generation >= self.last_generation, "generation went back");
            self.last_generation = g.generation;
        }
    }

    fn step(&mut self, rng: &mut Rng, now: i64) {
        let i = rng.below(self.clients.len() as u64) as usize;
        match self.clients[i].phase.clone() {
            Phase::Out => self.join(i, now),
            Phase::Stable(generation) => match rng.below(20) {
                0 => {
                    let member = self.clients[i].member_id.clone();
                    let (_, _, fx) = self.c.leave_group("g", &[(member, None)], now);
                    self.inbox.take(fx);
                    self.clients[i] = Client { member_id: String::new(), phase: Phase::Out };
                }
                1 => self.clients[i].phase = Phase::Crashed,
                _ => {
                    let (code, fx) = self.c.heartbeat("g", generation, &self.clients[i].member_id, None, now);
                    self.inbox.take(fx);
                    match code {
                        codes::NONE => {}
                        codes::REBALANCE_IN_PROGRESS => self.join(i, now),
                        _ => {
                            self.clients[i].member_id.clear();
                            self.clients[i].phase = Phase::Out;
                        }
                    }
                }
            },
            Phase::Crashed if rng.below(10) == 0 => {
                self.clients[i] = Client { member_id: String::new(), phase: Phase::Out };
            }
            _ => {}
        }
        self.deliver(now);
    }
}

#[test]
fn random_clients_never_break_the_group_invariants() {
    for seed in 1..=40u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let delay = if seed % 2 == 0 { 0 } else { 500 };
        let mut w = World {
            c: GroupCoordinator::new(settings(delay)),
            inbox: Inbox::default(),
            clients: (0..5).map(|_| Client { member_id: String::new(), phase: Phase::Out }).collect(),
            next_rid: 0,
            outstanding: HashSet::new(),
            leaders: HashMap::new(),
            owners: BTreeMap::new(),
            last_generation: 0,
        };
        let mut now = 0i64;
        for _ in 0..3_000 {
            now += rng.below(SESSION as u64 / 4) as i64;
            let fx = w.c.tick(now);
            w.inbox.take(fx);
            w.deliver(now);
            w.step(&mut rng, now);
        }
        // Everybody stops; after every timeout has passed, no request may still be waiting.
        for c in &mut w.clients {
            c.phase = Phase::Crashed;
        }
        for _ in 0..10 {
            now += 60_000;
            let fx = w.c.tick(now);
            w.inbox.take(fx);
            w.deliver(now);
        }
        assert!(w.outstanding.is_empty(), "seed {seed}: unanswered requests {:?}", w.outstanding);
        assert_eq!(w.c.group_state("g"), Some(GroupState::Empty), "seed {seed}");
        assert!(w.last_generation > 1, "seed {seed}: the model exercised rebalances");
    }
}
