//! Client configuration and topic creation shared by the scenarios.

use crate::Target;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// The user's extra properties (`--set KEY=VALUE`), for either client.
pub fn extra_properties(target: &Target) -> Result<Vec<(&str, &str)>, String> {
    target.extra.iter().map(|kv| kv.split_once('=').ok_or_else(|| format!("--set '{kv}' is not KEY=VALUE"))).collect()
}

/// A librdkafka config with the bootstrap server and the user's extra properties.
pub fn client_config(target: &Target) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &target.bootstrap_server);
    for (k, v) in extra_properties(target)? {
        c.set(k, v);
    }
    Ok(c)
}

/// Creates the topic with `target.partitions` partitions unless it exists.
pub fn ensure_topic(target: &Target) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(target)?.create().map_err(|e| format!("admin client: {e}"))?;
    let topic = NewTopic::new(&target.topic, target.partitions, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let results = runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .map_err(|e| format!("cannot create topic {}: {e}", target.topic))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(format!("cannot create topic {t}: {code}")),
        }
    }
    Ok(())
}
