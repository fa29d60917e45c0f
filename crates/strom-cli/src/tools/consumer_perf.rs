//! `strom consumer-perf-test`, Kafka's kafka-consumer-perf-test: consumes --messages records in a
//! group and prints Kafka's CSV header and result row.

use super::time::{format_ms, now_ms};
use super::{client_properties, NO_ZOOKEEPER};
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use strom_client::consumer::Consumer;

#[derive(Args, Debug)]
#[command(after_help = "Times are printed in UTC as yyyy-MM-dd HH:mm:ss:SSS.

Example:
  strom consumer-perf-test --bootstrap-server localhost:9092 --topic perf --messages 1000000")]
pub struct ConsumerPerfArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Kafka's older spelling of --bootstrap-server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bootstrap_server")]
    pub broker_list: Option<String>,
    /// The topic to consume.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// How many records to consume.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,
    /// The consumer group (default: perf-consumer-NNNNN).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// max.partition.fetch.bytes.
    #[arg(long, value_name = "BYTES")]
    pub fetch_size: Option<u64>,
    /// Start at the end of the topic instead of the beginning.
    #[arg(long)]
    pub from_latest: bool,
    /// Consumer properties in a file.
    #[arg(long = "consumer.config", value_name = "FILE")]
    pub consumer_config: Option<PathBuf>,
    /// Give up when no record arrived for this many ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout: u64,
    /// Print a row every --reporting-interval instead of one at the end.
    #[arg(long)]
    pub show_detailed_stats: bool,
    /// With --show-detailed-stats: ms between rows.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub reporting_interval: u64,
    /// Leave out the CSV header.
    #[arg(long)]
    pub hide_header: bool,
    /// Kafka prints client metrics at the end; Strom's client keeps none yet.
    #[arg(long)]
    pub print_metrics: bool,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

const MB: f64 = 1024.0 * 1024.0;

/// One result row: Kafka's columns, from totals and times in ms.
fn row(prefix: &str, bytes: u64, messages: u64, elapsed_ms: i64, join_ms: i64) -> String {
    let mb = bytes as f64 / MB;
    let secs = (elapsed_ms.max(1)) as f64 / 1000.0;
    let fetch_ms = (elapsed_ms - join_ms).max(0);
    let fetch_secs = (fetch_ms.max(1)) as f64 / 1000.0;
    format!(
        "{prefix}{mb:.4}, {:.4}, {messages}, {:.4}, {join_ms}, {fetch_ms}, {:.4}, {:.4}",
        mb / secs,
        messages as f64 / secs,
        mb / fetch_secs,
        messages as f64 / fetch_secs
    )
}

pub async fn run(args: ConsumerPerfArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    let topic = args.topic.clone().ok_or("--topic TOPIC is required")?;
    let wanted = args.messages.ok_or("--messages N is required")?;
    let bootstrap = args.bootstrap_server.as_deref().or(args.broker_list.as_deref());
    let mut props = client_properties(bootstrap, args.consumer_config.as_deref())?;
    let group = args.group.clone().unwrap_or_else(|| format!("perf-consumer-{}", now_ms() % 100_000));
    props.insert("group.id", group);
    props.insert("auto.offset.reset", if args.from_latest { "latest" } else { "earliest" });
    props.insert("enable.auto.commit", "false");
    if let Some(size) = args.fetch_size {
        props.insert("max.partition.fetch.bytes", size.to_string());
    }
    if props.get("client.id").is_none() {
        props.insert("client.id", "perf-consumer-client");
    }
    let mut consumer = Consumer::new(&props).await.map_err(|e| e.to_string())?;
    consumer.subscribe(&[topic.as_str()]).map_err(|e| e.to_string())?;

    if !args.hide_header {
        if args.show_detailed_stats {
            out!("time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
        } else {
            out!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
        }
    }
    let start_ms = now_ms();
    let start = Instant::now();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut join_ms: Option<i64> = None;
    let mut last_record = Instant::now();
    let (mut last_report, mut report_messages, mut report_bytes) = (Instant::now(), 0u64, 0u64);
    let timeout = Duration::from_millis(args.timeout);
    while messages < wanted {
        if last_record.elapsed() > timeout {
            eprintln!(
                "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. \
                 You can use the --timeout option to increase the timeout.",
                args.timeout
            );
            break;
        }
        let records = consumer.poll(Duration::from_millis(100)).await.map_err(|e| e.to_string())?;
        if join_ms.is_none() && !consumer.assignment().is_empty() {
            join_ms = Some(start.elapsed().as_millis() as i64);
            // The timeout is about records not arriving, not about joining the group.
            last_record = Instant::now();
        }
        if !records.is_empty() {
            last_record = Instant::now();
        }
        for r in records.iter().take((wanted - messages) as usize) {
            messages += 1;
            bytes += r.value.as_ref().map_or(0, |v| v.len() as u64) + r.key.as_ref().map_or(0, |k| k.len() as u64);
        }
        if args.show_detailed_stats && last_report.elapsed() >= Duration::from_millis(args.reporting_interval) {
            let elapsed = last_report.elapsed().as_millis() as i64;
            let prefix = format!("{}, 0, ", format_ms(now_ms()));
            out!("{}", row(&prefix, bytes - report_bytes, messages - report_messages, elapsed, 0));
            (last_report, report_messages, report_bytes) = (Instant::now(), messages, bytes);
        }
    }
    let elapsed_ms = start.elapsed().as_millis() as i64;
    if !args.show_detailed_stats {
        let prefix = format!("{}, {}, ", format_ms(start_ms), format_ms(start_ms + elapsed_ms));
        out!("{}", row(&prefix, bytes, messages, elapsed_ms, join_ms.unwrap_or(0)));
    }
    consumer.close().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::row;

    #[test]
    fn row_has_kafkas_columns() {
        let r = row("a, b, ", 2 * 1024 * 1024, 2000, 2000, 1000);
        assert_eq!(r, "a, b, 2.0000, 1.0000, 2000, 1000.0000, 1000, 1000, 2.0000, 2000.0000");
    }
}
