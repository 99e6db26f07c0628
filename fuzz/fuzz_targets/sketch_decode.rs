//! The sketch decoder: arbitrary symbols peeled directly, and arbitrary `Symbols` frames fed
//! to a responder mid-reconciliation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_sketch(data);
});
