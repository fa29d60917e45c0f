//! Dynamic broker configs (KIP-226): the broker config in force is the static one
//! (server.properties and `--override`s) with the cluster-wide dynamic defaults on top and this
//! broker's own dynamic configs on top of those, Kafka's precedence. The dynamic layers are
//! metadata records; the publisher hands each new image here, and the parts of the broker that
//! read a dynamic key take it from [`DynamicConfig::current`] at the moment they use it.

use super::BrokerConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use strom_metadata::MetadataImage;

/// Kafka's ConfigSource codes for broker configs.
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// The dynamic layers last applied and the config they make.
#[derive(Clone)]
struct Layers {
    cluster: BTreeMap<String, String>,
    broker: BTreeMap<String, String>,
    current: Arc<BrokerConfig>,
}

pub struct DynamicConfig {
    static_config: Arc<BrokerConfig>,
    layers: RwLock<Layers>,
}

/// The properties in force: static ones, then the cluster-wide default, then this broker's.
fn merged(
    static_props: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut props = static_props.clone();
    props.extend(cluster.iter().chain(broker).map(|(k, v)| (k.clone(), v.clone())));
    props
}

impl DynamicConfig {
    pub fn new(static_config: Arc<BrokerConfig>) -> DynamicConfig {
        let current = Arc::clone(&static_config);
        DynamicConfig {
            static_config,
            layers: RwLock::new(Layers { cluster: BTreeMap::new(), broker: BTreeMap::new(), current }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The broker config in force now.
    pub fn current(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.read().current)
    }

    /// Takes the dynamic configs of `image`; returns whether the config in force changed. A
    /// combination that does not parse (the controller checked each value, not how they combine)
    /// is logged and the previous config kept, as Kafka does.
    pub fn apply(&self, image: &MetadataImage) -> bool {
        let node = self.static_config.node_id;
        let broker = image.broker_configs.get(&node).cloned().unwrap_or_default();
        let cluster = image.cluster_configs.clone();
        {
            let layers = self.read();
            if layers.cluster == cluster && layers.broker == broker {
                return false;
            }
        }
        match BrokerConfig::from_properties(merged(&self.static_config.raw, &cluster, &broker)) {
            Ok(config) => {
                let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
                for (layer, old, new) in
                    [("cluster-wide default", &layers.cluster, &cluster), ("this broker", &layers.broker, &broker)]
                {
                    for key in old.keys().chain(new.keys()).collect::<std::collections::BTreeSet<_>>() {
                        if old.get(key) != new.get(key) {
                            tracing::info!(key = %key, value = ?new.get(key), "dynamic broker config for {layer} changed");
                        }
                    }
                }
                *layers = Layers { cluster, broker, current: Arc::new(config) };
                true
            }
            Err(e) => {
                tracing::error!("dynamic broker configs not applied, the previous ones stay in force: {e}");
                false
            }
        }
    }

    /// Whether the config would still parse with `changes` applied to the dynamic layer of
    /// `broker_id` (None: the cluster-wide default); Kafka's broker-side validation.
    pub fn check(
        &self,
        broker_id: Option<i32>,
        changes: &[(String, Option<String>)],
        replace_all: bool,
    ) -> Result<(), super::ConfigError> {
        let layers = self.read();
        let (mut cluster, mut broker) = (layers.cluster.clone(), layers.broker.clone());
        let target = match broker_id {
            Some(_) => &mut broker,
            None => &mut cluster,
        };
        if replace_all {
            target.clear();
        }
        for (k, v) in changes {
            match v {
                Some(v) => target.insert(k.clone(), v.clone()),
                None => target.remove(k),
            };
        }
        BrokerConfig::from_properties(merged(&self.static_config.raw, &cluster, &broker)).map(|_| ())
    }

    /// Where `key`'s value comes from, most specific first: (source, value) for each layer that
    /// sets it; DescribeConfigs' synonyms.
    pub fn sources(&self, key: &str) -> Vec<(i8, String)> {
        let layers = self.read();
        let mut out = Vec::new();
        if let Some(v) = layers.broker.get(key) {
            out.push((SOURCE_DYNAMIC_BROKER, v.clone()));
        }
        if let Some(v) = layers.cluster.get(key) {
            out.push((SOURCE_DYNAMIC_DEFAULT, v.clone()));
        }
        if let Some(v) = self.static_config.raw.get(key) {
            out.push((SOURCE_STATIC_BROKER, v.clone()));
        }
        out
    }

    /// Where the values of `keys` (synonyms, most specific first) come from, as Kafka lists
    /// synonyms: grouped by layer (this broker, the cluster-wide default, static), within a layer
    /// in the order of `keys`: (key, value, source) for each that is set.
    pub fn layered(&self, keys: &[&str]) -> Vec<(String, String, i8)> {
        let found: Vec<Vec<(i8, String)>> = keys.iter().map(|k| self.sources(k)).collect();
        let mut out = Vec::new();
        for source in [SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT, SOURCE_STATIC_BROKER] {
            for (key, layers) in keys.iter().zip(&found) {
                if let Some((_, v)) = layers.iter().find(|(s, _)| *s == source) {
                    out.push((key.to_string(), v.clone(), source));
                }
            }
        }
        out
    }

    /// The cluster-wide dynamic defaults last applied.
    pub fn cluster_defaults(&self) -> BTreeMap<String, String> {
        self.read().cluster.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::MetadataRecord;

    fn image(records: &[MetadataRecord]) -> MetadataImage {
        let mut image = MetadataImage::default();
        records.iter().for_each(|r| image.apply(r));
        image
    }

    fn set(broker_id: Option<i32>, key: &str, value: &str) -> MetadataRecord {
        MetadataRecord::BrokerConfig { broker_id, key: key.into(), value: Some(value.into()) }
    }

    #[test]
    fn broker_value_wins_over_cluster_default_over_static() {
        let mut props = BTreeMap::new();
        props.insert("node.id".to_string(), "1".to_string());
        props.insert("message.max.bytes".to_string(), "1000".to_string());
        let dynamic = DynamicConfig::new(Arc::new(BrokerConfig::from_properties(props).unwrap()));
        assert_eq!(dynamic.current().message_max_bytes, 1000);
        assert!(dynamic.apply(&image(&[set(None, "message.max.bytes", "2000")])));
        assert_eq!(dynamic.current().message_max_bytes, 2000);
        let both = image(&[set(None, "message.max.bytes", "2000"), set(Some(1), "message.max.bytes", "3000")]);
        assert!(dynamic.apply(&both));
        assert_eq!(dynamic.current().message_max_bytes, 3000);
        assert!(!dynamic.apply(&both), "nothing changed");
        let other_broker = image(&[set(Some(2), "message.max.bytes", "4000")]);
        assert!(dynamic.apply(&other_broker));
        assert_eq!(dynamic.current().message_max_bytes, 1000, "back to the static value");
        let sources = dynamic.sources("message.max.bytes");
        assert_eq!(sources, vec![(SOURCE_STATIC_BROKER, "1000".to_string())]);
    }

    #[test]
    fn a_combination_that_does_not_parse_keeps_the_previous_config() {
        let dynamic = DynamicConfig::new(Arc::new(BrokerConfig::default()));
        // 1 MiB of dedupe buffer cannot serve 4 cleaner threads.
        let bad =
            image(&[set(None, "log.cleaner.dedupe.buffer.size", "1048576"), set(None, "log.cleaner.threads", "4")]);
        assert!(!dynamic.apply(&bad));
        assert_eq!(dynamic.current().cleaner.threads, 1);
        let change = [("log.cleaner.threads".to_string(), Some("4".to_string()))];
        assert!(dynamic.check(None, &change, false).is_ok());
        let small = [("log.cleaner.dedupe.buffer.size".to_string(), Some("1048576".to_string()))];
        assert!(dynamic.check(None, &[change[0].clone(), small[0].clone()], false).is_err());
    }
}
