//! ElectLeaders (KIP-460): what `kafka-leader-election` sends, to the active controller.

use super::Admin;
use crate::error::{ClientError, Result};
use strom_protocol::messages::elect_leaders_request::TopicPartitions;
use strom_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use strom_protocol::StrBytes;

/// One partition's outcome: 0 for an election done, else Kafka's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub message: Option<String>,
}

impl Admin {
    /// Preferred (`unclean: false`) or unclean election on `partitions` (None: every partition;
    /// then only the partitions where an election was needed are answered).
    pub async fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<ElectionResult>> {
        let mut req = ElectLeadersRequest::default();
        req.election_type = i8::from(unclean);
        req.timeout_ms = 60_000;
        req.topic_partitions = partitions.map(|ps| {
            let mut topics: Vec<TopicPartitions> = Vec::new();
            for (topic, p) in ps {
                match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                    Some(t) => t.partitions.push(*p),
                    None => {
                        let mut t = TopicPartitions::default();
                        t.topic = TopicName(StrBytes::from_string(topic.clone()));
                        t.partitions = vec![*p];
                        topics.push(t);
                    }
                }
            }
            topics
        });
        let resp: ElectLeadersResponse = self.send_to_controller(ApiKey::ElectLeaders, &req).await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(resp.error_code, None));
        }
        Ok(resp
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| ElectionResult {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    error_code: p.error_code,
                    message: p.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect())
    }
}
