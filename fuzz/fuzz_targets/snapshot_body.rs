//! The plaintext body decoder on arbitrary bytes (behind the AEAD in real files).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_snapshot::fuzzing::decode_body(data);
});
