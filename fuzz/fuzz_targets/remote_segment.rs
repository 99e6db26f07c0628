//! The remote's segment on arbitrary bytes: opened as a sealed segment under the fixed fuzzing
//! key, and decoded as a segment plaintext (every count and length capped before allocation),
//! which must re-encode to one that decodes the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_remote::fuzzing::segment(data);
});
