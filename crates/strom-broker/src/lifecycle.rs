//! This broker's life as the controller sees it: registered (once the quorum has a leader), then
//! a heartbeat every `broker.heartbeat.interval.ms` so that it is not fenced; registered again
//! when the controller no longer knows its epoch (it was unregistered). And, on the active
//! controller only, the periodic check that fences brokers whose heartbeats stopped: after
//! `broker.session.timeout.ms`, or at once when a broker not heard from for 300 ms (or not yet
//! by a new controller) refuses connections on its listener (its process is gone: a crash need
//! not cost a whole session timeout). A broker that is slow, stopped or cut off (a timeout, not a refusal) keeps its full
//! session.

use crate::server::Broker;
use std::sync::Arc;
use std::time::Duration;
use strom_metadata::{ControllerOp, OpAnswer};
use strom_protocol::ResponseError;
use tokio::sync::watch;

/// How often the active controller looks for expired broker sessions.
const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// How often a node looks whether it became the active controller (it checks at once then).
const LEADERSHIP_POLL: Duration = Duration::from_millis(20);
/// A broker not heard from for this long gets its listener probed (every session check, so a
/// few TCP connects per heartbeat interval to a live broker: cheap, and a crash is then found
/// within about half a second whatever `broker.heartbeat.interval.ms` is).
const PROBE_AFTER_SILENCE_MS: i64 = 300;
/// A probe that neither connects nor is refused within this is not evidence of anything.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

pub async fn run(broker: Arc<Broker>, registration: ControllerOp, epoch: Option<i64>, mut stop: watch::Receiver<bool>) {
    let ControllerOp::RegisterBroker { broker_id, .. } = &registration else { return };
    let broker_id = *broker_id;
    let interval = Duration::from_millis(broker.config.cluster.broker_heartbeat_interval_ms);
    let mut epoch = epoch;
    loop {
        let op = match epoch {
            None => registration.clone(),
            Some(broker_epoch) => ControllerOp::BrokerHeartbeat { broker_id, broker_epoch },
        };
        let result = tokio::select! {
            _ = stop.changed() => return,
            r = broker.metadata.write(op) => r,
        };
        match (result, epoch) {
            (Ok(OpAnswer::BrokerEpoch(e)), None) => {
                tracing::info!(broker_epoch = e, "registered with the controller");
                epoch = Some(e);
            }
            (Ok(_), _) => {}
            (Err(e), Some(_))
                if matches!(e.code, ResponseError::StaleBrokerEpoch | ResponseError::BrokerIdNotRegistered) =>
            {
                tracing::warn!("the controller no longer knows this broker's epoch; registering again");
                epoch = None;
                continue;
            }
            (Err(e), _) => tracing::warn!("heartbeat to the controller failed: {}", e.message.unwrap_or_default()),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// On the active controller, fences brokers not heard from for `broker.session.timeout.ms`.
pub async fn expire_sessions(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut last_check = tokio::time::Instant::now();
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(LEADERSHIP_POLL) => {}
        }
        // A controller acts once its term has committed (write_here refuses until then).
        let status = broker.metadata.quorum_status();
        let is_leader = status.is_leader && status.committed_in_current_term;
        let became_leader = is_leader && !was_leader;
        was_leader = is_leader;
        if is_leader && (became_leader || last_check.elapsed() >= SESSION_CHECK_INTERVAL) {
            last_check = tokio::time::Instant::now();
            // Probes first: a new controller has heard from no broker yet, and finds one that
            // died with the old controller at its first check, right after its election.
            // All probed at once: one unreachable broker (a timeout) must not delay the others.
            let mut probes = tokio::task::JoinSet::new();
            for (id, endpoints) in broker.metadata.silent_brokers(PROBE_AFTER_SILENCE_MS).await {
                probes.spawn(async move { (id, process_is_gone(&endpoints).await) });
            }
            while let Some(probe) = probes.join_next().await {
                if let Ok((id, true)) = probe {
                    tracing::warn!(broker_id = id, "broker refuses connections (its process is gone): fencing it now");
                    let _ = broker.metadata.write_here(ControllerOp::FenceBroker { broker_id: id }).await;
                }
            }
            let _ = broker.metadata.write_here(ControllerOp::ExpireBrokerSessions).await;
        }
    }
}

/// On the active controller, `auto.leader.rebalance.enable`: every
/// `leader.imbalance.check.interval.seconds`, partitions go back to their preferred leaders where
/// a broker's imbalance passes `leader.imbalance.per.broker.percentage`.
pub async fn rebalance_leaders(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let cluster = &broker.config.cluster;
    if !cluster.auto_leader_rebalance_enable {
        return;
    }
    let every = Duration::from_secs(cluster.leader_imbalance_check_interval_seconds);
    let op = ControllerOp::RebalanceLeaders { imbalance_percentage: cluster.leader_imbalance_per_broker_percentage };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let status = broker.metadata.quorum_status();
        if !(status.is_leader && status.committed_in_current_term) {
            continue;
        }
        if let Ok((strom_metadata::OpAnswer::Elections(done), _)) = broker.metadata.write_here(op.clone()).await {
            let moved: Vec<String> = done
                .iter()
                .filter(|(_, _, o)| *o == strom_metadata::election::ElectionOutcome::Elected)
                .map(|(t, p, _)| format!("{t}-{p}"))
                .collect();
            if !moved.is_empty() {
                tracing::info!(partitions = ?moved, "auto leader rebalance: preferred replicas lead again");
            }
        }
    }
}

/// True only when every endpoint actively refuses connections (nothing listens there any more).
async fn process_is_gone(endpoints: &[strom_metadata::BrokerEndpoint]) -> bool {
    if endpoints.is_empty() {
        return false;
    }
    for e in endpoints {
        let attempt =
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((e.host.as_str(), e.port))).await;
        match attempt {
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {}
            _ => return false,
        }
    }
    true
}
