//! The agent's control protocol on arbitrary bytes: a stream of frames (the length checked
//! against the cap before anything is allocated), each decoded as a request and as a
//! response; whatever decodes must encode back to the same frame.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_control::fuzzing::frames(data);
});
