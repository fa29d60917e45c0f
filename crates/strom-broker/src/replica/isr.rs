//! Carrying out what partitions' replica states ask for, and the ISR task.
//!
//! `CompleteUpTo` wakes fetches waiting for committed data (waiting `acks=all` produces already
//! woke on the partition's own progress channel); `ProposeIsr` goes to the ISR task, which sends
//! it to the controller as AlterPartition with the partition epoch it is based on. The committed
//! change reaches the partition through the metadata publisher like every other; a refused one
//! clears the pending proposal so that the next event proposes again, and one whose answer is
//! unknown is sent again (see `ReplicaState::isr_answered`). The same task shrinks the
//! ISRs of led partitions every `replica.lag.time.max.ms / 2`, as Kafka's isr-expiration does.

use super::partition::Partition;
use super::state::{IsrAnswer, ReplicaCommand};
use crate::server::{now_ms, Broker};
use std::sync::Arc;
use std::time::Duration;
use strom_metadata::{ControllerOp, IsrChange, OpAnswer};
use strom_protocol::ResponseError;
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
                if let Err(unsent) = broker.isr_proposals.send(proposal) {
                    // The ISR task is gone (shutting down): nothing was sent.
                    let p = unsent.0;
                    p.partition.isr_answered(&p.isr, p.partition_epoch, IsrAnswer::Refused);
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
                let stop = stop.clone();
                tokio::spawn(async move { propose(&b, p, stop).await });
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

/// Sends a proposal until its outcome is known: a lost answer or a missing controller is
/// followed by the same proposal again (the controller answers a change it already committed
/// as done), for as long as the partition still waits for it.
async fn propose(broker: &Broker, p: IsrProposal, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let answer = send_proposal(broker, &p).await;
        if !p.partition.isr_answered(&p.isr, p.partition_epoch, answer) {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn send_proposal(broker: &Broker, p: &IsrProposal) -> IsrAnswer {
    let image = broker.metadata.image();
    let me = broker.config.node_id;
    let Some(registration) = image.brokers.get(&me) else {
        return IsrAnswer::Refused;
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
        Ok(OpAnswer::Partition(after)) => {
            tracing::info!(
                topic = %p.partition.topic, partition = p.partition.index, isr = ?after.isr,
                partition_epoch = after.partition_epoch, "ISR changed"
            );
            IsrAnswer::Accepted
        }
        Ok(other) => {
            tracing::warn!("AlterPartition answered {other:?}");
            IsrAnswer::Unknown
        }
        Err(e) => {
            let answer = answer_of(e.code);
            tracing::info!(
                topic = %p.partition.topic, partition = p.partition.index, isr = ?p.isr, ?answer,
                "ISR change not made: {}", e.message.unwrap_or_else(|| format!("{:?}", e.code))
            );
            answer
        }
    }
}

/// What an AlterPartition error says about the proposal: refusals are certain, anything else
/// (a timeout, no controller, an I/O error) may hide a commit.
fn answer_of(code: ResponseError) -> IsrAnswer {
    match code {
        // A newer partition state is committed (another epoch, or another leader: a reassignment
        // that completed may have moved the leadership): the proposal keeps bounding the HW
        // until that state arrives with the metadata (Kafka keeps it on NEW_LEADER_ELECTED too).
        ResponseError::InvalidUpdateVersion | ResponseError::FencedLeaderEpoch | ResponseError::NotLeaderOrFollower => {
            IsrAnswer::Outdated
        }
        ResponseError::IneligibleReplica
        | ResponseError::StaleBrokerEpoch
        | ResponseError::BrokerIdNotRegistered
        | ResponseError::UnknownTopicOrPartition
        | ResponseError::InvalidRequest => IsrAnswer::Refused,
        _ => IsrAnswer::Unknown,
    }
}
