//! The log of one partition: an ordered set of segments, the last of which takes appends.
//!
//! ```text
//!  log start offset          recovery point                       log end offset (LEO)
//!        │                        │                                        │
//!  [seg 0 ……][seg 1000 ……][seg 2000 …………………………][seg 3000 (active) ……]│
//!   deleted by retention   fsynced               written, maybe not fsynced
//! ```
//! Opening and recovery live in `recovery.rs`, retention and DeleteRecords in `retention.rs`,
//! timestamp lookups in `lookup.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use strom_protocol::batch::{BatchError, BatchHeader, BatchIter, BATCH_HEADER_LEN};

use crate::checkpoint::sync_dir;
use crate::config::{LogConfig, TopicPartition};
use crate::error::{IoContext, Result, StorageError};
use crate::leader_epoch::LeaderEpochCache;
use crate::outcome::{AppendInfo, AppendOutcome, LoadSummary, ReadOutcome, RegionRead};
use crate::producer_state::{ProducerStateManager, Verdict};
use crate::segment::Segment;
use crate::snapshot;
use crate::transactions::{CompletedTxn, EndTxnMarker, TransactionTracker};

/// One partition's log. Not thread-safe by itself: the broker wraps each in its own lock, so that
/// appends to one partition are serialised and different partitions never contend.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) tp: TopicPartition,
    pub(crate) config: LogConfig,
    /// By base offset; never empty after `open`.
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) recovery_point: i64,
    pub(crate) producers: ProducerStateManager,
    pub(crate) unflushed_messages: u64,
    pub(crate) last_flush_ms: i64,
    /// New files were created since the last flush, so the directory needs an fsync too.
    pub(crate) dir_dirty: bool,
    /// A roll happened: the segments below this offset are to be flushed in the background.
    pub(crate) flush_after_roll: Option<i64>,
    /// The offset up to which appends asked for a flush (`flush.messages` or `flush.ms`
    /// reached; -1: none): see [`Log::take_requested_flush`].
    pub(crate) flush_target: i64,
    /// Producer snapshots written at a roll without an fsync, for the next flush.
    pub(crate) unsynced_snapshots: Vec<PathBuf>,
    /// How many times the log was truncated: a background flush taken before a truncation must
    /// not move the recovery point after it (the offsets may hold other, unsynced data by then).
    pub(crate) truncations: u64,
    pub(crate) load_summary: LoadSummary,
    /// The first offset of each leader epoch (`leader-epoch-checkpoint`).
    pub(crate) epochs: LeaderEpochCache,
}

/// Wall-clock milliseconds, for the few places without a caller-supplied `now_ms`.
pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Log {
    /// Opens (or creates) the log in `dir`. After an unclean shutdown the segments from the one
    /// holding `recovery_point` onwards are validated batch by batch and a torn tail is cut off;
    /// indexes that fail their sanity check are rebuilt in any case. Producer state is restored
    /// from the latest snapshot plus the batches after it.
    pub fn open(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        clean_shutdown: bool,
    ) -> Result<Log> {
        crate::recovery::load(dir, tp, config, recovery_point, log_start_offset, clean_shutdown)
    }

    /// Appends the batches of one produce request for this partition, all or nothing.
    ///
    /// `batches` must have passed `validate_produce_batches`. Each batch gets the next offsets
    /// (its `baseOffset` and, with `leader_epoch`, its `partitionLeaderEpoch` are written to the
    /// file in place of what came; the bytes are otherwise stored as they came, and never copied
    /// on the way). Idempotent producers' sequences are checked first; a retried batch is answered
    /// from the producer state without writing.
    pub fn append(&mut self, batches: &[u8], leader_epoch: i32, now_ms: i64) -> Result<AppendOutcome> {
        Ok(self.append_batches(batches, leader_epoch, now_ms)?.0)
    }

    /// Appends an end-of-transaction marker for `producer_id` (a partition leader, on the
    /// transaction coordinator's WriteTxnMarkers), after Kafka's checks: the producer's epoch
    /// has not moved past `producer_epoch` (INVALID_PRODUCER_EPOCH), and no newer coordinator
    /// wrote a marker for it (TRANSACTION_COORDINATOR_FENCED). Returns where it went and the
    /// transaction it ended (none for a producer without an open transaction here).
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(AppendInfo, Option<CompletedTxn>)> {
        self.producers.validate_marker(producer_id, producer_epoch, marker.coordinator_epoch)?;
        let batch = marker.encode_batch(producer_id, producer_epoch, now_ms);
        match self.append_batches(&batch, leader_epoch, now_ms)? {
            (AppendOutcome::Appended(info), mut completed) => Ok((info, completed.pop())),
            (AppendOutcome::Duplicate(_), _) => unreachable!("a marker is never taken for a retried batch"),
        }
    }

    /// The open transactions and the last stable offset they allow.
    pub fn transactions(&self) -> &TransactionTracker {
        self.producers.transactions()
    }

    /// Records `done` in the active segment's aborted-transaction index if it was aborted (its
    /// marker was just appended there, by this leader or as a follower).
    pub(crate) fn index_if_aborted(&mut self, done: &CompletedTxn) -> Result<()> {
        if !done.aborted {
            return Ok(());
        }
        let lso = self.producers.transactions().stable_offset_after(done);
        let index = self.active_mut().txn_index_mut();
        let new_file = index.file_handle().is_none();
        index.append(crate::recovery::aborted_entry(done, lso))?;
        self.dir_dirty |= new_file;
        Ok(())
    }

    /// What a `read_committed` consumer may read up to (exclusive), given the partition's high
    /// watermark: the first offset of the earliest transaction still open or not yet replicated,
    /// never past the HW nor below the log start (Kafka's `lastStableOffset`).
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.transactions().last_stable_offset(high_watermark).max(self.log_start_offset.min(high_watermark))
    }

    /// The aborted transactions a `read_committed` fetch of `[fetch_offset, upper_bound)` must
    /// name, oldest marker first (Kafka's `collectAbortedTransactions`): from the segment holding
    /// `fetch_offset` on, until an entry's last stable offset reaches the bound.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper_bound: i64) -> Vec<crate::transactions::AbortedTxn> {
        let first_base = self.segments.range(..=fetch_offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut found = Vec::new();
        for segment in self.segments.range(first_base..).map(|(_, s)| s) {
            let (entries, complete) = segment.txn_index().collect(fetch_offset, upper_bound);
            found.extend(entries);
            if complete {
                break;
            }
        }
        found
    }

    /// The partition's high watermark moved (the replica state knows it, not the log): ended
    /// transactions whose marker is below it no longer hold the last stable offset back.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.producers.on_high_watermark(high_watermark);
    }

    /// Appends, returning the transactions that the batches' markers (if any) ended.
    fn append_batches(
        &mut self,
        batches: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(AppendOutcome, Vec<CompletedTxn>)> {
        let mut parsed: Vec<(BatchHeader, usize)> = Vec::new();
        for item in BatchIter::new(batches) {
            let (header, _) = item?;
            parsed.push((header, 0));
        }
        let mut at = 0usize;
        for (header, start) in parsed.iter_mut() {
            *start = at;
            at += header.total_size();
        }
        if parsed.is_empty() {
            return Err(StorageError::InvalidBatch(BatchError::Empty));
        }
        for (header, _) in &parsed {
            if header.total_size() > self.config.max_message_bytes as usize {
                return Err(StorageError::MessageTooLarge {
                    size: header.total_size(),
                    max: self.config.max_message_bytes,
                });
            }
        }
        let headers: Vec<BatchHeader> = parsed.iter().map(|(h, _)| *h).collect();
        if let Verdict::Duplicate(meta) = self.producers.validate(&headers)? {
            let duplicate = AppendOutcome::Duplicate(AppendInfo {
                base_offset: meta.first_offset,
                last_offset: meta.last_offset,
                max_timestamp: meta.timestamp,
                offset_of_max_timestamp: meta.last_offset,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset,
                record_count: 0,
            });
            return Ok((duplicate, Vec::new()));
        }
        // Markers are read before anything is written, so that a bad one changes nothing.
        let mut markers = Vec::with_capacity(parsed.len());
        for (header, start) in &parsed {
            markers.push(EndTxnMarker::parse(header, &batches[*start..*start + header.total_size()])?);
        }

        let mut next = self.log_end_offset;
        let mut max_timestamp = (i64::MIN, next);
        let mut record_count = 0u64;
        for (header, start) in parsed.iter_mut() {
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            if self.config.log_append_time {
                header.set_log_append_time(now_ms, &batches[*start + BATCH_HEADER_LEN..*start + header.total_size()]);
            }
            next = header.next_offset();
            if header.max_timestamp > max_timestamp.0 {
                max_timestamp = (header.max_timestamp, header.last_offset());
            }
            record_count += u64::try_from(header.records_count).unwrap_or(0);
        }
        let base_offset = self.log_end_offset;
        let last_offset = next - 1;
        // The epoch is recorded before the batches: a crash in between leaves an entry past the
        // log end, which loading trims, never a batch whose epoch the cache lacks.
        self.record_epoch(leader_epoch, base_offset)?;

        self.maybe_roll(at as u64, last_offset, now_ms)?;
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(&batches[..at], &parsed, interval, now_ms)?;
        let mut completed = Vec::new();
        for ((header, _), marker) in parsed.iter().zip(markers) {
            if let Some(done) = self.producers.apply(header, marker) {
                self.index_if_aborted(&done)?;
                completed.push(done);
            }
        }
        self.log_end_offset = next;
        // No fsync here (this runs on the caller's thread, an async worker in the broker): the
        // flush is asked for and run by the caller on a blocking thread.
        self.note_appended(record_count, now_ms);
        let info = AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: max_timestamp.0,
            offset_of_max_timestamp: max_timestamp.1,
            log_append_time_ms: if self.config.log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            record_count,
        };
        Ok((AppendOutcome::Appended(info), completed))
    }

    /// Reads whole batches starting with the one that holds `offset`: at most `max_bytes`, except
    /// that the first batch is returned whole even if larger (as Kafka does, so a consumer can
    /// always make progress), and never a batch starting at or beyond `max_offset_exclusive` (the
    /// high watermark or last stable offset).
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset_exclusive: i64) -> Result<ReadOutcome> {
        let found = self.read_region(offset, max_bytes, max_offset_exclusive)?;
        Ok(ReadOutcome {
            records: match found.regions.as_slice() {
                [] => bytes::Bytes::new(),
                [one] => one.read()?,
                several => {
                    let mut all = Vec::with_capacity(found.len());
                    for r in several {
                        all.extend_from_slice(&r.read()?);
                    }
                    all.into()
                }
            },
            log_start_offset: found.log_start_offset,
            log_end_offset: found.log_end_offset,
        })
    }

    /// What [`Log::read`] would return, as regions of segment files (one per segment, in offset
    /// order; a read fills `max_bytes` across segment boundaries) to be read (or sent) later,
    /// without holding whoever guards this log. Only batch headers are read here.
    pub fn read_region(&self, offset: i64, max_bytes: usize, max_offset_exclusive: i64) -> Result<RegionRead> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        let mut outcome = RegionRead {
            regions: Vec::new(),
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
            next_offset: offset,
        };
        if offset == self.log_end_offset || offset >= max_offset_exclusive {
            return Ok(outcome);
        }
        let mut total = 0usize;
        let first_base = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        for segment in self.segments.range(first_base..).map(|(_, s)| s) {
            let mut pos = segment.lookup_position(offset);
            let mut range: Option<(u64, u64)> = None;
            let mut stop = false;
            while let Some(header) = segment.header_at(pos)? {
                let size = header.total_size() as u64;
                if header.last_offset() < offset {
                    pos += size;
                    continue;
                }
                if header.base_offset >= max_offset_exclusive {
                    stop = true;
                    break;
                }
                // The very first batch goes whole even past max_bytes (a consumer must make
                // progress); every later one only if it fits.
                if total > 0 && total + size as usize > max_bytes {
                    stop = true;
                    break;
                }
                total += size as usize;
                outcome.next_offset = header.next_offset();
                match &mut range {
                    None => range = Some((pos, pos + size)),
                    Some((_, end)) => *end += size,
                }
                pos += size;
            }
            if let Some((start, end)) = range {
                outcome.regions.push(segment.region(start, (end - start) as usize));
            }
            if stop || total >= max_bytes {
                break;
            }
        }
        Ok(outcome)
    }

    /// Rolls to a new segment if the pending append would not fit the active one, the active one
    /// is older than `segment.ms`, or the new offsets would not fit its 32-bit relative offsets.
    pub(crate) fn maybe_roll(&mut self, append_bytes: u64, last_offset: i64, now_ms: i64) -> Result<()> {
        let active = self.active();
        if active.size() == 0 {
            return Ok(());
        }
        let too_big = active.size() + append_bytes > self.config.segment_bytes.min(u64::from(u32::MAX));
        let too_old = active.is_due_for_time_roll(now_ms, self.config.segment_ms);
        let offset_overflow = last_offset - active.base_offset() > i64::from(u32::MAX);
        if too_big || too_old || offset_overflow {
            self.roll()?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset and snapshots the producer state there.
    pub(crate) fn roll(&mut self) -> Result<()> {
        let new_base = self.log_end_offset;
        if self.active().base_offset() == new_base {
            return Ok(());
        }
        self.active_mut().on_become_inactive()?;
        let segment = Segment::create(&self.dir, new_base)?;
        self.segments.insert(new_base, segment);
        self.dir_dirty = true;
        // Without an fsync (a roll happens on the append path): synced by the roll's flush.
        let snapshot = snapshot::write_unsynced(&self.dir, &self.producers, new_base)?;
        self.unsynced_snapshots.push(snapshot);
        self.flush_after_roll = Some(new_base);
        tracing::debug!(partition = %self.tp, base_offset = new_base, "rolled new segment");
        Ok(())
    }

    /// Rolls if the active segment is older than `segment.ms`; for idle partitions, so that time
    /// retention can still delete their data.
    pub fn roll_if_due(&mut self, now_ms: i64) -> Result<()> {
        if self.active().is_due_for_time_roll(now_ms, self.config.segment_ms) {
            self.roll()?;
        }
        Ok(())
    }

    /// fsyncs everything written since the recovery point and moves the recovery point to the LEO.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_at(wall_clock_ms())
    }

    pub(crate) fn flush_at(&mut self, now_ms: i64) -> Result<()> {
        let from = self.segments.range(..=self.recovery_point).next_back().map_or(i64::MIN, |(b, _)| *b);
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            segment.flush()?;
        }
        let rewritten = self.take_rewritten();
        crate::flush::sync_rewritten(&rewritten)?;
        self.dir_dirty |= !rewritten.is_empty();
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Flushes if `flush.ms` has passed since the last flush.
    pub fn maybe_flush_by_time(&mut self, now_ms: i64) -> Result<()> {
        if self.recovery_point < self.log_end_offset
            && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_interval_ms
        {
            self.flush_at(now_ms)?;
        }
        Ok(())
    }

    /// Replaces the configuration (a topic config change); it applies from the next operation.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Closes cleanly: flushes, records the final max timestamp of the active segment and writes a
    /// producer snapshot at the LEO, so that the next open needs no scan.
    pub fn close(mut self) -> Result<()> {
        self.active_mut().on_become_inactive()?;
        self.flush()?;
        snapshot::write(&self.dir, &self.producers, self.log_end_offset)?;
        Ok(())
    }

    /// Removes the partition's directory and everything in it (topic deletion, reassignment).
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        match std::fs::remove_dir_all(&dir) {
            // Already gone (removed as a stray directory at start-up): nothing is left to do.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other.ctx(|| format!("delete log directory {}", dir.display())),
        }
    }

    pub(crate) fn active(&self) -> &Segment {
        match self.segments.values().next_back() {
            Some(s) => s,
            None => panic!("log {} has no segment", self.tp),
        }
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        match self.segments.values_mut().next_back() {
            Some(s) => s,
            None => panic!("log has no segment"),
        }
    }

    /// First offset still readable; moved by retention and DeleteRecords.
    /// Notes that batches of `leader_epoch` start at `offset` when that epoch is new to the log.
    pub(crate) fn record_epoch(&mut self, leader_epoch: i32, offset: i64) -> Result<()> {
        if leader_epoch < 0 {
            return Ok(());
        }
        match self.epochs.latest_epoch() {
            Some(latest) if latest == leader_epoch => Ok(()),
            Some(latest) => {
                assert!(latest < leader_epoch, "append in leader epoch {leader_epoch} after epoch {latest}");
                self.epochs.assign(leader_epoch, offset)
            }
            None => self.epochs.assign(leader_epoch, offset),
        }
    }

    /// OffsetForLeaderEpoch for this log: the largest epoch ≤ `epoch` it holds and where the
    /// next one starts (the log end for its latest epoch); `(-1, -1)` when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// The leader epochs of this log with their start offsets.
    pub fn leader_epochs(&self) -> &[crate::leader_epoch::EpochEntry] {
        self.epochs.entries()
    }

    /// How many times the log was truncated since it was opened (a cleaner's plan, or its
    /// record of where the dirty part starts, is void after one).
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    /// Offset below which all data is known to be fsynced; checkpointed so that recovery after a
    /// crash only scans what follows.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    /// Bytes of all segments (for `retention.bytes` and metrics).
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    /// Number of segments, including the active one.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Base offsets of the segments, oldest first (for tools and tests).
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }
    /// The partition this log belongs to.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }
    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// Idempotent producer state (for DescribeProducers and tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }
    /// What opening the log found (recovery statistics).
    pub fn load_summary(&self) -> &LoadSummary {
        &self.load_summary
    }
}
