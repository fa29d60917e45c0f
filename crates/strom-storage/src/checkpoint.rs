//! Offset checkpoint files at the root of the log directory, in Kafka's text format so that
//! operators' tools and habits carry over:
//!
//! ```text
//!  recovery-point-offset-checkpoint      log-start-offset-checkpoint
//!  0                    ← version        0
//!  2                    ← entry count    1
//!  orders 0 1200        ← topic partition offset
//!  orders 1 988
//! ```
//! Files are replaced atomically (temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves either the old or the new content. This module also holds those small file helpers.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::config::TopicPartition;
use crate::error::{IoContext, Result, StorageError};

/// Name of the file holding each partition's recovery point (offset below which data is fsynced).
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the file holding each partition's log start offset (moved by retention/DeleteRecords).
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";

/// Name of the file holding each partition's high watermark (Kafka's name), so that a restarted
/// replica does not show consumers less than was committed, nor more.
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

const CHECKPOINT_VERSION: i32 = 0;

/// fsyncs a directory so that renames and new files in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).ctx(|| format!("open directory {}", dir.display()))?;
    crate::fsync::sync_all(&f, dir)
}

/// Replaces `path` with `bytes` atomically (write a copy, rename it over), without waiting for
/// the disk: after a process crash the file is old or new, never torn; it is durable only once
/// it and its directory are fsynced.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
    let tmp = path.with_file_name(format!("{file_name}.tmp"));
    fs::write(&tmp, bytes).ctx(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
    let tmp = path.with_file_name(format!("{file_name}.tmp"));
    {
        let mut f = fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
        crate::fsync::sync_all(&f, &tmp)?;
    }
    fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Formats checkpoint content; entries are sorted so the file is stable and diffable.
pub fn format_checkpoint(entries: &HashMap<TopicPartition, i64>) -> String {
    let mut sorted: Vec<(&TopicPartition, &i64)> = entries.iter().collect();
    sorted.sort();
    let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", sorted.len());
    for (tp, offset) in sorted {
        out.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    out
}

/// Parses checkpoint content; any deviation from the format is an error naming the line.
pub fn parse_checkpoint(text: &str) -> std::result::Result<HashMap<TopicPartition, i64>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?.trim();
    if version.parse::<i32>().ok() != Some(CHECKPOINT_VERSION) {
        return Err(format!("unsupported version line {version:?}"));
    }
    let count_line = lines.next().ok_or("missing entry count")?.trim();
    let count: usize = count_line.parse().map_err(|_| format!("bad entry count {count_line:?}"))?;
    // The count is the file's word: room only for the entries its bytes can hold (each entry
    // line is at least "t 0 0\n").
    let mut entries = HashMap::with_capacity(count.min(text.len() / 6));
    for i in 0..count {
        let line = lines.next().ok_or_else(|| format!("expected {count} entries, found {i}"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(format!("malformed entry {line:?}"));
        };
        let partition: i32 = partition.parse().map_err(|_| format!("bad partition in {line:?}"))?;
        let offset: i64 = offset.parse().map_err(|_| format!("bad offset in {line:?}"))?;
        entries.insert(TopicPartition::new(topic, partition), offset);
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more entries than announced".into());
    }
    Ok(entries)
}

/// Reads a checkpoint file; a missing file is empty. A corrupt one is reported as such.
pub fn read_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(StorageError::Io { context: format!("read {}", path.display()), source: e }),
    };
    parse_checkpoint(&text).map_err(|reason| StorageError::Corrupt { path: path.to_path_buf(), reason })
}

/// Writes a checkpoint file atomically.
pub fn write_checkpoint(path: &Path, entries: &HashMap<TopicPartition, i64>) -> Result<()> {
    write_atomically(path, format_checkpoint(entries).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_text_format_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        let mut entries = HashMap::new();
        entries.insert(TopicPartition::new("orders", 1), 988);
        entries.insert(TopicPartition::new("orders", 0), 1200);
        write_checkpoint(&path, &entries).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "0\n2\norders 0 1200\norders 1 988\n");
        assert_eq!(read_checkpoint(&path).expect("read"), entries);
        assert!(read_checkpoint(&dir.path().join("missing")).expect("missing is empty").is_empty());
        fs::write(&path, "0\n3\norders 0 1\n").expect("write");
        assert!(matches!(read_checkpoint(&path), Err(StorageError::Corrupt { .. })));
    }
}
