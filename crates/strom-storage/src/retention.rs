//! Deleting old data: time and size retention, and DeleteRecords. Always whole segments, oldest
//! first, never the active one; the log start offset then moves to the first remaining segment
//! (or further, for DeleteRecords).
//!
//! ```text
//!  retention.ms:    [seg: newest record older than now − retention.ms] ─▶ delete, next…
//!  retention.bytes: while size − oldest segment ≥ retention.bytes      ─▶ delete, next…
//!  log start:       [seg: wholly below the log start offset]           ─▶ delete, next…
//! ```

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::outcome::RetentionOutcome;
use crate::segment::Segment;

impl Log {
    /// Deletes the oldest segments while `doomed(segment, next segment's base)` holds, never the
    /// active segment, and moves the log start offset past them.
    fn delete_oldest_while(
        &mut self,
        mut doomed: impl FnMut(&Segment, i64) -> bool,
        outcome: &mut RetentionOutcome,
    ) -> Result<()> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut to_delete = Vec::new();
        for pair in bases.windows(2) {
            let (base, next_base) = (pair[0], pair[1]);
            let Some(segment) = self.segments.get(&base) else {
                break;
            };
            if !doomed(segment, next_base) {
                break;
            }
            to_delete.push(base);
        }
        for base in to_delete {
            if let Some(segment) = self.segments.remove(&base) {
                outcome.deleted_segments += 1;
                outcome.deleted_bytes += segment.size();
                tracing::info!(partition = %self.tp, segment = base, "deleting segment");
                segment.delete()?;
            }
        }
        if let Some(&first) = self.segments.keys().next() {
            self.log_start_offset = self.log_start_offset.max(first);
        }
        let start = self.log_start_offset;
        self.epochs.truncate_from_start(start)
    }

    /// Applies `retention.ms` and `retention.bytes`, and removes segments wholly below the log
    /// start offset. Meant to run periodically (`log.retention.check.interval.ms`).
    /// Forgets producers idle for `producer.id.expiration.ms`; returns how many.
    pub fn expire_producers(&mut self, now_ms: i64) -> usize {
        let expired = self.producers.remove_expired(now_ms, self.config.producer_id_expiration_ms);
        if expired > 0 {
            tracing::info!(partition = %self.tp, expired, "expired idle producers (producer.id.expiration.ms)");
        }
        expired
    }

    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            self.delete_oldest_while(|s, _| now_ms.saturating_sub(s.largest_timestamp()) > retention_ms, &mut outcome)?;
        }
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - retention_bytes;
            self.delete_oldest_while(
                |s, _| {
                    if excess - s.size() as i64 >= 0 {
                        excess -= s.size() as i64;
                        true
                    } else {
                        false
                    }
                },
                &mut outcome,
            )?;
        }
        let log_start = self.log_start_offset;
        self.delete_oldest_while(|_, next_base| next_base <= log_start, &mut outcome)?;
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// DeleteRecords: makes `offset` the new log start offset (if it is higher) and deletes the
    /// segments wholly below it. The caller checks `offset` against the high watermark; offsets
    /// beyond the log end are refused here as well.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        if offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            let mut outcome = RetentionOutcome::default();
            self.delete_oldest_while(|_, next_base| next_base <= offset, &mut outcome)?;
        }
        Ok(self.log_start_offset)
    }
}
