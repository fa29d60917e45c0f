//! A full disk (ENOSPC, on a small tmpfs as log.dirs): a produce that does not fit fails with
//! KAFKA_STORAGE_ERROR and leaves no partial batch behind, reads keep working, and writes resume
//! once space is freed, without a restart; so do metadata writes (the metadata log is on the
//! same disk). Needs root (mount); CI runs as root.

mod support;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use strom_protocol::batch::testing::TestBatch;
use strom_protocol::batch::BatchIter;
use strom_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
use strom_protocol::StrBytes;
use support::raw::RawClient;
use support::TestBroker;

/// A tmpfs of `size` mounted at a fresh directory, unmounted on drop.
struct SmallDisk {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { _tmp: tmp, path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn produce(topic: &str, value_len: usize) -> ProduceRequest {
    let value = vec![b'd'; value_len];
    let records = TestBatch { records: &[(Some(b"k"), Some(&value))], ..Default::default() }.encode();
    let p = PartitionProduceData::default().with_index(0).with_records(Some(records.into()));
    let t = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![p]);
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![t])
}

/// Base offsets of every batch from offset 0, read back with one fetch per call.
fn batch_offsets(raw: &mut RawClient, topic: &str) -> Vec<i64> {
    let mut offsets = Vec::new();
    loop {
        let from = offsets.last().map_or(0, |o| o + 1);
        let part =
            FetchPartition::default().with_partition(0).with_fetch_offset(from).with_partition_max_bytes(8 << 20);
        let t = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![part]);
        let req = FetchRequest::default().with_max_wait_ms(10).with_max_bytes(8 << 20).with_topics(vec![t]);
        let resp: FetchResponse = raw.call(ApiKey::Fetch, 12, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "reads work on a full disk");
        let records = p.records.clone().unwrap_or_default();
        let before = offsets.len();
        for b in BatchIter::new(&records).with_crc_check() {
            offsets.push(b.expect("only whole, valid batches are stored").0.base_offset);
        }
        if offsets.len() == before {
            return offsets;
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let disk = SmallDisk::mount("3m").expect("mount a 3 MiB tmpfs");
    let data: &Path = &disk.path.join("data");
    let broker = TestBroker::start(&[&format!("log.dirs={}", data.display())]);
    // Small segments, so that the disk also fills while a segment rolls.
    broker.create_topic("fill", 1, &[("segment.bytes", "400000")]).await;
    // Ballast to free later.
    let ballast = disk.path.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1 << 20]).expect("ballast");

    let mut raw = RawClient::connect(&broker.bootstrap());
    let mut acknowledged = Vec::new();
    let mut refused = false;
    for _ in 0..100 {
        let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("fill", 150_000));
        let p = &resp.responses[0].partition_responses[0];
        match p.error_code {
            0 => acknowledged.push(p.base_offset),
            56 => {
                refused = true;
                break;
            }
            other => panic!("unexpected error {other}: {:?}", p.error_message),
        }
    }
    assert!(refused, "the disk never filled");
    assert!(!acknowledged.is_empty());
    assert_eq!(batch_offsets(&mut raw, "fill"), acknowledged, "exactly the acknowledged batches, nothing partial");
    // Still full: still refused, and still nothing partial.
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("fill", 150_000));
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 56, "KAFKA_STORAGE_ERROR");

    // To the last byte, so that the metadata log cannot take a record either.
    let brim = disk.path.join("brim");
    let mut file = std::fs::File::create(&brim).expect("brim");
    while std::io::Write::write_all(&mut file, &[0u8; 4096]).and_then(|()| file.sync_data()).is_ok() {}
    let admin = broker.admin();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(3)));
    // A record may still fit in the last page of the metadata log: create topics until one
    // does not.
    let mut while_full = 0;
    loop {
        let name = format!("while-full-{while_full}");
        let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
        match admin.create_topics([&topic], &options).await {
            Ok(r) if r[0].is_ok() => while_full += 1,
            _ => break,
        }
        assert!(while_full < 200, "metadata writes never failed on a full disk");
    }

    std::fs::remove_file(&ballast).expect("free space");
    std::fs::remove_file(&brim).expect("free space");
    let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce("fill", 150_000));
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "writes resume once space is free: {:?}", p.error_message);
    assert_eq!(p.base_offset, acknowledged.len() as i64, "offsets carry on with no hole");
    acknowledged.push(p.base_offset);
    assert_eq!(batch_offsets(&mut raw, "fill"), acknowledged);
    // The metadata quorum paused and resumes too (it used to stop for good).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = admin.create_topics([&NewTopic::new("after", 1, TopicReplication::Fixed(1))], &options).await;
        match r.as_ref().map(|r| r[0].clone()) {
            Ok(Ok(_)) | Ok(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => break,
            other => assert!(Instant::now() < deadline, "metadata writes did not resume: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    broker.create_topic("after-that", 1, &[]).await;
    // Topics created while the disk was full get their partitions once it is not.
    for i in 0..while_full {
        let topic = format!("while-full-{i}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resp: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce(&topic, 100));
            match resp.responses[0].partition_responses[0].error_code {
                0 => break,
                code => assert!(Instant::now() < deadline, "{topic} still refuses writes: error {code}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
