//! Dynamic broker configs (KIP-226): set with `strom configs` (IncrementalAlterConfigs, as
//! Kafka 4.0's kafka-configs) and librdkafka's AlterConfigs, for one broker or as the
//! cluster-wide default; applied without a restart, shown by DescribeConfigs with their source,
//! kept across a restart, refused with Kafka's sentences where Kafka refuses them.

mod support;

use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{run_strom, TestCluster};
use support::TestBroker;

/// `strom configs --alter --add-config` of the broker entity that must be refused; its stderr.
fn refused(bootstrap: &str, entity: &[&str], add: &str) -> String {
    let mut args = vec!["configs", "--bootstrap-server", bootstrap, "--entity-type", "brokers"];
    args.extend_from_slice(entity);
    args.extend(["--alter", "--add-config", add]);
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).args(&args).output().expect("run strom");
    assert!(!out.status.success(), "strom {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn configs(bootstrap: &str, entity: &[&str], action: &[&str]) -> String {
    let mut args = vec!["configs", "--bootstrap-server", bootstrap, "--entity-type", "brokers"];
    args.extend_from_slice(entity);
    args.extend_from_slice(action);
    run_strom(&args)
}

/// Produces one record of `size` bytes; the error code if refused.
async fn produce(broker: &TestBroker, topic: &str, size: usize) -> Option<RDKafkaErrorCode> {
    let producer = broker.producer(&[("linger.ms", "0"), ("message.timeout.ms", "10000")]);
    let value = vec![b'x'; size];
    match producer.send(FutureRecord::<(), _>::to(topic).payload(&value), Duration::from_secs(10)).await {
        Ok(_) => None,
        Err((e, _)) => e.rdkafka_error_code(),
    }
}

/// Waits until `check` holds (a config reaches the broker when its publisher applies it).
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_configs_change_without_a_restart() {
    let mut broker = TestBroker::start(&["log.retention.check.interval.ms=100"]);
    let b = broker.bootstrap();
    broker.create_topic("t", 1, &[("segment.bytes", "1024")]).await;
    for _ in 0..20 {
        assert_eq!(produce(&broker, "t", 300).await, None);
    }

    // message.max.bytes for this broker (librdkafka's AlterConfigs on the broker resource).
    let admin = broker.admin();
    let alter = AlterConfig::new(ResourceSpecifier::Broker(1)).set("message.max.bytes", "2000");
    for r in admin.alter_configs([&alter], &AdminOptions::new()).await.expect("alter_configs") {
        r.expect("message.max.bytes altered");
    }
    eventually("message.max.bytes=2000 in force", || async {
        produce(&broker, "t", 5_000).await == Some(RDKafkaErrorCode::MessageSizeTooLarge)
    })
    .await;
    let shown = configs(&b, &["--entity-name", "1"], &["--describe"]);
    assert!(shown.starts_with("Dynamic configs for broker 1 are:"), "{shown}");
    assert!(
        shown.contains(
            "message.max.bytes=2000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:message.max.bytes=2000, \
             DEFAULT_CONFIG:message.max.bytes=1048588}"
        ),
        "{shown}"
    );

    // The cluster-wide default (kafka-configs --entity-default), under the per-broker value.
    configs(&b, &["--entity-default"], &["--alter", "--add-config", "log.retention.ms=1,message.max.bytes=3000"]);
    let shown = configs(&b, &["--entity-default"], &["--describe"]);
    assert!(shown.starts_with("Default configs for brokers in the cluster are:"), "{shown}");
    assert!(shown.contains("log.retention.ms=1 sensitive=false"), "{shown}");
    // Retention of 1 ms deletes every closed segment of the topic, without a restart.
    let consumer_config = broker.client_config();
    eventually("retention to delete the old segments", || {
        let c: rdkafka::consumer::BaseConsumer = consumer_config.create().expect("consumer");
        async move {
            use rdkafka::consumer::Consumer;
            c.fetch_watermarks("t", 0, Duration::from_secs(5)).is_ok_and(|(low, high)| low > 0 && high == 20)
        }
    })
    .await;
    // Deleting the per-broker value leaves the cluster-wide default in force.
    configs(&b, &["--entity-name", "1"], &["--alter", "--delete-config", "message.max.bytes"]);
    eventually("message.max.bytes=3000 in force", || async { produce(&broker, "t", 2_500).await.is_none() }).await;
    assert_eq!(produce(&broker, "t", 5_000).await, Some(RDKafkaErrorCode::MessageSizeTooLarge));
    let all = configs(&b, &["--entity-name", "1"], &["--describe", "--all"]);
    let line = all.lines().find(|l| l.trim_start().starts_with("message.max.bytes=")).expect("message.max.bytes");
    assert!(line.contains("synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:message.max.bytes=3000"), "{line}");

    // What Kafka refuses, with Kafka's sentences.
    let err = refused(&b, &["--entity-name", "1"], "log.dirs=/elsewhere");
    assert!(err.contains("Cannot update these configs dynamically: Set(log.dirs)"), "{err}");
    let err = refused(&b, &["--entity-default"], "log.segment.bytes=big");
    assert!(err.contains("Invalid value big for configuration log.segment.bytes"), "{err}");
    let err = refused(&b, &["--entity-default"], "num.io.threads=16");
    assert!(err.contains("Strom does not use num.io.threads"), "{err}");

    // Dynamic configs are metadata: a restart keeps them in force.
    broker.stop();
    broker.restart();
    assert_eq!(produce(&broker, "t", 5_000).await, Some(RDKafkaErrorCode::MessageSizeTooLarge));
    let shown = configs(&b, &["--entity-default"], &["--describe"]);
    assert!(shown.contains("message.max.bytes=3000"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_wide_default_reaches_every_broker() {
    let cluster = TestCluster::start(3, &[]);
    cluster.wait_for_registrations(Duration::from_secs(30));
    let bootstrap = cluster.bootstrap();
    configs(&bootstrap, &["--entity-default"], &["--alter", "--add-config", "log.cleaner.threads=2"]);
    configs(&bootstrap, &["--entity-name", "2"], &["--alter", "--add-config", "log.cleaner.backoff.ms=500"]);
    for id in 1..=3 {
        let node = id.to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let all = configs(&bootstrap, &["--entity-name", &node], &["--describe", "--all"]);
            let threads = all.lines().any(|l| l.contains("log.cleaner.threads=2 ") && l.contains("DYNAMIC_DEFAULT"));
            let backoff = all.lines().any(|l| l.contains("log.cleaner.backoff.ms=500 "));
            if threads && backoff == (id == 2) {
                break;
            }
            assert!(Instant::now() < deadline, "broker {id} never showed the dynamic configs:\n{all}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // One broker's configs are that broker's to describe: asked of another, Kafka's refusal.
    let mut raw = support::raw::RawClient::connect(&cluster.nodes[0].bootstrap());
    let mut r = strom_protocol::messages::describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = 4;
    r.resource_name = strom_protocol::StrBytes::from_static_str("3");
    let mut req = strom_protocol::messages::DescribeConfigsRequest::default();
    req.resources = vec![r];
    let resp: strom_protocol::messages::DescribeConfigsResponse =
        raw.call(strom_protocol::messages::ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(resp.results[0].error_code, 42, "INVALID_REQUEST");
    let message = resp.results[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert_eq!(message, "Unexpected broker id, expected 1 or empty string, but received 3");
}
