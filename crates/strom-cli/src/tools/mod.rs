//! The Kafka-style command-line tools, on strom-client. Conventions shared by every tool: Kafka's
//! flag names, `--command-config FILE` for client properties, a one-line error and exit code 1.

/// `println!` for tool output that ends the process quietly when stdout is closed (a tool piped
/// into `head`), as a Unix tool does, instead of panicking on the broken pipe.
macro_rules! out {
    () => {
        $crate::tools::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::tools::write_line(format_args!($($arg)*))
    };
}

pub mod cluster;
pub mod cluster_plans;
pub mod configs;
pub mod console_consumer;
pub mod console_producer;
pub mod consumer_groups;
pub mod consumer_perf;
pub mod dump_log;
pub mod dump_txn;
pub mod leader_election;
pub mod local_cluster;
pub mod log_dirs;
pub mod metadata_quorum;
pub mod offsets;
pub mod producer_perf;
pub mod reassign_partitions;
pub mod storage;
pub mod time;
pub mod topics;

use std::process::ExitCode;
use strom_client::Properties;

/// Client properties from `--bootstrap-server` and `--command-config`.
pub fn client_properties(
    bootstrap: Option<&str>,
    command_config: Option<&std::path::Path>,
) -> Result<Properties, String> {
    let mut props = properties_file(command_config)?;
    match bootstrap {
        Some(b) => props.insert("bootstrap.servers", b),
        None if props.get("bootstrap.servers").is_some() => {}
        None => return Err("--bootstrap-server HOST:PORT is required".into()),
    }
    // A tool should fail fast when the broker is unreachable, not retry for minutes.
    if props.get("request.timeout.ms").is_none() {
        props.insert("request.timeout.ms", "10000");
    }
    Ok(props)
}

/// Client properties from a Java properties file, or none without one.
pub fn properties_file(path: Option<&std::path::Path>) -> Result<Properties, String> {
    let Some(path) = path else { return Ok(Properties::new()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Properties::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adds `key=value` pairs from a repeatable flag (`--producer-property`, ...) to `props`.
pub fn insert_pairs(props: &mut Properties, pairs: &[String], flag: &str) -> Result<(), String> {
    for pair in pairs {
        let (k, v) = key_value(pair, flag)?;
        props.insert(k, v);
    }
    Ok(())
}

/// Runs a tool's async body on a small runtime; errors become one line on stderr and exit 1.
pub fn run(tool: &str, body: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    run_on(tool, tokio::runtime::Builder::new_current_thread(), body)
}

/// As [`run`], on a runtime with a thread per core: for the perf tests, where the client's
/// background tasks (the producer's sender) should not share one thread with the load loop.
pub fn run_multi_thread(tool: &str, body: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    run_on(tool, tokio::runtime::Builder::new_multi_thread(), body)
}

fn run_on(
    tool: &str,
    mut builder: tokio::runtime::Builder,
    body: impl std::future::Future<Output = Result<(), String>>,
) -> ExitCode {
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tool}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    finish(tool, runtime.block_on(body))
}

/// A tool's result as its exit code, the error as one line on stderr.
pub fn finish(tool: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error while executing {tool} command : {message}");
            ExitCode::FAILURE
        }
    }
}

/// The answer to Kafka flags that no longer apply.
pub const NO_ZOOKEEPER: &str = "Strom has no ZooKeeper; use --bootstrap-server HOST:PORT";

/// Splits `key=value` (at the first `=`); `flag` names the option in the error.
pub fn key_value<'a>(pair: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(format!("{flag} '{pair}' is malformed: expected KEY=VALUE")),
    }
}

/// Lines of standard input, read on a thread of their own (stdin blocks), without their line end.
pub fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut input = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    if tx.blocking_send(Ok(String::from_utf8_lossy(&buf).into_owned())).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}

/// The body of [`out!`].
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
