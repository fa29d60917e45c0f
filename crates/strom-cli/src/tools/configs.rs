//! `strom configs`, Kafka's kafka-configs: describe and alter topic and broker configs.

use super::{client_properties, NO_ZOOKEEPER};
use clap::Args;
use std::path::PathBuf;
use strom_client::admin::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom configs --bootstrap-server localhost:9092 --entity-type topics --entity-name test --describe
  strom configs --bootstrap-server localhost:9092 --entity-type topics --entity-name test --describe --all
  strom configs --bootstrap-server localhost:9092 --entity-type topics --entity-name test --alter --add-config retention.ms=86400000,cleanup.policy=[delete,compact]
  strom configs --bootstrap-server localhost:9092 --entity-type topics --entity-name test --alter --delete-config retention.ms
  strom configs --bootstrap-server localhost:9092 --entity-type brokers --entity-name 1 --describe --all")]
pub struct ConfigsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// topics or brokers.
    #[arg(long, value_name = "TYPE")]
    pub entity_type: Option<String>,
    /// The topic name or broker id.
    #[arg(long, value_name = "NAME")]
    pub entity_name: Option<String>,
    /// The brokers' cluster-wide defaults (with --entity-type brokers).
    #[arg(long)]
    pub entity_default: bool,
    /// Shorthand for --entity-type topics --entity-name TOPIC.
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["entity_type", "entity_name"])]
    pub topic: Option<String>,
    /// Shorthand for --entity-type brokers --entity-name ID.
    #[arg(long, value_name = "ID", conflicts_with_all = ["entity_type", "entity_name", "topic"])]
    pub broker: Option<String>,
    /// Show the configs set on the entity (with --all: every config and where it comes from).
    #[arg(long, group = "action")]
    pub describe: bool,
    /// Change configs (--add-config, --delete-config).
    #[arg(long, group = "action")]
    pub alter: bool,
    /// With --describe: every config, not only those set on the entity.
    #[arg(long)]
    pub all: bool,
    /// With --alter: k=v pairs separated by commas; a list value goes in brackets: k=[a,b].
    #[arg(long, value_name = "K=V,...")]
    pub add_config: Option<String>,
    /// With --alter: config names separated by commas, reset to their defaults.
    #[arg(long, value_name = "K,...")]
    pub delete_config: Option<String>,
    /// Kafka's old flag; Strom has no ZooKeeper.
    #[arg(long, hide = true, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
}

/// The entity the command is about, and how Kafka's tool names it in its output.
struct Entity {
    resource: ConfigResource,
    label: String,
    /// The source of the values set on the entity itself.
    own_source: ConfigSource,
}

fn entity(args: &ConfigsArgs) -> Result<Entity, String> {
    let (kind, name) = match (&args.topic, &args.broker) {
        (Some(t), _) => ("topics".to_string(), Some(t.clone())),
        (_, Some(b)) => ("brokers".to_string(), Some(b.clone())),
        _ => (args.entity_type.clone().ok_or("--entity-type topics|brokers is required")?, args.entity_name.clone()),
    };
    match kind.as_str() {
        "topics" => {
            let name = name.ok_or("--entity-name TOPIC is required for topics")?;
            Ok(Entity {
                resource: ConfigResource::Topic(name.clone()),
                label: format!("topic {name}"),
                own_source: ConfigSource::DynamicTopicConfig,
            })
        }
        "brokers" => match (name, args.entity_default) {
            (Some(_), true) => Err("give either --entity-name or --entity-default, not both".into()),
            (Some(id), false) => {
                let id: i32 = id.parse().map_err(|_| format!("--entity-name '{id}' is not a broker id"))?;
                Ok(Entity {
                    resource: ConfigResource::Broker(id),
                    label: format!("broker {id}"),
                    own_source: ConfigSource::DynamicBrokerConfig,
                })
            }
            (None, true) => Ok(Entity {
                resource: ConfigResource::BrokerDefault,
                label: "brokers in the cluster".into(),
                own_source: ConfigSource::DynamicDefaultBrokerConfig,
            }),
            (None, false) => Err("--entity-name ID or --entity-default is required for brokers".into()),
        },
        other => Err(format!("--entity-type '{other}' is not supported; use topics or brokers")),
    }
}

/// Splits `--add-config` at commas outside brackets; `k=[a,b]` becomes `k=a,b`.
pub fn parse_add_config(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or(format!("--add-config '{text}': unbalanced ']'"))?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("--add-config '{text}': unbalanced '['"));
    }
    parts.push(&text[start..]);
    for part in parts.into_iter().filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("--add-config '{part}' is malformed: expected KEY=VALUE"))?;
        let v = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(v);
        pairs.push((k.trim().to_string(), v.to_string()));
    }
    Ok(pairs)
}

fn describe_line(e: &ConfigEntry) -> String {
    let value = if e.sensitive { "null".to_string() } else { e.value.clone().unwrap_or_else(|| "null".into()) };
    let synonyms: Vec<String> = e
        .synonyms
        .iter()
        .map(|s| format!("{}:{}={}", s.source, s.name, s.value.as_deref().unwrap_or("null")))
        .collect();
    format!("  {}={} sensitive={} synonyms={{{}}}", e.name, value, e.sensitive, synonyms.join(", "))
}

pub async fn run(args: ConfigsArgs) -> Result<(), String> {
    if args.zookeeper.is_some() {
        return Err(NO_ZOOKEEPER.into());
    }
    if !(args.describe || args.alter) {
        return Err("one of --describe or --alter is required".into());
    }
    let entity = entity(&args)?;
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    if args.describe {
        let mut entries = admin.describe_configs(&entity.resource).await.map_err(|e| e.to_string())?;
        entries.retain(|e| args.all || e.source == entity.own_source);
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let which = match (&entity.resource, args.all) {
            (_, true) => "All",
            (ConfigResource::BrokerDefault, false) => "Default",
            _ => "Dynamic",
        };
        out!("{which} configs for {} are:", entity.label);
        for e in &entries {
            out!("{}", describe_line(e));
        }
        return Ok(());
    }
    let added = match &args.add_config {
        Some(text) => parse_add_config(text)?,
        None => Vec::new(),
    };
    let deleted: Vec<String> = args
        .delete_config
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    if added.is_empty() && deleted.is_empty() {
        return Err("--alter needs --add-config K=V,... or --delete-config K,...".into());
    }
    if let Some(k) = deleted.iter().find(|k| added.iter().any(|(a, _)| a == *k)) {
        return Err(format!("config {k} is both added and deleted"));
    }
    if !deleted.is_empty() {
        // As Kafka's tool: only configs set on the entity can be deleted.
        let current = admin.describe_configs(&entity.resource).await.map_err(|e| e.to_string())?;
        let invalid: Vec<&str> = deleted
            .iter()
            .filter(|k| !current.iter().any(|e| &e.name == *k && e.source == entity.own_source))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            return Err(format!("Invalid config(s): {}", invalid.join(",")));
        }
    }
    let ops: Vec<(String, AlterConfigOp)> = added
        .into_iter()
        .map(|(k, v)| (k, AlterConfigOp::Set(v)))
        .chain(deleted.into_iter().map(|k| (k, AlterConfigOp::Delete)))
        .collect();
    admin.incremental_alter_configs(&entity.resource, &ops).await.map_err(|e| e.to_string())?;
    match entity.resource {
        ConfigResource::BrokerDefault => out!("Completed updating default config for brokers in the cluster."),
        _ => out!("Completed updating config for {}.", entity.label),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_splits_outside_brackets() {
        let pairs = parse_add_config("retention.ms=1000,cleanup.policy=[delete,compact]").unwrap();
        assert_eq!(
            pairs,
            vec![("retention.ms".into(), "1000".into()), ("cleanup.policy".into(), "delete,compact".into())]
        );
        assert!(parse_add_config("retention.ms").is_err());
        assert!(parse_add_config("a=[1,2").is_err());
    }
}
