//! The store's address book row on arbitrary bytes: decoded as a row plaintext (its size capped
//! before allocation), which must re-encode to the same bytes, and opened as a sealed
//! `addresses` row under the fixed fuzzing key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_store::fuzzing::address_row(data);
});
