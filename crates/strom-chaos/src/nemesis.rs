//! The faults, one per round, chosen from the seed: what each does to the cluster and how it is
//! healed. Kinds are drawn from their own stream of the seed (so a seed's schedule is known
//! before the run, [`schedule`]); targets from another, resolved against the cluster as it is
//! (the leader of a partition, the active controller) when the round starts.

use crate::cluster::ChaosCluster;
use std::time::Duration;
use strom_metadata::sim_rng::SimRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// kill -9 of a random node (started again at the heal).
    Kill,
    /// kill -9 of the leader of a random partition of the workload's topic.
    KillLeader,
    /// kill -9 of the active controller.
    KillController,
    /// SIGSTOP of a random node (SIGCONT at the heal).
    Pause,
    /// A node cut off from every other node and from the clients.
    Isolate,
    /// The nodes split into a majority and a minority holding the leader of a random partition;
    /// clients reach both sides.
    Split,
    /// Two sides that cannot see each other, and one node that sees both.
    Bridge,
    /// One node's packets to another are lost; the other way works.
    OneWay,
    /// What a node sends goes through a 256 kbit/s link.
    Slow,
    /// A node's log directory fills up (its tmpfs). Strom keeps a directory that is only full
    /// online (appends fail with KAFKA_STORAGE_ERROR and are rolled back), so the heal just frees
    /// the space and the node must carry on without a restart.
    DiskFull,
    /// A controlled shutdown (SIGTERM) and start of a random node.
    Restart,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Kill,
        Kind::KillLeader,
        Kind::KillController,
        Kind::Pause,
        Kind::Isolate,
        Kind::Split,
        Kind::Bridge,
        Kind::OneWay,
        Kind::Slow,
        Kind::DiskFull,
        Kind::Restart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::KillLeader => "kill-leader",
            Kind::KillController => "kill-controller",
            Kind::Pause => "pause",
            Kind::Isolate => "isolate",
            Kind::Split => "split",
            Kind::Bridge => "bridge",
            Kind::OneWay => "one-way",
            Kind::Slow => "slow",
            Kind::DiskFull => "disk-full",
            Kind::Restart => "restart",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown nemesis {s:?}; the nemeses are {}", names.join(", "))
        })
    }
}

/// The kinds of the rounds of a run with `seed`.
pub fn schedule(seed: u64, rounds: usize, kinds: &[Kind]) -> Vec<Kind> {
    let mut rng = SimRng(seed);
    (0..rounds).map(|_| kinds[rng.below(kinds.len() as u64) as usize]).collect()
}

fn pick(rng: &mut SimRng, n: usize) -> usize {
    1 + rng.below(n as u64) as usize
}

/// The nodes 1..=n in an order drawn from `rng`.
fn shuffled(rng: &mut SimRng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=n).collect();
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    v
}

pub async fn apply(
    kind: Kind,
    cluster: &mut ChaosCluster,
    rng: &mut SimRng,
    topic: &str,
    partitions: i32,
) -> Result<String, String> {
    // The description of what was done, for the round's history.
    let n = cluster.nodes.len();
    let random = pick(rng, n);
    let description = match kind {
        Kind::Kill | Kind::KillLeader | Kind::KillController => {
            let (target, role) = match kind {
                Kind::KillLeader => {
                    let p = rng.below(partitions as u64) as i32;
                    (cluster.leader_of(topic, p).await, format!("leader of {topic}-{p}"))
                }
                Kind::KillController => (cluster.controller().await, "active controller".to_string()),
                _ => (None, String::new()),
            };
            let id = target.unwrap_or(random);
            cluster.node(id).kill9();
            match target {
                Some(_) => format!("kill -9 node {id} ({role})"),
                None if role.is_empty() => format!("kill -9 node {id}"),
                None => format!("kill -9 node {id} (no {role} known: a random node)"),
            }
        }
        Kind::Pause => {
            cluster.node(random).pause();
            format!("SIGSTOP node {random}")
        }
        Kind::Isolate => {
            for j in (1..=n).filter(|&j| j != random) {
                cluster.net.cut(random, j)?;
            }
            cluster.net.drop_sent(random, &cluster.net.client_ip())?;
            format!("isolate node {random} from the nodes and the clients")
        }
        Kind::Split => {
            // The leader of a random partition is always on the minority side: a leader cut off
            // from the quorum, still reached by clients, is where acknowledged writes get lost.
            let p = rng.below(partitions as u64) as i32;
            let mut order = shuffled(rng, n);
            if let Some(leader) = cluster.leader_of(topic, p).await {
                order.retain(|&i| i != leader);
                order.insert(0, leader);
            }
            let (minority, majority) = order.split_at(n / 2);
            for a in minority {
                for b in majority {
                    cluster.net.cut(*a, *b)?;
                }
            }
            format!("split the nodes into {majority:?} and {minority:?}")
        }
        Kind::Bridge => {
            let order = shuffled(rng, n);
            let (bridge, rest) = order.split_first().ok_or("no nodes")?;
            let (left, right) = rest.split_at(rest.len() / 2);
            for a in left {
                for b in right {
                    cluster.net.cut(*a, *b)?;
                }
            }
            format!("split the nodes into {left:?} and {right:?}, node {bridge} sees both")
        }
        Kind::OneWay => {
            let to = 1 + (random % n);
            cluster.net.drop_sent(random, &cluster.net.node_ip(to))?;
            format!("drop what node {random} sends to node {to}")
        }
        Kind::Slow => {
            cluster.net.slow(random, 256, 200)?;
            format!("slow the link of node {random} to 256 kbit/s")
        }
        Kind::DiskFull => {
            cluster.node(random).fill_disk()?;
            format!("fill the log directory of node {random}")
        }
        Kind::Restart => {
            let node = cluster.node(random);
            node.stop(Duration::from_secs(30));
            node.start()?;
            format!("restart node {random} (SIGTERM, then start)")
        }
    };
    Ok(description)
}

/// Undoes a fault, and whatever else is wrong: routes and queues removed, paused nodes
/// continued, disks freed, and every node that is not running started (a node that exited on
/// its own is recorded by `is_running`).
pub fn heal(cluster: &mut ChaosCluster) -> Result<(), String> {
    cluster.net.heal()?;
    for node in &mut cluster.nodes {
        node.free_disk();
        if node.paused {
            node.resume();
        }
    }
    for node in &mut cluster.nodes {
        if !node.is_running() {
            node.start()?;
        }
    }
    Ok(())
}
