//! A request frame body as the broker reads it: the header (its version from the api key and
//! version in the first four bytes), then the body of that API and version. Decoding must never
//! panic or allocate beyond the input; what decodes must re-encode stably.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_protocol::frame::decode_request_header;
use strom_protocol::messages::round_trip_request;

fuzz_target!(|data: &[u8]| {
    let mut frame = Bytes::copy_from_slice(data);
    if let Ok((key, header)) = decode_request_header(&mut frame) {
        let _ = round_trip_request(key, header.request_api_version, &mut frame);
    }
});
