//! The Kafka-style command-line tools, on strom-client. Conventions shared by every tool: Kafka's
//! flag names, `--command-config FILE` for client properties, a one-line error and exit code 1.

pub mod consumer_groups;
pub mod topics;

use std::process::ExitCode;
use strom_client::Properties;

/// Client properties from `--bootstrap-server` and `--command-config`.
pub fn client_properties(
    bootstrap: Option<&str>,
    command_config: Option<&std::path::Path>,
) -> Result<Properties, String> {
    let mut props = match command_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Properties::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Properties::new(),
    };
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

/// Runs a tool's async body on a small runtime; errors become one line on stderr and exit 1.
pub fn run(tool: &str, body: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tool}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error while executing {tool} command : {message}");
            ExitCode::FAILURE
        }
    }
}

/// The answer to Kafka flags that no longer apply.
pub const NO_ZOOKEEPER: &str = "Strom has no ZooKeeper; use --bootstrap-server HOST:PORT";
