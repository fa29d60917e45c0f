//! OffsetCommit: group members commit with their generation; standalone consumers (generation
//! -1, no member id) commit "simple" offsets. Each commit is a record in `__consumer_offsets`,
//! acknowledged once the partition's ISR has it (Kafka's offsets.commit.required.acks=-1).

use crate::dispatch::RequestContext;
use crate::group::{CommitIdentity, OffsetToCommit};
use crate::server::{now_ms, Broker};
use strom_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use strom_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

/// Kafka's offsets.commit.timeout.ms default.
const COMMIT_TIMEOUT_MS: u64 = 5_000;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let identity = CommitIdentity {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: if ctx.api_version >= 7 {
            req.group_instance_id.as_ref().map(|s| s.to_string())
        } else {
            None
        },
    };
    let now = now_ms();
    let offsets: Vec<OffsetToCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| OffsetToCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.api_version >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    let (mut codes, staged) = broker.groups.commit_offsets(broker, &identity, &offsets, now);
    if let Some(staged) = staged {
        // Answered, and visible to OffsetFetch, once the ISR has the commit, so that a new
        // coordinator finds it.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(COMMIT_TIMEOUT_MS);
        let replicated = staged.appended.replicated(deadline).await;
        broker.groups.commit_replicated(staged, replicated.is_ok());
        if let Err(e) = replicated {
            codes.iter_mut().filter(|c| **c == 0).for_each(|c| *c = e.code());
        }
    }
    let mut codes = codes.into_iter();
    let mut resp = OffsetCommitResponse::default();
    for t in req.topics {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = t.name;
        for p in t.partitions {
            let mut part = OffsetCommitResponsePartition::default();
            part.partition_index = p.partition_index;
            part.error_code = codes.next().unwrap_or_default();
            topic.partitions.push(part);
        }
        resp.topics.push(topic);
    }
    resp
}
