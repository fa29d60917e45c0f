//! Sending a transaction's markers to the leaders of its partitions (Kafka's
//! `TransactionMarkerChannelManager`): one WriteTxnMarkers per leader, this broker's own
//! partitions written in place. Retriable answers (a moved leader, too few replicas, a timeout,
//! a storage error) are tried again with fresh metadata until every partition has its marker;
//! INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED give the transaction up (a newer
//! producer or coordinator owns it); a partition that no longer exists counts as done.

use super::coordinator::{Markers, MarkersOutcome};
use super::store::TXN_TOPIC;
use crate::server::Broker;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use strom_client::conn::BrokerConnection;
use strom_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use strom_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strom_protocol::{ResponseError, StrBytes};

/// Delivers `m`; `None` when this broker stopped coordinating the transaction meanwhile (the new
/// coordinator sends the markers again).
pub async fn deliver(broker: &Broker, m: &Markers) -> Option<MarkersOutcome> {
    let mut remaining: BTreeSet<(String, i32)> = m.partitions.clone();
    loop {
        let still_coordinator = broker
            .replicas
            .get(TXN_TOPIC, m.log_partition)
            .is_some_and(|p| p.is_leader() && p.leader_epoch() == m.coordinator_epoch);
        if !still_coordinator {
            return None;
        }
        let image = broker.metadata.image();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        remaining.retain(|(topic, p)| match image.topic(topic).and_then(|t| t.partitions.get(p)) {
            Some(part) => {
                by_leader.entry(part.leader).or_default().push((topic.clone(), *p));
                true
            }
            None => false,
        });
        if remaining.is_empty() {
            return Some(MarkersOutcome::Written);
        }
        for (leader, partitions) in by_leader {
            if leader < 0 {
                continue;
            }
            let req = request(m, &partitions);
            let answer = if leader == broker.config.node_id {
                Ok(crate::handlers::write_txn_markers::apply(broker, req).await)
            } else {
                send(broker, leader, &req).await
            };
            let Ok(resp) = answer else { continue };
            for topic in resp.markers.iter().flat_map(|r| r.topics.iter()) {
                for p in &topic.partitions {
                    let tp = (topic.name.0.to_string(), p.partition_index);
                    match ResponseError::try_from_code(p.error_code) {
                        None if p.error_code == 0 => {
                            remaining.remove(&tp);
                        }
                        Some(ResponseError::InvalidProducerEpoch | ResponseError::TransactionCoordinatorFenced) => {
                            tracing::warn!(transactional_id = %m.transactional_id, topic = %tp.0, partition = tp.1,
                                "a newer producer or coordinator owns the transaction: its markers are given up");
                            return Some(MarkersOutcome::Abandoned);
                        }
                        _ => {
                            tracing::debug!(topic = %tp.0, partition = tp.1, code = p.error_code, "marker will be retried")
                        }
                    }
                }
            }
        }
        if remaining.is_empty() {
            return Some(MarkersOutcome::Written);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn request(m: &Markers, partitions: &[(String, i32)]) -> WriteTxnMarkersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        topics.entry(t.as_str()).or_default().push(*p);
    }
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(m.producer_id);
    marker.producer_epoch = m.producer_epoch;
    marker.transaction_result = m.commit;
    marker.coordinator_epoch = m.coordinator_epoch;
    marker.topics = topics
        .into_iter()
        .map(|(name, ids)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            t.partition_indexes = ids;
            t
        })
        .collect();
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![marker];
    req
}

async fn send(broker: &Broker, leader: i32, req: &WriteTxnMarkersRequest) -> Result<WriteTxnMarkersResponse, String> {
    let addr = crate::replica::fetcher::peer_address(broker, leader)?;
    let client_id = format!("broker-{}-txn-marker-sender", broker.config.node_id);
    let conn =
        BrokerConnection::connect(&addr, &client_id, Duration::from_secs(35)).await.map_err(|e| e.to_string())?;
    let (_, resp) = conn.send(ApiKey::WriteTxnMarkers, req).await.map_err(|e| e.to_string())?;
    Ok(resp)
}
