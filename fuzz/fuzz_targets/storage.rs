//! What Strom reads back from disk after a crash: a partition directory whose segment, offset
//! index, producer-state snapshot, leader-epoch and checkpoint files hold the fuzzer's bytes, opened with
//! recovery (unclean shutdown) and read from the start to the end; and a metadata log replayed.
//! Corrupt files must be truncated, rebuilt or refused with an error, never a panic or an
//! allocation the files do not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use strom_storage::{read_checkpoint, Log, LogConfig, TopicPartition};

/// Splits `data` into parts at the lengths given by its first bytes (two per part).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let (lens, mut rest) = data.split_at((2 * n).min(data.len()));
    let mut out = Vec::new();
    for i in 0..n {
        let len = lens.get(2 * i..2 * i + 2).map_or(rest.len(), |b| u16::from_le_bytes([b[0], b[1]]) as usize);
        let (part, tail) = rest.split_at(len.min(rest.len()));
        out.push(part);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let root = std::env::temp_dir().join(format!("strom-fuzz-storage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir: PathBuf = root.join("t-0");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = parts(data, 5);
    let stem = "00000000000000000000";
    for (suffix, bytes) in [(".log", p[0]), (".index", p[1]), (".timeindex", p[2]), (".snapshot", p[3])] {
        std::fs::write(dir.join(format!("{stem}{suffix}")), bytes).expect("write");
    }
    std::fs::write(dir.join("leader-epoch-checkpoint"), p[4]).expect("write");
    let checkpoint = root.join("recovery-point-offset-checkpoint");
    std::fs::write(&checkpoint, p[4]).expect("write");
    let _ = read_checkpoint(&checkpoint);
    let config = LogConfig::default();
    if let Ok(log) = Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, false) {
        let mut offset = 0;
        for _ in 0..64 {
            match log.read(offset, 1 << 20, i64::MAX) {
                Ok(out) if !out.records.is_empty() && out.log_end_offset > offset => {
                    let last = strom_protocol::batch::BatchIter::new(&out.records).last();
                    match last {
                        Some(Ok((h, _))) if h.last_offset() >= offset => offset = h.last_offset() + 1,
                        _ => break,
                    }
                }
                _ => break,
            }
        }
    }
    let meta = root.join("meta");
    std::fs::create_dir_all(meta.join("__cluster_metadata")).expect("meta dir");
    std::fs::write(meta.join("__cluster_metadata/records.jsonl"), data).expect("write");
    let _ = strom_metadata::log::MetadataLog::open(&meta);
    // The metadata quorum's files: its log, its term and vote, a snapshot; restored into a core.
    let quorum = meta.join(strom_metadata::quorum::QUORUM_DIR);
    std::fs::create_dir_all(&quorum).expect("quorum dir");
    std::fs::write(quorum.join("raft.log"), p[0]).expect("write");
    std::fs::write(quorum.join("quorum-state"), p[4]).expect("write");
    std::fs::write(quorum.join("00000000000000000002-0000000001.checkpoint"), p[3]).expect("write");
    if let Ok((_, state)) = strom_metadata::quorum::DurableQuorumLog::open(&meta) {
        if state.snapshot.get_metadata().index > 0 {
            let _ = strom_metadata::MetadataImage::decode_snapshot(&state.snapshot.data);
        }
        for e in &state.entries {
            let _ = strom_metadata::image::decode_records(&e.data);
        }
        let settings = strom_metadata::quorum::QuorumSettings {
            node_id: 1,
            voters: vec![1],
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_append_bytes: 1 << 20,
            seed: 1,
        };
        if let Ok(mut core) = strom_metadata::quorum::QuorumCore::restore(settings, state) {
            let _ = core.campaign();
            for _ in 0..4 {
                let _ = core.poll();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
});
