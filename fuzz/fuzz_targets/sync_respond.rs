//! A responder serving an arbitrary Open: scope, complement merge-join, first chunk.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::respond(data);
});
