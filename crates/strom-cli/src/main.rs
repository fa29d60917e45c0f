//! The `strom` binary: the broker (`strom server`) and the Kafka-style tools (`tools/`).

mod tools;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use strom_broker::BrokerConfig;

#[derive(Parser)]
#[command(name = "strom", version, about = "Strom: a Kafka-compatible streaming platform in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (node 1, broker and controller in one) on 127.0.0.1:9092 with data in
    /// ./strom-data, or as a Kafka server.properties file says.
    #[command(
        after_help = "Examples:\n  strom server\n  strom server --config config/server.properties\n  strom server --override listeners=PLAINTEXT://127.0.0.1:19092 --override log.dirs=/tmp/strom"
    )]
    Server {
        /// A Kafka server.properties file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Override one property, as key=value (repeatable), applied after --config.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print the cluster id or unregister a broker (Kafka's kafka-cluster).
    Cluster(tools::cluster::ClusterArgs),
    /// Start a cluster of N nodes on this machine (loopback ports, data under one directory).
    LocalCluster(tools::local_cluster::LocalClusterArgs),
    /// Preferred or unclean leader election (Kafka's kafka-leader-election).
    LeaderElection(tools::leader_election::LeaderElectionArgs),
    /// Describe each broker's log directories and the size of every replica (Kafka's kafka-log-dirs).
    LogDirs(tools::log_dirs::LogDirsArgs),
    /// Describe the metadata quorum: leader, epoch, lag, voters (Kafka's kafka-metadata-quorum).
    MetadataQuorum(tools::metadata_quorum::MetadataQuorumArgs),
    /// Move partitions between brokers: plan, start, verify, cancel (Kafka's kafka-reassign-partitions).
    ReassignPartitions(tools::reassign_partitions::ReassignPartitionsArgs),
    /// Format log directories for a cluster and make cluster ids (Kafka's kafka-storage).
    Storage(tools::storage::StorageArgs),
    /// Create, list, describe, alter and delete topics (Kafka's kafka-topics).
    Topics(tools::topics::TopicsArgs),
    /// List, describe (offsets and lag), reset and delete consumer groups (Kafka's kafka-consumer-groups).
    ConsumerGroups(tools::consumer_groups::ConsumerGroupsArgs),
    /// Send each line of standard input as a record (Kafka's kafka-console-producer).
    ConsoleProducer(tools::console_producer::ConsoleProducerArgs),
    /// Print records to standard output (Kafka's kafka-console-consumer).
    ConsoleConsumer(tools::console_consumer::ConsoleConsumerArgs),
    /// Describe and alter topic and broker configs (Kafka's kafka-configs).
    Configs(tools::configs::ConfigsArgs),
    /// Print partitions' offsets by time: latest, earliest or at a timestamp (Kafka's kafka-get-offsets).
    GetOffsets(tools::offsets::GetOffsetsArgs),
    /// Delete records before given offsets (Kafka's kafka-delete-records).
    DeleteRecords(tools::offsets::DeleteRecordsArgs),
    /// Print the batches and records of segment files and check their indexes, offline (Kafka's kafka-dump-log).
    DumpLog(tools::dump_log::DumpLogArgs),
    /// Measure producer throughput and latency (Kafka's kafka-producer-perf-test).
    ProducerPerfTest(tools::producer_perf::ProducerPerfArgs),
    /// Measure consumer throughput (Kafka's kafka-consumer-perf-test).
    ConsumerPerfTest(tools::consumer_perf::ConsumerPerfArgs),
    /// Print a shell completion script: strom completions bash > /etc/bash_completion.d/strom
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs what it does; a tool's output is its answer, so only warnings go to stderr.
    let default_level = if matches!(cli.command, Command::Server { .. }) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG").unwrap_or_else(|_| default_level.into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Server { config, overrides } => run_server(config, overrides),
        Command::Cluster(args) => tools::run("cluster", tools::cluster::run(args)),
        Command::LocalCluster(args) => tools::finish("local cluster", tools::local_cluster::run(args)),
        Command::LogDirs(args) => tools::run("log dirs", tools::log_dirs::run(args)),
        Command::LeaderElection(args) => tools::run("leader election", tools::leader_election::run(args)),
        Command::MetadataQuorum(args) => tools::run("metadata quorum", tools::metadata_quorum::run(args)),
        Command::ReassignPartitions(args) => tools::run("reassign partitions", tools::reassign_partitions::run(args)),
        Command::Storage(args) => tools::finish("storage", tools::storage::run(args)),
        Command::Topics(args) => tools::run("topic", tools::topics::run(args)),
        Command::ConsumerGroups(args) => tools::run("consumer group", tools::consumer_groups::run(args)),
        Command::ConsoleProducer(args) => tools::run("console producer", tools::console_producer::run(args)),
        Command::ConsoleConsumer(args) => tools::run("console consumer", tools::console_consumer::run(args)),
        Command::Configs(args) => tools::run("configs", tools::configs::run(args)),
        Command::GetOffsets(args) => tools::run("get offsets", tools::offsets::get_offsets(args)),
        Command::DeleteRecords(args) => tools::run("delete records", tools::offsets::delete_records(args)),
        Command::DumpLog(args) => tools::finish("dump log", tools::dump_log::run(args)),
        Command::ProducerPerfTest(args) => {
            tools::run_multi_thread("producer perf test", tools::producer_perf::run(args))
        }
        Command::ConsumerPerfTest(args) => {
            tools::run_multi_thread("consumer perf test", tools::consumer_perf::run(args))
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "strom",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

fn run_server(config_file: Option<PathBuf>, overrides: Vec<String>) -> ExitCode {
    let config = match BrokerConfig::load(config_file.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Worker threads are marked (their park hooks run on workers only, never on the blocking
    // pool) so that the storage engine can refuse an fsync on them.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(strom_broker::mark_async_worker)
        .on_thread_unpark(strom_broker::mark_async_worker)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strom server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let handle = match strom_broker::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("strom server: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_stop_signal().await;
        tracing::info!("shutting down");
        match handle.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strom server: shutdown failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
