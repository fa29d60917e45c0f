//! `strom topics` end to end: the seeds' walkthrough (create, list, describe, alter, delete) with
//! Kafka's output layout, and one-line errors with exit code 1 for bad input.

mod support;

use std::process::{Command, Output};
use support::TestBroker;

fn strom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom")).args(args).output().expect("run strom")
}

fn topics(broker: &TestBroker, args: &[&str]) -> Output {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["topics", "--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    strom(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn the_seeds_walkthrough_with_kafkas_layout() {
    let broker = TestBroker::start(&[]);
    let created = topics(&broker, &["--create", "--topic", "test", "--partitions", "1", "--replication-factor", "1"]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert_eq!(stdout(&created), "Created topic test.\n");
    let created = topics(
        &broker,
        &[
            "--create",
            "--topic",
            "my-replicated-topic",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=3600000",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));

    let list = topics(&broker, &["--list"]);
    assert_eq!(stdout(&list), "my-replicated-topic\ntest\n");

    let describe = topics(&broker, &["--describe", "--topic", "my-replicated-topic"]);
    assert!(describe.status.success(), "{}", stderr(&describe));
    let out = stdout(&describe);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let head: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(head[0], "Topic: my-replicated-topic");
    assert!(head[1].starts_with("TopicId: ") && head[1].len() == "TopicId: ".len() + 22, "{}", head[1]);
    assert_eq!(&head[2..], ["PartitionCount: 2", "ReplicationFactor: 1", "Configs: retention.ms=3600000"]);
    assert_eq!(lines[1], "\tTopic: my-replicated-topic\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1");
    assert_eq!(lines[2], "\tTopic: my-replicated-topic\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1");

    let alter = topics(&broker, &["--alter", "--topic", "test", "--partitions", "3"]);
    assert!(alter.status.success(), "{}", stderr(&alter));
    assert!(stdout(&topics(&broker, &["--describe", "--topic", "test"])).contains("PartitionCount: 3"));
    assert!(topics(&broker, &["--describe", "--under-replicated-partitions"]).stdout.is_empty());

    let again = topics(&broker, &["--create", "--topic", "test", "--partitions", "1"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again).trim(), "Error while executing topic command : Topic 'test' already exists.");
    assert!(topics(&broker, &["--create", "--topic", "test", "--partitions", "1", "--if-not-exists"]).status.success());

    let deleted = topics(&broker, &["--delete", "--topic", "test"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(stdout(&topics(&broker, &["--list"])), "my-replicated-topic\n");
    assert!(topics(&broker, &["--delete", "--topic", "test", "--if-exists"]).status.success());
}

#[test]
fn bad_input_is_one_line_and_exit_code_1() {
    let broker = TestBroker::start(&[]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--create", "--topic", "t", "--partitions", "0"], "--partitions must be at least 1"),
        (vec!["--describe", "--topic", "nope"], "Topic 'nope' does not exist"),
        (vec!["--delete", "--topic", "nope"], "Topic 'nope' does not exist"),
        (vec!["--create", "--topic", "t", "--config", "retention.ms"], "--config expects key=value"),
        (vec!["--list", "--zookeeper", "localhost:2181"], "Strom has no ZooKeeper; use --bootstrap-server HOST:PORT"),
        (vec!["--create", "--topic", "t", "--replica-assignment", "1:x"], "'x' is not a broker id"),
        (vec!["--create", "--topic", "t", "--replica-assignment", "1:1"], "partition 0 names a broker twice"),
        (vec!["--create", "--topic", "t", "--replica-assignment", "1,2"], "INVALID_REPLICA_ASSIGNMENT"),
    ];
    for (args, expected) in cases {
        let o = topics(&broker, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An explicit assignment: two partitions, both on broker 1.
    assert_eq!(
        topics(&broker, &["--create", "--topic", "placed", "--replica-assignment", "1,1"]).status.code(),
        Some(0)
    );
    let described = stdout(&topics(&broker, &["--describe", "--topic", "placed"]));
    assert!(described.contains("PartitionCount: 2"), "{described}");
    // An unreachable broker names the address.
    let o = strom(&["topics", "--bootstrap-server", "127.0.0.1:1", "--list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("127.0.0.1:1"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn describe_filters_by_min_insync_replicas() {
    let broker = TestBroker::start(&[]);
    for (name, min_isr) in [("relaxed", "1"), ("strict", "2")] {
        let config = format!("min.insync.replicas={min_isr}");
        let created = topics(&broker, &["--create", "--topic", name, "--partitions", "2", "--config", &config]);
        assert!(created.status.success(), "{}", stderr(&created));
    }
    let partitions_of = |flag: &str| -> Vec<String> {
        let out = topics(&broker, &["--describe", flag]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(|l| l.split('\t').nth(1).unwrap_or_default().to_string()).collect()
    };
    // One replica each: "strict" (min.insync.replicas=2) is under its minimum, "relaxed" at it.
    assert_eq!(partitions_of("--under-min-isr-partitions"), vec!["Topic: strict", "Topic: strict"]);
    assert_eq!(partitions_of("--at-min-isr-partitions"), vec!["Topic: relaxed", "Topic: relaxed"]);
    assert!(partitions_of("--under-replicated-partitions").is_empty());
}
