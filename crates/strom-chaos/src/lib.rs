//! strom-chaos: a Strom cluster on this machine under faults, and a check of what survived.
//!
//! Each node runs in its own network namespace on a bridge, with its log directory on a small
//! tmpfs, so that the harness can cut links, slow them, fill a disk, and kill, pause or restart
//! the process. Each round applies one fault drawn from the seed, holds it while idempotent
//! `acks=all` producers, a consumer group and admin operations run, heals it and waits until
//! the cluster is whole (every node up, every ISR full). After the last round the records are
//! read back and checked ([`checker`]), the nodes stopped and the replicas' logs compared byte
//! for byte below the high watermark ([`replicas`]), and the nodes' output scanned for panics.
//!
//! Needs root (namespaces, mounts) and iproute2; traffic stays on this machine.

pub mod checker;
pub mod cluster;
pub mod nemesis;
pub mod net;
pub mod node;
pub mod replicas;
pub mod report;
pub mod workload;

use cluster::ChaosCluster;
use nemesis::Kind;
use report::Report;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use strom_client::admin::NewTopic;
use strom_client::TopicPartition;
use strom_metadata::sim_rng::SimRng;
use workload::{Workload, WorkloadSpec};

/// The size of each node's tmpfs, in MiB: room for a long run's records (the checker needs
/// them all, so nothing is deleted by retention), filled on purpose by the disk-full fault.
pub const DISK_MB: u64 = 2048;

pub const TOPIC: &str = "chaos";

#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    pub rounds: usize,
    pub seed: u64,
    /// How long each fault is held.
    pub round: Duration,
    pub kinds: Vec<Kind>,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    /// The `strom` binary the nodes run.
    pub strom: PathBuf,
    /// Where the nodes' tmpfs mounts and logs go.
    pub work: PathBuf,
    /// Environment for the nodes (`STROM_FAULT_INJECTION` in a debug build).
    pub node_env: Vec<(String, String)>,
}

/// Runs the rounds and the checks. `Err` when the harness itself could not run (no root, the
/// cluster did not start), as opposed to a report of violations.
pub async fn run(opts: &Options) -> Result<Report, String> {
    let mut report = Report { seed: opts.seed, nodes: opts.nodes, rounds: opts.rounds, ..Report::default() };
    let mut cluster = ChaosCluster::start(opts.nodes, &opts.strom, &opts.work, &opts.node_env).await?;
    let rf = opts.nodes.min(3) as i16;
    let topic = NewTopic::new(TOPIC, opts.partitions, rf).config("min.insync.replicas", "2");
    match cluster.admin.create_topics(&[topic], false).await {
        Ok(r) if r.iter().all(|(_, r)| r.is_ok()) => {}
        other => return Err(format!("cannot create the topic {TOPIC}: {other:?}")),
    }
    let topics = vec![TOPIC.to_string()];
    cluster.wait_whole(&topics, Duration::from_secs(60)).await?;
    let spec = WorkloadSpec {
        bootstrap: cluster.bootstrap.clone(),
        topic: TOPIC.into(),
        partitions: opts.partitions,
        producers: opts.producers,
        consumers: opts.consumers,
        seed: opts.seed,
    };
    let mut workload = Workload::start(&spec);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut targets = SimRng(opts.seed ^ 0x7a_4e75);
    let run_started = Instant::now();
    for (round, kind) in nemesis::schedule(opts.seed, opts.rounds, &opts.kinds).into_iter().enumerate() {
        let started = Instant::now();
        let applied = nemesis::apply(kind, &mut cluster, &mut targets, TOPIC, opts.partitions).await;
        let mut worst = Duration::ZERO;
        while started.elapsed() < opts.round {
            tokio::time::sleep(Duration::from_millis(100)).await;
            worst = worst.max(workload.shared.since_last_ack());
        }
        let description = match applied {
            Ok(d) => d,
            Err(e) => format!("{} could not be applied: {e}", kind.name()),
        };
        nemesis::heal(&mut cluster)?;
        let whole = wait_whole_sampling(&mut cluster, &topics, &workload, &mut worst).await;
        let outcome = match whole {
            Ok(d) => format!("whole {:.1} s after the heal", d.as_secs_f64()),
            Err(e) => {
                report.not_recovered.push(format!("round {}: {e}", round + 1));
                format!("NOT whole: {e}")
            }
        };
        let at = started.duration_since(run_started).as_secs_f64();
        let line = format!("round {:>3} at {at:>6.1} s: {description}; {outcome}", round + 1);
        eprintln!("{line}");
        report.history.push(line);
        *report.faults.entry(kind.name()).or_default() += 1;
        let gap = report.unavailability.entry(kind.name()).or_default();
        *gap = (*gap).max(worst);
    }
    nemesis::heal(&mut cluster)?;
    if let Err(e) = cluster.wait_whole(&topics, Duration::from_secs(120)).await {
        report.not_recovered.push(format!("after the last round: {e}"));
    }
    workload.stop_producers().await;
    let log = workload::read_back(&cluster.bootstrap, TOPIC, opts.partitions).await;
    workload.stop_rest().await;
    let hws = high_watermarks(&cluster, opts.partitions).await;
    check_topics(&cluster, &workload, &mut report).await;
    cluster.stop_all();
    match log {
        Ok(log) => checker::check(&workload.shared.seen.lock().unwrap_or_else(|p| p.into_inner()), &log, &mut report),
        Err(e) => report.not_recovered.push(format!("read back: {e}")),
    }
    let dirs: Vec<(usize, PathBuf)> = cluster.nodes.iter().map(|n| (n.id, n.data_dir())).collect();
    match hws {
        Ok(hws) => {
            for (partition, hw) in hws {
                let (replicas, problems) = replicas::compare(&dirs, TOPIC, partition, hw);
                report.replicas_differ.extend(problems);
                if replicas != rf as usize {
                    report.replicas_differ.push(format!("{TOPIC}-{partition}: {replicas} replicas on disk, not {rf}"));
                }
            }
        }
        Err(e) => report.replicas_differ.push(format!("high watermarks: {e}")),
    }
    for node in &mut cluster.nodes {
        report.panics.extend(node.panics());
        report.exits.append(&mut node.unexpected_exits);
    }
    Ok(report)
}

async fn wait_whole_sampling(
    cluster: &mut ChaosCluster,
    topics: &[String],
    workload: &Workload,
    worst: &mut Duration,
) -> Result<Duration, String> {
    let shared = std::sync::Arc::clone(&workload.shared);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                worst = worst.max(shared.since_last_ack());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            worst
        })
    };
    let whole = cluster.wait_whole(topics, Duration::from_secs(60)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    *worst = (*worst).max(sampler.await.unwrap_or_default());
    whole
}

async fn high_watermarks(cluster: &ChaosCluster, partitions: i32) -> Result<BTreeMap<i32, i64>, String> {
    let query: BTreeMap<TopicPartition, i64> = (0..partitions).map(|p| (TopicPartition::new(TOPIC, p), -1)).collect();
    let offsets = cluster.admin.list_offsets(&query).await.map_err(|e| e.to_string())?;
    Ok(offsets.into_iter().map(|(tp, (o, _))| (tp.partition, o)).collect())
}

/// The auxiliary topics: each whose creation was acknowledged (and not deleted since) exists;
/// each whose deletion was acknowledged is gone.
async fn check_topics(cluster: &ChaosCluster, workload: &Workload, report: &mut Report) {
    let names = match cluster.admin.list_topics(false).await {
        Ok(n) => n,
        Err(e) => return report.topics_wrong.push(format!("cannot list topics: {e}")),
    };
    let seen = workload.shared.seen.lock().unwrap_or_else(|p| p.into_inner());
    for t in &seen.live_aux_topics {
        if !names.contains(t) {
            report.topics_wrong.push(format!("{t} was created (acknowledged) and is missing"));
        }
    }
    for t in &seen.deleted_aux_topics {
        if names.contains(t) {
            report.topics_wrong.push(format!("{t} was deleted (acknowledged) and still exists"));
        }
    }
}
