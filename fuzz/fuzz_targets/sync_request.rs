//! The sync request decoder on arbitrary bytes (what a peer sends a responder).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_request(data);
});
