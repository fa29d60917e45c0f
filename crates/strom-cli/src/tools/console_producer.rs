//! `strom console-producer`, Kafka's kafka-console-producer: one record per line of stdin, with
//! optional keys and headers parsed out of the line the way Kafka's LineMessageReader does.

use super::{client_properties, insert_pairs, key_value, NO_ZOOKEEPER};
use bytes::Bytes;
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::Properties;

#[derive(Args, Debug)]
#[command(after_help = "Each line of standard input becomes one record; end the input (Ctrl-D) to finish.

Reader properties (--property): parse.key (false), key.separator (TAB), parse.headers (false),
headers.delimiter (TAB), headers.separator (,), headers.key.separator (:), null.marker, ignore.error (false).
With parse.headers=true a line reads `h1:v1,h2:v2<TAB>key<TAB>value`.

Examples:
  strom console-producer --bootstrap-server localhost:9092 --topic test
  strom console-producer --bootstrap-server localhost:9092 --topic test --property parse.key=true --property key.separator=:
  strom console-producer --bootstrap-server localhost:9092 --topic test --producer-property acks=all --compression-codec lz4")]
pub struct ConsoleProducerArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Kafka's older spelling of --bootstrap-server.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "bootstrap_server")]
    pub broker_list: Option<String>,
    /// The topic to produce to.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// A reader property, as key=value (repeatable); see below.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A producer property, as key=value (repeatable).
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,
    /// Producer properties in a file.
    #[arg(long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<PathBuf>,
    /// Compress batches: none, gzip, snappy, lz4 or zstd (gzip when given without a value).
    #[arg(long, value_name = "CODEC", num_args = 0..=1, default_missing_value = "gzip")]
    pub compression_codec: Option<String>,
    /// Wait for each record to be acknowledged before reading the next line.
    #[arg(long)]
    pub sync: bool,
    /// acks: 0, 1 or -1/all (default -1).
    #[arg(long, value_name = "ACKS", allow_hyphen_values = true)]
    pub request_required_acks: Option<String>,
    /// linger.ms: how long to wait to fill a batch (default 1000; 0 with --sync).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// batch.size in bytes (default 16384).
    #[arg(long, value_name = "BYTES")]
    pub batch_size: Option<u64>,
    /// max.block.ms: how long a send may wait for metadata or buffer space (default 60000).
    #[arg(long, value_name = "MS")]
    pub max_block_ms: Option<u64>,
    /// request.timeout.ms (default 10000).
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// retries (default 3).
    #[arg(long, value_name = "N")]
    pub message_send_max_retries: Option<u64>,
    /// retry.backoff.ms (default 100).
    #[arg(long, value_name = "MS")]
    pub retry_backoff_ms: Option<u64>,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

/// How lines become records: Kafka's LineMessageReader properties.
#[derive(Debug, Clone)]
pub struct LineReader {
    parse_key: bool,
    key_separator: String,
    parse_headers: bool,
    headers_delimiter: String,
    headers_separator: String,
    headers_key_separator: String,
    null_marker: Option<String>,
    ignore_error: bool,
}

impl LineReader {
    pub fn from_properties(props: &[String]) -> Result<LineReader, String> {
        let mut reader = LineReader {
            parse_key: false,
            key_separator: "\t".into(),
            parse_headers: false,
            headers_delimiter: "\t".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_marker: None,
            ignore_error: false,
        };
        for p in props {
            let (k, v) = key_value(p, "--property")?;
            let flag = || v.parse::<bool>().map_err(|_| format!("--property {k}={v}: expected true or false"));
            match k {
                "parse.key" => reader.parse_key = flag()?,
                "key.separator" => reader.key_separator = v.to_string(),
                "parse.headers" => reader.parse_headers = flag()?,
                "headers.delimiter" => reader.headers_delimiter = v.to_string(),
                "headers.separator" => reader.headers_separator = v.to_string(),
                "headers.key.separator" => reader.headers_key_separator = v.to_string(),
                "null.marker" => reader.null_marker = Some(v.to_string()),
                "ignore.error" => reader.ignore_error = flag()?,
                other => eprintln!("Warning: ignoring unknown reader property '{other}'"),
            }
        }
        for (name, sep) in [
            ("key.separator", &reader.key_separator),
            ("headers.delimiter", &reader.headers_delimiter),
            ("headers.separator", &reader.headers_separator),
            ("headers.key.separator", &reader.headers_key_separator),
        ] {
            if sep.is_empty() {
                return Err(format!("--property {name} must not be empty"));
            }
        }
        Ok(reader)
    }

    fn nullable(&self, s: &str) -> Option<Bytes> {
        match &self.null_marker {
            Some(marker) if marker == s => None,
            _ => Some(Bytes::copy_from_slice(s.as_bytes())),
        }
    }

    /// One line (without its end-of-line) as a record; `line_number` counts from 1 for errors.
    pub fn parse(&self, topic: &str, line_number: u64, line: &str) -> Result<ProducerRecord, String> {
        let mut record = ProducerRecord::new(topic);
        let mut rest = line;
        if self.parse_headers {
            match rest.find(&self.headers_delimiter) {
                Some(at) => {
                    let headers = &rest[..at];
                    rest = &rest[at + self.headers_delimiter.len()..];
                    for header in headers.split(&self.headers_separator).filter(|h| !h.is_empty()) {
                        let (name, value) = match header.find(&self.headers_key_separator) {
                            Some(i) => (&header[..i], self.nullable(&header[i + self.headers_key_separator.len()..])),
                            None => (header, None),
                        };
                        if self.null_marker.as_deref() == Some(name) {
                            return Err(format!("Header keys should not be equal to the null marker '{name}' as they can't be null (line {line_number})"));
                        }
                        record.headers.push((name.to_string(), value));
                    }
                }
                None if self.ignore_error => {}
                None => return Err(format!("No headers delimiter found on line number {line_number}: '{line}'")),
            }
        }
        if self.parse_key {
            match rest.find(&self.key_separator) {
                Some(at) => {
                    record.key = self.nullable(&rest[..at]);
                    rest = &rest[at + self.key_separator.len()..];
                }
                None if self.ignore_error => {}
                None => return Err(format!("No key separator found on line number {line_number}: '{line}'")),
            }
        }
        record.value = self.nullable(rest);
        Ok(record)
    }
}

/// Producer properties: --producer.config, then --producer-property, then the dedicated flags.
fn producer_properties(args: &ConsoleProducerArgs) -> Result<Properties, String> {
    let bootstrap = args.bootstrap_server.as_deref().or(args.broker_list.as_deref());
    let mut props = client_properties(bootstrap, args.producer_config.as_deref())?;
    insert_pairs(&mut props, &args.producer_properties, "--producer-property")?;
    let mut default = |key: &str, flag: Option<String>, fallback: &str| match flag {
        Some(v) => props.insert(key, v),
        None if props.get(key).is_none() => props.insert(key, fallback),
        None => {}
    };
    default("acks", args.request_required_acks.clone(), "-1");
    // With --sync each record is awaited alone: lingering would only delay it.
    default("linger.ms", args.timeout.map(|v| v.to_string()), if args.sync { "0" } else { "1000" });
    default("batch.size", args.batch_size.map(|v| v.to_string()), "16384");
    default("max.block.ms", args.max_block_ms.map(|v| v.to_string()), "60000");
    default("retries", args.message_send_max_retries.map(|v| v.to_string()), "3");
    default("retry.backoff.ms", args.retry_backoff_ms.map(|v| v.to_string()), "100");
    default("compression.type", args.compression_codec.clone(), "none");
    if let Some(ms) = args.request_timeout_ms {
        props.insert("request.timeout.ms", ms.to_string());
    }
    if props.get("client.id").is_none() {
        props.insert("client.id", "console-producer");
    }
    Ok(props)
}

pub async fn run(args: ConsoleProducerArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    let topic = args.topic.clone().ok_or("--topic TOPIC is required")?;
    let reader = LineReader::from_properties(&args.properties)?;
    let props = producer_properties(&args)?;
    let producer = Producer::new(&props).await.map_err(|e| e.to_string())?;
    let failed = Arc::new(AtomicU64::new(0));
    let mut lines = super::stdin_lines();
    let mut line_number = 0u64;
    while let Some(line) = lines.recv().await {
        let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
        line_number += 1;
        let record = reader.parse(&topic, line_number, &line)?;
        let describe = describe_record(&record);
        if args.sync {
            if let Err(e) = producer.send_and_wait(record).await {
                report_failure(&topic, &describe, &e.to_string(), &failed);
            }
        } else {
            let (on_failure, topic_name, described) = (Arc::clone(&failed), topic.clone(), describe.clone());
            let queued = producer
                .send_with_callback(record, move |result| {
                    if let Err(e) = result {
                        report_failure(&topic_name, &described, &e.to_string(), &on_failure);
                    }
                })
                .await;
            if let Err(e) = queued {
                report_failure(&topic, &describe, &e.to_string(), &failed);
            }
        }
    }
    if let Err(e) = producer.close().await {
        eprintln!("Error while closing the producer: {e}");
    }
    match failed.load(Ordering::Relaxed) {
        0 => Ok(()),
        1 => Err("1 record was not delivered".into()),
        n => Err(format!("{n} records were not delivered")),
    }
}

/// Kafka's ErrorLoggingCallback wording: the key and the value's size.
fn describe_record(record: &ProducerRecord) -> String {
    let key = match &record.key {
        Some(k) => String::from_utf8_lossy(k).into_owned(),
        None => "null".into(),
    };
    let value = record.value.as_ref().map_or(-1, |v| v.len() as i64);
    format!("key: {key}, value: {value} bytes")
}

fn report_failure(topic: &str, record: &str, error: &str, failed: &AtomicU64) {
    eprintln!("Error when sending message to topic {topic} with {record} with error: {error}");
    failed.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(props: &[&str]) -> LineReader {
        LineReader::from_properties(&props.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn plain_lines_are_values() {
        let r = reader(&[]).parse("t", 1, "hello world").unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"hello world"[..]));
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        let r = reader(&["parse.key=true", "key.separator=:"]).parse("t", 1, "k1:v:1").unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:1"[..]));
        let err = reader(&["parse.key=true"]).parse("t", 7, "no-tab").unwrap_err();
        assert_eq!(err, "No key separator found on line number 7: 'no-tab'");
    }

    #[test]
    fn headers_come_first_and_null_marker_applies() {
        let r = reader(&["parse.headers=true", "parse.key=true", "null.marker=NULL"])
            .parse("t", 1, "h1:v1,h2,h3:NULL\tNULL\tvalue")
            .unwrap();
        assert_eq!(
            r.headers,
            vec![("h1".into(), Some(Bytes::from_static(b"v1"))), ("h2".into(), None), ("h3".into(), None)]
        );
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"value"[..]));
    }

    #[test]
    fn malformed_properties_are_refused() {
        assert!(LineReader::from_properties(&["parse.key".into()]).is_err());
        assert!(LineReader::from_properties(&["parse.key=maybe".into()]).is_err());
        assert!(LineReader::from_properties(&["key.separator=".into()]).is_err());
    }
}
