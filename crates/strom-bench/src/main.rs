//! `strom-bench`: the same librdkafka-based load for any Kafka-compatible broker, so that Strom,
//! Apache Kafka and other brokers are measured with one instrument. Scenarios: produce-only,
//! consume-only (in a group or with assigned partitions) and end-to-end latency at a fixed rate.
//! Rates are open loop: a record's latency counts from when it was due, not from when a slow
//! broker let the generator send it, so that back-pressure cannot hide latency.

mod consume;
mod e2e;
mod produce;
mod produce_strom;
mod report;
mod topic;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "strom-bench", version, about = "A neutral Kafka load generator (librdkafka): throughput and latency")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Print one JSON object per result instead of a table row.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Scenario {
    /// Produce records as fast as allowed (or at --rate); delivery latency per record.
    #[command(
        after_help = "Example:\n  strom-bench produce --bootstrap-server 127.0.0.1:9092 --topic bench --record-size 1024 --partitions 6 --duration 10"
    )]
    Produce(ProduceArgs),
    /// Consume a topic from the beginning, in a group or with all partitions assigned.
    #[command(
        after_help = "Example:\n  strom-bench consume --bootstrap-server 127.0.0.1:9092 --topic bench --group bench-1"
    )]
    Consume(ConsumeArgs),
    /// Produce at a fixed rate and measure produce-to-consume latency.
    #[command(
        after_help = "Example:\n  strom-bench e2e --bootstrap-server 127.0.0.1:9092 --topic e2e --rate 51200 --record-size 1024 --acks all --duration 20"
    )]
    E2e(ProduceArgs),
}

/// What every scenario needs to reach the topic.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The broker, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// The topic (created with --partitions if it does not exist).
    #[arg(long, default_value = "strom-bench")]
    pub topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Extra librdkafka properties, key=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub extra: Vec<String>,
}

#[derive(Args, Clone, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub target: Target,
    /// Bytes per record value.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Producer instances (threads), each with its own connection.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Target records/s over all producers; 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many records (whichever of this and --duration comes first).
    #[arg(long)]
    pub records: Option<u64>,
    /// batch.size in bytes, the same for both clients (librdkafka's default; Java's is 16384).
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: usize,
    /// The producer client: librdkafka, or Strom's own strom-client (produce only), to compare
    /// the two clients against one broker.
    #[arg(long, value_enum, default_value_t = Client::Rdkafka)]
    pub client: Client,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Rdkafka,
    Strom,
}

#[derive(Args, Clone, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub target: Target,
    /// Consume in this group (subscribe); without it all partitions are assigned directly.
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many records (default: when no record came for --idle-ms).
    #[arg(long)]
    pub records: Option<u64>,
    /// Stop when no record arrived for this long.
    #[arg(long, default_value_t = 3000)]
    pub idle_ms: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Produce(a) if a.client == Client::Strom => produce_strom::run(&a),
        Scenario::Produce(a) => produce::run(&a),
        Scenario::Consume(a) => consume::run(&a),
        Scenario::E2e(a) if a.client == Client::Strom => Err("--client strom is for produce only".into()),
        Scenario::E2e(a) => e2e::run(&a),
    };
    match result {
        Ok(reports) => {
            for r in reports {
                r.print(cli.json);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strom-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
