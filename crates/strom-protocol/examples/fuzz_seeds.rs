//! Writes seed inputs for the fuzz targets: a random valid request and response of every API and
//! version, framed as each target reads them, plus the frame that once aborted the broker.
//!   cargo run -p strom-protocol --features testing --example fuzz_seeds -- fuzz/corpus

use bytes::{BufMut, BytesMut};
use std::path::Path;
use strom_protocol::messages::{random_request_body, ApiKey};
use strom_protocol::testing::Rng;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into());
    let dir = Path::new(&dir);
    for t in ["request", "response", "record_batch", "fetch_splice", "storage"] {
        std::fs::create_dir_all(dir.join(t))?;
    }
    let mut rng = Rng::new(1);
    for (i, key) in ApiKey::ALL.iter().enumerate() {
        let (lo, hi) = key.valid_versions();
        for version in lo..=hi {
            // request: header then body, as decode_request_header reads it.
            let body = random_request_body(*key, version, &mut rng).expect("encodes");
            let mut f = BytesMut::new();
            f.put_i16(*key as i16);
            f.put_i16(version);
            f.put_i32(7);
            f.put_i16(4);
            f.put_slice(b"seed");
            if key.request_header_version(version) >= 2 {
                f.put_u8(0);
            }
            f.put_slice(&body);
            std::fs::write(dir.join(format!("request/seed-{key:?}-v{version}")), &f)?;
            // response: api index, version offset, then a body (a request body of the same
            // API is a structured start; libFuzzer mutates from there).
            let mut r = vec![i as u8, (version - lo) as u8];
            r.extend_from_slice(&body);
            std::fs::write(dir.join(format!("response/seed-{key:?}-v{version}")), r)?;
        }
    }
    // The Metadata v0 frame body whose topic array claims 54,132,736 entries.
    std::fs::write(
        dir.join("request/regression-metadata-54-million-topics"),
        b"\x00\x03\x00\x00\x00\x00\x00\x01\xff\xff\x03\x3a\x00\x00",
    )?;
    for v in 0..12u8 {
        std::fs::write(dir.join(format!("fetch_splice/seed-v{v}")), [v, v, 1, 2, 3, 4, 5, 6, 7])?;
    }
    // record_batch: batches built the way producers build them.
    for codec in 0..5i16 {
        let mut w = strom_protocol::batch::BatchWriter::new(0);
        let no_headers: &[(&[u8], Option<&[u8]>)] = &[];
        for n in 0..5 {
            w.append(n, Some(b"key"), Some(format!("value-{n}").as_bytes()), no_headers);
        }
        let fields = strom_protocol::batch::BatchFields { attributes: codec, ..Default::default() };
        let codec = strom_protocol::batch::Compression::from_bits(codec as u8).expect("codec");
        let batch = w
            .finish_with(&fields, |records, out| strom_protocol::compression::compress(codec, records, out))
            .expect("batch");
        std::fs::write(dir.join(format!("record_batch/seed-{codec:?}")), &batch)?;
        // storage: five little-endian u16 lengths (log, index, time index, snapshot,
        // checkpoint), then the parts: a segment holding this batch and a checkpoint for it.
        let checkpoint = b"0\n1\nt 0 0\n";
        let mut s = Vec::new();
        for len in [batch.len(), 0, 0, 0, checkpoint.len()] {
            s.extend_from_slice(&(len as u16).to_le_bytes());
        }
        s.extend_from_slice(&batch);
        s.extend_from_slice(checkpoint);
        std::fs::write(dir.join(format!("storage/seed-{codec:?}")), s)?;
    }
    Ok(())
}
