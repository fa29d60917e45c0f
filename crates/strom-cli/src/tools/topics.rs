//! `strom topics`, Kafka's kafka-topics: create, list, describe, alter (partitions) and delete
//! topics, printing Kafka's layouts.

use super::{client_properties, NO_ZOOKEEPER};
use clap::Args;
use std::path::PathBuf;
use strom_client::admin::{Admin, ConfigResource, NewTopic};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom topics --bootstrap-server localhost:9092 --create --topic test --partitions 1 --replication-factor 1
  strom topics --bootstrap-server localhost:9092 --list
  strom topics --bootstrap-server localhost:9092 --describe --topic test
  strom topics --bootstrap-server localhost:9092 --alter --topic test --partitions 3
  strom topics --bootstrap-server localhost:9092 --delete --topic test")]
pub struct TopicsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties (security settings and the like) in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// Create a topic.
    #[arg(long, group = "action")]
    pub create: bool,
    /// List topic names.
    #[arg(long, group = "action")]
    pub list: bool,
    /// Show partitions, leaders, replicas and non-default configs.
    #[arg(long, group = "action")]
    pub describe: bool,
    /// Add partitions to a topic.
    #[arg(long, group = "action")]
    pub alter: bool,
    /// Delete a topic.
    #[arg(long, group = "action")]
    pub delete: bool,
    /// The topic to create, describe, alter or delete.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Partition count (--create: the broker's num.partitions if left out; --alter: the new total).
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    /// Copies of each partition (the broker's default.replication.factor if left out).
    #[arg(long, value_name = "R")]
    pub replication_factor: Option<i16>,
    /// With --create: the replicas of each partition, Kafka's format: partitions separated by
    /// commas, the brokers of one by colons, the preferred leader first ("1:2:3,2:3:1").
    #[arg(long, value_name = "B1:B2,...", conflicts_with_all = ["partitions", "replication_factor"])]
    pub replica_assignment: Option<String>,
    /// A topic config for --create, as key=value (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// With --create: do nothing if the topic exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// With --alter or --delete: do nothing if the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
    /// With --describe: only partitions whose ISR is smaller than the replica set.
    #[arg(long)]
    pub under_replicated_partitions: bool,
    /// With --describe: only partitions without a leader.
    #[arg(long)]
    pub unavailable_partitions: bool,
    /// With --describe: only partitions whose ISR is smaller than the topic's min.insync.replicas.
    #[arg(long)]
    pub under_min_isr_partitions: bool,
    /// With --describe: only partitions whose ISR is exactly the topic's min.insync.replicas.
    #[arg(long)]
    pub at_min_isr_partitions: bool,
    /// With --list or --describe: leave out internal topics.
    #[arg(long)]
    pub exclude_internal: bool,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

pub async fn run(args: TopicsArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    if !(args.create || args.list || args.describe || args.alter || args.delete) {
        return Err("one of --create, --list, --describe, --alter or --delete is required".into());
    }
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    if args.create {
        create(&admin, &args).await
    } else if args.list {
        for name in admin.list_topics(!args.exclude_internal).await.map_err(|e| e.to_string())? {
            out!("{name}");
        }
        Ok(())
    } else if args.describe {
        describe(&admin, &args).await
    } else if args.alter {
        let topic = required_topic(&args)?;
        let partitions = args.partitions.ok_or("--alter needs --partitions N")?;
        match admin.create_partitions(topic, partitions).await {
            Err(e) if args.if_exists && e.code() == Some(3) => Ok(()),
            other => other.map_err(|e| e.to_string()),
        }
    } else {
        let topic = required_topic(&args)?;
        let results = admin.delete_topics(&[topic]).await.map_err(|e| e.to_string())?;
        for (name, r) in results {
            match r {
                Err(e) if args.if_exists && e.code() == Some(3) => {}
                Err(e) if e.code() == Some(3) => return Err(format!("Topic '{name}' does not exist as expected")),
                Err(e) => return Err(e.to_string()),
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

fn required_topic(args: &TopicsArgs) -> Result<&str, String> {
    args.topic.as_deref().ok_or_else(|| "--topic TOPIC is required".to_string())
}

async fn create(admin: &Admin, args: &TopicsArgs) -> Result<(), String> {
    let topic = required_topic(args)?;
    let partitions = args.partitions.unwrap_or(-1);
    if partitions == 0 || partitions < -1 {
        return Err(format!("--partitions must be at least 1, got {partitions}"));
    }
    let replication = args.replication_factor.unwrap_or(-1);
    if replication == 0 || replication < -1 {
        return Err(format!("--replication-factor must be at least 1, got {replication}"));
    }
    let mut new = NewTopic::new(topic, partitions, replication);
    if let Some(text) = &args.replica_assignment {
        new.assignment = parse_replica_assignment(text)?;
    }
    for kv in &args.configs {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--config expects key=value, got '{kv}'"))?;
        new = new.config(k.trim(), v.trim());
    }
    let results = admin.create_topics(&[new], false).await.map_err(|e| e.to_string())?;
    for (name, r) in results {
        match r {
            Ok(()) => out!("Created topic {name}."),
            Err(e) if e.code() == Some(36) && args.if_not_exists => {}
            Err(e) if e.code() == Some(36) => return Err(format!("Topic '{name}' already exists.")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// `--replica-assignment 1:2:3,2:3:1`: partition i gets the i-th group of broker ids.
fn parse_replica_assignment(text: &str) -> Result<Vec<(i32, Vec<i32>)>, String> {
    let bad = |why: &str| format!("--replica-assignment '{text}': {why}");
    let mut out = Vec::new();
    for (partition, group) in text.split(',').enumerate() {
        let brokers: Vec<i32> = group
            .split(':')
            .map(|b| b.trim().parse::<i32>().map_err(|_| bad(&format!("'{b}' is not a broker id"))))
            .collect::<Result<_, _>>()?;
        let mut unique = brokers.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != brokers.len() {
            return Err(bad(&format!("partition {partition} names a broker twice")));
        }
        if out.first().is_some_and(|(_, first): &(i32, Vec<i32>)| first.len() != brokers.len()) {
            return Err(bad("every partition needs the same number of replicas"));
        }
        out.push((partition as i32, brokers));
    }
    Ok(out)
}

async fn describe(admin: &Admin, args: &TopicsArgs) -> Result<(), String> {
    let names: Vec<String> = match &args.topic {
        Some(t) => vec![t.clone()],
        None => admin.list_topics(!args.exclude_internal).await.map_err(|e| e.to_string())?,
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let topics = admin.describe_topics(&refs).await.map_err(|e| match e.code() {
        Some(3) => format!("Topic '{}' does not exist as expected", names.join(", ")),
        _ => e.to_string(),
    })?;
    let by_min_isr = args.under_min_isr_partitions || args.at_min_isr_partitions;
    let filtered = args.under_replicated_partitions || args.unavailable_partitions || by_min_isr;
    for t in topics {
        let all_configs = if !filtered || by_min_isr {
            admin.describe_configs(&ConfigResource::Topic(t.name.clone())).await.map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        let min_isr: usize = all_configs
            .iter()
            .find(|c| c.name == "min.insync.replicas")
            .and_then(|c| c.value.as_deref()?.parse().ok())
            .unwrap_or(1);
        if !filtered {
            let configs = all_configs
                .into_iter()
                .filter(|c| !c.is_default())
                .map(|c| format!("{}={}", c.name, c.value.unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",");
            let replication = t.partitions.first().map_or(0, |p| p.replicas.len());
            out!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                t.name,
                strom_broker::server::base64url(&t.topic_id),
                t.partitions.len(),
                replication,
                configs
            );
        }
        for p in &t.partitions {
            let under = p.isr.len() < p.replicas.len();
            let unavailable = p.leader < 0;
            let under_min = p.isr.len() < min_isr;
            let at_min = p.isr.len() == min_isr;
            if (args.under_replicated_partitions && !under)
                || (args.unavailable_partitions && !unavailable)
                || (args.under_min_isr_partitions && !under_min)
                || (args.at_min_isr_partitions && !at_min)
            {
                continue;
            }
            let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let leader = if p.leader < 0 { "none".to_string() } else { p.leader.to_string() };
            out!(
                "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                t.name,
                p.partition,
                leader,
                list(&p.replicas),
                list(&p.isr)
            );
        }
    }
    Ok(())
}
