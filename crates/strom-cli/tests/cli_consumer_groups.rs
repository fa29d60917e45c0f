//! `strom consumer-groups` end to end: the seeds' testGroup walkthrough (describe with
//! CURRENT-OFFSET / LOG-END-OFFSET / LAG, reset to earliest, lag returns), members and state
//! views, refusal on an active group, deletion, and one-line errors.

mod support;

use std::process::{Command, Output};
use std::time::Duration;
use strom_client::consumer::Consumer;
use strom_client::producer::{Producer, ProducerRecord};
use strom_client::Properties;
use support::TestBroker;

fn groups(broker: &TestBroker, args: &[&str]) -> Output {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["consumer-groups", "--bootstrap-server", bootstrap.as_str()];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_strom")).args(&all).output().expect("run strom")
}

fn out(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The whitespace-separated cells of the table row for `topic`.
fn row(table: &str, topic: &str) -> Vec<String> {
    let line = table.lines().find(|l| l.split_whitespace().nth(1) == Some(topic)).expect("a row for the topic");
    line.split_whitespace().map(String::from).collect()
}

fn consumer_props(broker: &TestBroker) -> Properties {
    Properties::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "testGroup")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
}

#[test]
fn the_seeds_test_group_walkthrough() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        broker.create_topic("test", 1, &[]).await;
        let p = Producer::new(&Properties::new().set("bootstrap.servers", broker.bootstrap())).await.expect("producer");
        for i in 0..5 {
            p.send_and_wait(ProducerRecord::new("test").value(format!("line {i}"))).await.expect("send");
        }
        let mut c = Consumer::new(&consumer_props(&broker)).await.expect("consumer");
        c.subscribe(&["test"]).expect("subscribe");
        let mut seen = 0;
        while seen < 5 {
            seen += c.poll(Duration::from_millis(200)).await.expect("poll").len();
        }
        c.commit_sync().await.expect("commit");
        // While the member is active: it shows in the table, and a reset is refused.
        let table = out(&groups(&broker, &["--describe", "--group", "testGroup"]));
        let cells = row(&table, "test");
        assert_eq!(&cells[..6], ["testGroup", "test", "0", "5", "5", "0"]);
        assert!(cells[6].starts_with("strom-consumer-"), "{table}");
        assert!(table.contains("GROUP") && table.contains("CURRENT-OFFSET") && table.contains("LOG-END-OFFSET"));
        let members = out(&groups(&broker, &["--describe", "--group", "testGroup", "--members"]));
        assert!(members.contains("#PARTITIONS"), "{members}");
        let state = out(&groups(&broker, &["--describe", "--group", "testGroup", "--state"]));
        assert!(state.contains("Stable") && state.contains("range"), "{state}");
        let refused = groups(
            &broker,
            &["--reset-offsets", "--group", "testGroup", "--topic", "test", "--to-earliest", "--execute"],
        );
        assert_eq!(refused.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("inactive, but the current state is Stable"));
        c.close().await.expect("close");
    });

    let table = out(&groups(&broker, &["--describe", "--group", "testGroup"]));
    assert!(table.contains("Consumer group 'testGroup' has no active members."), "{table}");
    assert_eq!(row(&table, "test"), ["testGroup", "test", "0", "5", "5", "0", "-", "-", "-"]);
    assert_eq!(out(&groups(&broker, &["--list"])).trim(), "testGroup");

    let dry = out(&groups(
        &broker,
        &["--reset-offsets", "--group", "testGroup", "--topic", "test", "--to-earliest", "--dry-run"],
    ));
    assert_eq!(row(&dry, "test"), ["testGroup", "test", "0", "0"]);
    assert_eq!(
        row(&out(&groups(&broker, &["--describe", "--group", "testGroup"])), "test")[3],
        "5",
        "a dry run changes nothing"
    );
    out(&groups(
        &broker,
        &["--reset-offsets", "--group", "testGroup", "--topic", "test", "--to-earliest", "--execute"],
    ));
    let after = row(&out(&groups(&broker, &["--describe", "--group", "testGroup"])), "test");
    assert_eq!(&after[3..6], ["0", "5", "5"], "the lag is back");
    let shifted = out(&groups(
        &broker,
        &["--reset-offsets", "--group", "testGroup", "--all-topics", "--shift-by", "2", "--execute"],
    ));
    assert_eq!(row(&shifted, "test")[3], "2");

    let deleted = out(&groups(&broker, &["--delete", "--group", "testGroup"]));
    assert!(deleted.contains("was successful"), "{deleted}");
    let gone = groups(&broker, &["--describe", "--group", "testGroup"]);
    assert_eq!(gone.status.code(), Some(1));
    let err = String::from_utf8_lossy(&gone.stderr).to_string();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Consumer group 'testGroup' does not exist."), "{err}");
}
