//! The sync response decoder on arbitrary bytes (what a responder sends back): whatever
//! decodes must re-encode to exactly the same bytes (the entry point asserts it).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_response(data);
});
