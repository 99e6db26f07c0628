//! The pairing decoders: frames, codes and QR payloads, and a host answering a Hello.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_protocol::fuzzing::decode_pairing(data);
});
