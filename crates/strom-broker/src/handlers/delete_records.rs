//! DeleteRecords: advance a partition's log start offset (offset -1 means the high watermark).
//! Offsets above the high watermark get OFFSET_OUT_OF_RANGE, as in Kafka.

use crate::dispatch::RequestContext;
use crate::errors::KafkaError;
use crate::server::Broker;
use strom_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use strom_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use strom_protocol::ResponseError;

pub async fn handle(broker: &Broker, _ctx: &RequestContext, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            let checked: Result<_, KafkaError> = (|| {
                let partition = super::cluster_view::led_partition(broker, &name, p.partition_index)?;
                let (_, hw) = partition.offsets()?;
                let target = if p.offset == -1 { hw } else { p.offset };
                if target < 0 || target > hw {
                    return Err(ResponseError::OffsetOutOfRange.into());
                }
                Ok((partition, target))
            })();
            // Deleting segments and rewriting the leader-epoch checkpoint wait on the disk: on a
            // blocking thread.
            let result = match checked {
                Ok((partition, target)) => tokio::task::spawn_blocking(move || partition.delete_records_before(target))
                    .await
                    .map_err(|e| KafkaError::new(ResponseError::UnknownServerError, e.to_string()))
                    .and_then(|r| r.map_err(KafkaError::from)),
                Err(e) => Err(e),
            };
            match result {
                Ok(low) => pr.low_watermark = low,
                Err(e) => pr.error_code = e.code(),
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
