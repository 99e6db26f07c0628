//! The sync response decoder on arbitrary bytes (what a responder sends back).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_response(data);
});
