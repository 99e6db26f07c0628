//! The store's journal event on arbitrary bytes: decoded as an event plaintext (what the AEAD
//! guards; every count and length capped before allocation), which must re-encode to the same
//! bytes, and opened as a sealed `journal` row under the fixed fuzzing key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_store::fuzzing::journal_event(data);
});
