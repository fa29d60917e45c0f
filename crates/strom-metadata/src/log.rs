//! The single-node metadata log: one JSON record per line in `<log.dirs>/__cluster_metadata/records.jsonl`.
//!
//! Each append is written and fsynced before the image changes, so an acknowledged admin
//! operation survives a crash. A torn last line (a crash mid-write) is dropped at load.

use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Directory under the data dir, named like Kafka's KRaft metadata partition.
pub const METADATA_DIR: &str = "__cluster_metadata";
pub const RECORDS_FILE: &str = "records.jsonl";

pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens (or creates) the log under `data_dir` and replays it into an image.
    pub fn open(data_dir: &Path) -> Result<(MetadataLog, MetadataImage), MetadataError> {
        let dir = data_dir.join(METADATA_DIR);
        let path = dir.join(RECORDS_FILE);
        let io = |source| MetadataError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut image = MetadataImage::default();
        let mut valid_len: u64 = 0;
        if path.exists() {
            let reader = BufReader::new(File::open(&path).map_err(io)?);
            let mut lines = reader.split(b'\n').enumerate().peekable();
            while let Some((n, line)) = lines.next() {
                let line = line.map_err(io)?;
                let is_last = lines.peek().is_none();
                match serde_json::from_slice::<MetadataRecord>(&line) {
                    Ok(record) => {
                        image.apply(&record);
                        valid_len += line.len() as u64 + 1;
                    }
                    Err(e) if is_last => {
                        tracing::warn!(path = %path.display(), "dropping torn last metadata record: {e}");
                    }
                    Err(e) => return Err(MetadataError::Corrupt { path, line: n + 1, reason: e.to_string() }),
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        if file.metadata().map_err(io)?.len() > valid_len {
            file.set_len(valid_len).map_err(io)?;
        }
        Ok((MetadataLog { path, file }, image))
    }

    /// Appends records durably (write + fsync) as one unit.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r)
                .map_err(|e| MetadataError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
            buf.push(b'\n');
        }
        let io = |source| MetadataError::Io { path: self.path.clone(), source };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord::Topic { name: name.into(), topic_id: Uuid::new_v4() }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let keep = topic("keep");
        {
            let (mut log, _) = MetadataLog::open(dir.path()).expect("open");
            log.append(std::slice::from_ref(&keep)).expect("append");
        }
        let file = dir.path().join(METADATA_DIR).join(RECORDS_FILE);
        let mut bytes = std::fs::read(&file).expect("read");
        bytes.extend_from_slice(b"{\"type\":\"Topic\",\"na");
        std::fs::write(&file, bytes).expect("write");
        let (mut log, image) = MetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(
            image.topic("keep").map(|t| t.topic_id),
            Some(match keep {
                MetadataRecord::Topic { topic_id, .. } => topic_id,
                _ => unreachable!(),
            })
        );
        assert_eq!(image.applied_records, 1);
        log.append(&[topic("after")]).expect("append after torn tail");
        drop(log);
        let (_, image) = MetadataLog::open(dir.path()).expect("reopen again");
        assert!(image.topic("after").is_some());
        assert_eq!(image.applied_records, 2);
    }
}
