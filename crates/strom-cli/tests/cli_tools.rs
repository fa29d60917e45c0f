//! The Kafka-style tools end to end, driving the built `strom` binary against a broker: the seeds'
//! console walkthrough, configs, get-offsets, delete-records, dump-log, the perf tests, and
//! one-line errors with exit code 1 for bad input.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::TestBroker;

fn strom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom")).args(args).output().expect("run strom")
}

fn strom_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strom");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for strom")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// A broker whose groups form at once (no initial rebalance delay), so tests do not wait 3 s.
fn broker() -> TestBroker {
    TestBroker::start(&["group.initial.rebalance.delay.ms=0"])
}

/// `strom topics --create` with one replica; the test fails if it does not succeed.
fn create_topic(bootstrap: &str, topic: &str, partitions: u32) {
    let partitions = partitions.to_string();
    ok(strom(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
        "--replication-factor",
        "1",
    ]));
}

/// The cells of the table row for `topic` partition `partition`.
fn row(table: &str, topic: &str, partition: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cells| cells.len() > 2 && cells[1] == topic && cells[2] == partition)
        .unwrap_or_else(|| panic!("no row for {topic}-{partition} in:\n{table}"))
}

#[test]
fn the_seeds_console_walkthrough() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "test", 1);
    create_topic(bs, "my-replicated-topic", 1);
    assert_eq!(ok(strom(&["topics", "--bootstrap-server", bs, "--list"])), "my-replicated-topic\ntest\n");

    // The legacy --broker-list spelling works too.
    let produced = strom_with_input(
        &["console-producer", "--broker-list", bs, "--topic", "test"],
        "This is a message\nThis is another message\n",
    );
    assert_eq!(ok(produced), "");

    let consumed = ok(strom(&[
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        "test",
        "--from-beginning",
        "--max-messages",
        "2",
    ]));
    assert_eq!(consumed, "This is a message\nThis is another message\n");

    // In a group, both spellings; the group commits what it printed.
    let in_group = strom(&[
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        "test",
        "--from-beginning",
        "--consumer-property",
        "group.id=testGroup",
        "--max-messages",
        "2",
    ]);
    assert!(stderr(&in_group).contains("Processed a total of 2 messages"), "{}", stderr(&in_group));
    assert_eq!(ok(in_group).lines().count(), 2);
    ok(strom_with_input(&["console-producer", "--bootstrap-server", bs, "--topic", "test", "--sync"], "third\n"));

    let describe = ok(strom(&["consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "testGroup"]));
    let header = describe.lines().find(|l| l.starts_with("GROUP")).expect("header");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    );
    assert_eq!(row(&describe, "test", "0")[3..6], ["2", "3", "1"], "{describe}");

    ok(strom(&[
        "consumer-groups",
        "--bootstrap-server",
        bs,
        "--reset-offsets",
        "--group",
        "testGroup",
        "--topic",
        "test",
        "--to-earliest",
        "--execute",
    ]));
    let describe = ok(strom(&["consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "testGroup"]));
    assert_eq!(row(&describe, "test", "0")[3..6], ["0", "3", "3"], "{describe}");

    // --group consumes from the reset position: everything again.
    let again = ok(strom(&[
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        "test",
        "--group",
        "testGroup",
        "--max-messages",
        "3",
        "--property",
        "print.key=true",
        "--property",
        "print.offset=true",
    ]));
    assert_eq!(
        again,
        "Offset:0\tnull\tThis is a message\nOffset:1\tnull\tThis is another message\nOffset:2\tnull\tthird\n"
    );
}

#[test]
fn keys_headers_partitions_and_offsets() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "kv", 3);
    ok(strom_with_input(
        &[
            "console-producer",
            "--bootstrap-server",
            bs,
            "--topic",
            "kv",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--property",
            "parse.headers=true",
            "--property",
            "headers.delimiter=|",
        ],
        "h1:a,h2:b|k1:v1\n|k1:v2\n",
    ));
    // Records with one key share a partition; find it through get-offsets.
    let offsets = ok(strom(&["get-offsets", "--bootstrap-server", bs, "--topic", "kv"]));
    let lines: Vec<&str> = offsets.lines().collect();
    assert_eq!(lines.len(), 3, "{offsets}");
    let full: Vec<&str> = lines.iter().filter(|l| l.ends_with(":2")).copied().collect();
    assert_eq!(full.len(), 1, "{offsets}");
    let partition = full[0].split(':').nth(1).unwrap();
    let printed = ok(strom(&[
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        "kv",
        "--partition",
        partition,
        "--offset",
        "0",
        "--max-messages",
        "2",
        "--property",
        "print.key=true",
        "--property",
        "print.headers=true",
        "--property",
        "print.partition=true",
    ]));
    assert_eq!(
        printed,
        format!("Partition:{partition}\th1:a,h2:b\tk1\tv1\nPartition:{partition}\tNO_HEADERS\tk1\tv2\n")
    );
    // --offset 1 starts after the first record; earliest and -2 agree.
    let from_one = ok(strom(&[
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        "kv",
        "--partition",
        partition,
        "--offset",
        "1",
        "--max-messages",
        "1",
    ]));
    assert_eq!(from_one, "v2\n");
    let earliest = ok(strom(&[
        "get-offsets",
        "--bootstrap-server",
        bs,
        "--topic",
        "kv",
        "--partitions",
        partition,
        "--time",
        "-2",
    ]));
    assert_eq!(earliest, format!("kv:{partition}:0\n"));

    // delete-records moves the start; get-offsets sees it.
    let json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        json.path(),
        format!(r#"{{"partitions":[{{"topic":"kv","partition":{partition},"offset":1}}],"version":1}}"#),
    )
    .unwrap();
    let deleted =
        ok(strom(&["delete-records", "--bootstrap-server", bs, "--offset-json-file", json.path().to_str().unwrap()]));
    assert_eq!(
        deleted,
        format!("Executing records delete operation\nRecords delete operation completed:\npartition: kv-{partition}\tlow_watermark: 1\n")
    );
    let earliest = ok(strom(&[
        "get-offsets",
        "--bootstrap-server",
        bs,
        "--topic",
        "kv",
        "--partitions",
        partition,
        "--time",
        "earliest",
    ]));
    assert_eq!(earliest, format!("kv:{partition}:1\n"));
}

#[test]
fn configs_describe_and_alter() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "c", 1);
    let base = ["configs", "--bootstrap-server", bs, "--entity-type", "topics", "--entity-name", "c"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra.iter()).copied().collect()
    }
    assert_eq!(ok(strom(&with(&base, &["--describe"]))), "Dynamic configs for topic c are:\n");
    let altered =
        ok(strom(&with(&base, &["--alter", "--add-config", "retention.ms=3600000,cleanup.policy=[delete,compact]"])));
    assert_eq!(altered, "Completed updating config for topic c.\n");
    let described = ok(strom(&with(&base, &["--describe"])));
    assert_eq!(
        described,
        "Dynamic configs for topic c are:\n\
         \x20 cleanup.policy=delete,compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=delete,compact, DEFAULT_CONFIG:log.cleanup.policy=delete}\n\
         \x20 retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    );
    let all = ok(strom(&with(&base, &["--describe", "--all"])));
    assert!(all.starts_with("All configs for topic c are:\n"), "{all}");
    assert!(
        all.contains(
            "  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}"
        ),
        "{all}"
    );
    ok(strom(&with(&base, &["--alter", "--delete-config", "retention.ms"])));
    assert!(!ok(strom(&with(&base, &["--describe"]))).contains("retention.ms"));
    // Deleting a config that is not set is refused, as Kafka's tool does.
    let refused = strom(&with(&base, &["--alter", "--delete-config", "retention.ms"]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("Invalid config(s): retention.ms"), "{}", stderr(&refused));
    let broker_all = ok(strom(&["configs", "--bootstrap-server", bs, "--broker", "1", "--describe", "--all"]));
    assert!(broker_all.starts_with("All configs for broker 1 are:\n"), "{broker_all}");
    assert!(broker_all.contains("  num.partitions=1 sensitive=false"), "{broker_all}");
}

#[test]
fn dump_log_lists_batches_and_detects_a_flipped_byte() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "d", 1);
    // Three synchronous sends: three batches at offsets 0, 1, 2.
    ok(strom_with_input(
        &["console-producer", "--bootstrap-server", bs, "--topic", "d", "--sync"],
        "one\ntwo\nthree\n",
    ));
    let segment = b.data_dir().join("d-0").join("00000000000000000000.log");
    let path = segment.to_str().unwrap();
    let dumped = ok(strom(&["dump-log", "--files", path, "--print-data-log"]));
    let lines: Vec<&str> = dumped.lines().collect();
    assert_eq!(lines[0], format!("Dumping {path}"));
    assert_eq!(lines[1], "Log starting offset: 0");
    let batches: Vec<&&str> = lines.iter().filter(|l| l.starts_with("baseOffset:")).collect();
    assert_eq!(batches.len(), 3, "{dumped}");
    for (i, batch) in batches.iter().enumerate() {
        assert!(
            batch.starts_with(&format!(
                "baseOffset: {i} lastOffset: {i} count: 1 baseSequence: {i} lastSequence: {i} producerId: "
            )),
            "{batch}"
        );
        assert!(batch.contains(" compresscodec: none crc: ") && batch.ends_with(" isvalid: true"), "{batch}");
    }
    assert!(dumped.contains("| offset: 1 CreateTime: "), "{dumped}");
    assert!(dumped.contains(" keySize: -1 valueSize: 3 sequence: 1 headerKeys: [] payload: two\n"), "{dumped}");

    // Flip one byte of the second record's value: that batch is reported invalid, exit code 1.
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(3).position(|w| w == b"two").unwrap();
    bytes[at] ^= 0x20;
    let copy = tempfile::tempdir().unwrap();
    let corrupt = copy.path().join("00000000000000000000.log");
    std::fs::write(&corrupt, &bytes).unwrap();
    let o = strom(&["dump-log", "--files", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("isvalid: true").count(), 2, "{out}");
    assert_eq!(out.matches("isvalid: false").count(), 1, "{out}");
    assert!(!stderr(&o).contains("panicked"));
    // A torn tail is reported as invalid bytes at the end.
    std::fs::write(&corrupt, &bytes[..bytes.len() - 5]).unwrap();
    let o = strom(&["dump-log", "--files", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("invalid bytes at the end of 00000000000000000000.log"), "{}", stdout(&o));
}

#[test]
fn perf_tests_print_kafkas_lines() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "p", 2);
    let produced = ok(strom(&[
        "producer-perf-test",
        "--topic",
        "p",
        "--num-records",
        "2000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--producer-props",
        &format!("bootstrap.servers={bs}"),
        "acks=1",
    ]));
    let summary = produced.lines().last().unwrap();
    let re = regex::Regex::new(
        r"^2000 records sent, [0-9]+\.[0-9]{6} records/sec \([0-9]+\.[0-9][0-9] MB/sec\), [0-9]+\.[0-9][0-9] ms avg latency, [0-9]+\.[0-9][0-9] ms max latency, [0-9]+ ms 50th, [0-9]+ ms 95th, [0-9]+ ms 99th, [0-9]+ ms 99\.9th\.$",
    )
    .unwrap();
    assert!(re.is_match(summary), "{summary}");

    // Throttled to 500 records/s for 6 s: a progress line after the first 5 s, in Kafka's format.
    let throttled = ok(strom(&[
        "producer-perf-test",
        "--topic",
        "p",
        "--num-records",
        "3000",
        "--record-size",
        "100",
        "--throughput",
        "500",
        "--bootstrap-server",
        bs,
    ]));
    let progress = regex::Regex::new(
        r"^[0-9]+ records sent, [0-9]+\.[0-9] records/sec \([0-9]+\.[0-9][0-9] MB/sec\), [0-9]+\.[0-9] ms avg latency, [0-9]+\.[0-9] ms max latency\.$",
    )
    .unwrap();
    let lines: Vec<&str> = throttled.lines().collect();
    assert_eq!(lines.len(), 2, "{throttled}");
    assert!(progress.is_match(lines[0]), "{}", lines[0]);
    assert!(lines[1].starts_with("3000 records sent, "), "{}", lines[1]);

    let consumed = ok(strom(&["consumer-perf-test", "--bootstrap-server", bs, "--topic", "p", "--messages", "2000"]));
    let lines: Vec<&str> = consumed.lines().collect();
    assert_eq!(
        lines[0],
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
    );
    let cells: Vec<&str> = lines[1].split(", ").collect();
    assert_eq!(cells.len(), 10, "{}", lines[1]);
    assert_eq!(cells[2], "0.1907"); // 2000 × 100 bytes in MiB
    assert_eq!(cells[4], "2000");
}

#[test]
fn bad_input_is_one_line_and_exit_code_1() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();
    create_topic(bs, "t", 1);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["get-offsets", "--bootstrap-server", bs, "--topic", "nope"], "Could not match any topic-partitions"),
        (
            vec!["console-consumer", "--bootstrap-server", bs, "--topic", "nope", "--partition", "0"],
            "topic 'nope' does not exist",
        ),
        (
            vec!["console-consumer", "--bootstrap-server", bs, "--topic", "t", "--offset", "3"],
            "the partition is required",
        ),
        (
            vec!["console-consumer", "--bootstrap-server", bs, "--topic", "t", "--property", "print.key"],
            "--property 'print.key' is malformed",
        ),
        (
            vec!["consumer-groups", "--bootstrap-server", bs, "--describe", "--group", "nope"],
            "Consumer group 'nope' does not exist.",
        ),
        (
            vec!["consumer-groups", "--bootstrap-server", bs, "--delete-offsets", "--group", "nope", "--topic", "t"],
            "Consumer group 'nope' does not exist.",
        ),
        (
            vec!["configs", "--bootstrap-server", bs, "--entity-type", "topics", "--entity-name", "nope", "--describe"],
            "nope",
        ),
        (
            vec!["configs", "--bootstrap-server", bs, "--entity-type", "users", "--entity-name", "x", "--describe"],
            "--entity-type 'users' is not supported",
        ),
        (vec!["get-offsets", "--bootstrap-server", bs, "--time", "yesterday"], "--time 'yesterday'"),
        (
            vec!["console-producer", "--zookeeper", "localhost:2181", "--topic", "t"],
            "Strom has no ZooKeeper; use --bootstrap-server HOST:PORT",
        ),
        (vec!["console-consumer", "--bootstrap-server", "127.0.0.1:1", "--topic", "t"], "127.0.0.1:1"),
        (vec!["dump-log", "--files", "/nonexistent/00000000000000000000.log"], "cannot open"),
    ];
    for (args, expected) in cases {
        let o = strom(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let error_lines = err.lines().filter(|l| !l.starts_with("Processed a total")).count();
        assert!(error_lines <= 2, "{args:?}: {err}");
    }
    // A malformed line for parse.key fails the producer with the line number.
    let o = strom_with_input(
        &["console-producer", "--bootstrap-server", bs, "--topic", "t", "--property", "parse.key=true"],
        "no separator here\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No key separator found on line number 1: 'no separator here'"), "{}", stderr(&o));
}
