//! `strom dump-log`, Kafka's kafka-dump-log (DumpLogSegments): prints the batches and records of
//! segment files and checks their indexes, offline, in Kafka's output format. Unlike Kafka's tool
//! it exits with 1 when it finds a corrupt batch, trailing garbage or a wrong index entry, so that
//! scripts can rely on it.

use bytes::Bytes;
use clap::Args;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use strom_protocol::batch::{compute_crc, BatchHeader, Compression, RecordIter, TimestampType, BATCH_HEADER_LEN};

#[derive(Args, Debug)]
#[command(after_help = "Files are recognised by their suffix: .log (batches), .index (offset index),
.timeindex (time index), .txnindex (aborted transactions).

Examples:
  strom dump-log --files strom-data/test-0/00000000000000000000.log
  strom dump-log --files strom-data/test-0/00000000000000000000.log --print-data-log
  strom dump-log --files strom-data/test-0/00000000000000000000.index --verify-index-only
  strom dump-log --files strom-data/__transaction_state-7/00000000000000000000.log --transaction-log-decoder")]
pub struct DumpLogArgs {
    /// Comma-separated segment files: .log, .index, .timeindex, .txnindex.
    #[arg(long, value_name = "FILE,...", value_delimiter = ',', required = true)]
    pub files: Vec<PathBuf>,
    /// Also print each record of each batch.
    #[arg(long)]
    pub deep_iteration: bool,
    /// Print record keys and values (implies --deep-iteration).
    #[arg(long)]
    pub print_data_log: bool,
    /// Decode the records as `__transaction_state`'s (implies --print-data-log).
    #[arg(long)]
    pub transaction_log_decoder: bool,
    /// Check index entries against the log without printing them.
    #[arg(long)]
    pub verify_index_only: bool,
    /// Only check that the index is well-formed (what a broker checks at start-up).
    #[arg(long)]
    pub index_sanity_check: bool,
    /// The largest batch to read when checking an index entry.
    #[arg(long, value_name = "BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_message_size: usize,
    /// Read at most this many bytes of a .log file.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
}

/// Problems found, reported on stderr after all files as Kafka's tool does.
#[derive(Default)]
struct Findings {
    index_mismatches: Vec<(String, Vec<(i64, i64)>)>,
    time_mismatches: Vec<(String, Vec<(i64, i64)>)>,
    not_found: Vec<(i64, i64)>,
    non_consecutive: Vec<(String, Vec<(i64, i64)>)>,
    /// Anything else that makes the exit code 1 (already printed).
    other: usize,
}

impl Findings {
    fn any(&self) -> bool {
        !(self.index_mismatches.is_empty()
            && self.time_mismatches.is_empty()
            && self.not_found.is_empty()
            && self.non_consecutive.is_empty())
            || self.other > 0
    }

    fn report(&self) {
        for (file, mismatches) in &self.index_mismatches {
            eprintln!("Mismatches in :{file}");
            for (index, log) in mismatches {
                eprintln!("  Index offset: {index}, log offset: {log}");
            }
        }
        for (file, mismatches) in &self.time_mismatches {
            eprintln!("Found timestamp mismatch in :{file}");
            for (index, log) in mismatches {
                eprintln!("  Index timestamp: {index}, log timestamp: {log}");
            }
        }
        if !self.not_found.is_empty() {
            eprintln!("The following indexed offsets are not found in the log.");
            for (index, log) in &self.not_found {
                eprintln!("Indexed offset: {index}, found log offset: {log}");
            }
        }
        for (file, pairs) in &self.non_consecutive {
            eprintln!("Non-consecutive offsets in {file}");
            for (a, b) in pairs {
                eprintln!("  {a} is followed by {b}");
            }
        }
    }
}

pub fn run(args: DumpLogArgs) -> Result<(), String> {
    let mut findings = Findings::default();
    for path in &args.files {
        out!("Dumping {}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let result = if name.ends_with(".log") {
            dump_log(path, &args, &mut findings)
        } else if name.ends_with(".timeindex") {
            dump_time_index(path, &args, &mut findings)
        } else if name.ends_with(".index") {
            dump_index(path, &args, &mut findings)
        } else if name.ends_with(".txnindex") {
            super::dump_txn::dump_txn_index(path)
        } else {
            eprintln!("Ignoring unknown file {}", path.display());
            Ok(())
        };
        if let Err(e) = result {
            eprintln!("{}: {e}", path.display());
            findings.other += 1;
        }
    }
    findings.report();
    if findings.any() {
        Err("problems found (see above)".into())
    } else {
        Ok(())
    }
}

/// The base offset in a segment file's name (20 digits).
fn base_offset(path: &Path) -> Result<i64, String> {
    let stem = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next()).unwrap_or("");
    stem.parse().map_err(|_| format!("the file name does not start with a base offset: '{stem}'"))
}

fn sibling(path: &Path, suffix: &str) -> Result<PathBuf, String> {
    Ok(path.with_file_name(format!("{:020}{suffix}", base_offset(path)?)))
}

/// One batch read from a file: the header, its bytes, and whether its CRC holds.
struct FileBatch {
    header: BatchHeader,
    bytes: Vec<u8>,
    valid: bool,
}

/// Reads the batch at the reader's position, as Kafka's FileLogInputStream: it stops where the
/// remaining bytes cannot hold the announced batch.
fn read_batch(file: &mut impl Read, remaining: u64) -> Result<Option<FileBatch>, String> {
    if remaining < BATCH_HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut head = vec![0u8; BATCH_HEADER_LEN];
    file.read_exact(&mut head).map_err(|e| e.to_string())?;
    let Ok(header) = BatchHeader::parse(&head) else { return Ok(None) };
    let size = header.total_size();
    if size < BATCH_HEADER_LEN || size as u64 > remaining {
        return Ok(None);
    }
    let mut bytes = head;
    bytes.resize(size, 0);
    file.read_exact(&mut bytes[BATCH_HEADER_LEN..]).map_err(|e| e.to_string())?;
    let valid = compute_crc(&bytes) == header.crc;
    Ok(Some(FileBatch { header, bytes, valid }))
}

fn codec_name(h: &BatchHeader) -> &'static str {
    match h.compression() {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

fn timestamp_type(h: &BatchHeader) -> &'static str {
    match h.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// Kafka's printBatchLevel line.
fn batch_line(h: &BatchHeader, position: u64, valid: bool) -> String {
    const DELETE_HORIZON_BIT: i16 = 0x40;
    let delete_horizon = if h.attributes & DELETE_HORIZON_BIT != 0 {
        format!("OptionalLong[{}]", h.base_timestamp)
    } else {
        "OptionalLong.empty".into()
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} \
         partitionLeaderEpoch: {} isTransactional: {} isControl: {} deleteHorizonMs: {delete_horizon} position: {position} \
         {}: {} size: {} magic: 2 compresscodec: {} crc: {} isvalid: {valid}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        h.last_sequence(),
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        timestamp_type(h),
        h.max_timestamp,
        h.total_size(),
        codec_name(h),
        h.crc,
    )
}

fn dump_log(path: &Path, args: &DumpLogArgs, findings: &mut Findings) -> Result<(), String> {
    let base = base_offset(path)?;
    out!("Log starting offset: {base}");
    let mut file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let limit = args.max_bytes.map_or(file_len, |m| m.min(file_len));
    let print_data = args.print_data_log || args.transaction_log_decoder;
    let deep = args.deep_iteration || print_data;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, &mut file);
    let mut position = 0u64;
    let mut last_offset = -1i64;
    let mut non_consecutive = Vec::new();
    while let Some(batch) = read_batch(&mut reader, limit - position)? {
        out!("{}", batch_line(&batch.header, position, batch.valid));
        if !batch.valid {
            findings.other += 1;
        }
        if deep {
            dump_records(&batch, args, &mut last_offset, &mut non_consecutive)?;
        }
        position += batch.bytes.len() as u64;
    }
    if position < file_len && args.max_bytes.is_none() {
        out!(
            "Found {} invalid bytes at the end of {}",
            file_len - position,
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        findings.other += 1;
    }
    if !non_consecutive.is_empty() {
        findings.non_consecutive.push((absolute(path), non_consecutive));
    }
    Ok(())
}

/// Kafka's dumpBatchRecords: one `| offset: ...` line per record, with key and payload on request.
fn dump_records(
    batch: &FileBatch,
    args: &DumpLogArgs,
    last_offset: &mut i64,
    non_consecutive: &mut Vec<(i64, i64)>,
) -> Result<(), String> {
    if !batch.valid {
        out!("| records not shown: the batch's CRC does not match its contents");
        return Ok(());
    }
    let h = &batch.header;
    let cannot = |e: String| format!("cannot decode the records of the batch at offset {}: {e}", h.base_offset);
    let body = Bytes::copy_from_slice(&batch.bytes[BATCH_HEADER_LEN.min(batch.bytes.len())..]);
    let body = strom_protocol::compression::decompress(
        h.compression(),
        body,
        strom_protocol::compression::READER_MAX_INFLATED_BATCH_BYTES,
    )
    .map_err(|e| cannot(e.to_string()))?;
    let ts_type = timestamp_type(h);
    for record in RecordIter::new(&body) {
        let r = record.map_err(|e| cannot(e.to_string()))?;
        let offset = h.base_offset + i64::from(r.offset_delta);
        if offset != *last_offset + 1 {
            non_consecutive.push((*last_offset, offset));
        }
        *last_offset = offset;
        let timestamp = match h.timestamp_type() {
            TimestampType::LogAppendTime => h.max_timestamp,
            TimestampType::CreateTime => h.base_timestamp.wrapping_add(r.timestamp_delta),
        };
        let sequence = if h.base_sequence < 0 { -1 } else { h.base_sequence.wrapping_add(r.offset_delta) };
        let size = |b: Option<&[u8]>| b.map_or(-1, |b| b.len() as i64);
        let header_keys: Vec<String> = r.headers.iter().map(|k| String::from_utf8_lossy(k.key).into_owned()).collect();
        let mut line = format!(
            "| offset: {offset} {ts_type}: {timestamp} keySize: {} valueSize: {} sequence: {sequence} headerKeys: [{}]",
            size(r.key),
            size(r.value),
            header_keys.join(",")
        );
        if h.is_control() {
            line.push_str(&control_description(r.key, r.value));
        } else if args.transaction_log_decoder {
            line.push_str(&super::dump_txn::describe_record(offset, r.key, r.value));
        } else if args.print_data_log {
            if let Some(k) = r.key {
                line.push_str(&format!(" key: {}", String::from_utf8_lossy(k)));
            }
            if let Some(v) = r.value {
                line.push_str(&format!(" payload: {}", String::from_utf8_lossy(v)));
            }
        }
        out!("{line}");
    }
    Ok(())
}

/// A control record as Kafka's tool shows it: the end-transaction markers by name.
fn control_description(key: Option<&[u8]>, value: Option<&[u8]>) -> String {
    let type_id = key.filter(|k| k.len() >= 4).map(|k| i16::from_be_bytes([k[2], k[3]]));
    match type_id {
        Some(t @ (0 | 1)) => {
            let epoch = value.filter(|v| v.len() >= 6).map_or(-1, |v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
            let marker = if t == 0 { "ABORT" } else { "COMMIT" };
            format!(" endTxnMarker: {marker} coordinatorEpoch: {epoch}")
        }
        Some(t) => format!(" controlType: UNKNOWN({t})"),
        None => " controlType: UNKNOWN(-1)".into(),
    }
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// The header of the batch starting at `position` in the log, if a whole batch of at most
/// `max_size` bytes is there. Index checks need only offsets and timestamps, not the records.
fn header_at(log: &mut File, log_len: u64, position: u64, max_size: usize) -> Result<Option<BatchHeader>, String> {
    if position + BATCH_HEADER_LEN as u64 > log_len {
        return Ok(None);
    }
    log.seek(SeekFrom::Start(position)).map_err(|e| e.to_string())?;
    let mut head = [0u8; BATCH_HEADER_LEN];
    log.read_exact(&mut head).map_err(|e| e.to_string())?;
    Ok(BatchHeader::parse(&head).ok().filter(|h| {
        let size = h.total_size();
        size >= BATCH_HEADER_LEN && size <= max_size && position + size as u64 <= log_len
    }))
}

fn read_entries(path: &Path, entry_len: usize) -> Result<(Vec<u8>, Option<String>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let problem = (bytes.len() % entry_len != 0).then(|| {
        format!(
            "Index file {} is corrupt, found {} bytes which is neither positive nor a multiple of {entry_len}",
            path.display(),
            bytes.len()
        )
    });
    Ok((bytes, problem))
}

/// Kafka's answer to --index-sanity-check.
fn sanity_result(path: &Path, problem: Option<String>) -> Result<(), String> {
    match problem {
        None => {
            out!("{} passed sanity check.", path.display());
            Ok(())
        }
        Some(p) => Err(p),
    }
}

fn dump_index(path: &Path, args: &DumpLogArgs, findings: &mut Findings) -> Result<(), String> {
    let base = base_offset(path)?;
    let log_path = sibling(path, ".log")?;
    let mut log = File::open(&log_path).map_err(|e| format!("cannot open its log {}: {e}", log_path.display()))?;
    let log_len = log.metadata().map_err(|e| e.to_string())?.len();
    let (bytes, problem) = read_entries(path, 8)?;
    let entries: Vec<(i64, u64)> = bytes
        .chunks_exact(8)
        .map(|c| {
            let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            (base + rel as i64, pos as u64)
        })
        .collect();
    if args.index_sanity_check {
        let problem = problem.or_else(|| {
            entries.windows(2).find(|w| w[1].0 <= w[0].0 || w[1].1 <= w[0].1).map(|w| {
                format!(
                    "Corrupt index found, index file ({}) has entry ({}, {}) after ({}, {})",
                    path.display(),
                    w[1].0,
                    w[1].1,
                    w[0].0,
                    w[0].1
                )
            })
        });
        let problem = problem.or_else(|| {
            entries.iter().find(|(_, pos)| *pos >= log_len).map(|(o, pos)| {
                format!(
                    "Corrupt index found, index file ({}) has entry ({o}, {pos}) beyond the log size {log_len}",
                    path.display()
                )
            })
        });
        return sanity_result(path, problem);
    }
    if entries.is_empty() {
        out!("{} is empty.", path.display());
        return Ok(());
    }
    if let Some(p) = problem {
        eprintln!("{p}");
        findings.other += 1;
    }
    let mut mismatches = Vec::new();
    for (i, (offset, position)) in entries.iter().enumerate() {
        // A preallocated index ends in zero entries; Kafka stops at the first one.
        if *offset == base && i > 0 {
            break;
        }
        let found = header_at(&mut log, log_len, *position, args.max_message_size)?.map_or(-1, |h| h.last_offset());
        if found != *offset {
            mismatches.push((*offset, found));
        }
        if !args.verify_index_only {
            out!("offset: {offset} position: {position}");
        }
    }
    if !mismatches.is_empty() {
        findings.index_mismatches.push((absolute(path), mismatches));
    }
    Ok(())
}

fn dump_time_index(path: &Path, args: &DumpLogArgs, findings: &mut Findings) -> Result<(), String> {
    let base = base_offset(path)?;
    let log_path = sibling(path, ".log")?;
    let mut log = File::open(&log_path).map_err(|e| format!("cannot open its log {}: {e}", log_path.display()))?;
    let log_len = log.metadata().map_err(|e| e.to_string())?.len();
    let (bytes, problem) = read_entries(path, 12)?;
    let entries: Vec<(i64, i64)> = bytes
        .chunks_exact(12)
        .map(|c| {
            let ts = i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            (ts, base + rel as i64)
        })
        .collect();
    if args.index_sanity_check {
        let problem = problem.or_else(|| {
            entries.windows(2).find(|w| w[1].0 < w[0].0 || w[1].1 < w[0].1).map(|w| {
                format!(
                    "Corrupt time index found, time index file ({}) has entry ({}, {}) after ({}, {})",
                    path.display(),
                    w[1].0,
                    w[1].1,
                    w[0].0,
                    w[0].1
                )
            })
        });
        return sanity_result(path, problem);
    }
    if let Some(p) = problem {
        eprintln!("{p}");
        findings.other += 1;
    }
    // Where each batch ends and its largest timestamp, found by one scan of the log.
    let mut batches = Vec::new();
    let mut position = 0u64;
    while let Some(h) = header_at(&mut log, log_len, position, usize::MAX)? {
        batches.push((h.last_offset(), h.max_timestamp));
        position += h.total_size() as u64;
    }
    let mut mismatches = Vec::new();
    let mut previous = i64::MIN;
    for (i, (timestamp, offset)) in entries.iter().enumerate() {
        if *offset == base && i > 0 && *timestamp == 0 {
            break;
        }
        match batches.iter().find(|(last, _)| last >= offset) {
            None => findings.not_found.push((*offset, -1)),
            Some((last, _)) if last != offset => findings.not_found.push((*offset, *last)),
            Some((_, max_ts)) => {
                if max_ts != timestamp {
                    mismatches.push((*timestamp, *max_ts));
                }
                if *timestamp < previous {
                    findings.other += 1;
                    eprintln!("Found out of order timestamp in :{}\n  Index timestamp: {timestamp}, Previously indexed timestamp: {previous}", absolute(path));
                }
            }
        }
        if !args.verify_index_only {
            out!("timestamp: {timestamp} offset: {offset}");
        }
        previous = *timestamp;
    }
    if !mismatches.is_empty() {
        findings.time_mismatches.push((absolute(path), mismatches));
    }
    Ok(())
}
