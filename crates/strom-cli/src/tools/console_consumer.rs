//! `strom console-consumer`, Kafka's kafka-console-consumer: prints records as Kafka's
//! DefaultMessageFormatter does, in a named group, a throwaway group, or from one partition.

use super::{client_properties, insert_pairs, key_value, NO_ZOOKEEPER};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use strom_client::admin::Admin;
use strom_client::consumer::{Consumer, ConsumerRecord};
use strom_client::{ClientError, Properties, TopicPartition};

#[derive(Args, Debug)]
#[command(after_help = "Formatter properties (--property): print.key, print.value (true), print.timestamp,
print.partition, print.offset, print.headers (all false unless said), key.separator (TAB),
line.separator (newline), headers.separator (,), null.literal (null).

Examples:
  strom console-consumer --bootstrap-server localhost:9092 --topic test --from-beginning
  strom console-consumer --bootstrap-server localhost:9092 --topic test --group testGroup
  strom console-consumer --bootstrap-server localhost:9092 --topic test --partition 0 --offset 42 --max-messages 10
  strom console-consumer --bootstrap-server localhost:9092 --include 'logs-.*' --property print.key=true")]
pub struct ConsoleConsumerArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// The topic to consume.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Consume every topic whose whole name matches this regular expression.
    #[arg(long, value_name = "REGEX", alias = "whitelist", conflicts_with = "topic")]
    pub include: Option<String>,
    /// Start from the earliest offset when the group has no committed offset (auto.offset.reset=earliest).
    #[arg(long)]
    pub from_beginning: bool,
    /// The consumer group (the same as --consumer-property group.id=G). Without one, a throwaway
    /// group console-consumer-NNNNN is used and no offsets are committed.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// A consumer property, as key=value (repeatable).
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_properties: Vec<String>,
    /// Consumer properties in a file.
    #[arg(long = "consumer.config", value_name = "FILE")]
    pub consumer_config: Option<PathBuf>,
    /// Consume only this partition (no group: the partition is assigned directly).
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// With --partition: where to start, an offset, earliest or latest (default latest).
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit when no record arrived for this long.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// read_uncommitted (default) or read_committed.
    #[arg(long, value_name = "LEVEL")]
    pub isolation_level: Option<String>,
    /// A formatter property, as key=value (repeatable); see below.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

/// Kafka's DefaultMessageFormatter: the chosen fields in a fixed order, joined by key.separator.
#[derive(Debug, Clone)]
pub struct Formatter {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_headers: bool,
    print_key: bool,
    print_value: bool,
    key_separator: String,
    line_separator: String,
    headers_separator: String,
    null_literal: String,
}

impl Formatter {
    pub fn from_properties(props: &[String]) -> Result<Formatter, String> {
        let mut f = Formatter {
            print_timestamp: false,
            print_partition: false,
            print_offset: false,
            print_headers: false,
            print_key: false,
            print_value: true,
            key_separator: "\t".into(),
            line_separator: "\n".into(),
            headers_separator: ",".into(),
            null_literal: "null".into(),
        };
        for p in props {
            let (k, v) = key_value(p, "--property")?;
            let flag = || v.parse::<bool>().map_err(|_| format!("--property {k}={v}: expected true or false"));
            match k {
                "print.timestamp" => f.print_timestamp = flag()?,
                "print.partition" => f.print_partition = flag()?,
                "print.offset" => f.print_offset = flag()?,
                "print.headers" => f.print_headers = flag()?,
                "print.key" => f.print_key = flag()?,
                "print.value" => f.print_value = flag()?,
                "key.separator" => f.key_separator = v.to_string(),
                "line.separator" => f.line_separator = v.to_string(),
                "headers.separator" => f.headers_separator = v.to_string(),
                "null.literal" => f.null_literal = v.to_string(),
                // Deserializers are a Java notion: bytes are printed as text.
                "key.deserializer" | "value.deserializer" | "headers.deserializer" => {}
                other => eprintln!("Warning: ignoring unknown formatter property '{other}'"),
            }
        }
        Ok(f)
    }

    pub fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> std::io::Result<()> {
        let text = |b: &Option<bytes::Bytes>| match b {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => self.null_literal.clone(),
        };
        let mut fields: Vec<String> = Vec::with_capacity(6);
        if self.print_timestamp {
            fields.push(format!("{}:{}", r.timestamp_type, r.timestamp));
        }
        if self.print_partition {
            fields.push(format!("Partition:{}", r.partition));
        }
        if self.print_offset {
            fields.push(format!("Offset:{}", r.offset));
        }
        if self.print_headers {
            if r.headers.is_empty() {
                fields.push("NO_HEADERS".into());
            } else {
                let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}:{}", text(v))).collect();
                fields.push(headers.join(&self.headers_separator));
            }
        }
        if self.print_key {
            fields.push(text(&r.key));
        }
        if self.print_value {
            fields.push(text(&r.value));
        }
        out.write_all(fields.join(&self.key_separator).as_bytes())?;
        out.write_all(self.line_separator.as_bytes())
    }
}

/// Where the consumer reads: a subscription (group) or one assigned partition.
enum Source {
    Topic(String),
    Pattern(String),
    Partition(TopicPartition, String),
}

fn source(args: &ConsoleConsumerArgs) -> Result<Source, String> {
    if args.offset.is_some() && args.partition.is_none() {
        return Err("the partition is required when --offset is specified".into());
    }
    if args.offset.is_some() && args.from_beginning {
        return Err("--from-beginning and --offset cannot be specified together".into());
    }
    match (&args.topic, &args.include, args.partition) {
        (Some(t), None, Some(p)) => {
            let start = match (&args.offset, args.from_beginning) {
                (Some(o), _) => o.clone(),
                (None, true) => "earliest".into(),
                (None, false) => "latest".into(),
            };
            if !matches!(start.as_str(), "earliest" | "latest") && start.parse::<i64>().map_or(true, |o| o < 0) {
                return Err(format!("--offset '{start}' must be an offset (0 or more), earliest or latest"));
            }
            Ok(Source::Partition(TopicPartition::new(t.clone(), p), start))
        }
        (None, Some(_), Some(_)) => Err("--partition needs --topic, not --include".into()),
        (Some(t), None, None) => Ok(Source::Topic(t.clone())),
        (None, Some(re), None) => Ok(Source::Pattern(re.clone())),
        _ => Err("exactly one of --topic or --include is required".into()),
    }
}

fn consumer_properties(args: &ConsoleConsumerArgs, assigned: bool) -> Result<Properties, String> {
    let mut props = client_properties(args.bootstrap_server.as_deref(), args.consumer_config.as_deref())?;
    insert_pairs(&mut props, &args.consumer_properties, "--consumer-property")?;
    match (&args.group, props.get("group.id")) {
        (Some(g), Some(other)) if g != other => {
            return Err(format!("--group {g} and --consumer-property group.id={other} disagree; give one"))
        }
        (Some(g), _) => props.insert("group.id", g.clone()),
        (None, Some(_)) => {}
        (None, None) if assigned => {}
        (None, None) => {
            // Kafka's throwaway group: a random name, and nothing committed under it.
            let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            props.insert("group.id", format!("console-consumer-{}", n % 100_000));
            if props.get("enable.auto.commit").is_none() {
                props.insert("enable.auto.commit", "false");
            }
        }
    }
    if args.from_beginning {
        props.insert("auto.offset.reset", "earliest");
    } else if props.get("auto.offset.reset").is_none() {
        props.insert("auto.offset.reset", "latest");
    }
    if let Some(level) = &args.isolation_level {
        props.insert("isolation.level", level.clone());
    }
    if props.get("client.id").is_none() {
        props.insert("client.id", "console-consumer");
    }
    Ok(props)
}

pub async fn run(args: ConsoleConsumerArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    let source = source(&args)?;
    let formatter = Formatter::from_properties(&args.properties)?;
    let props = consumer_properties(&args, matches!(source, Source::Partition(..)))?;
    if let Source::Partition(tp, _) = &source {
        check_partition_exists(&props, &tp.topic, tp.partition).await?;
    }
    let mut consumer = Consumer::new(&props).await.map_err(|e| e.to_string())?;
    match &source {
        Source::Topic(t) => consumer.subscribe(&[t.as_str()]),
        Source::Pattern(re) => consumer.subscribe_pattern(re),
        Source::Partition(tp, _) => consumer.assign(std::slice::from_ref(tp)),
    }
    .map_err(|e| e.to_string())?;
    if let Source::Partition(tp, start) = &source {
        match start.as_str() {
            "earliest" => consumer.seek_to_beginning(std::slice::from_ref(tp)).await,
            "latest" => consumer.seek_to_end(std::slice::from_ref(tp)).await,
            offset => consumer.seek(tp, offset.parse().unwrap_or(0)),
        }
        .map_err(|e| e.to_string())?;
    }
    let wakeup = consumer.wakeup_handle();
    let interrupted = tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        wakeup.wakeup();
    });
    let result = consume(&mut consumer, &args, &formatter).await;
    interrupted.abort();
    let processed = result.as_ref().map_or(0, |n| *n);
    if let Err(e) = consumer.close().await {
        eprintln!("Error while closing the consumer: {e}");
    }
    match result {
        Ok(n) => {
            eprintln!("Processed a total of {n} messages");
            Ok(())
        }
        Err(e) => {
            eprintln!("Processed a total of {processed} messages");
            Err(e)
        }
    }
}

/// Fails fast for a partition of a topic that does not exist (a subscription just waits for it).
/// Asks as an admin client does, so that the question does not auto-create the topic.
async fn check_partition_exists(props: &Properties, topic: &str, partition: i32) -> Result<(), String> {
    let admin = Admin::new(props).await.map_err(|e| e.to_string())?;
    let topics = admin.describe_topics(&[topic]).await.map_err(|e| match e.code() {
        Some(3) => format!("topic '{topic}' does not exist"),
        _ => e.to_string(),
    })?;
    let count = topics.first().map_or(0, |t| t.partitions.len() as i32);
    if (0..count).contains(&partition) {
        Ok(())
    } else {
        Err(format!("topic '{topic}' has no partition {partition} (it has {count})"))
    }
}

/// Polls and prints until --max-messages, --timeout-ms, Ctrl-C or a closed stdout; returns the
/// number of records printed.
async fn consume(consumer: &mut Consumer, args: &ConsoleConsumerArgs, formatter: &Formatter) -> Result<u64, String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    loop {
        let wait = match idle_limit {
            Some(limit) => match limit.checked_sub(last_record.elapsed()) {
                Some(left) => left.min(Duration::from_millis(500)),
                None => return Ok(printed),
            },
            None => Duration::from_millis(500),
        };
        let records = match consumer.poll(wait).await {
            Ok(r) => r,
            Err(ClientError::Wakeup) => return Ok(printed),
            Err(e) => return Err(e.to_string()),
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let mut unprinted: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in &records {
            if args.max_messages.is_some_and(|max| printed >= max) {
                unprinted.entry(TopicPartition::new(r.topic.clone(), r.partition)).or_insert(r.offset);
                continue;
            }
            if formatter.write(&mut out, r).is_err() {
                return Ok(printed); // stdout closed (e.g. piped into head)
            }
            printed += 1;
        }
        if out.flush().is_err() {
            return Ok(printed);
        }
        if args.max_messages.is_some_and(|max| printed >= max) {
            // Records polled but not printed are not consumed: the group's position goes back to them.
            for (tp, offset) in unprinted {
                consumer.seek(&tp, offset).map_err(|e| e.to_string())?;
            }
            return Ok(printed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::consumer::TimestampType;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 1700000000000,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(bytes::Bytes::from_static(b"hello")),
            headers: vec![("h".into(), Some(bytes::Bytes::from_static(b"v"))), ("n".into(), None)],
        }
    }

    fn line(props: &[&str]) -> String {
        let f = Formatter::from_properties(&props.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut out = Vec::new();
        f.write(&mut out, &record()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn value_only_by_default() {
        assert_eq!(line(&[]), "hello\n");
    }

    #[test]
    fn fields_in_kafkas_order() {
        let all = [
            "print.timestamp=true",
            "print.partition=true",
            "print.offset=true",
            "print.headers=true",
            "print.key=true",
        ];
        assert_eq!(line(&all), "CreateTime:1700000000000\tPartition:2\tOffset:7\th:v,n:null\tnull\thello\n");
        assert_eq!(line(&["print.key=true", "key.separator=:", "null.literal=-"]), "-:hello\n");
    }

    #[test]
    fn malformed_property_is_refused() {
        assert!(Formatter::from_properties(&["print.key".into()]).is_err());
        assert!(Formatter::from_properties(&["print.key=yes".into()]).is_err());
    }
}
