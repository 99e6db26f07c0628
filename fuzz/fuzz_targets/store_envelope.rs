//! The store's record envelope on arbitrary bytes: opened under the fixed fuzzing key (the
//! size cap, framing and version checks before the AEAD), and decoded as a plaintext (what the
//! AEAD guards), which must re-encode to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_store::fuzzing::envelope(data);
});
