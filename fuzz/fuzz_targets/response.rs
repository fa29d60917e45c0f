//! A response body as strom-client reads it: the first byte picks the API, the second its
//! version; the rest is the body. Whatever a broker (or anything on its port) sends, decoding
//! must never panic or allocate beyond the input; what decodes must re-encode stably.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_protocol::messages::{round_trip_response, ApiKey};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let key = ApiKey::ALL[data[0] as usize % ApiKey::ALL.len()];
    let (lo, hi) = key.valid_versions();
    let version = lo + (data[1] as i16) % (hi - lo + 1);
    let _ = round_trip_response(key, version, &mut Bytes::copy_from_slice(&data[2..]));
});
