//! Record-batch compression with Kafka's framing of each codec (kafka-protocol's codecs: xerial
//! snappy with raw fallback, LZ4 frames, gzip, zstd), for the producer and the consumer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

/// Compresses `records` into `out`.
pub fn compress(codec: Compression, records: &[u8], out: &mut BytesMut) -> Result<(), String> {
    let put = |tmp: &mut BytesMut| {
        tmp.put_slice(records);
        Ok(())
    };
    match codec {
        Compression::None => {
            out.put_slice(records);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(out, put),
        Compression::Snappy => Snappy::compress(out, put),
        Compression::Lz4 => Lz4::compress(out, put),
        Compression::Zstd => Zstd::compress(out, put),
    }
    .map_err(|e| e.to_string())
}

/// The records inside a compressed batch body.
pub fn decompress(codec: strom_protocol::batch::Compression, mut body: Bytes) -> Result<Bytes, String> {
    use strom_protocol::batch::Compression as C;
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    match codec {
        C::None => Ok(body),
        C::Gzip => Gzip::decompress(&mut body, take),
        C::Snappy => Snappy::decompress(&mut body, take),
        C::Lz4 => Lz4::decompress(&mut body, take),
        C::Zstd => Zstd::decompress(&mut body, take),
    }
    .map_err(|e| format!("{codec:?}: {e}"))
}
