//! What a scenario measured, printed as one table row and as one JSON object per line.

use hdrhistogram::Histogram;
use serde_json::json;

/// Latencies in microseconds, 3 significant digits, up to one hour.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The result of one scenario run.
pub struct Report {
    pub scenario: &'static str,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Latencies in µs (empty when the scenario has none).
    pub latency: Histogram<u64>,
    /// The parameters, echoed into the JSON.
    pub params: serde_json::Value,
    /// CPU time of this process (the load generator, i.e. the client) for the run.
    pub client_cpu_seconds: f64,
}

/// CPU seconds this process has used so far (all threads, user and system).
pub fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

impl Report {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// MB/s with MB = 10^6 bytes, as librdkafka's rdkafka_performance counts.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }

    /// The client's CPU milliseconds per MB moved.
    pub fn client_cpu_ms_per_mb(&self) -> f64 {
        self.client_cpu_seconds * 1000.0 / (self.bytes as f64 / 1e6).max(1e-9)
    }

    fn ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn print(&self, as_json: bool) {
        if as_json {
            let mut v = json!({
                "scenario": self.scenario,
                "records": self.records,
                "bytes": self.bytes,
                "seconds": self.seconds,
                "records_per_sec": self.records_per_sec(),
                "mb_per_sec": self.mb_per_sec(),
                "params": self.params,
                "client_cpu_seconds": self.client_cpu_seconds,
                "client_cpu_ms_per_mb": self.client_cpu_ms_per_mb(),
            });
            if !self.latency.is_empty() {
                v["latency_ms"] = json!({
                    "p50": self.ms(0.5),
                    "p99": self.ms(0.99),
                    "p99_9": self.ms(0.999),
                    "max": self.latency.max() as f64 / 1000.0,
                });
            }
            println!("{v}");
        } else {
            let latency = if self.latency.is_empty() {
                String::new()
            } else {
                format!(
                    "  latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
                    self.ms(0.5),
                    self.ms(0.99),
                    self.ms(0.999),
                    self.latency.max() as f64 / 1000.0
                )
            };
            println!(
                "{:<8} {:>10} records {:>8.2} s {:>12.0} records/s {:>9.1} MB/s  client CPU {:.2} ms/MB{latency}",
                self.scenario,
                self.records,
                self.seconds,
                self.records_per_sec(),
                self.mb_per_sec(),
                self.client_cpu_ms_per_mb()
            );
        }
    }
}
