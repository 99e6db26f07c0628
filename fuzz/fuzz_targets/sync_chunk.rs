//! The chunk plaintext decoder and shape check (behind the AEAD on the wire).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_chunk(data);
});
