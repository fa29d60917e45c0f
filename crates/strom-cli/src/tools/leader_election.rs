//! `strom leader-election`, Kafka's kafka-leader-election: preferred or unclean election for
//! every partition, one partition, or the partitions of a JSON file, with Kafka's output.

use super::client_properties;
use clap::Args;
use std::path::PathBuf;
use strom_client::admin::Admin;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom leader-election --bootstrap-server localhost:9092 --election-type PREFERRED --all-topic-partitions
  strom leader-election --bootstrap-server localhost:9092 --election-type UNCLEAN --topic orders --partition 3
  strom leader-election --bootstrap-server localhost:9092 --election-type PREFERRED --path-to-json-file partitions.json
The JSON file is Kafka's: {\"partitions\": [{\"topic\": \"orders\", \"partition\": 0}]}")]
pub struct LeaderElectionArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long = "admin.config", alias = "command-config", value_name = "FILE")]
    pub admin_config: Option<PathBuf>,
    /// PREFERRED (the first assigned replica leads again) or UNCLEAN (a partition without a
    /// leader gets a live replica even out of the ISR: acknowledged records may be lost).
    #[arg(long, value_name = "PREFERRED|UNCLEAN")]
    pub election_type: String,
    /// Every partition of the cluster.
    #[arg(long, conflicts_with_all = ["topic", "path_to_json_file"])]
    pub all_topic_partitions: bool,
    /// One topic (with --partition).
    #[arg(long, requires = "partition", conflicts_with = "path_to_json_file")]
    pub topic: Option<String>,
    /// The partition of --topic.
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// Partitions in Kafka's JSON format.
    #[arg(long, value_name = "FILE")]
    pub path_to_json_file: Option<PathBuf>,
}

/// Kafka's partitions file: `{"partitions": [{"topic": "t", "partition": 0}, ...]}`.
fn parse_partitions_file(text: &str) -> Result<Vec<(String, i32)>, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = json["partitions"].as_array().ok_or("no \"partitions\" list")?;
    list.iter()
        .map(|p| {
            let topic = p["topic"].as_str().ok_or("a partition without \"topic\"")?;
            let partition = p["partition"].as_i64().and_then(|n| i32::try_from(n).ok()).ok_or("a bad \"partition\"")?;
            Ok((topic.to_string(), partition))
        })
        .collect()
}

/// Java's exception class for an election's error code, as Kafka's tool prints it.
fn exception(code: i16) -> String {
    let name = match code {
        3 => "UnknownTopicOrPartitionException",
        80 => "PreferredLeaderNotAvailableException",
        83 => "EligibleLeadersNotAvailableException",
        41 => "NotControllerException",
        _ => return format!("error code {code}"),
    };
    format!("org.apache.kafka.common.errors.{name}")
}

pub async fn run(args: LeaderElectionArgs) -> Result<(), String> {
    let unclean = match args.election_type.to_ascii_uppercase().as_str() {
        "PREFERRED" => false,
        "UNCLEAN" => true,
        other => return Err(format!("--election-type '{other}': expected PREFERRED or UNCLEAN")),
    };
    let label = if unclean { "UNCLEAN" } else { "PREFERRED" };
    let partitions: Option<Vec<(String, i32)>> = match (&args.topic, args.partition, &args.path_to_json_file) {
        (Some(t), Some(p), None) => Some(vec![(t.clone(), p)]),
        (None, None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let parsed = parse_partitions_file(&text)
                .map_err(|e: String| format!("{}: not Kafka's partitions JSON: {e}", path.display()))?;
            Some(parsed)
        }
        (None, None, None) if args.all_topic_partitions => None,
        _ => return Err("give one of --all-topic-partitions, --topic and --partition, or --path-to-json-file".into()),
    };
    let props = client_properties(args.bootstrap_server.as_deref(), args.admin_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    let results = admin.elect_leaders(unclean, partitions.as_deref()).await.map_err(|e| e.to_string())?;
    let name = |r: &strom_client::admin::ElectionResult| format!("{}-{}", r.topic, r.partition);
    let done: Vec<String> = results.iter().filter(|r| r.error_code == 0).map(name).collect();
    let not_needed: Vec<String> = results.iter().filter(|r| r.error_code == 84).map(name).collect();
    let failed: Vec<_> = results.iter().filter(|r| r.error_code != 0 && r.error_code != 84).collect();
    if done.is_empty() && not_needed.is_empty() && failed.is_empty() {
        out!("Valid replica already elected for partitions");
    }
    if !done.is_empty() {
        out!("Successfully completed leader election ({label}) for partitions {}", done.join(", "));
    }
    if !not_needed.is_empty() {
        out!("Valid replica already elected for partitions {}", not_needed.join(", "));
    }
    for r in &failed {
        out!(
            "Error completing leader election ({label}) for partition: {}: {}: {}",
            name(r),
            exception(r.error_code),
            r.message.as_deref().unwrap_or_default()
        );
    }
    if !failed.is_empty() {
        return Err(format!("{} replica(s) could not be elected", failed.len()));
    }
    Ok(())
}
