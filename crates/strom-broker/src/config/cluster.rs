//! The cluster's keys, Kafka's names: roles, the controller quorum, listeners by name, rack, and
//! the replication settings. A `server.properties` without `process.roles` and
//! `controller.quorum.voters` is today's `strom server`: one combined node, a quorum of one.

use super::{invalid, parse, parse_bool, positive, ConfigError, Listener};
use std::collections::BTreeMap;

/// Keys read here (so that the general parser does not call them unknown).
pub const KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "broker.rack",
    "min.insync.replicas",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.backoff.ms",
    "num.replica.fetchers",
    "unclean.leader.election.enable",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "offsets.topic.replication.factor",
    "replica.selector.class",
    "auto.leader.rebalance.enable",
    "leader.imbalance.per.broker.percentage",
    "leader.imbalance.check.interval.seconds",
];

/// What a node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

/// One member of `controller.quorum.voters` (`id@host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub roles: Roles,
    /// Empty for a single node that is its own quorum.
    pub voters: Vec<Voter>,
    /// The listener controllers accept quorum and broker-lifecycle traffic on (a controller's
    /// listener named in `controller.listener.names`).
    pub controller_listener: Option<Listener>,
    pub controller_listener_names: Vec<String>,
    pub inter_broker_listener_name: String,
    pub rack: Option<String>,
    pub min_insync_replicas: i32,
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_backoff_ms: u64,
    pub num_replica_fetchers: usize,
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: the active controller gives partitions back to their
    /// preferred leader when a broker's share of partitions led elsewhere passes
    /// `leader.imbalance.per.broker.percentage`, checked every
    /// `leader.imbalance.check.interval.seconds` (Kafka's defaults: on, 10 %, 300 s).
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_per_broker_percentage: u32,
    pub leader_imbalance_check_interval_seconds: u64,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub offsets_topic_replication_factor: i16,
    /// `replica.selector.class` is Kafka's RackAwareReplicaSelector: consumers that name their
    /// rack are sent to a replica in it (KIP-392). Otherwise they read from the leader.
    pub rack_aware_replica_selector: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            roles: Roles { broker: true, controller: true },
            voters: Vec::new(),
            controller_listener: None,
            controller_listener_names: vec!["CONTROLLER".into()],
            inter_broker_listener_name: "PLAINTEXT".into(),
            rack: None,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1_048_576,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_fetch_backoff_ms: 1_000,
            num_replica_fetchers: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_per_broker_percentage: 10,
            leader_imbalance_check_interval_seconds: 300,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            offsets_topic_replication_factor: 3,
            rack_aware_replica_selector: false,
        }
    }
}

impl ClusterConfig {
    /// True when this node is the whole cluster (no voters configured): today's `strom server`.
    pub fn is_single_node(&self) -> bool {
        self.voters.is_empty()
    }

    /// Reads the cluster keys and checks them against each other as Kafka's KafkaConfig does.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
        node_id: i32,
        listeners: &[Listener],
    ) -> Result<ClusterConfig, ConfigError> {
        let mut c = ClusterConfig::default();
        for (key, value) in props {
            let k = key.as_str();
            match k {
                "process.roles" => c.roles = parse_roles(k, value)?,
                "controller.quorum.voters" => c.voters = parse_voters(k, value)?,
                "controller.listener.names" => {
                    c.controller_listener_names = value.split(',').map(|s| s.trim().to_string()).collect()
                }
                "inter.broker.listener.name" => c.inter_broker_listener_name = value.trim().to_string(),
                "broker.rack" => c.rack = Some(value.trim().to_string()).filter(|r| !r.is_empty()),
                "min.insync.replicas" => c.min_insync_replicas = positive(k, value)?,
                "replica.lag.time.max.ms" => c.replica_lag_time_max_ms = positive(k, value)?,
                "replica.fetch.max.bytes" => c.replica_fetch_max_bytes = positive(k, value)?,
                "replica.fetch.response.max.bytes" => c.replica_fetch_response_max_bytes = positive(k, value)?,
                "replica.fetch.wait.max.ms" => c.replica_fetch_wait_max_ms = positive(k, value)?,
                "replica.fetch.min.bytes" => c.replica_fetch_min_bytes = positive(k, value)?,
                "replica.fetch.backoff.ms" => c.replica_fetch_backoff_ms = parse(k, value)?,
                "num.replica.fetchers" => c.num_replica_fetchers = positive(k, value)?,
                "unclean.leader.election.enable" => c.unclean_leader_election_enable = parse_bool(k, value)?,
                "broker.session.timeout.ms" => c.broker_session_timeout_ms = positive(k, value)?,
                "auto.leader.rebalance.enable" => c.auto_leader_rebalance_enable = parse_bool(k, value)?,
                "leader.imbalance.per.broker.percentage" => c.leader_imbalance_per_broker_percentage = parse(k, value)?,
                "leader.imbalance.check.interval.seconds" => {
                    c.leader_imbalance_check_interval_seconds = positive(k, value)?
                }
                "broker.heartbeat.interval.ms" => c.broker_heartbeat_interval_ms = positive(k, value)?,
                "offsets.topic.replication.factor" => c.offsets_topic_replication_factor = positive(k, value)?,
                "controller.quorum.bootstrap.servers" | "listener.security.protocol.map" => {}
                "replica.selector.class" => c.rack_aware_replica_selector = parse_replica_selector(k, value)?,
                _ => {}
            }
        }
        c.controller_listener = listeners.iter().find(|l| c.controller_listener_names.contains(&l.name)).cloned();
        c.validate(props, node_id, listeners)?;
        Ok(c)
    }

    fn validate(
        &self,
        props: &BTreeMap<String, String>,
        node_id: i32,
        listeners: &[Listener],
    ) -> Result<(), ConfigError> {
        let voters_value = props.get("controller.quorum.voters").cloned().unwrap_or_default();
        if self.roles.controller && !self.voters.is_empty() {
            if !self.voters.iter().any(|v| v.id == node_id) {
                return Err(invalid(
                    "controller.quorum.voters",
                    &voters_value,
                    &format!("this node (node.id={node_id}) has the controller role but is not among the voters"),
                ));
            }
            if self.controller_listener.is_none() {
                return Err(invalid(
                    "listeners",
                    props.get("listeners").map(String::as_str).unwrap_or_default(),
                    &format!(
                        "a controller needs a listener named in controller.listener.names ({})",
                        self.controller_listener_names.join(",")
                    ),
                ));
            }
        }
        if !self.roles.broker && self.voters.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                "a controller-only node (process.roles=controller) needs the controller quorum's voters",
            ));
        }
        if !self.roles.controller && self.controller_listener.is_some() {
            return Err(invalid(
                "listeners",
                props.get("listeners").map(String::as_str).unwrap_or_default(),
                "a node without the controller role must not list a controller listener",
            ));
        }
        if !self.roles.controller && self.voters.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                "a broker-only node needs the controller quorum's voters",
            ));
        }
        if !self.roles.controller && self.voters.iter().any(|v| v.id == node_id) {
            // Kafka's rule: a voter votes, so a broker-only node cannot be one.
            return Err(invalid(
                "controller.quorum.voters",
                &voters_value,
                &format!("node.id={node_id} has only the broker role, so it must not be one of the voters"),
            ));
        }
        if self.roles.broker
            && !listeners.is_empty()
            && !listeners.iter().any(|l| l.name == self.inter_broker_listener_name)
        {
            return Err(invalid(
                "inter.broker.listener.name",
                &self.inter_broker_listener_name,
                "must name one of the listeners",
            ));
        }
        if let Some(v) = props.get("listener.security.protocol.map") {
            for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (_, protocol) = pair
                    .split_once(':')
                    .ok_or_else(|| invalid("listener.security.protocol.map", v, "expected NAME:PROTOCOL,..."))?;
                if protocol != "PLAINTEXT" {
                    tracing::warn!(
                        "listener security protocol {protocol} is served as PLAINTEXT (TLS and SASL come later)"
                    );
                }
            }
        }
        Ok(())
    }
}

/// Kafka's two selectors, by class name (the short name too).
fn parse_replica_selector(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().rsplit('.').next().unwrap_or_default() {
        "RackAwareReplicaSelector" => Ok(true),
        "" | "LeaderSelector" => Ok(false),
        _ => Err(invalid(
            key,
            value,
            "Strom has org.apache.kafka.common.replica.RackAwareReplicaSelector and LeaderSelector (the default)",
        )),
    }
}

fn parse_roles(key: &str, value: &str) -> Result<Roles, ConfigError> {
    let mut roles = Roles { broker: false, controller: false };
    for role in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => return Err(invalid(key, value, &format!("unknown role '{other}' (expected broker, controller)"))),
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(key, value, "expected broker, controller or both"));
    }
    Ok(roles)
}

fn parse_voters(key: &str, value: &str) -> Result<Vec<Voter>, ConfigError> {
    let mut voters: Vec<Voter> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || invalid(key, value, &format!("'{item}' is not id@host:port"));
        let (id, endpoint) = item.split_once('@').ok_or_else(bad)?;
        let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let port: u16 = port.trim().parse().map_err(|_| bad())?;
        if id < 0 || port == 0 {
            return Err(bad());
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(invalid(key, value, &format!("voter {id} is listed twice")));
        }
        voters.push(Voter { id, host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port });
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_properties, BrokerConfig};

    fn load(text: &str) -> Result<BrokerConfig, super::ConfigError> {
        BrokerConfig::from_properties(parse_properties(text))
    }

    #[test]
    fn reads_a_three_node_combined_cluster() {
        let c = load(
            "process.roles=broker,controller\nnode.id=2\n\
             controller.quorum.voters=1@localhost:19093,2@localhost:29093,3@localhost:39093\n\
             listeners=PLAINTEXT://:29092,CONTROLLER://:29093\ncontroller.listener.names=CONTROLLER\n\
             broker.rack=r2\nmin.insync.replicas=2\nunclean.leader.election.enable=true\n",
        )
        .expect("valid");
        assert_eq!(c.cluster.voters.len(), 3);
        assert_eq!(c.cluster.voters[1].port, 29093);
        assert_eq!(c.cluster.controller_listener.as_ref().map(|l| l.port), Some(29093));
        assert_eq!(c.listener.port, 29092);
        assert_eq!(c.cluster.rack.as_deref(), Some("r2"));
        assert_eq!(c.cluster.min_insync_replicas, 2);
        assert!(c.cluster.unclean_leader_election_enable && !c.cluster.is_single_node());
        assert!(!c.cluster.rack_aware_replica_selector, "consumers read from leaders by default");
        let selector = "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector";
        assert!(load(selector).expect("rack-aware").cluster.rack_aware_replica_selector);
        assert!(load("replica.selector.class=com.example.Mine").is_err());
    }

    #[test]
    fn a_bare_config_is_a_single_combined_node() {
        let c = load("").expect("valid");
        assert!(c.cluster.is_single_node() && c.cluster.roles.broker && c.cluster.roles.controller);
    }

    #[test]
    fn inconsistent_cluster_settings_are_refused_with_the_key() {
        let voters = "controller.quorum.voters=1@localhost:9093,2@localhost:9094\n";
        let err = |text: &str| load(text).expect_err("invalid").to_string();
        assert!(err(&format!("node.id=5\n{voters}listeners=PLAINTEXT://:9092,CONTROLLER://:9093"))
            .contains("not among the voters"));
        assert!(err(&format!("node.id=1\n{voters}listeners=PLAINTEXT://:9092")).contains("controller.listener.names"));
        assert!(err("controller.quorum.voters=1@localhost").contains("id@host:port"));
        assert!(err("controller.quorum.voters=1@a:1,1@b:2").contains("twice"));
        assert!(err("process.roles=broker,zookeeper").contains("unknown role"));
        assert!(err("process.roles=broker\nlisteners=PLAINTEXT://:9092").contains("voters"));
        assert!(err(&format!(
            "process.roles=broker\nnode.id=4\n{voters}listeners=PLAINTEXT://:9092,CONTROLLER://:9093"
        ))
        .contains("must not list a controller listener"));
        assert!(err(&format!("process.roles=broker\nnode.id=2\n{voters}listeners=PLAINTEXT://:9092"))
            .contains("must not be one of the voters"));
        let observer = load(&format!("process.roles=broker\nnode.id=4\n{voters}listeners=PLAINTEXT://:9092"));
        assert!(!observer.expect("a broker-only node observes the quorum").cluster.roles.controller);
        assert!(err("inter.broker.listener.name=INTERNAL\nlisteners=PLAINTEXT://:9092")
            .contains("inter.broker.listener.name"));
    }

    #[test]
    fn a_controller_only_node_listens_on_its_controller_listener_only() {
        let voters = "controller.quorum.voters=1@localhost:9093,2@localhost:9094\n";
        let c = load(&format!("process.roles=controller\nnode.id=2\n{voters}listeners=CONTROLLER://:9094"))
            .expect("a controller-only node");
        assert!(c.cluster.roles.controller && !c.cluster.roles.broker);
        assert_eq!((c.listener.name.as_str(), c.listener.port), ("CONTROLLER", 9094));
        let err = |text: &str| load(text).expect_err("invalid").to_string();
        assert!(err(&format!(
            "process.roles=controller\nnode.id=2\n{voters}listeners=PLAINTEXT://:9092,CONTROLLER://:9094"
        ))
        .contains("no client listener"));
        assert!(err("process.roles=controller\nlisteners=CONTROLLER://:9093").contains("voters"));
        // As Kafka: the broker role needs its inter-broker (client) listener.
        assert!(err(&format!("process.roles=broker,controller\nnode.id=2\n{voters}listeners=CONTROLLER://:9094"))
            .contains("inter.broker.listener.name"));
    }
}
