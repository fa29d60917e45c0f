//! The metadata publisher: the one place where committed metadata records change this node.
//! Batches arrive in log order; each is applied to a copy of the image, the hosted partitions
//! are brought in line with it (on a blocking thread: logs are opened and deleted), and only then
//! is the new image installed, so the image never names a partition this node has not opened.
//! The same pass makes partitions lead or follow and gives the replica fetchers their work, on a
//! cluster node only from the batch holding this process's own registration on (before it, the
//! node's image may be stale: see `ReplicaManager::roles_active`).

use super::CommittedRecords;
use crate::server::Broker;
use std::sync::Arc;
use strom_metadata::{MetadataImage, MetadataRecord};
use tokio::sync::{mpsc, watch};

pub async fn run(
    broker: Arc<Broker>,
    mut committed: mpsc::UnboundedReceiver<CommittedRecords>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let batch = tokio::select! {
            _ = stop.changed() => return,
            batch = committed.recv() => match batch {
                Some(b) => b,
                None => return,
            },
        };
        publish(&broker, batch).await;
    }
}

async fn publish(broker: &Arc<Broker>, batch: CommittedRecords) {
    let current = broker.metadata.image();
    let mut next = match &batch.snapshot {
        Some(snapshot) => {
            tracing::info!(offset = batch.offset, "metadata image replaced by a snapshot from the quorum");
            (**snapshot).clone()
        }
        None => (*current).clone(),
    };
    for record in &batch.records {
        describe(&next, record);
        next.apply(record);
    }
    assert!(batch.offset > current.offset, "committed metadata arrives in log order");
    let own_registration = batch.records.iter().any(|r| {
        matches!(r, MetadataRecord::RegisterBroker { broker_id, incarnation_id, .. }
            if *broker_id == broker.config.node_id && *incarnation_id == broker.incarnation_id)
    }) || (batch.snapshot.is_some()
        && next.brokers.get(&broker.config.node_id).is_some_and(|b| b.incarnation_id == broker.incarnation_id));
    next.offset = batch.offset;
    // Dynamic broker configs first: the reconcile below gives every log the defaults in force.
    broker.dynamic.apply(&next);
    let next = Arc::new(next);
    let (b, image) = (Arc::clone(broker), Arc::clone(&next));
    let reconcile = move || {
        if own_registration {
            // Everything committed before this process registered is applied with this batch.
            b.replicas.activate_roles(&image);
        }
        b.replicas.reconcile(&image)
    };
    match tokio::task::spawn_blocking(reconcile).await {
        Ok(Ok(reconciled)) => {
            for (partition, commands) in reconciled.commands {
                crate::replica::isr::apply(broker, &partition, commands);
            }
            broker.fetchers.update(broker, reconciled.following);
            let txn_moved: Vec<_> = reconciled
                .role_changes
                .iter()
                .filter(|(p, _)| p.topic == crate::txn::store::TXN_TOPIC)
                .map(|(p, change)| (p.index, *change))
                .collect();
            if !txn_moved.is_empty() {
                broker.txns.leadership_moved(broker, &txn_moved);
            }
            let moved: Vec<_> = reconciled
                .role_changes
                .into_iter()
                .filter(|(p, _)| p.topic == crate::group::store::OFFSETS_TOPIC)
                .map(|(p, change)| (p.index, change))
                .collect();
            if !moved.is_empty() {
                let b = Arc::clone(broker);
                let _ = tokio::task::spawn_blocking(move || b.groups.leadership_moved(&b, &moved)).await;
            }
        }
        Ok(Err(e)) => tracing::error!("applying metadata to local partitions failed: {e}"),
        Err(e) => tracing::error!("applying metadata to local partitions panicked: {e}"),
    }
    broker.metadata.publish(next);
}

/// One log line per change an operator cares about.
fn describe(before: &MetadataImage, record: &MetadataRecord) {
    match record {
        MetadataRecord::Topic { name, topic_id } => tracing::info!(topic = %name, %topic_id, "created topic"),
        MetadataRecord::RemoveTopic { topic_id } => {
            if let Some(t) = before.topic_by_id(topic_id) {
                tracing::info!(topic = %t.name, "deleted topic");
            }
        }
        MetadataRecord::Partition { topic_id, partition, .. } => {
            let existing = before.topic_by_id(topic_id);
            if existing.is_some_and(|t| !t.partitions.is_empty() && !t.partitions.contains_key(partition)) {
                tracing::info!(topic = %existing.map(|t| t.name.as_str()).unwrap_or_default(), partition, "added partition");
            }
        }
        MetadataRecord::Config { topic, key, value } => {
            tracing::info!(topic = %topic, key = %key, value = ?value, "topic config changed")
        }
        // Logged by DynamicConfig::apply when the config in force changes.
        MetadataRecord::BrokerConfig { broker_id, key, .. } => {
            tracing::debug!(?broker_id, key = %key, "dynamic broker config record")
        }
        MetadataRecord::ProducerIds { next_producer_id } => {
            tracing::debug!(next_producer_id, "reserved a block of producer ids")
        }
        MetadataRecord::RegisterBroker { broker_id, broker_epoch, endpoints, rack, .. } => {
            let listeners: Vec<String> =
                endpoints.iter().map(|e| format!("{}://{}:{}", e.name, e.host, e.port)).collect();
            tracing::info!(broker_id, broker_epoch, ?listeners, ?rack, "broker registered")
        }
        MetadataRecord::BrokerRegistrationChange { broker_id, broker_epoch, fenced } => {
            tracing::info!(broker_id, broker_epoch, fenced, "broker registration changed")
        }
        MetadataRecord::ReplicasOffline { broker_id, partitions, .. } => {
            tracing::warn!(broker_id, partitions = partitions.len(), "replicas offline: their log directory failed")
        }
        MetadataRecord::UnregisterBroker { broker_id, .. } => tracing::info!(broker_id, "broker unregistered"),
    }
}
