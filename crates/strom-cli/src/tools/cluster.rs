//! `strom cluster`, Kafka's kafka-cluster: print the cluster id, or unregister a broker that is
//! gone for good; and what no Kafka tool does in one command: drain a broker of every replica
//! before it is retired, or spread replicas and leaders over the brokers after one was added.

use super::{client_properties, cluster_plans};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use strom_client::admin::Admin;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom cluster cluster-id --bootstrap-server localhost:9092
  strom cluster unregister --bootstrap-server localhost:9092 --id 3
  strom cluster drain --bootstrap-server localhost:9092 --broker 3                  (prints the plan)
  strom cluster drain --bootstrap-server localhost:9092 --broker 3 --execute --throttle 50000000
  strom cluster rebalance --bootstrap-server localhost:9092 --execute")]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Print the cluster id.
    ClusterId {
        /// The broker to connect to, HOST:PORT[,HOST:PORT...].
        #[arg(long, short = 'b', value_name = "HOST:PORT")]
        bootstrap_server: Option<String>,
        /// Client properties in a file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove a broker's registration.
    Unregister {
        /// The broker to connect to, HOST:PORT[,HOST:PORT...].
        #[arg(long, short = 'b', value_name = "HOST:PORT")]
        bootstrap_server: Option<String>,
        /// Client properties in a file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// The id of the broker to unregister.
        #[arg(long, short = 'i', value_name = "ID")]
        id: i32,
    },
    /// Move every replica off a broker (throttled, with progress), so that it can be stopped
    /// and unregistered. Prints the plan; --execute carries it out.
    Drain {
        #[command(flatten)]
        moves: MoveArgs,
        /// The broker to empty.
        #[arg(long, value_name = "ID")]
        broker: i32,
    },
    /// Spread replicas and preferred leaders evenly over the brokers (after one was added).
    /// Prints the plan; --execute carries it out and elects the preferred leaders.
    Rebalance {
        #[command(flatten)]
        moves: MoveArgs,
    },
}

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, short = 'b', value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Carry the plan out (without it, only print it).
    #[arg(long)]
    execute: bool,
    /// Replication throttle in bytes per second while replicas move (removed when done).
    #[arg(long, value_name = "BYTES")]
    throttle: Option<u64>,
}

pub async fn run(args: ClusterArgs) -> Result<(), String> {
    match args.command {
        ClusterCommand::ClusterId { bootstrap_server, config } => {
            let admin = connect(bootstrap_server, config).await?;
            let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
            out!("Cluster ID: {}", cluster.cluster_id);
        }
        ClusterCommand::Unregister { bootstrap_server, config, id } => {
            let admin = connect(bootstrap_server, config).await?;
            admin.unregister_broker(id).await.map_err(|e| e.to_string())?;
            out!("Broker {id} is no longer registered.");
        }
        ClusterCommand::Drain { moves, broker } => {
            let bootstrap = moves.bootstrap_server.clone().unwrap_or_else(|| "localhost:9092".into());
            let admin = connect(moves.bootstrap_server.clone(), moves.config.clone()).await?;
            let (current, brokers) = assignment(&admin).await?;
            // A broker that is down (fenced, so not listed) can be drained too: its replicas are
            // copied from the leaders.
            if !brokers.contains(&broker) && !current.values().any(|r| r.contains(&broker)) {
                return Err(format!(
                    "broker {broker} holds no replicas and is not a live broker (brokers: {brokers:?})"
                ));
            }
            let plan = cluster_plans::drain(&current, &brokers, broker)?;
            print_plan(&format!("Moving every replica off broker {broker}"), &plan, &current);
            if moves.execute && !plan.is_empty() {
                carry_out(&admin, &plan, &current, moves.throttle).await?;
            } else if !plan.is_empty() {
                out!("Run again with --execute to start (and --throttle BYTES to limit replication).");
                return Ok(());
            }
            let (after, _) = assignment(&admin).await?;
            let left: Vec<String> =
                after.iter().filter(|(_, r)| r.contains(&broker)).map(|((t, p), _)| format!("{t}-{p}")).collect();
            if !left.is_empty() {
                return Err(format!("broker {broker} still holds {}", left.join(",")));
            }
            if let Ok(q) = admin.describe_metadata_quorum().await {
                if q.voters.iter().any(|v| v.id == broker) {
                    out!("Note: node {broker} is also a voter of the metadata quorum ({} voters); stopping it leaves one fewer.", q.voters.len());
                }
            }
            out!("Broker {broker} holds no replicas. It can be stopped now, then unregistered (until it is stopped, new topics may still place replicas on it):");
            out!("  strom cluster unregister --bootstrap-server {bootstrap} --id {broker}");
        }
        ClusterCommand::Rebalance { moves } => {
            let admin = connect(moves.bootstrap_server.clone(), moves.config.clone()).await?;
            let (current, brokers) = assignment(&admin).await?;
            let plan = cluster_plans::rebalance(&current, &brokers);
            print_plan(&format!("Spreading replicas and preferred leaders over brokers {brokers:?}"), &plan, &current);
            if plan.is_empty() {
                return Ok(());
            }
            if !moves.execute {
                out!("Run again with --execute to start (and --throttle BYTES to limit replication).");
                return Ok(());
            }
            carry_out(&admin, &plan, &current, moves.throttle).await?;
            let elected = admin.elect_leaders(false, None).await.map_err(|e| e.to_string())?;
            let done = elected.iter().filter(|r| r.error_code == 0).count();
            out!("Preferred leaders elected for {done} partition(s).");
        }
    }
    Ok(())
}

/// Every partition's replicas (internal topics too), and the registered brokers.
async fn assignment(admin: &Admin) -> Result<(cluster_plans::Assignment, Vec<i32>), String> {
    let topics = admin.list_topics(true).await.map_err(|e| e.to_string())?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let infos =
        if names.is_empty() { Vec::new() } else { admin.describe_topics(&names).await.map_err(|e| e.to_string())? };
    let current = infos
        .into_iter()
        .flat_map(|t| t.partitions.into_iter().map(move |p| ((t.name.clone(), p.partition), p.replicas)))
        .collect();
    let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
    let mut brokers: Vec<i32> = cluster.brokers.iter().map(|b| b.node_id).collect();
    brokers.sort_unstable();
    Ok((current, brokers))
}

fn print_plan(what: &str, plan: &cluster_plans::Assignment, current: &cluster_plans::Assignment) {
    if plan.is_empty() {
        out!("{what}: nothing to move.");
        return;
    }
    out!("{what}: {} partition(s) change:", plan.len());
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    for ((t, p), target) in plan {
        let now = current.get(&(t.clone(), *p)).map(|r| ids(r)).unwrap_or_default();
        out!("  {t}-{p}: {now} -> {}", ids(target));
    }
}

/// Starts the reassignments (throttled if asked), shows progress until none is left, then
/// removes the throttles.
async fn carry_out(
    admin: &Admin,
    plan: &cluster_plans::Assignment,
    current: &cluster_plans::Assignment,
    throttle: Option<u64>,
) -> Result<(), String> {
    let ongoing = admin.list_partition_reassignments(None).await.map_err(|e| e.to_string())?;
    if let Some(rate) = throttle {
        super::reassign_partitions::set_throttles(admin, plan, current, &ongoing, rate).await?;
        out!("Replication throttled to {rate} B/s while the replicas move.");
    }
    super::reassign_partitions::start(admin, plan).await?;
    let keys: Vec<(String, i32)> = plan.keys().cloned().collect();
    let started = std::time::Instant::now();
    let mut last = usize::MAX;
    loop {
        let ongoing = admin.list_partition_reassignments(Some(&keys)).await.map_err(|e| e.to_string())?;
        let left = keys.iter().filter(|k| ongoing.contains_key(*k)).count();
        if left != last {
            out!("{} of {} partition moves done ({} s)", keys.len() - left, keys.len(), started.elapsed().as_secs());
            last = left;
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if throttle.is_some() {
        super::reassign_partitions::clear_throttles(admin, plan).await?;
    }
    Ok(())
}

async fn connect(bootstrap: Option<String>, config: Option<PathBuf>) -> Result<Admin, String> {
    let props = client_properties(bootstrap.as_deref(), config.as_deref())?;
    Admin::new(&props).await.map_err(|e| e.to_string())
}
