//! `strom-chaos`: runs a Strom cluster on this machine through rounds of faults and checks that
//! no acknowledged write was lost, duplicated or reordered. Needs root.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use strom_chaos::nemesis::{schedule, Kind};
use strom_chaos::Options;

#[derive(Parser)]
#[command(
    name = "strom-chaos",
    about = "Runs a Strom cluster through faults (kills, pauses, partitions, slow links, full disks) under an \
             acks=all workload, then checks every acknowledged record; a failing run replays from its seed",
    after_help = "Example: strom-chaos --nodes 3 --rounds 200 --seed 1 (as root; the nodes run in network namespaces)"
)]
struct Args {
    /// Nodes in the cluster, each a broker and a controller (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Chooses the faults and their targets; the same seed replays the same schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds each fault is held before it is healed.
    #[arg(long, default_value_t = 8)]
    round_secs: u64,
    /// The faults to draw from, comma-separated (default: all). Kinds: kill, kill-leader,
    /// kill-controller, pause, isolate, split, bridge, one-way, slow, disk-full, restart.
    #[arg(long, value_delimiter = ',')]
    nemesis: Vec<String>,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(long, default_value_t = 3)]
    producers: usize,
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// The strom binary the nodes run (default: `strom` beside this program).
    #[arg(long)]
    strom: Option<PathBuf>,
    /// Where the nodes' directories go (default: a new directory under the system's temp dir,
    /// removed after a passing run).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// A deliberate broker fault, to show that the checker catches it (debug builds of strom
    /// only): ack-before-hw answers acks=all produces before the high watermark passes them.
    #[arg(long)]
    inject: Option<String>,
    /// Keeps the nodes' directories and logs after a passing run too.
    #[arg(long)]
    keep: bool,
    /// Prints the schedule of faults for the seed and exits.
    #[arg(long)]
    print_schedule: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("strom-chaos: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<bool, String> {
    let kinds = if args.nemesis.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.nemesis.iter().map(|s| Kind::parse(s)).collect::<Result<Vec<_>, _>>()?
    };
    if args.print_schedule {
        for (i, k) in schedule(args.seed, args.rounds, &kinds).iter().enumerate() {
            println!("round {:>3}: {}", i + 1, k.name());
        }
        return Ok(true);
    }
    if !(3..=9).contains(&args.nodes) {
        return Err(format!("--nodes {}: between 3 and 9 nodes", args.nodes));
    }
    let strom = match args.strom {
        Some(p) => p,
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("strom"),
    };
    if !strom.is_file() {
        return Err(format!("{} does not exist: build it (cargo build --bin strom) or pass --strom", strom.display()));
    }
    let work =
        args.work_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("strom-chaos-{}", std::process::id())));
    let node_env = match args.inject.as_deref() {
        None => vec![],
        Some("ack-before-hw") => vec![("STROM_FAULT_INJECTION".to_string(), "ack-before-hw".to_string())],
        Some(other) => return Err(format!("--inject {other}: the only deliberate fault is ack-before-hw")),
    };
    let opts = Options {
        nodes: args.nodes,
        rounds: args.rounds,
        seed: args.seed,
        round: Duration::from_secs(args.round_secs),
        kinds,
        partitions: args.partitions,
        producers: args.producers,
        consumers: args.consumers,
        strom,
        work: work.clone(),
        node_env,
    };
    // The clients' own log (strom-client's warnings and offset resets) beside the nodes' logs.
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let clients_log = std::fs::File::create(work.join("clients.log")).map_err(|e| e.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("strom_client=info"))
        .with_writer(std::sync::Mutex::new(clients_log))
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    // An interrupted run drops the cluster, whose nodes, mounts and namespaces go with it.
    let report = runtime.block_on(async {
        tokio::select! {
            report = strom_chaos::run(&opts) => report,
            signal = interrupted() => Err(format!("{signal}: the nodes were stopped and their namespaces removed; their logs are in {}", work.display())),
        }
    })?;
    let keep = args.keep;
    print!("{report}");
    if report.passed() && !keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("the nodes' logs are in {}", work.display());
    }
    Ok(report.passed())
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted (SIGINT)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}
