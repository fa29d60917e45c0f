//! Fetch responses split around their records fields (what the broker sends with sendfile): for
//! a random valid response, the spliced parts with the records put back must be the whole
//! encoding, byte for byte, in every version.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_protocol::frame::encode_response;
use strom_protocol::messages::{ApiKey, FetchResponse};
use strom_protocol::spliced::{encode_response_spliced, FramePart};
use strom_protocol::testing::{Random, Rng};

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let version = 4 + (data[0] as i16) % 12;
    let seed = u64::from_le_bytes(data[1..9].try_into().expect("8 bytes"));
    let mut response = FetchResponse::random(&mut Rng::new(seed), version);
    // Every non-null records field is a placeholder; its data is written separately.
    let mut records: Vec<Bytes> = Vec::new();
    let mut slots: Vec<(usize, usize)> = Vec::new();
    for (ti, t) in response.responses.iter().enumerate() {
        for (pi, p) in t.partitions.iter().enumerate() {
            if let Some(r) = &p.records {
                records.push(r.clone());
                slots.push((ti, pi));
            }
        }
    }
    let Ok(whole) = encode_response(ApiKey::Fetch, version, 1, &response) else { return };
    let lens: Vec<usize> = records.iter().map(|r| r.len()).collect();
    let parts = encode_response_spliced(
        ApiKey::Fetch,
        version,
        1,
        &mut response,
        |r, empty| {
            for &(ti, pi) in &slots {
                r.responses[ti].partitions[pi].records = if empty { Some(Bytes::new()) } else { None };
            }
        },
        &lens,
    );
    let Ok(parts) = parts else { return };
    let mut joined = Vec::new();
    for part in &parts {
        match part {
            FramePart::Bytes(b) => joined.extend_from_slice(b),
            FramePart::Records(n) => joined.extend_from_slice(&records[*n]),
        }
    }
    assert_eq!(joined, whole.to_vec(), "Fetch v{version}");
});
