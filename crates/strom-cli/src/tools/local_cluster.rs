//! `strom local-cluster --nodes 3`: a whole cluster on this machine for trying Strom and for
//! tests. Each node is a child `strom server` (broker and controller in one) on loopback ports,
//! with its data under one directory, formatted with one cluster id on first start and reused
//! after. The bootstrap string is printed; Ctrl-C (or SIGTERM) stops every node cleanly.

use clap::Args;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use strom_broker::meta_properties;

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  strom local-cluster --nodes 3\n  strom topics --bootstrap-server 127.0.0.1:9092 --create --topic t --partitions 6"
)]
pub struct LocalClusterArgs {
    /// Number of nodes (each a broker and a controller).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Directory holding every node's data (n1, n2, ...); kept across runs.
    #[arg(long, value_name = "DIR", default_value = "./strom-cluster")]
    dir: PathBuf,
    /// Client port of node 1; node i listens on base-port + i - 1, its controller on that + 100.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// A property for every node, as key=value (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn run(args: LocalClusterArgs) -> Result<(), String> {
    if args.nodes == 0 || args.nodes > 99 {
        return Err("--nodes must be between 1 and 99".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the strom binary: {e}"))?;
    let cluster_id = existing_cluster_id(&args.dir, args.nodes).unwrap_or_else(meta_properties::random_uuid);
    let client_port = |i: u16| args.base_port + i - 1;
    let controller_port = |i: u16| args.base_port + 100 + i - 1;
    let voters: Vec<String> = (1..=args.nodes).map(|i| format!("{i}@127.0.0.1:{}", controller_port(i))).collect();
    let mut children: Vec<Child> = Vec::new();
    for i in 1..=args.nodes {
        let data = args.dir.join(format!("n{i}"));
        let mut props = vec![
            format!("node.id={i}"),
            "process.roles=broker,controller".to_string(),
            format!("controller.quorum.voters={}", voters.join(",")),
            format!("listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}", client_port(i), controller_port(i)),
            format!("log.dirs={}", data.display()),
        ];
        props.extend(args.overrides.iter().cloned());
        if !data.join(meta_properties::FILE_NAME).exists() {
            let config = strom_broker::BrokerConfig::load(None, &props).map_err(|e| e.to_string())?;
            super::storage::format_dirs(&config, &cluster_id, false)?;
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("server");
        for p in &props {
            cmd.arg("--override").arg(p);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node {i}: {e}"))?;
        prefix_output(i, child.stdout.take(), child.stderr.take());
        children.push(child);
    }
    let bootstrap: Vec<String> = (1..=args.nodes).map(|i| format!("127.0.0.1:{}", client_port(i))).collect();
    out!("Strom local cluster {cluster_id}: {} nodes, data in {}", args.nodes, args.dir.display());
    out!("bootstrap servers: {}", bootstrap.join(","));
    out!("Press Ctrl-C to stop.");
    wait_for_stop(&mut children);
    Ok(())
}

/// The cluster id of a previous run, when every node's directory was formatted with the same one.
fn existing_cluster_id(dir: &Path, nodes: u16) -> Option<String> {
    let ids: Vec<String> = (1..=nodes)
        .filter_map(|i| {
            let text = std::fs::read_to_string(dir.join(format!("n{i}")).join(meta_properties::FILE_NAME)).ok()?;
            strom_broker::config::parse_properties(&text).get("cluster.id").cloned()
        })
        .collect();
    ids.first().filter(|first| ids.iter().all(|id| id == *first)).cloned()
}

/// Copies a node's log lines to ours, prefixed with the node.
fn prefix_output(node: u16, stdout: Option<std::process::ChildStdout>, stderr: Option<std::process::ChildStderr>) {
    fn pump(node: u16, r: impl std::io::Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                eprintln!("[node {node}] {line}");
            }
        });
    }
    if let Some(o) = stdout {
        pump(node, o);
    }
    if let Some(e) = stderr {
        pump(node, e);
    }
}

/// Waits for Ctrl-C or SIGTERM (or a node to exit), then stops every node with SIGTERM and
/// waits for each to shut down cleanly.
fn wait_for_stop(children: &mut [Child]) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    if let Ok(rt) = runtime {
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => break,
                    _ = tick.tick() => {
                        if children.iter_mut().any(|c| matches!(c.try_wait(), Ok(Some(_)))) {
                            eprintln!("a node exited; stopping the others");
                            break;
                        }
                    }
                }
            }
        });
    }
    for c in children.iter() {
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}
