//! `strom metadata-quorum`, Kafka's kafka-metadata-quorum: the metadata quorum's leader, epoch,
//! high watermark and lag (`describe --status`), and each voter's and observer's progress
//! (`describe --replication`), through DescribeQuorum.

use super::client_properties;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use strom_client::admin::{Admin, QuorumInfo};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom metadata-quorum --bootstrap-server localhost:9092 describe --status
  strom metadata-quorum --bootstrap-server localhost:9092 describe --replication")]
pub struct MetadataQuorumArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: QuorumCommand,
}

#[derive(Subcommand, Debug)]
pub enum QuorumCommand {
    /// Describe the metadata quorum.
    Describe {
        /// Leader, epoch, high watermark, lag, voters and observers.
        #[arg(long, group = "what")]
        status: bool,
        /// Each replica's log end offset, lag and last fetch.
        #[arg(long, group = "what")]
        replication: bool,
        /// With --replication: also the observers (always shown here).
        #[arg(long)]
        human_readable: bool,
    },
}

pub async fn run(args: MetadataQuorumArgs) -> Result<(), String> {
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    let QuorumCommand::Describe { status, replication, human_readable } = args.command;
    if status == replication {
        return Err("describe needs exactly one of --status and --replication".into());
    }
    let quorum = admin.describe_metadata_quorum().await.map_err(|e| e.to_string())?;
    if status {
        let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
        print_status(&cluster.cluster_id, &quorum);
    } else {
        print_replication(&quorum, human_readable);
    }
    Ok(())
}

fn leader_leo(q: &QuorumInfo) -> i64 {
    q.voters.iter().find(|v| v.id == q.leader_id).map_or(q.high_watermark, |v| v.log_end_offset)
}

fn print_status(cluster_id: &str, q: &QuorumInfo) {
    let leo = leader_leo(q);
    let now = now_ms();
    let max_lag = q.voters.iter().map(|v| (leo - v.log_end_offset).max(0)).max().unwrap_or(0);
    let max_lag_time = q
        .voters
        .iter()
        .filter(|v| v.id != q.leader_id)
        .map(|v| if v.last_caught_up_timestamp < 0 { -1 } else { (now - v.last_caught_up_timestamp).max(0) })
        .max()
        .unwrap_or(0);
    let ids = |rs: &[strom_client::admin::QuorumReplica]| {
        format!("[{}]", rs.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(","))
    };
    out!("ClusterId:              {cluster_id}");
    out!("LeaderId:               {}", q.leader_id);
    out!("LeaderEpoch:            {}", q.leader_epoch);
    out!("HighWatermark:          {}", q.high_watermark);
    out!("MaxFollowerLag:         {max_lag}");
    out!("MaxFollowerLagTimeMs:   {max_lag_time}");
    out!("CurrentVoters:          {}", ids(&q.voters));
    out!("CurrentObservers:       {}", ids(&q.observers));
}

fn print_replication(q: &QuorumInfo, human_readable: bool) {
    let leo = leader_leo(q);
    let now = now_ms();
    let time = |t: i64| match (t, human_readable) {
        (t, _) if t < 0 => "-1".to_string(),
        (t, true) => format!("{} ms ago", (now - t).max(0)),
        (t, false) => t.to_string(),
    };
    let mut rows = vec![vec![
        "NodeId".to_string(),
        "LogEndOffset".into(),
        "Lag".into(),
        "LastFetchTimestamp".into(),
        "LastCaughtUpTimestamp".into(),
        "Status".into(),
    ]];
    let mut voters = q.voters.clone();
    voters.sort_by_key(|v| (v.id != q.leader_id, v.id));
    for v in &voters {
        let status = if v.id == q.leader_id { "Leader" } else { "Follower" };
        rows.push(vec![
            v.id.to_string(),
            v.log_end_offset.to_string(),
            (leo - v.log_end_offset).max(0).to_string(),
            time(v.last_fetch_timestamp),
            time(v.last_caught_up_timestamp),
            status.into(),
        ]);
    }
    for o in &q.observers {
        let lag = if o.log_end_offset < 0 { "-1".to_string() } else { (leo - o.log_end_offset).max(0).to_string() };
        rows.push(vec![
            o.id.to_string(),
            o.log_end_offset.to_string(),
            lag,
            time(o.last_fetch_timestamp),
            time(o.last_caught_up_timestamp),
            "Observer".into(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out!("{}", line.join("  ").trim_end());
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
