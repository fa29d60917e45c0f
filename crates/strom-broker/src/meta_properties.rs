//! `meta.properties` in each log directory: the cluster id, this node's id and the directory's
//! id, as `kafka-storage format` writes them. Every node of a cluster must be formatted with the
//! same cluster id (`strom storage format -t ID -c FILE`); a bare `strom server` formats its
//! directory itself on first start, as it always has.

use crate::server::StartError;
use std::path::Path;

pub const FILE_NAME: &str = "meta.properties";

/// Reads the cluster id from `dir`'s `meta.properties`, checking the node id. When the file is
/// missing, a single node formats the directory with a fresh cluster id; a cluster node refuses
/// to start, because its cluster id must be the one its peers were formatted with.
pub fn load_or_create(dir: &Path, node_id: i32, may_create: bool) -> Result<String, StartError> {
    let path = dir.join(FILE_NAME);
    if path.exists() {
        return load(dir, node_id);
    }
    if !may_create {
        return Err(StartError::MetaProperties(format!(
            "{} is not formatted. A cluster's nodes share one cluster id: run \
             `strom storage format -t <cluster id> -c <server.properties>` on every node with the same id \
             (`strom storage random-uuid` makes one)",
            dir.display()
        )));
    }
    let cluster_id = random_uuid();
    format(dir, &cluster_id, node_id)?;
    tracing::info!(%cluster_id, "formatted new data directory {}", dir.display());
    Ok(cluster_id)
}

/// The cluster id of a formatted directory; fails when it belongs to another node id.
pub fn load(dir: &Path, node_id: i32) -> Result<String, StartError> {
    let path = dir.join(FILE_NAME);
    let err = |source| StartError::DataDir { path: path.display().to_string(), source };
    let props = crate::config::parse_properties(&std::fs::read_to_string(&path).map_err(err)?);
    let stored_node: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
    if let Some(stored) = stored_node.filter(|n| *n != node_id) {
        return Err(StartError::MetaProperties(format!(
            "{} belongs to node.id {stored}, but this broker is node.id {node_id}",
            path.display()
        )));
    }
    props
        .get("cluster.id")
        .cloned()
        .ok_or_else(|| StartError::MetaProperties(format!("{} has no cluster.id", path.display())))
}

/// Writes `meta.properties` (atomically) for `cluster_id` and `node_id`.
pub fn format(dir: &Path, cluster_id: &str, node_id: i32) -> Result<(), StartError> {
    check_cluster_id(cluster_id).map_err(StartError::MetaProperties)?;
    let path = dir.join(FILE_NAME);
    let err = |source| StartError::DataDir { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let directory_id = random_uuid();
    let text = format!(
        "#\n#Written by Strom\ncluster.id={cluster_id}\ndirectory.id={directory_id}\nnode.id={node_id}\nversion=1\n"
    );
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// A new id in Kafka's printed form (what `kafka-storage random-uuid` prints).
pub fn random_uuid() -> String {
    base64url(uuid::Uuid::new_v4().as_bytes())
}

/// Kafka's cluster ids are 16 bytes written as 22 URL-safe base64 characters.
pub fn check_cluster_id(id: &str) -> Result<(), String> {
    let ok = id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a cluster id: expected 22 URL-safe base64 characters, as `strom storage random-uuid` prints"
        ))
    }
}

/// Kafka prints UUIDs (cluster id, topic id) as 22-character URL-safe base64 without padding.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_kafka_uuid_format() {
        assert_eq!(base64url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert!(check_cluster_id(&random_uuid()).is_ok());
        assert!(check_cluster_id("not-a-cluster-id").is_err());
    }

    #[test]
    fn a_cluster_node_needs_a_formatted_directory_and_keeps_its_node_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = load_or_create(dir.path(), 1, false).expect_err("unformatted").to_string();
        assert!(err.contains("strom storage format"), "{err}");
        let id = random_uuid();
        format(dir.path(), &id, 1).expect("format");
        assert_eq!(load_or_create(dir.path(), 1, false).expect("formatted"), id);
        assert!(load(dir.path(), 2).is_err());
    }
}
