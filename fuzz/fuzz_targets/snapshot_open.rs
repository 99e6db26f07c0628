//! The whole snapshot loader on arbitrary bytes: header, KDF limits, password check, AEAD, body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_snapshot::fuzzing::open_snapshot(data);
});
