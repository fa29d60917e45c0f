//! Kafka's four record-batch codecs, with Kafka's framing of each (gzip; snappy in xerial's
//! block framing, reading raw snappy too; LZ4 frames with independent blocks; zstd), for the
//! producer that compresses and anyone who decompresses.
//!
//! Decompression is bounded: the caller says how many bytes the records may inflate to, and a
//! batch that would inflate past that is refused as soon as the bound is crossed — it is never
//! inflated whole. A 1 MB batch of zeros can claim gigabytes; this is what stops it.

use crate::batch::{compute_crc, BatchHeader, Compression, BATCH_HEADER_LEN, LOG_OVERHEAD};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::{Read, Write};

/// How far the broker lets one stored or produced batch inflate when it must look at its records
/// (key and timestamp checks, recompression, timestamp lookups): far above what a producer's
/// `batch.size` builds, small enough that a hostile batch costs little.
pub const BROKER_MAX_INFLATED_BATCH_BYTES: usize = 64 << 20;

/// How far a reader (strom-client's consumer, dump-log) lets one fetched or stored batch
/// inflate. Java's client has no such bound; 256 MiB is far above any batch a producer builds
/// (batch.size and max.request.size are 1 MB by default).
pub const READER_MAX_INFLATED_BATCH_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    #[error("{codec:?} records inflate past the {max} bytes allowed")]
    TooLarge { codec: Compression, max: usize },
    #[error("{codec:?} records are corrupt: {message}")]
    Corrupt { codec: Compression, message: String },
}

/// Compresses `records` with `codec` onto the end of `out`.
pub fn compress(codec: Compression, records: &[u8], out: &mut BytesMut) -> Result<(), CompressionError> {
    let fail = |message: String| CompressionError::Corrupt { codec, message };
    match codec {
        Compression::None => out.put_slice(records),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out.writer(), flate2::Compression::default());
            enc.write_all(records).and_then(|_| enc.finish().map(|_| ())).map_err(|e| fail(e.to_string()))?;
        }
        Compression::Snappy => {
            out.put_slice(XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK) {
                let compressed = enc.compress_vec(block).map_err(|e| fail(e.to_string()))?;
                out.put_u32(compressed.len() as u32);
                out.put_slice(&compressed);
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new().block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
            enc.write_all(records).map_err(|e| fail(e.to_string()))?;
            enc.finish().map_err(|e| fail(e.to_string()))?;
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out.writer(), 3).map_err(|e| fail(e.to_string()))?;
            enc.write_all(records).and_then(|_| enc.finish().map(|_| ())).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

/// The records inside a batch body compressed with `codec`, refused past `max_bytes`.
pub fn decompress(codec: Compression, body: Bytes, max_bytes: usize) -> Result<Bytes, CompressionError> {
    match codec {
        Compression::None => Ok(body),
        Compression::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(&body[..]), max_bytes),
        Compression::Snappy => snappy_decompress(&body, max_bytes),
        Compression::Lz4 => read_bounded(codec, lz4_flex::frame::FrameDecoder::new(&body[..]), max_bytes),
        Compression::Zstd => {
            let corrupt = |e: std::io::Error| CompressionError::Corrupt { codec, message: e.to_string() };
            let mut dec = zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?;
            // A frame header can ask for a window of up to 2 GiB, which the decoder would
            // allocate before producing a byte: allow 8 MiB (a producer's batch of a few MB
            // never needs more).
            dec.window_log_max(ZSTD_MAX_WINDOW_LOG).map_err(corrupt)?;
            read_bounded(codec, dec, max_bytes)
        }
    }
}

/// The largest zstd window (as a power of two) a batch may use: 8 MiB.
const ZSTD_MAX_WINDOW_LOG: u32 = 23;

/// Kafka's recompression on produce, for a topic whose `compression.type` names a codec other
/// than the batch's: the records are inflated (refused past `max_inflated_bytes`) and compressed
/// with `to`. The header keeps every field but the codec bits, the length and the CRC; the
/// records themselves are not re-encoded.
pub fn recompress_batch(
    batch: &[u8],
    header: &BatchHeader,
    to: Compression,
    max_inflated_bytes: usize,
) -> Result<Bytes, CompressionError> {
    let body = Bytes::copy_from_slice(batch.get(BATCH_HEADER_LEN..header.total_size()).unwrap_or_default());
    let records = decompress(header.compression(), body, max_inflated_bytes)?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len());
    out.put_bytes(0, BATCH_HEADER_LEN);
    compress(to, &records, &mut out)?;
    let mut h = *header;
    h.set_compression(to);
    h.batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .map_err(|_| CompressionError::TooLarge { codec: to, max: i32::MAX as usize })?;
    out[..BATCH_HEADER_LEN].copy_from_slice(&h.to_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

/// Reads at most `max + 1` bytes, so that crossing the bound is seen without inflating further.
fn read_bounded(codec: Compression, reader: impl Read, max: usize) -> Result<Bytes, CompressionError> {
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| CompressionError::Corrupt { codec, message: e.to_string() })?;
    if out.len() > max {
        return Err(CompressionError::TooLarge { codec, max });
    }
    Ok(out.into())
}

/// xerial's stream header: magic, version 1, compatible version 1 (what Java's client writes).
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// xerial's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;

fn snappy_decompress(body: &[u8], max: usize) -> Result<Bytes, CompressionError> {
    let codec = Compression::Snappy;
    let corrupt = |message: String| CompressionError::Corrupt { codec, message };
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CompressionError> {
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
        if out.len() + len > max {
            return Err(CompressionError::TooLarge { codec, max });
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| corrupt(e.to_string()))?;
        Ok(())
    };
    let mut out = Vec::new();
    if body.len() < XERIAL_HEADER.len() || body[..8] != XERIAL_HEADER[..8] {
        // Raw snappy, as librdkafka may send and Java's xerial stream accepts.
        raw(body, &mut out)?;
        return Ok(out.into());
    }
    let mut rest = &body[XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt("a block length is cut short".into()));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err(corrupt(format!("a block of {len} bytes with {} left", rest.len())));
        }
        raw(&rest[..len], &mut out)?;
        rest = &rest[len..];
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn every_codec_round_trips() {
        let records: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in ALL {
            let mut out = BytesMut::new();
            compress(codec, &records, &mut out).expect("compress");
            let back = decompress(codec, out.freeze(), records.len()).expect("decompress");
            assert_eq!(&back[..], &records[..], "{codec:?}");
        }
    }

    #[test]
    fn a_batch_that_inflates_past_the_bound_is_refused() {
        let zeros = vec![0u8; 8 << 20];
        for codec in ALL.into_iter().skip(1) {
            let mut out = BytesMut::new();
            compress(codec, &zeros, &mut out).expect("compress");
            assert!(out.len() < 1 << 20, "{codec:?} compresses zeros well");
            let err = decompress(codec, out.freeze(), 1 << 20).expect_err("refused");
            assert_eq!(err, CompressionError::TooLarge { codec, max: 1 << 20 }, "{codec:?}");
        }
    }

    #[test]
    fn recompressed_batches_keep_their_records_and_fields() {
        use crate::batch::{BatchFields, BatchIter, BatchWriter, RecordIter};
        let no_headers: &[(&[u8], Option<&[u8]>)] = &[];
        for (from, to) in [
            (Compression::Lz4, Compression::Zstd),
            (Compression::None, Compression::Gzip),
            (Compression::Snappy, Compression::None),
        ] {
            let mut w = BatchWriter::new(0);
            for i in 0..20i64 {
                w.append(1_000 + i, Some(b"k".as_slice()), Some(format!("value-{i}").as_bytes()), no_headers);
            }
            let fields = BatchFields {
                attributes: from as i16,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 40,
                ..BatchFields::default()
            };
            let original = w.finish_with(&fields, |r, out| compress(from, r, out)).expect("batch");
            let (header, _) = BatchIter::new(&original).next().expect("one").expect("valid");
            let again = recompress_batch(&original, &header, to, 1 << 20).expect("recompressed");
            let (h2, body) = BatchIter::new(&again).with_crc_check().next().expect("one").expect("valid CRC");
            assert_eq!(h2.compression(), to);
            assert_eq!((h2.producer_id, h2.producer_epoch, h2.base_sequence, h2.records_count), (7, 1, 40, 20));
            assert_eq!((h2.base_timestamp, h2.max_timestamp), (header.base_timestamp, header.max_timestamp));
            let records = decompress(to, again.slice_ref(&body[BATCH_HEADER_LEN..]), 1 << 20).expect("inflate");
            let values: Vec<Vec<u8>> =
                RecordIter::new(&records).map(|r| r.expect("record").value.expect("v").to_vec()).collect();
            assert_eq!(values, (0..20).map(|i| format!("value-{i}").into_bytes()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let raw = snap::raw::Encoder::new().compress_vec(b"hello hello hello").expect("compress");
        assert_eq!(&decompress(Compression::Snappy, raw.into(), 100).expect("raw")[..], b"hello hello hello");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in ALL.into_iter().skip(1) {
            assert!(decompress(codec, Bytes::from_static(b"\x82SNAPPY\x00garbage-garbage-garbage"), 1000).is_err());
        }
    }
}
