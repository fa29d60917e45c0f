//! `strom get-offsets` (Kafka's kafka-get-offsets) and `strom delete-records` (Kafka's
//! kafka-delete-records): offsets by time, and moving a partition's start forward.

use super::{client_properties, NO_ZOOKEEPER};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use strom_client::admin::Admin;
use strom_client::TopicPartition;

#[derive(Args, Debug)]
#[command(after_help = "--time: -1 or latest (the log end), -2 or earliest (the log start), -3 or max-timestamp
(the record with the largest timestamp), or a timestamp in ms (the first offset at or after it).

Examples:
  strom get-offsets --bootstrap-server localhost:9092 --topic test
  strom get-offsets --bootstrap-server localhost:9092 --topic 'logs-.*' --time -2
  strom get-offsets --bootstrap-server localhost:9092 --topic test --partitions 0,2-3 --time 1700000000000")]
pub struct GetOffsetsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Kafka's older spelling of --bootstrap-server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bootstrap_server")]
    pub broker_list: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// A topic name or a regular expression matching whole names (default: every topic).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Partitions: a comma-separated list of ids and ranges, e.g. 0,2-4 (default: all).
    #[arg(long, value_name = "LIST")]
    pub partitions: Option<String>,
    /// Which offset: -1/latest, -2/earliest, -3/max-timestamp, or a timestamp in ms.
    #[arg(long, value_name = "TIME", default_value = "-1", allow_hyphen_values = true)]
    pub time: String,
    /// Leave out internal topics such as __consumer_offsets.
    #[arg(long)]
    pub exclude_internal_topics: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "The JSON file names the new start of each partition (-1: the high watermark):
  {\"partitions\": [{\"topic\": \"test\", \"partition\": 0, \"offset\": 3}], \"version\": 1}

Example:
  strom delete-records --bootstrap-server localhost:9092 --offset-json-file delete.json")]
pub struct DeleteRecordsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// The partitions and offsets to delete before, as JSON.
    #[arg(long, value_name = "FILE")]
    pub offset_json_file: Option<PathBuf>,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

/// `--time` as ListOffsets' timestamp field.
pub fn parse_time(text: &str) -> Result<i64, String> {
    match text {
        "latest" => Ok(-1),
        "earliest" => Ok(-2),
        "max-timestamp" => Ok(-3),
        _ => match text.parse::<i64>() {
            Ok(t) if t >= -3 => Ok(t),
            _ => Err(format!(
                "--time '{text}' must be -1 (latest), -2 (earliest), -3 (max-timestamp) or a timestamp in ms"
            )),
        },
    }
}

/// `--partitions 0,2-4` as a predicate.
pub fn parse_partitions(text: &str) -> Result<Vec<(i32, i32)>, String> {
    let bad = || format!("--partitions '{text}' must be a comma-separated list of ids or ranges such as 0,2-4");
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: i32 = lo.trim().parse().map_err(|_| bad())?;
            let hi: i32 = hi.trim().parse().map_err(|_| bad())?;
            if lo < 0 || hi < lo {
                return Err(bad());
            }
            Ok((lo, hi))
        })
        .collect()
}

pub async fn get_offsets(args: GetOffsetsArgs) -> Result<(), String> {
    let time = parse_time(&args.time)?;
    let ranges = args.partitions.as_deref().map(parse_partitions).transpose()?;
    let topic_filter = match &args.topic {
        Some(t) => Some(regex::Regex::new(&format!("^(?:{t})$")).map_err(|e| format!("--topic '{t}': {e}"))?),
        None => None,
    };
    let bootstrap = args.bootstrap_server.as_deref().or(args.broker_list.as_deref());
    let props = client_properties(bootstrap, args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    let snapshot = admin.cluster().fetch_metadata(None).await.map_err(|e| e.to_string())?;
    let mut query = BTreeMap::new();
    for (name, topic) in &snapshot.topics {
        if topic_filter.as_ref().is_some_and(|re| !re.is_match(name))
            || (args.exclude_internal_topics && topic.is_internal)
        {
            continue;
        }
        for p in 0..topic.partition_count() {
            if ranges.as_ref().is_none_or(|r| r.iter().any(|(lo, hi)| (*lo..=*hi).contains(&p))) {
                query.insert(TopicPartition::new(name.clone(), p), time);
            }
        }
    }
    if query.is_empty() {
        return Err("Could not match any topic-partitions with the specified filters".into());
    }
    let offsets = admin.list_offsets(&query).await.map_err(|e| e.to_string())?;
    for tp in query.keys() {
        let offset = offsets.get(tp).map(|(o, _)| *o).filter(|o| *o >= 0);
        out!("{}:{}:{}", tp.topic, tp.partition, offset.map(|o| o.to_string()).unwrap_or_default());
    }
    Ok(())
}

/// The partitions of a delete-records JSON file, refusing duplicates as Kafka's tool does.
pub fn parse_offset_json(text: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the offset JSON file is not JSON: {e}"))?;
    let partitions =
        json.get("partitions").and_then(|p| p.as_array()).ok_or("the offset JSON file needs a \"partitions\" array")?;
    let mut out = BTreeMap::new();
    for p in partitions {
        let topic = p.get("topic").and_then(|t| t.as_str());
        let partition = p.get("partition").and_then(|t| t.as_i64());
        let offset = p.get("offset").and_then(|t| t.as_i64());
        let (Some(topic), Some(partition), Some(offset)) = (topic, partition, offset) else {
            return Err(format!("each partition needs \"topic\", \"partition\" and \"offset\": {p}"));
        };
        let tp = TopicPartition::new(topic, partition as i32);
        if out.insert(tp.clone(), offset).is_some() {
            return Err(format!("Offset json file contains duplicate topic partitions: {tp}"));
        }
    }
    if out.is_empty() {
        return Err("the offset JSON file names no partitions".into());
    }
    Ok(out)
}

pub async fn delete_records(args: DeleteRecordsArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    let path = args.offset_json_file.as_ref().ok_or("--offset-json-file FILE is required")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let before = parse_offset_json(&text)?;
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    out!("Executing records delete operation");
    let low_watermarks = admin.delete_records(&before).await.map_err(|e| e.to_string())?;
    out!("Records delete operation completed:");
    for (tp, low) in low_watermarks {
        out!("partition: {tp}\tlow_watermark: {low}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_partitions() {
        assert_eq!(parse_time("-2").unwrap(), -2);
        assert_eq!(parse_time("earliest").unwrap(), -2);
        assert_eq!(parse_time("1700000000000").unwrap(), 1700000000000);
        assert!(parse_time("-7").is_err());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_partitions("0,2-4").unwrap(), vec![(0, 0), (2, 4)]);
        assert!(parse_partitions("3-1").is_err());
        assert!(parse_partitions("x").is_err());
    }

    #[test]
    fn offset_json() {
        let ok = parse_offset_json(r#"{"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}"#).unwrap();
        assert_eq!(ok.get(&TopicPartition::new("t", 0)), Some(&3));
        let dup = r#"{"partitions":[{"topic":"t","partition":0,"offset":3},{"topic":"t","partition":0,"offset":4}]}"#;
        assert!(parse_offset_json(dup).unwrap_err().contains("duplicate"));
        assert!(parse_offset_json("{").is_err());
        assert!(parse_offset_json(r#"{"partitions":[{"topic":"t"}]}"#).is_err());
    }
}
