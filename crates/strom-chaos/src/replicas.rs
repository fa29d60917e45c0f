//! The replicas' logs, read from the nodes' directories after a controlled shutdown: the record
//! batches of every replica of a partition below its high watermark must be byte for byte the
//! leader's (a follower stores what it fetched, unchanged).

use std::path::Path;

/// The bytes of the record batches below `below` in a partition directory, in offset order:
/// (base offset, batch bytes). Every length is checked against the file before it is used.
pub fn batches(dir: &Path, below: i64) -> Result<Vec<(i64, Vec<u8>)>, String> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for path in segments {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut pos = 0usize;
        while pos + 12 <= bytes.len() {
            let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap_or_default());
            let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap_or_default());
            let end = pos + 12 + len.max(0) as usize;
            if len < 49 || end > bytes.len() {
                return Err(format!("{}: a batch at byte {pos} runs past the file (length {len})", path.display()));
            }
            let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap_or_default());
            if base + delta as i64 >= below {
                return Ok(out);
            }
            out.push((base, bytes[pos..end].to_vec()));
            pos = end;
        }
    }
    Ok(out)
}

/// Compares the replicas of `topic`-`partition` found under the nodes' data directories below
/// `hw`. Returns the differences found (empty when identical), and how many replicas there were.
pub fn compare(
    data_dirs: &[(usize, std::path::PathBuf)],
    topic: &str,
    partition: i32,
    hw: i64,
) -> (usize, Vec<String>) {
    let name = format!("{topic}-{partition}");
    let mut logs = Vec::new();
    let mut problems = Vec::new();
    for (node, data) in data_dirs {
        let dir = data.join(&name);
        if !dir.is_dir() {
            continue;
        }
        match batches(&dir, hw) {
            Ok(b) => logs.push((*node, b)),
            Err(e) => problems.push(format!("node {node}: {e}")),
        }
    }
    let Some((first_node, first)) = logs.first() else {
        return (0, vec![format!("{name}: no replica found on disk")]);
    };
    for (node, other) in &logs[1..] {
        let (a, b) = (batch_end(first), batch_end(other));
        if a != b {
            problems
                .push(format!("{name}: below the HW {hw} node {first_node} holds up to {a}, node {node} up to {b}"));
        }
        if let Some(((base, _), _)) = first.iter().zip(other.iter()).find(|(x, y)| x != y) {
            problems.push(format!("{name}: nodes {first_node} and {node} differ at the batch of offset {base}"));
        }
    }
    (logs.len(), problems)
}

fn batch_end(batches: &[(i64, Vec<u8>)]) -> i64 {
    batches
        .last()
        .map_or(-1, |(base, b)| base + i32::from_be_bytes(b[23..27].try_into().unwrap_or_default()) as i64 + 1)
}
