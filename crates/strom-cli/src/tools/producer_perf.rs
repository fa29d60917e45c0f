//! `strom producer-perf-test`, Kafka's kafka-producer-perf-test: sends records as fast as allowed
//! (or at --throughput records/s), measures each record's latency from send to acknowledgement,
//! and prints Kafka's progress lines and summary.

use super::{insert_pairs, properties_file, NO_ZOOKEEPER};
use bytes::Bytes;
use clap::Args;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::Properties;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom producer-perf-test --topic perf --num-records 1000000 --record-size 1024 --throughput -1 --producer-props bootstrap.servers=localhost:9092 acks=1 linger.ms=5
  strom producer-perf-test --topic perf --num-records 100000 --record-size 100 --throughput 10000 --bootstrap-server localhost:9092")]
pub struct ProducerPerfArgs {
    /// The topic to produce to.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// How many records to send.
    #[arg(long, value_name = "N")]
    pub num_records: Option<u64>,
    /// The size of each record's value in bytes (random letters).
    #[arg(long, value_name = "BYTES", conflicts_with = "payload_file")]
    pub record_size: Option<usize>,
    /// Take values from this file, split at --payload-delimiter, chosen at random.
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,
    /// What separates the values in --payload-file.
    #[arg(long, value_name = "TEXT", default_value = "\n")]
    pub payload_delimiter: String,
    /// Records per second at most; -1 for no limit.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub throughput: Option<f64>,
    /// Producer properties, as key=value (several after one flag, as Kafka's tool takes them).
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    pub producer_props: Vec<String>,
    /// Producer properties in a file.
    #[arg(long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<PathBuf>,
    /// The broker to connect to (instead of bootstrap.servers in --producer-props).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Kafka's transactional mode; Strom does not have transactions yet.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// Kafka prints client metrics at the end; Strom's client keeps none yet.
    #[arg(long)]
    pub print_metrics: bool,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

const MB: f64 = 1024.0 * 1024.0;
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Records, bytes and latency since `start`: once for the whole run and once per 5 s window.
struct Tally {
    start: Instant,
    count: u64,
    bytes: u64,
    latency_total_ms: u64,
    latency_max_ms: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally { start: Instant::now(), count: 0, bytes: 0, latency_total_ms: 0, latency_max_ms: 0 }
    }

    fn add(&mut self, latency_ms: u64, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        self.latency_total_ms += latency_ms;
        self.latency_max_ms = self.latency_max_ms.max(latency_ms);
    }

    fn secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn avg_latency_ms(&self) -> f64 {
        self.latency_total_ms as f64 / self.count.max(1) as f64
    }
}

/// Kafka's ProducerPerformance.Stats: a window printed every 5 s, totals, and sampled latencies
/// (at most ~500,000 samples) for the percentiles.
struct Stats {
    total: Tally,
    window: Tally,
    samples: Vec<u32>,
    sampling: u64,
}

impl Stats {
    fn new(num_records: u64) -> Stats {
        let sampling = (num_records / num_records.clamp(1, 500_000)).max(1);
        Stats {
            total: Tally::new(),
            window: Tally::new(),
            samples: Vec::with_capacity((num_records / sampling + 1) as usize),
            sampling,
        }
    }

    fn record(&mut self, latency_ms: u64, bytes: u64) {
        if self.total.count.is_multiple_of(self.sampling) {
            self.samples.push(latency_ms.min(u32::MAX as u64) as u32);
        }
        self.total.add(latency_ms, bytes);
        self.window.add(latency_ms, bytes);
        if self.window.start.elapsed() >= REPORT_EVERY {
            self.print_window();
            self.window = Tally::new();
        }
    }

    fn print_window(&self) {
        let w = &self.window;
        let secs = w.secs();
        out!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            w.count,
            w.count as f64 / secs,
            w.bytes as f64 / MB / secs,
            w.avg_latency_ms(),
            w.latency_max_ms as f64
        );
    }

    fn print_total(&mut self) {
        let t = &self.total;
        let secs = t.secs();
        self.samples.sort_unstable();
        let pct = |p: f64| -> u32 {
            if self.samples.is_empty() {
                0
            } else {
                self.samples[((p * self.samples.len() as f64) as usize).min(self.samples.len() - 1)]
            }
        };
        out!(
            "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
             {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            t.count,
            t.count as f64 / secs,
            t.bytes as f64 / MB / secs,
            t.avg_latency_ms(),
            t.latency_max_ms as f64,
            pct(0.5),
            pct(0.95),
            pct(0.99),
            pct(0.999)
        );
    }
}

fn producer_properties(args: &ProducerPerfArgs) -> Result<Properties, String> {
    let mut props = properties_file(args.producer_config.as_deref())?;
    insert_pairs(&mut props, &args.producer_props, "--producer-props")?;
    if let Some(b) = &args.bootstrap_server {
        props.insert("bootstrap.servers", b.clone());
    }
    if props.get("bootstrap.servers").is_none() {
        return Err("give --bootstrap-server HOST:PORT or --producer-props bootstrap.servers=HOST:PORT".into());
    }
    if props.get("client.id").is_none() {
        props.insert("client.id", "perf-producer-client");
    }
    Ok(props)
}

/// The values to send: one random payload of --record-size, or the pieces of --payload-file.
fn payloads(args: &ProducerPerfArgs) -> Result<Vec<Bytes>, String> {
    match (&args.record_size, &args.payload_file) {
        (Some(size), None) => {
            // Kafka's tool fills the payload once with random upper-case letters.
            let mut seed = super::time::now_ms() as u64 | 1;
            let payload: Vec<u8> = (0..*size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b'A' + (seed % 26) as u8
                })
                .collect();
            Ok(vec![Bytes::from(payload)])
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let pieces: Vec<Bytes> = text
                .split(args.payload_delimiter.as_str())
                .filter(|p| !p.is_empty())
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect();
            if pieces.is_empty() {
                return Err(format!("{} holds no payloads", path.display()));
            }
            out!("Number of messages read: {}", pieces.len());
            Ok(pieces)
        }
        _ => Err("give one of --record-size BYTES or --payload-file FILE".into()),
    }
}

pub async fn run(args: ProducerPerfArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    if args.transactional_id.is_some() {
        return Err("--transactional-id: Strom does not support transactions yet".into());
    }
    let topic = args.topic.clone().ok_or("--topic TOPIC is required")?;
    let num_records = args.num_records.ok_or("--num-records N is required")?;
    let throughput = args.throughput.ok_or("--throughput N is required (-1 for no limit)")?;
    let payloads = payloads(&args)?;
    let props = producer_properties(&args)?;
    let producer = Producer::new(&props).await.map_err(|e| e.to_string())?;
    let stats = Arc::new(Mutex::new(Stats::new(num_records)));
    let failures = Arc::new(Mutex::new(None::<String>));
    let started = Instant::now();
    let mut pick = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..num_records {
        let value = if payloads.len() == 1 {
            payloads[0].clone()
        } else {
            pick ^= pick << 13;
            pick ^= pick >> 7;
            pick ^= pick << 17;
            payloads[(pick % payloads.len() as u64) as usize].clone()
        };
        let bytes = value.len() as u64;
        let sent_at = Instant::now();
        let (stats, failures) = (Arc::clone(&stats), Arc::clone(&failures));
        producer
            .send_with_callback(ProducerRecord::new(topic.as_str()).value(value), move |result| match result {
                Ok(_) => {
                    stats.lock().unwrap_or_else(|e| e.into_inner()).record(sent_at.elapsed().as_millis() as u64, bytes)
                }
                Err(e) => {
                    failures.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| e.to_string());
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if throughput > 0.0 {
            // Kafka's ThroughputThrottler: sleep off whatever is ahead of the target rate.
            let due = Duration::from_secs_f64((i + 1) as f64 / throughput);
            let elapsed = started.elapsed();
            if due > elapsed + Duration::from_millis(2) {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
    producer.close().await.map_err(|e| e.to_string())?;
    stats.lock().unwrap_or_else(|e| e.into_inner()).print_total();
    if let Some(e) = failures.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(format!("some records were not delivered; the first error: {e}"));
    }
    Ok(())
}
