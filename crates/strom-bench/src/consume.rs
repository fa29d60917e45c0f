//! Consume-only: reads the topic from the beginning, in a group or with every partition assigned;
//! throughput counts from the first record to the last, so group joining is not in it.

use crate::report::{new_histogram, Report};
use crate::topic::client_config;
use crate::{ConsumeArgs, Target};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use std::time::{Duration, Instant};

/// A consumer of `target.topic`: subscribed in `group`, or assigned all partitions at `start`.
pub fn new_consumer(target: &Target, group: Option<&str>, start: Offset) -> Result<BaseConsumer, String> {
    let mut config = client_config(target)?;
    config
        .set("group.id", group.unwrap_or("strom-bench-assigned"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // As rdkafka_performance: a deep prefetch queue, so that the client is not the bottleneck.
        .set("queued.min.messages", "1000000");
    let consumer: BaseConsumer = config.create().map_err(|e| format!("consumer: {e}"))?;
    match group {
        Some(_) => consumer.subscribe(&[&target.topic]).map_err(|e| format!("subscribe: {e}"))?,
        None => {
            let metadata = consumer
                .fetch_metadata(Some(&target.topic), Duration::from_secs(10))
                .map_err(|e| format!("metadata: {e}"))?;
            let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
            if partitions == 0 {
                return Err(format!("topic {} has no partitions (does it exist?)", target.topic));
            }
            let mut list = TopicPartitionList::new();
            for p in 0..partitions as i32 {
                list.add_partition_offset(&target.topic, p, start).map_err(|e| e.to_string())?;
            }
            consumer.assign(&list).map_err(|e| format!("assign: {e}"))?;
        }
    }
    Ok(consumer)
}

pub fn run(args: &ConsumeArgs) -> Result<Vec<Report>, String> {
    let consumer = new_consumer(&args.target, args.group.as_deref(), Offset::Beginning)?;
    let wanted = args.records.unwrap_or(u64::MAX);
    let idle = Duration::from_millis(args.idle_ms);
    let (mut records, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    while records < wanted {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                records += 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None => {
                let quiet_since = if first.is_some() { last } else { started };
                // Before the first record, allow for joining the group.
                let limit = if first.is_some() { idle } else { idle + Duration::from_secs(10) };
                if quiet_since.elapsed() > limit {
                    break;
                }
            }
        }
    }
    let seconds = first.map_or(0.0, |f| (last - f).as_secs_f64());
    Ok(vec![Report {
        client_cpu_seconds: crate::report::process_cpu_seconds(),
        scenario: if args.group.is_some() { "consume-group" } else { "consume-assigned" },
        records,
        bytes,
        seconds,
        latency: new_histogram(),
        params: json!({
            "bootstrap": args.target.bootstrap_server, "topic": args.target.topic, "group": args.group,
            "first_record_after_s": first.map(|f| (f - started).as_secs_f64()),
        }),
    }])
}
