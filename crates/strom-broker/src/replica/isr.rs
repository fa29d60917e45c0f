//! Carrying out what partitions' replica states ask for, and the ISR task.
//!
//! `CompleteUpTo` wakes fetches waiting for committed data (waiting `acks=all` produces already
//! woke on the partition's own progress channel); `ProposeIsr` goes to the ISR task, which sends
//! it to the controller as AlterPartition with the partition epoch it is based on. The committed
//! change reaches the partition through the metadata publisher like every other; a refused one
//! clears the pending proposal so that the next event proposes again. The same task shrinks the
//! ISRs of led partitions every `replica.lag.time.max.ms / 2`, as Kafka's isr-expiration does.

use super::partition::Partition;
use super::state::ReplicaCommand;
use crate::server::{now_ms, Broker};
use std::sync::Arc;
use std::time::Duration;
use strom_metadata::{ControllerOp, IsrChange, OpAnswer};
use tokio::sync::{mpsc, watch};

/// An ISR change a leader wants: the partition, the ISR, the partition epoch it is based on.
pub struct IsrProposal {
    pub partition: Arc<Partition>,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

pub type IsrProposals = mpsc::UnboundedSender<IsrProposal>;

/// Carries out `commands` of `partition`.
pub fn apply(broker: &Broker, partition: &Arc<Partition>, commands: Vec<ReplicaCommand>) {
    for command in commands {
        match command {
            ReplicaCommand::CompleteUpTo { .. } => broker.fetch_purgatory.notify_append(),
            ReplicaCommand::ProposeIsr { isr, partition_epoch } => {
                let proposal = IsrProposal { partition: Arc::clone(partition), isr, partition_epoch };
                if broker.isr_proposals.send(proposal).is_err() {
                    partition.isr_rejected();
                }
            }
        }
    }
}

/// The ISR task: sends proposals to the controller and expires lagging ISR members.
pub async fn run(
    broker: Arc<Broker>,
    mut proposals: mpsc::UnboundedReceiver<IsrProposal>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_millis((broker.config.cluster.replica_lag_time_max_ms / 2).clamp(50, 5_000));
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            Some(p) = proposals.recv() => {
                let b = Arc::clone(&broker);
                tokio::spawn(async move { propose(&b, p).await });
            }
            _ = ticks.tick() => {
                let now = now_ms();
                for p in broker.replicas.all() {
                    let commands = p.tick(now);
                    apply(&broker, &p, commands);
                }
            }
        }
    }
}

async fn propose(broker: &Broker, p: IsrProposal) {
    let image = broker.metadata.image();
    let me = broker.config.node_id;
    let Some(registration) = image.brokers.get(&me) else {
        p.partition.isr_rejected();
        return;
    };
    let change = IsrChange {
        broker_id: me,
        broker_epoch: registration.epoch,
        topic_id: p.partition.topic_id,
        partition: p.partition.index,
        leader_epoch: p.partition.leader_epoch(),
        partition_epoch: p.partition_epoch,
        isr: p.isr.clone(),
    };
    match broker.metadata.write(ControllerOp::AlterPartition { change }).await {
        Ok(OpAnswer::Partition(after)) => tracing::info!(
            topic = %p.partition.topic, partition = p.partition.index, isr = ?after.isr,
            partition_epoch = after.partition_epoch, "ISR changed"
        ),
        Ok(other) => {
            tracing::warn!("AlterPartition answered {other:?}");
            p.partition.isr_rejected();
        }
        Err(e) => {
            tracing::info!(
                topic = %p.partition.topic, partition = p.partition.index, isr = ?p.isr,
                "ISR change refused: {}", e.message.unwrap_or_else(|| format!("{:?}", e.code))
            );
            p.partition.isr_rejected();
        }
    }
}
