//! The checks of what survived, against what the clients were told: every acknowledged value
//! is in the log exactly once, at the offset its acknowledgement named; each producer's values
//! are in the order it sent them in every partition; no offset was read with two values, nor
//! read and then lost.

use crate::report::Report;
use crate::workload::Seen;
use std::collections::{BTreeMap, HashMap};

fn parse(value: &str) -> Option<(usize, u64)> {
    let (p, s) = value.split_once('-')?;
    Some((p.parse().ok()?, s.parse().ok()?))
}

pub fn check(seen: &Seen, log: &[(i32, i64, String)], report: &mut Report) {
    report.acknowledged = seen.acked.len();
    report.failed_sends = seen.failed.len();
    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for (_, _, why) in &seen.failed {
        *reasons.entry(why.as_str()).or_default() += 1;
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().map(|(w, n)| (w.to_string(), n)).collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    reasons.truncate(5);
    report.failure_reasons = reasons;
    report.read_back = log.len();
    report.commits = seen.commits;
    report.commit_errors = seen.commit_errors;
    report.admin_ok = seen.admin_ok;
    report.admin_failed = seen.admin_failed;
    let mut at: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    let mut by_offset: HashMap<(i32, i64), &str> = HashMap::new();
    for (p, o, v) in log {
        at.entry(v.as_str()).or_default().push((*p, *o));
        by_offset.insert((*p, *o), v.as_str());
    }
    for a in &seen.acked {
        let value = format!("{}-{}", a.producer, a.seq);
        match at.get(value.as_str()).map(Vec::as_slice) {
            None => report.lost.push(format!("{value}, acknowledged at partition {} offset {}", a.partition, a.offset)),
            Some(places) if !places.contains(&(a.partition, a.offset)) => report.wrong_offset.push(format!(
                "{value}: acknowledged at partition {} offset {}, in the log at {places:?}",
                a.partition, a.offset
            )),
            Some(_) => {}
        }
    }
    let mut duplicated: Vec<String> = at
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(v, places)| format!("{v} at (partition, offset) {places:?}"))
        .collect();
    duplicated.sort();
    report.duplicated = duplicated;
    report.failed_but_written =
        seen.failed.iter().filter(|(p, s, _)| at.contains_key(format!("{p}-{s}").as_str())).count();
    // Order: per partition in offset order, each producer's sequence numbers only grow.
    let mut sorted: Vec<&(i32, i64, String)> = log.iter().collect();
    sorted.sort_by_key(|(p, o, _)| (*p, *o));
    let mut last: BTreeMap<(i32, usize), (u64, i64)> = BTreeMap::new();
    for (p, o, v) in sorted {
        let Some((producer, seq)) = parse(v) else {
            report.topics_wrong.push(format!("partition {p} offset {o} holds {v:?}, which no producer wrote"));
            continue;
        };
        if let Some((prev, prev_offset)) = last.insert((*p, producer), (seq, *o)) {
            if seq < prev {
                report.reordered.push(format!(
                    "partition {p}: {producer}-{seq} at offset {o} after {producer}-{prev} at offset {prev_offset}"
                ));
            }
        }
    }
    report.divergent_reads = seen.divergent_reads.clone();
    let mut vanished: Vec<String> = seen
        .reads
        .iter()
        .filter(|(k, v)| by_offset.get(k) != Some(&v.as_str()))
        .map(|((p, o), v)| {
            let now = by_offset.get(&(*p, *o)).map_or("nothing".to_string(), |n| format!("{n:?}"));
            format!("partition {p} offset {o}: a consumer read {v:?}, the log now holds {now}")
        })
        .collect();
    vanished.sort();
    report.divergent_reads.extend(vanished);
    report.committed_went_back = seen.committed_went_back.clone();
}
