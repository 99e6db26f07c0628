//! The store's sketch state rows (format 2) on arbitrary bytes: decoded as a `clients` row, a
//! `sketch deltas` row and a `sketch index` row (sizes capped before allocation), each of which
//! must re-encode to the same bytes, and opened as a sealed `clients` row under the fixed
//! fuzzing key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_store::fuzzing::sketch_rows(data);
});
