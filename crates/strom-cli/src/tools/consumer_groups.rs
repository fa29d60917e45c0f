//! `strom consumer-groups`, Kafka's kafka-consumer-groups: list groups, describe their offsets and
//! lag, members or state, reset offsets of an inactive group, delete groups.

use super::{client_properties, NO_ZOOKEEPER};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use strom_client::admin::{Admin, ConsumerGroupDescription};
use strom_client::consumer::OffsetAndMetadata;
use strom_client::TopicPartition;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom consumer-groups --bootstrap-server localhost:9092 --list
  strom consumer-groups --bootstrap-server localhost:9092 --describe --group testGroup
  strom consumer-groups --bootstrap-server localhost:9092 --describe --group testGroup --members
  strom consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group testGroup --topic test --to-earliest --execute
  strom consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group testGroup --topic test --to-datetime 2026-11-01T00:00:00.000 --execute
  strom consumer-groups --bootstrap-server localhost:9092 --delete-offsets --group testGroup --topic test:0
  strom consumer-groups --bootstrap-server localhost:9092 --delete --group testGroup")]
pub struct ConsumerGroupsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// List all consumer groups.
    #[arg(long, group = "action")]
    pub list: bool,
    /// Describe a group: committed offsets, log end offsets and lag per partition.
    #[arg(long, group = "action")]
    pub describe: bool,
    /// Reset a group's committed offsets (the group must have no active members).
    #[arg(long, group = "action")]
    pub reset_offsets: bool,
    /// Delete a group and its committed offsets (the group must be empty).
    #[arg(long, group = "action")]
    pub delete: bool,
    /// Delete a group's committed offsets for --topic T or T:P,P (not while members consume it).
    #[arg(long, group = "action")]
    pub delete_offsets: bool,
    /// The group to describe, reset or delete.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// With --describe: every group.
    #[arg(long)]
    pub all_groups: bool,
    /// With --describe: the members and how many partitions each has.
    #[arg(long)]
    pub members: bool,
    /// With --describe: the group's state, coordinator and assignor.
    #[arg(long)]
    pub state: bool,
    /// With --reset-offsets or --delete-offsets: the topic, optionally with partitions (T:0,1).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// With --reset-offsets: every topic the group has offsets for.
    #[arg(long)]
    pub all_topics: bool,
    #[arg(long, group = "reset")]
    pub to_earliest: bool,
    #[arg(long, group = "reset")]
    pub to_latest: bool,
    #[arg(long, group = "reset", value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    #[arg(long, group = "reset", value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// The first offset at or after this time: YYYY-MM-DDTHH:mm:SS.sss[Z|+hh:mm] (UTC without a zone).
    #[arg(long, group = "reset", value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// The committed offset itself (re-commits it, clamped to the log's range).
    #[arg(long, group = "reset")]
    pub to_current: bool,
    /// With --reset-offsets: only show the new offsets (the default).
    #[arg(long)]
    pub dry_run: bool,
    /// With --reset-offsets: commit the new offsets.
    #[arg(long)]
    pub execute: bool,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

pub async fn run(args: ConsumerGroupsArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    if !(args.list || args.describe || args.reset_offsets || args.delete || args.delete_offsets) {
        return Err("one of --list, --describe, --reset-offsets, --delete or --delete-offsets is required".into());
    }
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    if args.list {
        for g in admin.list_groups().await.map_err(|e| e.to_string())? {
            out!("{}", g.group_id);
        }
        return Ok(());
    }
    if args.describe {
        let groups = if args.all_groups {
            admin.list_groups().await.map_err(|e| e.to_string())?.into_iter().map(|g| g.group_id).collect()
        } else {
            vec![group_arg(&args)?.to_string()]
        };
        for g in groups {
            describe(&admin, &g, &args).await?;
        }
        return Ok(());
    }
    let group = group_arg(&args)?;
    if args.delete {
        for (name, r) in admin.delete_groups(&[group]).await.map_err(|e| e.to_string())? {
            match r {
                Ok(()) => out!("Deletion of requested consumer groups ('{name}') was successful."),
                Err(e) if e.code() == Some(69) => return Err(format!("Consumer group '{name}' does not exist.")),
                Err(e) if e.code() == Some(68) => return Err(format!("Consumer group '{name}' is not empty.")),
                Err(e) => return Err(e.to_string()),
            }
        }
        return Ok(());
    }
    if args.delete_offsets {
        return delete_offsets(&admin, group, &args).await;
    }
    reset(&admin, group, &args).await
}

/// `--topic T` (every partition) or `--topic T:0,2`.
async fn topic_partitions(admin: &Admin, spec: &str) -> Result<Vec<TopicPartition>, String> {
    let (topic, listed) = match spec.split_once(':') {
        Some((t, ps)) => {
            let ps: Result<Vec<i32>, _> = ps.split(',').map(|p| p.trim().parse::<i32>()).collect();
            (t, Some(ps.map_err(|_| format!("--topic '{spec}': partitions must be numbers, as in {t}:0,1"))?))
        }
        None => (spec, None),
    };
    if let Some(ps) = listed {
        return Ok(ps.into_iter().map(|p| TopicPartition::new(topic, p)).collect());
    }
    let info = admin.describe_topics(&[topic]).await.map_err(|e| match e.code() {
        Some(3) => format!("Topic '{topic}' does not exist"),
        _ => e.to_string(),
    })?;
    Ok(info[0].partitions.iter().map(|p| TopicPartition::new(topic, p.partition)).collect())
}

async fn delete_offsets(admin: &Admin, group: &str, args: &ConsumerGroupsArgs) -> Result<(), String> {
    let spec = args.topic.as_deref().ok_or("--delete-offsets needs --topic TOPIC[:PARTITIONS]")?;
    let partitions = topic_partitions(admin, spec).await?;
    let results = admin.delete_consumer_group_offsets(group, &partitions).await.map_err(|e| match e.code() {
        Some(69) => format!("Consumer group '{group}' does not exist."),
        Some(24) => format!("'{group}' is not valid."),
        _ => e.to_string(),
    })?;
    out!("Request succeed for deleting offsets from group {group}.");
    out!();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(tp, r)| {
            let status = match r {
                Ok(()) => "Successful".to_string(),
                Err(e) => format!("Error: {e}"),
            };
            vec![tp.topic.clone(), tp.partition.to_string(), status]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "STATUS"], &rows);
    match results.iter().filter(|(_, r)| r.is_err()).count() {
        0 => Ok(()),
        n => Err(format!("{n} partition(s) could not be deleted")),
    }
}

fn group_arg(args: &ConsumerGroupsArgs) -> Result<&str, String> {
    args.group.as_deref().ok_or_else(|| "--group GROUP is required".to_string())
}

/// Kafka's tables: each column as wide as its widest cell, separated by a space.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$} ", w = widths[i]));
            }
        }
        out!("{out}");
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

async fn describe(admin: &Admin, group: &str, args: &ConsumerGroupsArgs) -> Result<(), String> {
    let d = admin.describe_group(group).await.map_err(|e| e.to_string())?;
    let committed = admin.list_consumer_group_offsets(group).await.map_err(|e| e.to_string())?;
    if d.state == "Dead" && committed.is_empty() {
        return Err(format!("Consumer group '{group}' does not exist."));
    }
    out!();
    if args.state {
        let coordinator = admin.cluster().snapshot().brokers.get(&d.coordinator).cloned().unwrap_or_default();
        let row = vec![
            group.to_string(),
            format!("{coordinator} ({})", d.coordinator),
            d.protocol.clone(),
            d.state.clone(),
            d.members.len().to_string(),
        ];
        print_table(&["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"], &[row]);
        return Ok(());
    }
    if d.members.is_empty() {
        out!("Consumer group '{group}' has no active members.");
        out!();
    }
    if args.members {
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    group.to_string(),
                    m.member_id.clone(),
                    m.host.clone(),
                    m.client_id.clone(),
                    m.assignment.len().to_string(),
                ]
            })
            .collect();
        print_table(&["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"], &rows);
        return Ok(());
    }
    print_table(
        &["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"],
        &offset_rows(admin, group, &d, &committed).await?,
    );
    Ok(())
}

async fn offset_rows(
    admin: &Admin,
    group: &str,
    d: &ConsumerGroupDescription,
    committed: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> Result<Vec<Vec<String>>, String> {
    let mut owner: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for (i, m) in d.members.iter().enumerate() {
        for tp in &m.assignment {
            owner.insert(tp.clone(), i);
        }
    }
    let partitions: Vec<TopicPartition> =
        committed.keys().chain(owner.keys()).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let query: BTreeMap<TopicPartition, i64> = partitions.iter().map(|tp| (tp.clone(), -1)).collect();
    let ends = if query.is_empty() {
        Default::default()
    } else {
        admin.list_offsets(&query).await.map_err(|e| e.to_string())?
    };
    Ok(partitions
        .iter()
        .map(|tp| {
            let current = committed.get(tp).map(|o| o.offset);
            let end = ends.get(tp).map(|(o, _)| *o);
            let lag = match (current, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => "-".into(),
            };
            let member = owner.get(tp).map(|i| &d.members[*i]);
            vec![
                group.to_string(),
                tp.topic.clone(),
                tp.partition.to_string(),
                current.map_or("-".into(), |c| c.to_string()),
                end.map_or("-".into(), |e| e.to_string()),
                lag,
                member.map_or("-".into(), |m| m.member_id.clone()),
                member.map_or("-".into(), |m| m.host.clone()),
                member.map_or("-".into(), |m| m.client_id.clone()),
            ]
        })
        .collect())
}

async fn reset(admin: &Admin, group: &str, args: &ConsumerGroupsArgs) -> Result<(), String> {
    if args.topic.is_none() && !args.all_topics {
        return Err("--reset-offsets needs --topic TOPIC or --all-topics".into());
    }
    let by_time = args.to_datetime.as_deref().map(super::time::parse_iso_ms).transpose()?;
    if !(args.to_earliest || args.to_latest || args.to_current || args.to_offset.is_some() || args.shift_by.is_some())
        && by_time.is_none()
    {
        return Err("--reset-offsets needs one of --to-earliest, --to-latest, --to-current, --to-offset N, --shift-by N, --to-datetime T".into());
    }
    let d = admin.describe_group(group).await.map_err(|e| e.to_string())?;
    if !matches!(d.state.as_str(), "Empty" | "Dead") {
        return Err(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            d.state
        ));
    }
    let committed = admin.list_consumer_group_offsets(group).await.map_err(|e| e.to_string())?;
    let partitions: Vec<TopicPartition> = match &args.topic {
        Some(t) => topic_partitions(admin, t).await?,
        None => committed.keys().cloned().collect(),
    };
    let bounds = |ts: i64| partitions.iter().map(|tp| (tp.clone(), ts)).collect::<BTreeMap<_, _>>();
    let earliest = admin.list_offsets(&bounds(-2)).await.map_err(|e| e.to_string())?;
    let latest = admin.list_offsets(&bounds(-1)).await.map_err(|e| e.to_string())?;
    let at_time = match by_time {
        Some(ts) => admin.list_offsets(&bounds(ts)).await.map_err(|e| e.to_string())?,
        None => Default::default(),
    };
    let mut new_offsets = BTreeMap::new();
    for tp in &partitions {
        let (lo, hi) = (earliest.get(tp).map_or(0, |o| o.0), latest.get(tp).map_or(0, |o| o.0));
        let target = if args.to_earliest {
            lo
        } else if args.to_latest {
            hi
        } else if let Some(o) = args.to_offset {
            o
        } else if by_time.is_some() {
            // No record at or after the time: the log end, as Kafka does.
            at_time.get(tp).map(|o| o.0).filter(|o| *o >= 0).unwrap_or(hi)
        } else {
            committed.get(tp).map_or(lo, |c| c.offset) + args.shift_by.unwrap_or(0)
        };
        // Kafka clamps to the log's current range.
        new_offsets.insert(tp.clone(), OffsetAndMetadata::new(target.clamp(lo, hi)));
    }
    if args.execute {
        admin.alter_consumer_group_offsets(group, &new_offsets).await.map_err(|e| e.to_string())?;
    }
    out!();
    let rows: Vec<Vec<String>> = new_offsets
        .iter()
        .map(|(tp, o)| vec![group.to_string(), tp.topic.clone(), tp.partition.to_string(), o.offset.to_string()])
        .collect();
    print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
    Ok(())
}
