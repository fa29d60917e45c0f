//! `partition.metadata` in each partition directory (Kafka's, KIP-516): the topic id the data
//! belongs to. A directory left behind by a deleted topic must never be served as a re-created
//! topic of the same name: when the ids differ, the old data goes before the partition opens.

use crate::meta_properties::base64url;
use std::path::Path;
use uuid::Uuid;

pub const FILE_NAME: &str = "partition.metadata";

/// Whether `dir` holds data of another topic id than `topic_id` (a missing file — data written
/// before Strom kept it — is taken as this topic's; a present but unreadable one as another's).
pub fn belongs_to_other_topic(dir: &Path, topic_id: Uuid) -> bool {
    match std::fs::read_to_string(dir.join(FILE_NAME)) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("topic_id:").map(str::trim))
            .is_none_or(|id| id != base64url(topic_id.as_bytes())),
        Err(_) => false,
    }
}

/// Records `topic_id` in `dir` (Kafka's format: `version: 0` and `topic_id: <base64>`).
pub fn write(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", base64url(topic_id.as_bytes()));
    let path = dir.join(FILE_NAME);
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_topics_directory_is_recognised() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!belongs_to_other_topic(dir.path(), a), "no file: data from before the file existed");
        write(dir.path(), a).expect("write");
        assert!(!belongs_to_other_topic(dir.path(), a));
        assert!(belongs_to_other_topic(dir.path(), b));
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        assert!(
            text.starts_with("version: 0\ntopic_id: ") && text.trim_end().len() == "version: 0\ntopic_id: ".len() + 22
        );
        std::fs::write(dir.path().join(FILE_NAME), "garbage").expect("write");
        assert!(belongs_to_other_topic(dir.path(), a));
    }
}
