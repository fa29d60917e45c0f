//! What a run found: the faults it injected, what the workload wrote and read, and every
//! violation of the guarantees, printed with the seed that replays the run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Default)]
pub struct Report {
    pub seed: u64,
    pub nodes: usize,
    pub rounds: usize,
    /// One line per round: what was done and how long the cluster took to be whole again.
    pub history: Vec<String>,
    pub faults: BTreeMap<&'static str, usize>,
    /// The longest time no write was acknowledged, from a fault until the cluster was whole.
    pub unavailability: BTreeMap<&'static str, Duration>,
    pub acknowledged: usize,
    pub failed_sends: usize,
    /// Failed sends whose value is in the log anyway (allowed: the outcome was unknown).
    pub failed_but_written: usize,
    pub read_back: usize,
    /// Why sends failed: the most frequent error messages and their counts.
    pub failure_reasons: Vec<(String, usize)>,
    pub commits: u64,
    pub commit_errors: u64,
    pub admin_ok: u64,
    pub admin_failed: u64,
    // Violations: each a line naming the records or nodes involved.
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub reordered: Vec<String>,
    pub wrong_offset: Vec<String>,
    pub divergent_reads: Vec<String>,
    pub committed_went_back: Vec<String>,
    pub replicas_differ: Vec<String>,
    pub topics_wrong: Vec<String>,
    pub panics: Vec<String>,
    pub exits: Vec<String>,
    pub not_recovered: Vec<String>,
}

impl Report {
    fn violations(&self) -> [(&'static str, &Vec<String>); 11] {
        [
            ("lost acknowledged records", &self.lost),
            ("duplicated records", &self.duplicated),
            ("records out of their producer's order", &self.reordered),
            ("acknowledged at another offset than the log holds", &self.wrong_offset),
            ("offsets read with two different values", &self.divergent_reads),
            ("committed offsets that went back", &self.committed_went_back),
            ("replicas that differ below the HW", &self.replicas_differ),
            ("topics in the wrong state", &self.topics_wrong),
            ("panics", &self.panics),
            ("nodes that exited on their own", &self.exits),
            ("rounds after which the cluster did not recover", &self.not_recovered),
        ]
    }

    pub fn violation_count(&self) -> usize {
        self.violations().iter().map(|(_, v)| v.len()).sum()
    }

    pub fn passed(&self) -> bool {
        self.violation_count() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} · {} nodes · {} rounds", self.seed, self.nodes, self.rounds)?;
        for line in &self.history {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "faults by type (longest time without an acknowledged write):")?;
        for (kind, count) in &self.faults {
            let gap = self.unavailability.get(kind).copied().unwrap_or_default();
            writeln!(f, "  {kind:<16} {count:>4}   {:>7.1} s", gap.as_secs_f64())?;
        }
        writeln!(
            f,
            "records: {} acknowledged, {} sends failed ({} of them written anyway), {} read back",
            self.acknowledged, self.failed_sends, self.failed_but_written, self.read_back
        )?;
        for (why, n) in &self.failure_reasons {
            writeln!(f, "  {n:>9} sends failed with: {why}")?;
        }
        writeln!(
            f,
            "lost {} · duplicated {} · reordered {} · group commits {} ({} failed) · admin operations {} ({} failed)",
            self.lost.len(),
            self.duplicated.len(),
            self.reordered.len(),
            self.commits,
            self.commit_errors,
            self.admin_ok + self.admin_failed,
            self.admin_failed
        )?;
        for (what, lines) in self.violations() {
            if lines.is_empty() {
                continue;
            }
            writeln!(f, "VIOLATION: {} {what}:", lines.len())?;
            for l in lines.iter().take(20) {
                writeln!(f, "  {l}")?;
            }
            if lines.len() > 20 {
                writeln!(f, "  ... and {} more", lines.len() - 20)?;
            }
        }
        if self.passed() {
            writeln!(f, "PASSED")
        } else {
            writeln!(f, "FAILED: replay with --seed {} and the same options", self.seed)
        }
    }
}
