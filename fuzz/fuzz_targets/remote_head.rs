//! The remote's small objects on arbitrary bytes: a sealed head and a head plaintext (which
//! must re-encode as it was), the passphrase-wrapped key object (KDF parameters capped before
//! Argon2id runs) and the remote state a vault keeps (which must re-encode as it was).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redoubt_remote::fuzzing::head(data);
});
