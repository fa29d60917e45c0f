//! `strom cluster`, Kafka's kafka-cluster: print the cluster id, or unregister a broker that is
//! gone for good.

use super::client_properties;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use strom_client::admin::Admin;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom cluster cluster-id --bootstrap-server localhost:9092
  strom cluster unregister --bootstrap-server localhost:9092 --id 3")]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Print the cluster id.
    ClusterId {
        /// The broker to connect to, HOST:PORT[,HOST:PORT...].
        #[arg(long, short = 'b', value_name = "HOST:PORT")]
        bootstrap_server: Option<String>,
        /// Client properties in a file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove a broker's registration.
    Unregister {
        /// The broker to connect to, HOST:PORT[,HOST:PORT...].
        #[arg(long, short = 'b', value_name = "HOST:PORT")]
        bootstrap_server: Option<String>,
        /// Client properties in a file.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// The id of the broker to unregister.
        #[arg(long, short = 'i', value_name = "ID")]
        id: i32,
    },
}

pub async fn run(args: ClusterArgs) -> Result<(), String> {
    match args.command {
        ClusterCommand::ClusterId { bootstrap_server, config } => {
            let admin = connect(bootstrap_server, config).await?;
            let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
            out!("Cluster ID: {}", cluster.cluster_id);
        }
        ClusterCommand::Unregister { bootstrap_server, config, id } => {
            let admin = connect(bootstrap_server, config).await?;
            admin.unregister_broker(id).await.map_err(|e| e.to_string())?;
            out!("Broker {id} is no longer registered.");
        }
    }
    Ok(())
}

async fn connect(bootstrap: Option<String>, config: Option<PathBuf>) -> Result<Admin, String> {
    let props = client_properties(bootstrap.as_deref(), config.as_deref())?;
    Admin::new(&props).await.map_err(|e| e.to_string())
}
