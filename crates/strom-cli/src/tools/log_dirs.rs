//! `strom log-dirs --describe`, Kafka's kafka-log-dirs: each broker's log directories with the
//! size of every replica, as Kafka's tool prints them (two lines, then one JSON document), so
//! that scripts reading its output keep working.

use super::client_properties;
use clap::Args;
use std::path::PathBuf;
use strom_client::admin::Admin;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom log-dirs --bootstrap-server localhost:9092 --describe
  strom log-dirs --bootstrap-server localhost:9092 --describe --broker-list 1,2 --topic-list orders,payments")]
pub struct LogDirsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// Describe the log directories (the tool's one action).
    #[arg(long)]
    pub describe: bool,
    /// Only these brokers (default: every broker of the cluster).
    #[arg(long, value_name = "ID,ID")]
    pub broker_list: Option<String>,
    /// Only replicas of these topics (default: all).
    #[arg(long, value_name = "TOPIC,TOPIC")]
    pub topic_list: Option<String>,
}

fn list<T: std::str::FromStr>(text: &str, flag: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("{flag}: '{s}' is not valid")))
        .collect()
}

/// Kafka's tool prints the Java exception class of a directory's error.
fn error_name(code: i16) -> serde_json::Value {
    match code {
        0 => serde_json::Value::Null,
        56 => "org.apache.kafka.common.errors.KafkaStorageException".into(),
        other => format!("error code {other}").into(),
    }
}

pub async fn run(args: LogDirsArgs) -> Result<(), String> {
    if !args.describe {
        return Err("--describe is required (the tool's only action)".into());
    }
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
    let mut known: Vec<i32> = cluster.brokers.iter().map(|b| b.node_id).collect();
    known.sort_unstable();
    let brokers: Vec<i32> = match &args.broker_list {
        Some(b) => {
            let mut asked: Vec<i32> = list(b, "--broker-list")?;
            asked.sort_unstable();
            asked.dedup();
            let missing: Vec<String> = asked.iter().filter(|id| !known.contains(id)).map(i32::to_string).collect();
            if !missing.is_empty() {
                // Kafka's tool refuses the same way.
                return Err(format!(
                    "ERROR: The given brokers do not exist from --broker-list: {}. Current existent brokers: {}",
                    missing.join(","),
                    known.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                ));
            }
            asked
        }
        None => known,
    };
    let topics: Option<Vec<String>> = args.topic_list.as_deref().map(|t| list(t, "--topic-list")).transpose()?;
    out!("Querying brokers for log directories information");
    let mut described = Vec::new();
    for id in &brokers {
        let dirs = admin.describe_log_dirs(*id).await.map_err(|e| format!("broker {id}: {e}"))?;
        let log_dirs: Vec<serde_json::Value> = dirs
            .iter()
            .map(|d| {
                let partitions: Vec<serde_json::Value> = d
                    .replicas
                    .iter()
                    .filter(|r| topics.as_ref().is_none_or(|t| t.contains(&r.topic)))
                    .map(|r| {
                        serde_json::json!({
                            "partition": format!("{}-{}", r.topic, r.partition),
                            "size": r.size,
                            "offsetLag": r.offset_lag,
                            "isFuture": r.is_future,
                        })
                    })
                    .collect();
                serde_json::json!({ "logDir": d.path, "error": error_name(d.error_code), "partitions": partitions })
            })
            .collect();
        described.push(serde_json::json!({ "broker": id, "logDirs": log_dirs }));
    }
    let ids: Vec<String> = brokers.iter().map(i32::to_string).collect();
    out!("Received log directory information from brokers {}", ids.join(","));
    out!("{}", serde_json::json!({ "version": 1, "brokers": described }));
    Ok(())
}
