//! Delayed operations. For now: fetch requests that wait for `fetch.min.bytes` of new data, up
//! to `fetch.max.wait.ms`. Every append bumps a counter; waiting fetches wake, re-check, and go
//! back to sleep until their deadline. (acks=all needs no waiting on a single node, where the
//! leader is the whole ISR.)

use tokio::sync::watch;
use tokio::time::Instant;

/// Wakes fetches that wait for data.
pub struct FetchPurgatory {
    appends: watch::Sender<u64>,
}

impl Default for FetchPurgatory {
    fn default() -> Self {
        FetchPurgatory { appends: watch::channel(0).0 }
    }
}

impl FetchPurgatory {
    /// Called after data was appended (the high watermark moved).
    pub fn notify_append(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A subscription taken *before* checking for data, so that no append is missed between the
    /// check and the wait.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appends.subscribe()
    }

    /// Waits until something is appended or the deadline passes. Returns false at the deadline.
    pub async fn wait(rx: &mut watch::Receiver<u64>, deadline: Instant) -> bool {
        matches!(tokio::time::timeout_at(deadline, rx.changed()).await, Ok(Ok(())))
    }
}
