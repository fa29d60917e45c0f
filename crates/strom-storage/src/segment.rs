//! One segment: a `.log` file of batches plus its `.index` and `.timeindex`, all named by the
//! segment's base offset.
//!
//! ```text
//!  00000000000000000100.log        [batch 100..104][batch 105..105][batch 106..120]…  (append only)
//!  00000000000000000100.index      (rel 5 → pos 4120) …  one entry per index.interval.bytes
//!  00000000000000000100.timeindex  (ts → rel) when the segment's max timestamp grows
//! ```
//! The segment keeps the `.log` file open (reads are positional, appends go to the end) and knows
//! its size, so neither path needs a `stat` or a seek.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_protocol::batch::{BatchError, BatchHeader, BATCH_HEADER_LEN, NO_TIMESTAMP};

use crate::error::{IoContext, Result, StorageError};
use crate::index::OffsetIndex;
use crate::outcome::FileRegion;
use crate::time_index::TimeIndex;
use crate::transactions::EndTxnMarker;
use crate::txn_index::{TxnIndex, TXN_INDEX_SUFFIX};

/// Suffix of segment data files.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of offset index files.
pub const INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// The file name stem of a segment (and snapshot): the base offset, 20 digits, zero-padded.
pub fn file_stem(offset: i64) -> String {
    format!("{offset:020}")
}

/// Path of a file of the segment starting at `base_offset` in `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", file_stem(base_offset)))
}

/// What a validating scan of a segment found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryResult {
    /// Bytes cut off the end because they were not whole valid batches.
    pub truncated_bytes: u64,
    /// Bytes that were read and checked.
    pub scanned_bytes: u64,
}

/// A `.log` file with its indexes.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    /// Shared with the file regions that fetches read (for their error messages).
    log_path: Arc<Path>,
    /// Shared with fetches that send a region of it after the log's lock is released.
    file: Arc<File>,
    size: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TxnIndex,
    /// Why the `.txnindex` read at open was not believed (taken by the log's loading).
    txn_index_problem: Option<String>,
    bytes_since_last_index_entry: u64,
    /// Largest batch max timestamp in the segment and the last offset of that batch.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Offset after the last batch (the base offset while empty).
    next_offset: i64,
    /// When the segment started, for `segment.ms` rolls: the first append's time.
    rolling_base_ms: Option<i64>,
}

/// Writes `bytes` (whole batches at the given positions) with each batch's first 16 bytes
/// (`baseOffset`, `batchLength`, `partitionLeaderEpoch`) taken from its header instead, in one
/// vectored write per 1,024 pieces: the record data goes from the request to the page cache
/// without another copy.
fn write_with_headers(file: &File, bytes: &[u8], batches: &[(BatchHeader, usize)]) -> std::io::Result<()> {
    // Each batch's header as the log assigned it (offsets, leader epoch and, for LogAppendTime,
    // the timestamp type, max timestamp and CRC); the records follow as the producer sent them.
    let headers: Vec<[u8; BATCH_HEADER_LEN]> = batches.iter().map(|(h, _)| h.to_bytes()).collect();
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * batches.len());
    for ((h, at), header) in batches.iter().zip(&headers) {
        slices.push(IoSlice::new(header));
        slices.push(IoSlice::new(&bytes[at + BATCH_HEADER_LEN..at + h.total_size()]));
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = rest.len().min(1024);
        let written = match (&*file).write_vectored(&rest[..n]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], pos: u64, path: &Path) -> Result<()> {
    file.read_exact_at(buf, pos).ctx(|| format!("read {} bytes at {pos} of {}", buf.len(), path.display()))
}

impl Segment {
    /// Creates a new, empty segment. Fails if the log file already exists (a logic error upstream
    /// would otherwise destroy data).
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&log_path)
            .ctx(|| format!("create segment {}", log_path.display()))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let path = segment_path(dir, base_offset, suffix);
            fs::write(&path, []).ctx(|| format!("create index {}", path.display()))?;
        }
        let (index, _) = OffsetIndex::open(&segment_path(dir, base_offset, INDEX_SUFFIX), base_offset, 0)?;
        let (time_index, _) = TimeIndex::open(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX), base_offset)?;
        let mut txn_index = TxnIndex::empty(segment_path(dir, base_offset, TXN_INDEX_SUFFIX));
        // One left by an earlier segment at this offset would be appended to.
        txn_index.reset()?;
        Ok(Segment {
            base_offset,
            log_path: log_path.into(),
            file: Arc::new(file),
            size: 0,
            index,
            time_index,
            txn_index,
            txn_index_problem: None,
            bytes_since_last_index_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            rolling_base_ms: None,
        })
    }

    /// Opens an existing segment. The indexes are loaded and sanity-checked; the second value
    /// says why they cannot be trusted (the caller then runs [`Segment::recover`]). When it is
    /// `None`, [`Segment::load_tail`] must run before the segment is used.
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<(Segment, Option<String>)> {
        let log_path = segment_path(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&log_path)
            .ctx(|| format!("open segment {}", log_path.display()))?;
        let size = file.metadata().ctx(|| format!("stat {}", log_path.display()))?.len();
        let index_path = segment_path(dir, base_offset, INDEX_SUFFIX);
        let time_path = segment_path(dir, base_offset, TIME_INDEX_SUFFIX);
        let missing = !index_path.exists() || !time_path.exists();
        let (index, index_problem) = OffsetIndex::open(&index_path, base_offset, size)?;
        let (time_index, time_problem) = TimeIndex::open(&time_path, base_offset)?;
        let problem = if missing {
            Some("index file missing".to_string())
        } else {
            index_problem
                .map(|p| format!("{}: {p}", index_path.display()))
                .or(time_problem.map(|p| format!("{}: {p}", time_path.display())))
        };
        let (txn_index, txn_index_problem) =
            TxnIndex::open(segment_path(dir, base_offset, TXN_INDEX_SUFFIX), base_offset, size)?;
        let segment = Segment {
            base_offset,
            log_path: log_path.into(),
            file: Arc::new(file),
            size,
            index,
            time_index,
            txn_index,
            txn_index_problem,
            bytes_since_last_index_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            rolling_base_ms: None,
        };
        Ok((segment, problem))
    }

    /// Reads the batches after the last index entry (at most about `index.interval.bytes`) to
    /// learn the segment's end offset and maximum timestamp without a full scan. Returns a reason
    /// if the tail does not parse or disagrees with the indexes: the caller then recovers the
    /// segment.
    pub(crate) fn load_tail(&mut self) -> Result<Option<String>> {
        if let Some((ts, offset)) = self.time_index.last_entry() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = offset;
        }
        let start = self.index.last_position();
        let mut pos = start;
        let mut next = self.index.lookup(i64::MAX).0.max(self.base_offset);
        let mut first = true;
        while pos < self.size {
            let header = match self.header_at(pos) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => return Ok(Some(format!("batch at position {pos}: {e}"))),
            };
            if first && self.index.len() > 0 && header.last_offset() != next {
                return Ok(Some(format!(
                    "index points at offset {next} but the batch there ends at {}",
                    header.last_offset()
                )));
            }
            first = false;
            if header.base_offset < self.base_offset {
                return Ok(Some(format!("batch offset {} below segment base", header.base_offset)));
            }
            self.note_timestamp(&header);
            next = header.next_offset();
            pos += header.total_size() as u64;
        }
        self.next_offset = next.max(self.base_offset);
        self.bytes_since_last_index_entry = self.size - start;
        if let Some(problem) = self.time_index.check_offsets(self.next_offset) {
            return Ok(Some(problem));
        }
        Ok(None)
    }

    /// Validates every batch (structure, CRC, offsets increasing inside the segment's range),
    /// truncates anything after the last good batch and rebuilds both indexes: what Kafka does to
    /// segments after the recovery point following a crash.
    pub(crate) fn recover(&mut self, index_interval_bytes: u32) -> Result<RecoveryResult> {
        self.index.reset()?;
        self.time_index.reset()?;
        // Rebuilt by the producer-state replay, which starts at or before this segment.
        self.txn_index.reset()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
        self.next_offset = self.base_offset;
        let mut pos = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while pos < self.size {
            match self.check_batch_at(pos, &mut buf) {
                Ok(header) => {
                    self.index_batch(&header, pos, index_interval_bytes)?;
                    self.next_offset = header.next_offset();
                    pos += header.total_size() as u64;
                }
                Err(reason) => {
                    tracing::warn!(segment = %self.log_path.display(), position = pos, %reason,
                        "invalid bytes at the end of segment, truncating");
                    break;
                }
            }
        }
        let truncated = self.size - pos;
        if truncated > 0 {
            self.file.set_len(pos).ctx(|| format!("truncate {}", self.log_path.display()))?;
            self.size = pos;
        }
        Ok(RecoveryResult { truncated_bytes: truncated, scanned_bytes: pos })
    }

    /// Checks one batch in full (streaming the CRC so a garbage length cannot make us allocate).
    fn check_batch_at(&self, pos: u64, buf: &mut [u8]) -> std::result::Result<BatchHeader, String> {
        let header = match self.header_at(pos) {
            Ok(Some(h)) => h,
            Ok(None) => return Err("end of file".into()),
            Err(e) => return Err(e.to_string()),
        };
        let min_offset = self.next_offset.max(self.base_offset);
        if header.base_offset < min_offset {
            return Err(format!("batch offset {} below expected {min_offset}", header.base_offset));
        }
        if header.last_offset() - self.base_offset > i64::from(u32::MAX) {
            return Err(format!("offset {} too far from segment base", header.last_offset()));
        }
        let end = pos + header.total_size() as u64;
        let crc_start = pos + 21;
        let mut crc = 0u32;
        let mut at = crc_start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            read_exact_at(&self.file, &mut buf[..n], at, &self.log_path).map_err(|e| e.to_string())?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            at += n as u64;
        }
        if crc != header.crc {
            return Err(BatchError::CrcMismatch { expected: header.crc, actual: crc }.to_string());
        }
        Ok(header)
    }

    /// Reads and parses the batch header at `pos`; `None` exactly at the end of the file. A
    /// header or batch that runs past the end is an error.
    pub(crate) fn header_at(&self, pos: u64) -> Result<Option<BatchHeader>> {
        if pos >= self.size {
            return Ok(None);
        }
        let available = self.size - pos;
        if available < BATCH_HEADER_LEN as u64 {
            return Err(
                self.corrupt(pos, BatchError::Truncated { needed: BATCH_HEADER_LEN, available: available as usize })
            );
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        read_exact_at(&self.file, &mut buf, pos, &self.log_path)?;
        let header = BatchHeader::parse(&buf).map_err(|e| self.corrupt(pos, e))?;
        if header.total_size() as u64 > available {
            return Err(
                self.corrupt(pos, BatchError::Truncated { needed: header.total_size(), available: available as usize })
            );
        }
        Ok(Some(header))
    }

    fn corrupt(&self, pos: u64, e: BatchError) -> StorageError {
        StorageError::Corrupt { path: self.log_path.to_path_buf(), reason: format!("at position {pos}: {e}") }
    }

    /// Updates the in-memory maximum timestamp with one batch.
    fn note_timestamp(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
    }

    /// Kafka's indexing rule: once more than `index.interval.bytes` were appended since the last
    /// entry, the next batch gets an offset index entry (and the time index its max so far).
    fn index_batch(&mut self, header: &BatchHeader, position: u64, interval: u32) -> Result<()> {
        self.note_timestamp(header);
        if self.bytes_since_last_index_entry > u64::from(interval) {
            self.index.append(header.last_offset(), position)?;
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.total_size() as u64;
        Ok(())
    }

    /// Appends batches (already given their offsets) and indexes them. `batches` lists each
    /// batch's header and start within `bytes`. On a write error the file is cut back so that no
    /// partial batch stays behind.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        batches: &[(BatchHeader, usize)],
        interval: u32,
        now_ms: i64,
    ) -> Result<()> {
        let Some(last) = batches.last() else {
            return Ok(());
        };
        assert!(batches[0].0.base_offset >= self.next_offset, "offsets must increase");
        assert!(last.0.last_offset() - self.base_offset <= i64::from(u32::MAX), "relative offset overflow");
        let start = self.size;
        if let Err(e) = write_with_headers(&self.file, bytes, batches) {
            let _ = self.file.set_len(start);
            return Err(StorageError::Io { context: format!("append to {}", self.log_path.display()), source: e });
        }
        self.size += bytes.len() as u64;
        for (header, at) in batches {
            if let Err(e) = self.index_batch(header, start + *at as u64, interval) {
                self.roll_back_to(start);
                return Err(e);
            }
        }
        self.next_offset = last.0.next_offset();
        self.rolling_base_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Best effort after a failed append: forget the bytes from `position` on, so that the log
    /// and its indexes agree again. The caller reports the original error.
    fn roll_back_to(&mut self, position: u64) {
        let _ = self.file.set_len(position);
        self.size = position;
        let _ = self.index.truncate_to_position(position);
        let _ = self.time_index.truncate_to_offset(self.next_offset);
    }

    /// The end-of-transaction marker of the control batch `header` (read at `pos`); `None` for
    /// a data batch. Reads the batch only for control batches, which are a few dozen bytes.
    pub(crate) fn marker_at(&self, pos: u64, header: &BatchHeader) -> Result<Option<EndTxnMarker>> {
        const MAX_CONTROL_BATCH: usize = 4096;
        if !header.is_control() {
            return Ok(None);
        }
        if header.total_size() > MAX_CONTROL_BATCH {
            let why = format!("a control batch of {} bytes", header.total_size());
            return Err(self.corrupt(pos, BatchError::Malformed(why)));
        }
        let mut buf = vec![0u8; header.total_size()];
        read_exact_at(&self.file, &mut buf, pos, &self.log_path)?;
        EndTxnMarker::parse(header, &buf)
    }

    /// `len` bytes at `pos`, to be read later (by a fetch, outside the log's lock).
    pub(crate) fn region(&self, pos: u64, len: usize) -> FileRegion {
        FileRegion { file: Arc::clone(&self.file), position: pos, len, path: self.log_path.clone() }
    }

    /// File position to start scanning from for `offset` (the index's floor entry).
    pub(crate) fn lookup_position(&self, offset: i64) -> u64 {
        self.index.lookup(offset).1
    }

    /// Offset at which to start looking for the first record with timestamp ≥ `timestamp`.
    pub(crate) fn time_lookup(&self, timestamp: i64) -> i64 {
        self.time_index.lookup(timestamp)
    }

    /// Learns when the segment started (for `segment.ms`) from its first batch, as Kafka does
    /// after a restart; a segment with no usable timestamp starts counting at its next append.
    pub(crate) fn load_rolling_base(&mut self) -> Result<()> {
        if self.rolling_base_ms.is_none() {
            if let Some(h) = self.header_at(0)? {
                if h.max_timestamp >= 0 {
                    self.rolling_base_ms = Some(h.max_timestamp);
                }
            }
        }
        Ok(())
    }

    /// Whether `segment.ms` has passed since the segment's first append.
    pub(crate) fn is_due_for_time_roll(&self, now_ms: i64, segment_ms: i64) -> bool {
        self.size > 0 && self.rolling_base_ms.is_some_and(|base| now_ms.saturating_sub(base) > segment_ms)
    }

    /// Called when a newer segment takes over: records the final maximum timestamp in the time
    /// index so that retention and lookups see it after a restart.
    pub(crate) fn on_become_inactive(&mut self) -> Result<()> {
        self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// Cuts the segment to the batches wholly below `offset` (a batch containing `offset` goes
    /// too). Truncation is rare (a follower diverging from a new leader), so a header scan from the
    /// start keeps this simple.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let mut new_next = self.base_offset;
        let mut max_ts = (NO_TIMESTAMP, self.base_offset);
        let mut pos = 0u64;
        while let Some(h) = self.header_at(pos)? {
            if h.last_offset() >= offset {
                break;
            }
            if h.max_timestamp > max_ts.0 {
                max_ts = (h.max_timestamp, h.last_offset());
            }
            new_next = h.next_offset();
            pos += h.total_size() as u64;
        }
        self.file.set_len(pos).ctx(|| format!("truncate {}", self.log_path.display()))?;
        self.size = pos;
        self.index.truncate_to_position(pos)?;
        self.time_index.truncate_to_offset(new_next)?;
        self.txn_index.truncate_to(new_next)?;
        self.next_offset = new_next;
        (self.max_timestamp, self.offset_of_max_timestamp) = max_ts;
        self.bytes_since_last_index_entry = self.size - self.index.last_position();
        if self.size == 0 {
            self.rolling_base_ms = None;
        }
        Ok(())
    }

    /// fsyncs the log and both indexes.
    /// Handles on the segment's files, to fsync them without holding the log.
    pub(crate) fn file_handles(&self) -> Vec<(Arc<File>, PathBuf)> {
        let mut handles = vec![
            (Arc::clone(&self.file), self.log_path.to_path_buf()),
            self.index.file_handle(),
            self.time_index.file_handle(),
        ];
        handles.extend(self.txn_index.file_handle());
        handles
    }

    pub(crate) fn flush(&self) -> Result<()> {
        crate::fsync::sync_data(&self.file, &self.log_path)?;
        self.index.sync()?;
        self.time_index.sync()?;
        self.txn_index.sync()
    }

    /// The segment's aborted transactions.
    pub(crate) fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    pub(crate) fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.txn_index
    }

    /// Why the aborted-transaction index read at open was not believed, once.
    pub(crate) fn take_txn_index_problem(&mut self) -> Option<String> {
        self.txn_index_problem.take()
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self) -> Result<()> {
        let paths = [
            self.log_path.to_path_buf(),
            self.index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ];
        drop(self);
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::Io { context: format!("delete {}", path.display()), source: e }),
            }
        }
        Ok(())
    }

    /// The largest timestamp in the segment, or the file's modification time if no batch carries
    /// one (as Kafka's `largestTimestamp`).
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp != NO_TIMESTAMP {
            return self.max_timestamp;
        }
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(NO_TIMESTAMP, |d| d.as_millis() as i64)
    }

    /// The largest batch max timestamp with the last offset of its batch, if any.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        (self.max_timestamp != NO_TIMESTAMP).then_some((self.max_timestamp, self.offset_of_max_timestamp))
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}
