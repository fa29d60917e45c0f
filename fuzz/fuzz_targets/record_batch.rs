//! Record batches as the broker validates them on produce (`validate_produce_batches`) and as
//! consumers and dump-log read them: batch headers with CRC checks, records (varints, keys,
//! values, headers), and decompression bounded at 1 MiB.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_protocol::batch::{validate_produce_batches, BatchIter, RecordIter, BATCH_HEADER_LEN};
use strom_protocol::compression::decompress;

fuzz_target!(|data: &[u8]| {
    let _ = validate_produce_batches(data);
    let data = Bytes::copy_from_slice(data);
    for checked in [true, false] {
        let iter = BatchIter::new(&data);
        let iter = if checked { iter.with_crc_check() } else { iter };
        for item in iter {
            let Ok((header, batch)) = item else { break };
            let body = data.slice_ref(&batch[BATCH_HEADER_LEN..]);
            let Ok(records) = decompress(header.compression(), body, 1 << 20) else { continue };
            for record in RecordIter::new(&records) {
                if record.is_err() {
                    break;
                }
            }
        }
    }
});
