//! A follower's side of replication: batches fetched from the partition's leader are appended
//! as the leader wrote them (offsets, leader epochs, producer ids, sequences and timestamps kept;
//! nothing reassigned), and a follower whose log start is behind the leader's restarts its log
//! there.
//!
//! ```text
//!  leader:   [0 … 99 epoch 3][100 … 180 epoch 5]          fetch(offset 100, last epoch 3)
//!  follower: [0 … 99 epoch 3]  ── append_as_follower ──▶  [0 … 99 epoch 3][100 … 180 epoch 5]
//! ```

use strom_protocol::batch::{BatchError, BatchHeader, BatchIter};

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::outcome::AppendInfo;
use crate::transactions::EndTxnMarker;

impl Log {
    /// Appends the batches of one fetch response from the leader. Every batch's CRC is checked;
    /// a batch cut off at the end of `batches` (a leader may send one) is ignored and fetched
    /// again. Offsets must follow the log end and increase; leader epochs never go back. Returns
    /// `None` when no whole batch was there.
    pub fn append_as_follower(&mut self, batches: &[u8], now_ms: i64) -> Result<Option<AppendInfo>> {
        let mut parsed: Vec<(BatchHeader, usize)> = Vec::new();
        let mut iter = BatchIter::new(batches).with_crc_check();
        let mut at = 0usize;
        for item in iter.by_ref() {
            match item {
                Ok((header, _)) => {
                    parsed.push((header, at));
                    at += header.total_size();
                }
                Err(BatchError::Truncated { .. }) => break,
                Err(e) => return Err(StorageError::InvalidBatch(e)),
            }
        }
        let Some(last) = parsed.last().map(|(h, _)| *h) else {
            return Ok(None);
        };
        let mut next = self.log_end_offset;
        let mut epoch = self.epochs.latest_epoch().unwrap_or(-1);
        let mut record_count = 0u64;
        let mut max_timestamp = (i64::MIN, next);
        for (header, _) in &parsed {
            if header.base_offset < next || header.last_offset() < header.base_offset {
                return Err(StorageError::InvalidBatch(BatchError::Malformed(format!(
                    "replicated batch at offset {} does not follow the log end {next}",
                    header.base_offset
                ))));
            }
            if header.partition_leader_epoch < epoch {
                return Err(StorageError::InvalidBatch(BatchError::Malformed(format!(
                    "replicated batch of leader epoch {} after epoch {epoch}",
                    header.partition_leader_epoch
                ))));
            }
            epoch = header.partition_leader_epoch;
            next = header.next_offset();
            record_count += u64::try_from(header.records_count).unwrap_or(0);
            if header.max_timestamp > max_timestamp.0 {
                max_timestamp = (header.max_timestamp, header.last_offset());
            }
        }
        let base_offset = parsed[0].0.base_offset;
        // Markers are read before anything is written, so that a bad one changes nothing.
        let mut markers = Vec::with_capacity(parsed.len());
        for (header, start) in &parsed {
            markers.push(EndTxnMarker::parse(header, &batches[*start..*start + header.total_size()])?);
        }
        for (header, _) in &parsed {
            // Before the bytes, as for the leader's own appends: a crash in between leaves an
            // entry past the log end, which loading trims.
            self.record_epoch(header.partition_leader_epoch, header.base_offset)?;
        }
        self.maybe_roll(at as u64, last.last_offset(), now_ms)?;
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(&batches[..at], &parsed, interval, now_ms)?;
        for ((header, _), marker) in parsed.iter().zip(markers) {
            if let Some(done) = self.producers.apply(header, marker) {
                self.index_if_aborted(&done)?;
            }
        }
        self.log_end_offset = next;
        // No fsync here (this runs on the caller's thread, an async worker in the broker): the
        // flush is asked for and run by the caller on a blocking thread.
        self.note_appended(record_count, now_ms);
        Ok(Some(AppendInfo {
            base_offset,
            last_offset: next - 1,
            max_timestamp: max_timestamp.0,
            offset_of_max_timestamp: max_timestamp.1,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            record_count,
        }))
    }

    /// The leader no longer has the data this follower would fetch next (its log start is past
    /// our log end): drop everything and restart the log at `offset`, as Kafka's
    /// `truncateFullyAndStartAt`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.replace_all_segments(offset)?;
        self.recovery_point = offset;
        self.truncations += 1;
        self.reload_producer_state()?;
        tracing::info!(partition = %self.tp, offset, "emptied the log to follow the leader from its log start");
        Ok(())
    }

    /// The epoch of the last batch in the log (`lastFetchedEpoch` of a follower's fetch).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }
}
