//! The CI-sized chaos run (root: the nodes run in network namespaces), and the proof that its
//! checker catches loss: the same run against brokers that answer acks=all before the high
//! watermark reports lost records. The long run is `strom-chaos --rounds 200` (docs/reliability.md).

use std::path::PathBuf;
use std::time::Duration;
use strom_chaos::nemesis::{schedule, Kind};
use strom_chaos::Options;

/// Restart, bridge, kill-leader, pause, one-way, split (`strom-chaos --print-schedule --seed 4 --rounds 6`).
const SEED: u64 = 4;
const ROUNDS: usize = 6;

fn options(name: &str, node_env: Vec<(String, String)>) -> Options {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
    });
    assert_eq!(uid.as_deref(), Some("0"), "the chaos tests need root (network namespaces, tmpfs mounts)");
    // target/debug/deps/chaos-… → target/debug/strom, built with the workspace's tests.
    let exe = std::env::current_exe().expect("test binary path");
    let strom: PathBuf = exe.parent().and_then(|d| d.parent()).expect("target dir").join("strom");
    assert!(strom.is_file(), "{} is missing: cargo build --bin strom", strom.display());
    let work = std::env::temp_dir().join(format!("strom-chaos-test-{name}-{}", std::process::id()));
    Options {
        nodes: 3,
        rounds: ROUNDS,
        seed: SEED,
        round: Duration::from_secs(10),
        kinds: Kind::ALL.to_vec(),
        partitions: 6,
        producers: 3,
        consumers: 2,
        strom,
        work,
        node_env,
    }
}

#[test]
fn the_seed_covers_leaders_partitions_and_process_faults() {
    let kinds = schedule(SEED, ROUNDS, &Kind::ALL);
    for k in [Kind::Split, Kind::KillLeader, Kind::Pause, Kind::Bridge, Kind::OneWay, Kind::Restart] {
        assert!(kinds.contains(&k), "seed {SEED} has no {} round: {kinds:?}", k.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_keeps_every_acknowledged_write() {
    let opts = options("pass", vec![]);
    let report = strom_chaos::run(&opts).await.expect("the harness runs");
    println!("{report}");
    assert!(report.acknowledged > 1_000, "too few writes were acknowledged: {}", report.acknowledged);
    assert!(report.passed(), "the chaos run found violations (logs in {})", opts.work.display());
    let _ = std::fs::remove_dir_all(&opts.work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_lost_writes_when_brokers_acknowledge_before_the_high_watermark() {
    let env = vec![("STROM_FAULT_INJECTION".to_string(), "ack-before-hw".to_string())];
    let opts = options("ack-before-hw", env);
    let report = strom_chaos::run(&opts).await.expect("the harness runs");
    println!("{report}");
    assert!(!report.lost.is_empty(), "acks before the HW lost nothing the checker saw");
    assert!(!report.passed());
    let _ = std::fs::remove_dir_all(&opts.work);
}
