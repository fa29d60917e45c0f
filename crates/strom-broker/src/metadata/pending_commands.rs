//! The commands a quorum core handed out that are not executed yet. A quorum core assumes its
//! commands run in order (persist an entry, then answer the leader; persist, then apply), so a
//! write that fails because the disk is full cannot be skipped: it stays at the front and the
//! node pauses — it neither votes, nor acknowledges, nor applies — until the same write works
//! again, as a data partition's appends resume once space is freed. Any other failure is fatal
//! to the quorum member (the directory cannot be trusted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use strom_metadata::quorum::QuorumCommand;
use strom_metadata::MetadataError;

#[derive(Default)]
pub(super) struct PendingCommands {
    queue: VecDeque<QuorumCommand>,
    /// Since when a full disk holds the queue (logged once when it starts and when it ends).
    stalled_since: Option<Instant>,
    /// The last time the held write was tried.
    last_try: Option<Instant>,
}

/// How often a write held by a full disk is tried again: often enough to resume soon after
/// space is freed, rarely enough not to fill what was freed with half-written retries.
const RETRY_EVERY: Duration = Duration::from_millis(500);

impl PendingCommands {
    pub(super) fn push(&mut self, commands: impl IntoIterator<Item = QuorumCommand>) {
        self.queue.extend(commands);
    }

    /// Whether a full disk holds the queue: new input must wait until `run` empties it.
    pub(super) fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// Whether it is time to try the held write again.
    pub(super) fn retry_due(&self) -> bool {
        self.last_try.is_none_or(|t| t.elapsed() >= RETRY_EVERY)
    }

    /// Executes the commands in order, each removed once `execute` succeeded. An error stops
    /// it; after a full disk (`is_disk_full`) the failed command stays first, to be tried again.
    pub(super) fn run(
        &mut self,
        mut execute: impl FnMut(&QuorumCommand) -> Result<(), MetadataError>,
    ) -> Result<(), MetadataError> {
        while let Some(command) = self.queue.front() {
            match execute(command) {
                Ok(()) => {
                    self.queue.pop_front();
                }
                Err(e) if e.is_disk_full() => {
                    self.last_try = Some(Instant::now());
                    if self.stalled_since.is_none() {
                        tracing::error!(
                            "the metadata log's disk is full: this node's part in the metadata quorum pauses \
                             (it neither votes, acknowledges nor applies) until space is freed: {e}"
                        );
                        self.stalled_since = Some(Instant::now());
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        self.last_try = None;
        if let Some(since) = self.stalled_since.take() {
            tracing::info!(
                paused_ms = since.elapsed().as_millis() as u64,
                "the metadata log is writable again: this node's part in the metadata quorum resumes"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_disk() -> MetadataError {
        MetadataError::Io { path: "raft.log".into(), source: std::io::Error::from_raw_os_error(28) }
    }

    #[test]
    fn a_full_disk_keeps_the_failed_command_first_and_the_rest_in_order_until_it_works() {
        let mut pending = PendingCommands::default();
        pending.push((0..3).map(|_| QuorumCommand::Send(Vec::new())));
        let mut calls = 0;
        let mut disk_full = true;
        let mut run = |pending: &mut PendingCommands, disk_full: bool| {
            pending.run(|_| {
                calls += 1;
                // The second command is the write that does not fit.
                if calls == 2 && disk_full {
                    Err(full_disk())
                } else {
                    Ok(())
                }
            })
        };
        assert!(run(&mut pending, disk_full).expect_err("stalled").is_disk_full());
        assert!(pending.is_stalled());
        assert_eq!(pending.queue.len(), 2, "the first command ran; the failed one and the next wait");
        disk_full = false;
        run(&mut pending, disk_full).expect("resumed");
        assert!(!pending.is_stalled() && pending.queue.is_empty());
        assert_eq!(calls, 4, "nothing ran twice but the failed write");
        let other = MetadataError::Io { path: "raft.log".into(), source: std::io::Error::from_raw_os_error(5) };
        assert!(!other.is_disk_full(), "EIO is not retried");
    }
}
