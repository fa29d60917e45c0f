//! Deliberate faults, to show that the fault harness (`strom-chaos`) catches them. They exist
//! in debug builds only: a release build never reads `STROM_FAULT_INJECTION`.
//!
//! - `ack-before-hw`: acks=all produces are answered once the leader has appended them, without
//!   waiting for the high watermark: a leader that dies or is cut off loses acknowledged records.

#[cfg(debug_assertions)]
fn enabled(fault: &str) -> bool {
    static FAULTS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let faults = FAULTS.get_or_init(|| {
        let faults = std::env::var("STROM_FAULT_INJECTION").unwrap_or_default();
        if !faults.is_empty() {
            tracing::warn!(%faults, "DELIBERATE FAULTS ARE ON (STROM_FAULT_INJECTION): this broker loses data");
        }
        faults
    });
    faults.split(',').any(|f| f.trim() == fault)
}

#[cfg(not(debug_assertions))]
fn enabled(_fault: &str) -> bool {
    false
}

/// `ack-before-hw` is on.
pub fn ack_before_high_watermark() -> bool {
    enabled("ack-before-hw")
}
