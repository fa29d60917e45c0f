//! `strom reassign-partitions`, Kafka's kafka-reassign-partitions: plan a move of topics onto
//! brokers (--generate), start it (--execute, with an optional replication throttle), follow it
//! and clear the throttles when it is done (--verify), cancel it (--cancel), or list what is in
//! progress (--list). Kafka's JSON formats and output lines.

use super::client_properties;
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use strom_client::admin::{Admin, AlterConfigOp, ConfigResource, OngoingReassignment};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  strom reassign-partitions --bootstrap-server localhost:9092 --generate --topics-to-move-json-file topics.json --broker-list 2,3,4
  strom reassign-partitions --bootstrap-server localhost:9092 --execute --reassignment-json-file plan.json --throttle 10000000
  strom reassign-partitions --bootstrap-server localhost:9092 --verify --reassignment-json-file plan.json
  strom reassign-partitions --bootstrap-server localhost:9092 --cancel --reassignment-json-file plan.json
topics.json: {\"topics\": [{\"topic\": \"orders\"}], \"version\": 1}
plan.json:   {\"version\": 1, \"partitions\": [{\"topic\": \"orders\", \"partition\": 0, \"replicas\": [2, 3, 4]}]}")]
pub struct ReassignPartitionsArgs {
    /// The broker to connect to, HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Client properties in a file.
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// Print a plan that moves the topics of --topics-to-move-json-file onto --broker-list.
    #[arg(long, conflicts_with_all = ["execute", "verify", "cancel", "list"])]
    pub generate: bool,
    /// Start the reassignment of --reassignment-json-file.
    #[arg(long, conflicts_with_all = ["verify", "cancel", "list"])]
    pub execute: bool,
    /// Report the status of the reassignment of --reassignment-json-file; once nothing is in
    /// progress, remove the throttles --execute set.
    #[arg(long, conflicts_with_all = ["cancel", "list"])]
    pub verify: bool,
    /// Cancel the reassignments of --reassignment-json-file in progress.
    #[arg(long, conflicts_with = "list")]
    pub cancel: bool,
    /// List the reassignments in progress.
    #[arg(long)]
    pub list: bool,
    #[arg(long, value_name = "FILE")]
    pub topics_to_move_json_file: Option<PathBuf>,
    /// The brokers to move to, e.g. 2,3,4.
    #[arg(long, value_name = "IDS")]
    pub broker_list: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub reassignment_json_file: Option<PathBuf>,
    /// Replication throttle in bytes per second for the moving replicas (with --execute).
    #[arg(long, value_name = "BYTES")]
    pub throttle: Option<u64>,
    /// Keep the throttles after --verify or --cancel.
    #[arg(long)]
    pub preserve_throttles: bool,
    /// Start this reassignment even though others are in progress.
    #[arg(long)]
    pub additional: bool,
    /// Plan without racks (with --generate).
    #[arg(long)]
    pub disable_rack_aware: bool,
}

pub(super) type Plan = BTreeMap<(String, i32), Vec<i32>>;

/// Kafka's reassignment JSON: `{"version":1,"partitions":[{"topic","partition","replicas"}]}`.
fn parse_plan(text: &str) -> Result<Plan, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(v) = json.get("version") {
        if v.as_i64() != Some(1) {
            return Err(format!("Not supported version field value {v}"));
        }
    }
    let list = json["partitions"].as_array().ok_or("no \"partitions\" list")?;
    if list.is_empty() {
        return Err("Partition reassignment list cannot be empty".into());
    }
    let mut plan = Plan::new();
    for p in list {
        let topic = p["topic"].as_str().ok_or("a partition without \"topic\"")?.to_string();
        let partition = p["partition"].as_i64().and_then(|n| i32::try_from(n).ok()).ok_or("a bad \"partition\"")?;
        let replicas: Vec<i32> = p["replicas"]
            .as_array()
            .ok_or("a partition without \"replicas\"")?
            .iter()
            .map(|r| r.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or("a bad replica id"))
            .collect::<Result<_, _>>()?;
        if replicas.is_empty() {
            return Err("Partition replica list cannot be empty".into());
        }
        if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
            return Err(format!("Duplicate replica assignment found for {topic}-{partition}: {replicas:?}"));
        }
        if let Some(dirs) = p.get("log_dirs") {
            let dirs = dirs.as_array().ok_or("\"log_dirs\" is not a list")?;
            if dirs.len() != replicas.len() {
                return Err(format!(
                    "Size of replicas list {replicas:?} is different from size of log dirs list {dirs:?} for \
                     partition {topic}-{partition}"
                ));
            }
            if let Some(dir) = dirs.iter().find(|d| d.as_str() != Some("any")) {
                return Err(format!(
                    "{topic}-{partition}: log directory {dir} requested; Strom does not move replicas between \
                     log directories (AlterReplicaLogDirs) yet, so every entry of \"log_dirs\" must be \"any\""
                ));
            }
        }
        if plan.insert((topic.clone(), partition), replicas).is_some() {
            return Err(format!("Duplicate reassignment of partition {topic}-{partition}"));
        }
    }
    Ok(plan)
}

/// Kafka's JSON, keys in Kafka's order (`version` first; `topic`, `partition`, `replicas`,
/// `log_dirs`).
fn plan_json(plan: &Plan) -> String {
    let partitions: Vec<String> = plan
        .iter()
        .map(|((t, p), r)| {
            let topic = serde_json::Value::from(t.as_str());
            let dirs = vec!["\"any\""; r.len()].join(",");
            format!(r#"{{"topic":{topic},"partition":{p},"replicas":[{}],"log_dirs":[{dirs}]}}"#, ids(r))
        })
        .collect();
    format!(r#"{{"version":1,"partitions":[{}]}}"#, partitions.join(","))
}

fn read(path: &Option<PathBuf>, flag: &str) -> Result<String, String> {
    let path = path.as_ref().ok_or_else(|| format!("{flag} is required"))?;
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn names(list: &[(String, i32)]) -> String {
    list.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>().join(",")
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

pub async fn run(args: ReassignPartitionsArgs) -> Result<(), String> {
    let props = client_properties(args.bootstrap_server.as_deref(), args.command_config.as_deref())?;
    let admin = Admin::new(&props).await.map_err(|e| e.to_string())?;
    if args.generate {
        generate(&admin, &args).await
    } else if args.execute {
        execute(&admin, &args).await
    } else if args.verify {
        verify(&admin, &args).await
    } else if args.cancel {
        cancel(&admin, &args).await
    } else if args.list {
        list(&admin).await
    } else {
        Err("give one of --generate, --execute, --verify, --cancel or --list".into())
    }
}

/// The current replicas of every partition of `topics`.
async fn current_assignment(admin: &Admin, topics: &[String]) -> Result<Plan, String> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let infos = admin.describe_topics(&names).await.map_err(|e| e.to_string())?;
    Ok(infos
        .into_iter()
        .flat_map(|t| t.partitions.into_iter().map(move |p| ((t.name.clone(), p.partition), p.replicas)))
        .collect())
}

async fn generate(admin: &Admin, args: &ReassignPartitionsArgs) -> Result<(), String> {
    let text = read(&args.topics_to_move_json_file, "--topics-to-move-json-file")?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("topics JSON: {e}"))?;
    let topics: Vec<String> = json["topics"]
        .as_array()
        .ok_or("topics JSON: no \"topics\" list")?
        .iter()
        .map(|t| t["topic"].as_str().map(String::from).ok_or("topics JSON: a topic without \"topic\""))
        .collect::<Result<_, _>>()?;
    let brokers: Vec<i32> = args
        .broker_list
        .as_deref()
        .ok_or("--broker-list is required with --generate")?
        .split(',')
        .map(|b| b.trim().parse().map_err(|_| format!("--broker-list: '{b}' is not a broker id")))
        .collect::<Result<_, _>>()?;
    let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
    let racks: BTreeMap<i32, Option<String>> = cluster.brokers.iter().map(|b| (b.node_id, b.rack.clone())).collect();
    if let Some(unknown) = brokers.iter().find(|b| !racks.contains_key(b)) {
        return Err(format!("Unknown broker id {unknown}"));
    }
    let with_racks: Vec<(i32, Option<&str>)> =
        brokers.iter().map(|b| (*b, if args.disable_rack_aware { None } else { racks[b].as_deref() })).collect();
    let some_racks = with_racks.iter().filter(|(_, r)| r.is_some()).count();
    if some_racks > 0 && some_racks < with_racks.len() {
        return Err("Not all brokers have rack information. Add --disable-rack-aware in command line to make \
                    replica assignment without rack information."
            .into());
    }
    let current = current_assignment(admin, &topics).await?;
    let mut proposed = Plan::new();
    for ((topic, partition), replicas) in &current {
        if replicas.len() > brokers.len() {
            return Err(format!(
                "{topic}-{partition} has {} replicas, more than the {} brokers of --broker-list",
                replicas.len(),
                brokers.len()
            ));
        }
        let target = strom_metadata::placement::place(&with_racks, *partition, replicas.len());
        proposed.insert((topic.clone(), *partition), target);
    }
    out!("Current partition replica assignment\n{}\n", plan_json(&current));
    out!("Proposed partition reassignment configuration\n{}", plan_json(&proposed));
    Ok(())
}

async fn execute(admin: &Admin, args: &ReassignPartitionsArgs) -> Result<(), String> {
    let plan = parse_plan(&read(&args.reassignment_json_file, "--reassignment-json-file")?)?;
    let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
    let known: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.node_id).collect();
    if let Some(unknown) = plan.values().flatten().find(|b| !known.contains(b)) {
        return Err(format!("Unknown broker id {unknown}"));
    }
    let ongoing = admin.list_partition_reassignments(None).await.map_err(|e| e.to_string())?;
    if !ongoing.is_empty() && !args.additional {
        return Err("Cannot execute because there is an existing partition assignment.  Use --additional to \
                    override this and create a new partition assignment in addition to the existing one. The \
                    --additional flag can also be used to change the throttle by resubmitting the current \
                    reassignment."
            .into());
    }
    let topics: Vec<String> = plan.keys().map(|(t, _)| t.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let current = current_assignment(admin, &topics).await?;
    if let Some((t, p)) = plan.keys().find(|k| !current.contains_key(*k)) {
        return Err(format!("Topic {t} not found or partition {p} does not exist"));
    }
    let shown: Plan =
        current.iter().filter(|(k, _)| plan.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    out!("Current partition replica assignment\n\n{}\n", plan_json(&shown));
    out!("Save this to use as the --reassignment-json-file option during rollback");
    if let Some(rate) = args.throttle {
        set_throttles(admin, &plan, &current, &ongoing, rate).await?;
        out!("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.");
        out!("The inter-broker throttle limit was set to {rate} B/s");
    }
    start(admin, &plan).await?;
    let started: Vec<(String, i32)> = plan.keys().cloned().collect();
    let s = if started.len() > 1 { "s" } else { "" };
    out!("Successfully started partition reassignment{s} for {}", names(&started));
    Ok(())
}

/// Starts the reassignments of `plan`; an error names every partition refused.
pub(super) async fn start(admin: &Admin, plan: &Plan) -> Result<(), String> {
    let changes = plan.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    let results = admin.alter_partition_reassignments(&changes).await.map_err(|e| e.to_string())?;
    let failed: Vec<String> =
        results.iter().filter_map(|((t, p), r)| r.as_ref().err().map(|e| format!("{t}-{p}: {e}"))).collect();
    if !failed.is_empty() {
        return Err(format!("Error reassigning partition(s):\n{}", failed.join("\n")));
    }
    Ok(())
}

/// Kafka's throttles for a move: on the leader side every replica the data comes from, on the
/// follower side every replica it goes to, as topic configs; the rates on every broker involved.
/// Reassignments already in progress keep theirs (with --additional): as Kafka's tool, the
/// lists cover them and the new plan together.
pub(super) async fn set_throttles(
    admin: &Admin,
    plan: &Plan,
    current: &Plan,
    ongoing: &BTreeMap<(String, i32), OngoingReassignment>,
    rate: u64,
) -> Result<(), String> {
    let mut leader: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut follower: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut brokers = BTreeSet::new();
    let moves = plan.iter().map(|(key, target)| (key, Some(target)));
    let others = ongoing.keys().filter(|key| !plan.contains_key(*key)).map(|key| (key, None));
    for ((topic, partition), target) in moves.chain(others) {
        let (sources, destinations): (Vec<i32>, Vec<i32>) = match (ongoing.get(&(topic.clone(), *partition)), target) {
            (Some(o), _) => (o.replicas.iter().copied().filter(|r| !o.adding.contains(r)).collect(), o.adding.clone()),
            (None, Some(target)) => {
                let sources = current[&(topic.clone(), *partition)].clone();
                let destinations = target.iter().copied().filter(|r| !sources.contains(r)).collect();
                (sources, destinations)
            }
            (None, None) => unreachable!("every key comes from the plan or from the ongoing reassignments"),
        };
        for s in &sources {
            leader.entry(topic).or_default().insert(format!("{partition}:{s}"));
        }
        for d in destinations.iter().filter(|d| !sources.contains(d)) {
            follower.entry(topic).or_default().insert(format!("{partition}:{d}"));
        }
        brokers.extend(sources.iter().chain(destinations.iter()).copied());
    }
    for topic in leader.keys().chain(follower.keys()).collect::<BTreeSet<_>>() {
        let mut ops = Vec::new();
        for (key, lists) in
            [("leader.replication.throttled.replicas", &leader), ("follower.replication.throttled.replicas", &follower)]
        {
            if let Some(list) = lists.get(topic) {
                ops.push((key.to_string(), AlterConfigOp::Set(list.iter().cloned().collect::<Vec<_>>().join(","))));
            }
        }
        admin
            .incremental_alter_configs(&ConfigResource::Topic(topic.to_string()), &ops)
            .await
            .map_err(|e| format!("setting the throttled replicas of {topic}: {e}"))?;
    }
    for b in brokers {
        let ops: Vec<(String, AlterConfigOp)> =
            ["leader.replication.throttled.rate", "follower.replication.throttled.rate"]
                .iter()
                .map(|k| (k.to_string(), AlterConfigOp::Set(rate.to_string())))
                .collect();
        admin
            .incremental_alter_configs(&ConfigResource::Broker(b), &ops)
            .await
            .map_err(|e| format!("setting the throttle rate of broker {b}: {e}"))?;
    }
    Ok(())
}

/// Removes the throttles from every broker of the cluster and of the plan, and from the plan's topics.
pub(super) async fn clear_throttles(admin: &Admin, plan: &Plan) -> Result<(), String> {
    let cluster = admin.describe_cluster().await.map_err(|e| e.to_string())?;
    let brokers: BTreeSet<i32> =
        cluster.brokers.iter().map(|b| b.node_id).chain(plan.values().flatten().copied()).collect();
    let ops: Vec<(String, AlterConfigOp)> =
        ["leader.replication.throttled.rate", "follower.replication.throttled.rate"]
            .iter()
            .map(|k| (k.to_string(), AlterConfigOp::Delete))
            .collect();
    for b in &brokers {
        admin
            .incremental_alter_configs(&ConfigResource::Broker(*b), &ops)
            .await
            .map_err(|e| format!("clearing the throttle rate of broker {b}: {e}"))?;
    }
    let s = if brokers.len() > 1 { "s" } else { "" };
    out!("Clearing broker-level throttles on broker{s} {}", ids(&brokers.iter().copied().collect::<Vec<_>>()));
    let topics: BTreeSet<&str> = plan.keys().map(|(t, _)| t.as_str()).collect();
    let ops: Vec<(String, AlterConfigOp)> =
        ["leader.replication.throttled.replicas", "follower.replication.throttled.replicas"]
            .iter()
            .map(|k| (k.to_string(), AlterConfigOp::Delete))
            .collect();
    for t in &topics {
        admin
            .incremental_alter_configs(&ConfigResource::Topic(t.to_string()), &ops)
            .await
            .map_err(|e| format!("clearing the throttled replicas of {t}: {e}"))?;
    }
    let s = if topics.len() > 1 { "s" } else { "" };
    out!("Clearing topic-level throttles on topic{s} {}", topics.into_iter().collect::<Vec<_>>().join(","));
    Ok(())
}

async fn verify(admin: &Admin, args: &ReassignPartitionsArgs) -> Result<(), String> {
    let plan = parse_plan(&read(&args.reassignment_json_file, "--reassignment-json-file")?)?;
    let ongoing = admin.list_partition_reassignments(None).await.map_err(|e| e.to_string())?;
    let topics: Vec<String> = plan.keys().map(|(t, _)| t.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let current = current_assignment(admin, &topics).await?;
    out!("Status of partition reassignment:");
    for ((topic, partition), target) in &plan {
        let key = (topic.clone(), *partition);
        if ongoing.contains_key(&key) {
            out!("Reassignment of partition {topic}-{partition} is still in progress.");
        } else if current.get(&key) == Some(target) {
            out!("Reassignment of partition {topic}-{partition} is completed.");
        } else {
            let now = current.get(&key).map(|r| ids(r)).unwrap_or_default();
            out!(
                "There is no active reassignment of partition {topic}-{partition}, but replica set is {now} rather than {}.",
                ids(target)
            );
        }
    }
    out!();
    if ongoing.is_empty() && !args.preserve_throttles {
        clear_throttles(admin, &plan).await?;
    }
    Ok(())
}

async fn cancel(admin: &Admin, args: &ReassignPartitionsArgs) -> Result<(), String> {
    let plan = parse_plan(&read(&args.reassignment_json_file, "--reassignment-json-file")?)?;
    let ongoing = admin.list_partition_reassignments(None).await.map_err(|e| e.to_string())?;
    let active: BTreeMap<(String, i32), Option<Vec<i32>>> =
        plan.keys().filter(|k| ongoing.contains_key(*k)).map(|k| (k.clone(), None)).collect();
    if active.is_empty() {
        out!("None of the specified partition reassignments are active.");
    } else {
        let results = admin.alter_partition_reassignments(&active).await.map_err(|e| e.to_string())?;
        let failed: Vec<String> =
            results.iter().filter_map(|((t, p), r)| r.as_ref().err().map(|e| format!("{t}-{p}: {e}"))).collect();
        if !failed.is_empty() {
            return Err(format!("Error cancelling partition reassignment(s):\n{}", failed.join("\n")));
        }
        let done: Vec<(String, i32)> = active.keys().cloned().collect();
        let s = if done.len() > 1 { "s" } else { "" };
        out!("Successfully cancelled partition reassignment{s} for: {}", names(&done));
    }
    if !args.preserve_throttles {
        clear_throttles(admin, &plan).await?;
    }
    Ok(())
}

async fn list(admin: &Admin) -> Result<(), String> {
    let ongoing = admin.list_partition_reassignments(None).await.map_err(|e| e.to_string())?;
    if ongoing.is_empty() {
        out!("No partition reassignments found.");
        return Ok(());
    }
    out!("Current partition reassignments:");
    for ((t, p), o) in ongoing {
        out!("{t}-{p}: replicas: {}. adding: {}. removing: {}.", ids(&o.replicas), ids(&o.adding), ids(&o.removing));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_plan;

    #[test]
    fn plans_are_read_as_kafka_writes_them_and_bad_ones_are_refused_with_the_reason() {
        let plan = parse_plan(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3,4],"log_dirs":["any","any","any"]}]}"#,
        )
        .expect("a valid plan");
        assert_eq!(plan[&("t".to_string(), 0)], vec![2, 3, 4]);
        let refused = |text: &str| parse_plan(text).expect_err("refused");
        assert!(refused(r#"{"version":2,"partitions":[]}"#).contains("Not supported version"));
        assert!(refused(r#"{"partitions":[]}"#).contains("cannot be empty"));
        assert!(
            refused(r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#).contains("Duplicate replica")
        );
        let twice =
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#;
        assert!(refused(twice).contains("Duplicate reassignment of partition t-0"));
        let short = r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}"#;
        assert!(refused(short).contains("different from size of log dirs"));
        let dir = r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data/2"]}]}"#;
        assert!(refused(dir).contains("must be \"any\""));
    }
}
