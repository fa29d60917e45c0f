//! Broker registration and sessions, as KRaft's controller keeps them: a broker announces its id,
//! its incarnation (a fresh id per process start), its listeners and rack, and gets a broker
//! epoch that grows with every registration and fences requests of an older incarnation. It then
//! heartbeats; a broker not heard from for `broker.session.timeout.ms` is fenced, and the
//! partitions it led get a new leader from their live ISR (or none: offline) with a new leader
//! epoch. Sessions live in the active controller's memory only: a new controller gives every
//! broker a fresh session, as Kafka's does.

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
        // A broker coming back takes up the leadership of partitions left without a leader.
        let mut records = vec![record];
        records.extend(self.partition_changes_after(image, &records));
        Ok(Proposal::new(records, broker_epoch))
    }

    /// A heartbeat of `broker_id` at `broker_epoch`; refreshes its session.
    pub fn broker_heartbeat(
        &mut self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
        now_ms: i64,
    ) -> Result<Proposal<()>, MetadataError> {
        let b = image.brokers.get(&broker_id).ok_or(MetadataError::BrokerNotRegistered(broker_id))?;
        if b.epoch != broker_epoch {
            return Err(MetadataError::StaleBrokerEpoch { broker_id, expected: b.epoch, got: broker_epoch });
        }
        self.sessions.insert(broker_id, now_ms);
        if b.fenced {
            // A fenced broker that heartbeats again is unfenced and may lead again.
            let mut records = vec![MetadataRecord::BrokerRegistrationChange { broker_id, broker_epoch, fenced: false }];
            records.extend(self.partition_changes_after(image, &records));
            return Ok(Proposal::new(records, ()));
        }
        Ok(Proposal::new(Vec::new(), ()))
    }

    /// Fences every unfenced broker whose session expired, and moves its leaderships.
    pub fn expire_sessions(&mut self, image: &MetadataImage, now_ms: i64) -> Proposal<()> {
        let timeout = self.settings.broker_session_timeout_ms;
        let mut records = Vec::new();
        // The controller's own broker is alive if this runs; a sole node never fences itself.
        for b in image.brokers.values().filter(|b| !b.fenced && b.id != self.settings.node_id) {
            // A broker this controller has not heard from yet gets a full session from now.
            let last = *self.sessions.entry(b.id).or_insert(now_ms);
            if now_ms - last > timeout {
                records.push(MetadataRecord::BrokerRegistrationChange {
                    broker_id: b.id,
                    broker_epoch: b.epoch,
                    fenced: true,
                });
            }
        }
        if !records.is_empty() {
            let elections = self.partition_changes_after(image, &records);
            records.extend(elections);
        }
        Proposal::new(records, ())
    }

    /// Unfenced brokers (not this controller's own) not heard from for more than `silence_ms`:
    /// worth checking whether their process is still there. Each with its client endpoints.
    pub fn silent_brokers(
        &self,
        image: &MetadataImage,
        now_ms: i64,
        silence_ms: i64,
    ) -> Vec<(i32, Vec<BrokerEndpoint>)> {
        image
            .brokers
            .values()
            .filter(|b| !b.fenced && b.id != self.settings.node_id)
            // A broker this controller has not heard from yet counts as silent: a new controller
            // probes every broker once, and finds at once one that died with the old controller.
            .filter(|b| self.sessions.get(&b.id).is_none_or(|last| now_ms - last > silence_ms))
            .map(|b| (b.id, b.endpoints.clone()))
            .collect()
    }

    /// Fences a broker at once (its controlled shutdown, or its process seen gone).
    pub fn fence_broker(&mut self, image: &MetadataImage, broker_id: i32) -> Result<Proposal<()>, MetadataError> {
        let b = image.brokers.get(&broker_id).ok_or(MetadataError::BrokerNotRegistered(broker_id))?;
        if b.fenced {
            return Ok(Proposal::new(Vec::new(), ()));
        }
        let mut records =
            vec![MetadataRecord::BrokerRegistrationChange { broker_id, broker_epoch: b.epoch, fenced: true }];
        records.extend(self.partition_changes_after(image, &records));
        self.sessions.remove(&broker_id);
        Ok(Proposal::new(records, ()))
    }

    /// A broker's replicas of `partitions` are in a log directory that failed: they leave the
    /// ISR and their leaderships move (KIP-858's reaction to offline log directories).
    pub fn replicas_offline(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
        partitions: Vec<(Uuid, i32)>,
    ) -> Result<Proposal<()>, MetadataError> {
        let b = image.brokers.get(&broker_id).ok_or(MetadataError::BrokerNotRegistered(broker_id))?;
        if b.epoch != broker_epoch {
            return Err(MetadataError::StaleBrokerEpoch { broker_id, expected: b.epoch, got: broker_epoch });
        }
        let partitions: Vec<(Uuid, i32)> = partitions.into_iter().filter(|p| !b.offline_replicas.contains(p)).collect();
        if partitions.is_empty() {
            return Ok(Proposal::new(Vec::new(), ()));
        }
        let mut records = vec![MetadataRecord::ReplicasOffline { broker_id, broker_epoch, partitions }];
        records.extend(self.partition_changes_after(image, &records));
        Ok(Proposal::new(records, ()))
    }

    /// Removes a broker's registration (Kafka's UnregisterBroker).
    pub fn unregister_broker(&self, image: &MetadataImage, broker_id: i32) -> Result<Proposal<()>, MetadataError> {
        let b = image.brokers.get(&broker_id).ok_or(MetadataError::BrokerNotRegistered(broker_id))?;
        let mut records = vec![MetadataRecord::UnregisterBroker { broker_id, broker_epoch: b.epoch }];
        records.extend(self.partition_changes_after(image, &records));
        Ok(Proposal::new(records, ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{ControllerSettings, CreateTopicSpec};

    fn settings() -> ControllerSettings {
        ControllerSettings::for_tests(3, 1, false)
    }

    fn commit<T>(image: &mut MetadataImage, p: Proposal<T>) -> T {
        p.records.iter().for_each(|r| image.apply(r));
        image.offset += 1;
        p.value
    }

    fn endpoint(port: u16) -> Vec<BrokerEndpoint> {
        vec![BrokerEndpoint { name: "PLAINTEXT".into(), host: "localhost".into(), port }]
    }

    #[test]
    fn a_silent_broker_is_fenced_its_partitions_go_offline_and_come_back_with_it() {
        let mut c = Controller::new(settings());
        let mut image = MetadataImage::default();
        let mut epochs = Vec::new();
        for id in 1..=3 {
            let p = c.register_broker(&image, id, Uuid::new_v4(), endpoint(9090 + id as u16), None).expect("register");
            epochs.push(commit(&mut image, p));
        }
        assert!(epochs.windows(2).all(|w| w[0] < w[1]), "epochs grow: {epochs:?}");
        let spec = CreateTopicSpec { name: "t".into(), num_partitions: 3, replication_factor: 1, ..Default::default() };
        {
            let p = c.create_topic(&image, spec, false).expect("create");
            commit(&mut image, p)
        };
        let led_by_2 = |image: &MetadataImage| {
            image.topic("t").expect("t").partitions.values().find(|p| p.replicas == [2]).cloned().expect("p")
        };
        let before = led_by_2(&image);
        assert_eq!(before.leader, 2);

        // Brokers 1 and 3 heartbeat; 2 falls silent.
        for now in [1_000, 5_000, 9_500] {
            for id in [1, 3] {
                {
                    let p = c.broker_heartbeat(&image, id, epochs[id as usize - 1], now).expect("heartbeat");
                    commit(&mut image, p)
                };
            }
            {
                let p = c.expire_sessions(&image, now);
                commit(&mut image, p)
            };
        }
        assert!(!image.brokers[&2].fenced, "within its session");
        {
            let p = c.expire_sessions(&image, 9_001 + 1_000);
            commit(&mut image, p)
        };
        assert!(image.brokers[&2].fenced, "fenced after broker.session.timeout.ms");
        let offline = led_by_2(&image);
        assert_eq!(offline.leader, -1, "no live ISR member: offline");
        assert_eq!(offline.leader_epoch, before.leader_epoch + 1);
        assert!(matches!(
            c.broker_heartbeat(&image, 2, epochs[1] - 1, 11_000),
            Err(MetadataError::StaleBrokerEpoch { .. })
        ));

        // Broker 2 restarts: a new incarnation and epoch, and its partition is led again.
        let p = c.register_broker(&image, 2, Uuid::new_v4(), endpoint(9092), None).expect("re-register");
        let new_epoch = commit(&mut image, p);
        assert!(new_epoch > epochs[1]);
        let back = led_by_2(&image);
        assert_eq!((back.leader, back.leader_epoch), (2, before.leader_epoch + 2));
    }
}
