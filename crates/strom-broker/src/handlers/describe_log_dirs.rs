//! DescribeLogDirs (kafka-log-dirs, `strom log-dirs --describe`): each log directory of this
//! broker with the size of every partition in it and the directory's total and usable bytes
//! (v4, KIP-827). An offline directory answers KAFKA_STORAGE_ERROR with no partitions and
//! unknown sizes (-1), as Kafka's does. Partitions are those of the request's topics, or all.

use crate::dispatch::RequestContext;
use crate::server::Broker;
use std::collections::BTreeMap;
use strom_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use strom_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use strom_protocol::ResponseError;
use strom_protocol::StrBytes;

/// (total, usable) bytes of the filesystem holding `path`; -1 each when unknown.
fn volume_bytes(path: &std::path::Path) -> (i64, i64) {
    match rustix::fs::statvfs(path) {
        Ok(s) => {
            let block = s.f_frsize as i64;
            (s.f_blocks as i64 * block, s.f_bavail as i64 * block)
        }
        Err(_) => (-1, -1),
    }
}

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<String, Vec<i32>>> =
        req.topics.map(|ts| ts.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let partitions = broker.replicas.all();
    let dirs = broker.replicas.log_dirs();
    let v = ctx.api_version;
    let results = tokio::task::spawn_blocking(move || {
        dirs.iter()
            .map(|dir| {
                let mut r = DescribeLogDirsResult::default();
                r.log_dir = StrBytes::from_string(dir.path.display().to_string());
                r.total_bytes = -1;
                r.usable_bytes = -1;
                if dir.is_offline() {
                    r.error_code = ResponseError::KafkaStorageError.code();
                    return r;
                }
                if v >= 4 {
                    (r.total_bytes, r.usable_bytes) = volume_bytes(&dir.path);
                }
                let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
                for p in partitions.iter().filter(|p| std::sync::Arc::ptr_eq(p.log_dir(), dir)) {
                    let asked = wanted.as_ref().is_none_or(|w| w.get(&p.topic).is_some_and(|ps| ps.contains(&p.index)));
                    let Ok(size) = p.size_bytes() else { continue };
                    if asked {
                        let mut d = DescribeLogDirsPartition::default();
                        d.partition_index = p.index;
                        d.partition_size = size as i64;
                        // Kafka's lag of a current (not future) replica: its HW past its log end.
                        d.offset_lag = 0;
                        topics.entry(p.topic.clone()).or_default().push(d);
                    }
                }
                r.topics = topics
                    .into_iter()
                    .map(|(name, mut partitions)| {
                        partitions.sort_by_key(|p| p.partition_index);
                        let mut t = DescribeLogDirsTopic::default();
                        t.name = TopicName(StrBytes::from_string(name));
                        t.partitions = partitions;
                        t
                    })
                    .collect();
                r
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = results;
    resp
}
