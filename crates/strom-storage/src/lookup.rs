//! Timestamp lookups for ListOffsets: the first offset at or after a timestamp, and the record
//! with the largest timestamp.
//!
//! ```text
//!  segments ──(first whose max timestamp ≥ target)──▶ time index ──▶ offset index ──▶ position
//!  scan batches from there ──(first batch with max timestamp ≥ target)──▶ its records
//! ```
//! Compressed batches are inflated (bounded, as everywhere) to find the exact record, as Kafka
//! does. LogAppendTime batches need no record scan: all their records carry the batch's
//! timestamp.

use strom_protocol::batch::{BatchHeader, RecordIter, TimestampType, BATCH_HEADER_LEN};
use strom_protocol::compression::{decompress, BROKER_MAX_INFLATED_BATCH_BYTES};

use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::segment::Segment;

/// The first (offset, timestamp) in a batch with a record at or after `target` and at or above
/// `min_offset`; `None` if the batch's records say otherwise.
fn search_batch(
    segment: &Segment,
    pos: u64,
    header: &BatchHeader,
    target: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>> {
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Ok(Some((header.base_offset.max(min_offset), header.max_timestamp)));
    }
    let bytes = segment.region(pos, header.total_size()).read()?;
    let records =
        match decompress(header.compression(), bytes.slice(BATCH_HEADER_LEN..), BROKER_MAX_INFLATED_BATCH_BYTES) {
            Ok(records) => records,
            Err(e) => {
                // Stored batches passed their CRC check; one that will not inflate within the bound
                // is answered by its first offset, as before compressed batches were searched.
                tracing::warn!("timestamp lookup in the batch at offset {}: {e}", header.base_offset);
                return Ok(Some((header.base_offset.max(min_offset), header.max_timestamp)));
            }
        };
    for record in RecordIter::new(&records) {
        let record = record.map_err(StorageError::InvalidBatch)?;
        let offset = header.base_offset + i64::from(record.offset_delta);
        let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
        if offset >= min_offset && timestamp >= target {
            return Ok(Some((offset, timestamp)));
        }
    }
    Ok(None)
}

/// Searches one segment for the first record with timestamp ≥ `target` at an offset ≥ `min_offset`.
fn search_segment(segment: &Segment, target: i64, min_offset: i64) -> Result<Option<(i64, i64)>> {
    let start = segment.time_lookup(target).max(min_offset);
    let mut pos = segment.lookup_position(start);
    while let Some(header) = segment.header_at(pos)? {
        if header.last_offset() >= min_offset && header.max_timestamp >= target {
            if let Some(found) = search_batch(segment, pos, &header, target, min_offset)? {
                return Ok(Some(found));
            }
        }
        pos += header.total_size() as u64;
    }
    Ok(None)
}

impl Log {
    /// ListOffsets by timestamp: the first offset whose record timestamp is ≥ `timestamp`, with
    /// that record's timestamp; `None` if every record is older. Offsets below the log start are
    /// never returned. See the module docs for compressed batches.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for segment in self.segments.values() {
            match segment.max_timestamp() {
                Some((max, _)) if max >= timestamp => {}
                _ => continue,
            }
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(found) = search_segment(segment, timestamp, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets `MAX_TIMESTAMP` (-3): the largest timestamp in the log and the offset of the
    /// first record carrying it; `None` for an empty log or one without timestamps.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(&Segment, i64, i64)> = None;
        for segment in self.segments.values() {
            if let Some((ts, offset)) = segment.max_timestamp() {
                if best.is_none_or(|(_, best_ts, _)| ts > best_ts) {
                    best = Some((segment, ts, offset));
                }
            }
        }
        let (segment, ts, batch_offset) = best?;
        match search_segment(segment, ts, segment.base_offset()) {
            Ok(Some((offset, found_ts))) if found_ts == ts => Some((ts, offset)),
            _ => Some((ts, batch_offset)),
        }
    }
}
