//! Broker registration, as KRaft's controller does it (BrokerRegistration): a broker announces
//! its id, its incarnation (a fresh id per process start), its listeners and rack; the
//! controller answers with the broker epoch, which grows with every registration and fences
//! requests of an older incarnation.

use crate::controller::{Controller, Proposal};
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::{BrokerEndpoint, MetadataRecord};
use uuid::Uuid;

impl Controller {
    /// Registers (or re-registers) a broker. A retry of the same incarnation proposes nothing and
    /// gets the same epoch back.
    pub fn register_broker(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    ) -> Result<Proposal<i64>, MetadataError> {
        if broker_id < 0 {
            return Err(MetadataError::InvalidRequest(format!("broker id {broker_id} is negative")));
        }
        if endpoints.is_empty() {
            return Err(MetadataError::InvalidRequest(format!("broker {broker_id} registered without listeners")));
        }
        let previous = image.brokers.get(&broker_id);
        if let Some(b) = previous.filter(|b| b.incarnation_id == incarnation_id) {
            return Ok(Proposal::new(Vec::new(), b.epoch));
        }
        // Epochs grow with the metadata log, so every registration's epoch is larger than any
        // earlier one of the same broker.
        let broker_epoch = (image.offset as i64 + 1).max(previous.map_or(0, |b| b.epoch + 1));
        let record =
            MetadataRecord::RegisterBroker { broker_id, incarnation_id, broker_epoch, endpoints, rack, fenced: false };
        Ok(Proposal::new(vec![record], broker_epoch))
    }

    /// Removes a broker's registration (Kafka's UnregisterBroker).
    pub fn unregister_broker(&self, image: &MetadataImage, broker_id: i32) -> Result<Proposal<()>, MetadataError> {
        let b = image.brokers.get(&broker_id).ok_or(MetadataError::BrokerNotRegistered(broker_id))?;
        Ok(Proposal::new(vec![MetadataRecord::UnregisterBroker { broker_id, broker_epoch: b.epoch }], ()))
    }
}
