//! Test support: runs the real `strom` binary on a free loopback port with a temporary data
//! directory, and gives librdkafka clients and a raw Kafka-protocol client to talk to it.
#![allow(dead_code)]

pub mod cluster;
pub mod raw;
pub mod workload;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `strom server` child process. Killed on drop.
pub struct TestBroker {
    _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    pub port: u16,
    overrides: Vec<String>,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl TestBroker {
    /// Starts a broker in a fresh temporary directory with extra `key=value` overrides.
    pub fn start(overrides: &[&str]) -> TestBroker {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let owned: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let mut b = TestBroker::unstarted(Some(tmp), dir, free_port(), owned);
        b.spawn();
        b
    }

    /// A broker not started yet, in `dir`, with its client listener on `port`.
    pub fn unstarted(tmp: Option<tempfile::TempDir>, dir: PathBuf, port: u16, overrides: Vec<String>) -> TestBroker {
        TestBroker { _tmp: tmp, dir, port, overrides, child: None }
    }

    /// Starts the broker process (see [`Self::unstarted`]).
    pub fn launch(&mut self) {
        self.spawn();
    }

    /// The `--override`s the broker starts with.
    pub fn overrides(&self) -> &[String] {
        &self.overrides
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_file()).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strom"));
        cmd.arg("server")
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir().display()));
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        cmd.env("STROM_LOG", "info").stdout(Stdio::null()).stderr(log);
        self.child = Some(cmd.spawn().expect("spawn strom server"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("strom server exited early with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "broker did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGSTOP, returning once every thread of the broker has stopped. `kill` returns as soon as
    /// the signal is queued; the kernel wakes one thread to start the group stop and the others
    /// keep running until it does, which on a loaded machine is milliseconds: long enough for a
    /// follower to fetch what a test writes "while it is stopped".
    pub fn pause(&self) {
        let pid = self.pid().expect("running");
        signal(pid, "-STOP");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stopped = |stat: String| {
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't', 'Z', 'X']))
        };
        loop {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the broker's threads");
            let all_stopped = tasks
                .filter_map(Result::ok)
                .all(|t| std::fs::read_to_string(t.path().join("stat")).map(stopped).unwrap_or(true));
            if all_stopped {
                return;
            }
            assert!(Instant::now() < deadline, "broker {pid} did not stop within 10 s of SIGSTOP");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        signal(self.pid().expect("running"), "-CONT");
    }

    /// Whether the broker process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The broker's resident memory in KiB (VmRSS) and its peak (VmHWM).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid().expect("running"))).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let status = child.wait().expect("wait for broker");
            assert!(status.success(), "broker exited with {status}:\n{}", self.log());
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap()).set("broker.address.family", "v4");
        c
    }

    pub fn producer(&self, extra: &[(&str, &str)]) -> FutureProducer {
        let mut c = self.client_config();
        c.set("queue.buffering.max.messages", "1000000").set("message.timeout.ms", "30000");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c.create().expect("producer")
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    pub async fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            topic = topic.set(k, v);
        }
        let results = self.admin().create_topics([&topic], &AdminOptions::new()).await.expect("create_topics");
        for r in results {
            r.expect("topic created");
        }
    }

    /// Reads every partition of `topic` from its beginning until `expected` messages arrived.
    pub fn consume_all(&self, topic: &str, partitions: i32, expected: usize) -> Vec<OwnedMessage> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", "strom-test-assign-only")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).expect("add partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(60);
        while out.len() < expected {
            assert!(Instant::now() < deadline, "consumed only {} of {expected} messages", out.len());
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                out.push(m.expect("consume without error").detach());
            }
        }
        // Nothing more than expected.
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
            panic!("unexpected extra message at {}:{}", m.partition(), m.offset());
        }
        out
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The broker's side of a failed test, which would otherwise vanish with its directory.
            eprintln!("--- broker log ---\n{}", self.log());
        }
    }
}

/// Files under `dir` whose name ends with `suffix` (e.g. the `.log` segments of a partition).
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(suffix)).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill").args([which, &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {which} {pid}: {status}");
}

/// The values a librdkafka consumer made from `config` reads at `isolation` (`read_committed`,
/// `read_uncommitted`) from the beginning of `partitions` partitions of `topic`, until
/// `expected` arrived and nothing more within half a second; sorted.
pub fn read_values(
    mut config: ClientConfig,
    topic: &str,
    partitions: i32,
    isolation: &str,
    expected: usize,
) -> Vec<String> {
    let consumer: BaseConsumer = config
        .set("group.id", "strom-test-readers")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.len() < expected {
        assert!(Instant::now() < deadline, "{isolation}: read {values:?}, expected {expected}");
        // Transport errors of a broker that is down are the client's to ride out.
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
        panic!("{isolation}: unexpected {:?}", m.payload());
    }
    values.sort();
    values
}
