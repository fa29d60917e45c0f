//! DescribeLogDirs: each broker's log directories with the size of every replica in them (what
//! `kafka-log-dirs --describe` shows). Asked of each broker itself, as Java's admin client does.

use super::Admin;
use crate::error::{ClientError, Result};
use strom_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};

/// One replica in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub topic: String,
    pub partition: i32,
    pub size: i64,
    pub offset_lag: i64,
    pub is_future: bool,
}

/// One log directory of a broker; `error_code` is KAFKA_STORAGE_ERROR (56) for an offline one.
#[derive(Debug, Clone)]
pub struct LogDirDescription {
    pub path: String,
    pub error_code: i16,
    pub replicas: Vec<ReplicaInfo>,
    /// -1 when the broker does not say (DescribeLogDirs before v4).
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

impl Admin {
    /// The log directories of broker `broker_id`, with every replica in them.
    pub async fn describe_log_dirs(&self, broker_id: i32) -> Result<Vec<LogDirDescription>> {
        let mut req = DescribeLogDirsRequest::default();
        // Null asks for every topic (an empty list would ask for none).
        req.topics = None;
        let (_, resp): (i16, DescribeLogDirsResponse) =
            self.cluster().send_to(broker_id, ApiKey::DescribeLogDirs, &req).await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(resp.error_code, None));
        }
        Ok(resp
            .results
            .into_iter()
            .map(|r| LogDirDescription {
                path: r.log_dir.to_string(),
                error_code: r.error_code,
                replicas: r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| ReplicaInfo {
                            topic: t.name.0.to_string(),
                            partition: p.partition_index,
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect(),
                total_bytes: r.total_bytes,
                usable_bytes: r.usable_bytes,
            })
            .collect())
    }
}
