//! `strom storage` (Kafka's kafka-storage): `random-uuid` prints a new cluster id; `format`
//! writes `meta.properties` into every log directory of a node's config, so that all nodes of a
//! cluster share one cluster id.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use strom_broker::meta_properties;
use strom_broker::BrokerConfig;

#[derive(Args, Debug)]
pub struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Subcommand, Debug)]
enum StorageCommand {
    /// Print a new random cluster id.
    RandomUuid,
    /// Format the log directories of a node for a cluster.
    #[command(
        after_help = "Example:\n  strom storage format -t $(strom storage random-uuid) -c config/server.properties"
    )]
    Format {
        /// The cluster id, the same on every node (`strom storage random-uuid` makes one).
        #[arg(short = 't', long = "cluster-id", value_name = "ID", allow_hyphen_values = true)]
        cluster_id: String,
        /// The node's server.properties.
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
        /// Override one property, as key=value (repeatable), applied after --config.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Skip directories that are already formatted instead of failing.
        #[arg(short = 'g', long = "ignore-formatted")]
        ignore_formatted: bool,
    },
}

pub fn run(args: StorageArgs) -> Result<(), String> {
    match args.command {
        StorageCommand::RandomUuid => {
            out!("{}", meta_properties::random_uuid());
            Ok(())
        }
        StorageCommand::Format { cluster_id, config, overrides, ignore_formatted } => {
            meta_properties::check_cluster_id(&cluster_id)?;
            let config = BrokerConfig::load(Some(&config), &overrides).map_err(|e| e.to_string())?;
            format_dirs(&config, &cluster_id, ignore_formatted)
        }
    }
}

/// Formats every log directory of `config`, as kafka-storage does.
pub fn format_dirs(config: &BrokerConfig, cluster_id: &str, ignore_formatted: bool) -> Result<(), String> {
    for dir in &config.log_dirs {
        if dir.join(meta_properties::FILE_NAME).exists() {
            if ignore_formatted {
                out!("All of the log directories are already formatted: {}", dir.display());
                continue;
            }
            return Err(format!(
                "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
                dir.display()
            ));
        }
        meta_properties::format(dir, cluster_id, config.node_id).map_err(|e| e.to_string())?;
        out!("Formatting {} with metadata.version 4.0-IV3 and cluster id {cluster_id}.", dir.display());
    }
    Ok(())
}
