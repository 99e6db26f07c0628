//! The fuzz targets' entry points over the committed seed corpus (`fuzz/corpus/`), so that the
//! stable test run exercises them too: every seed that decodes re-encodes to the same bytes,
//! and no seed makes a responder panic.

use std::path::PathBuf;

use redoubt_protocol::fuzzing;

/// Every file of the corpus of `target`.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        seeds.push(std::fs::read(&path).unwrap());
    }
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

#[test]
fn request_seeds_re_encode() {
    for seed in corpus("sync_request") {
        fuzzing::decode_request(&seed);
    }
}

#[test]
fn response_seeds_re_encode() {
    for seed in corpus("sync_response") {
        fuzzing::decode_response(&seed);
    }
}

#[test]
fn respond_seeds_do_not_panic() {
    for seed in corpus("sync_respond") {
        fuzzing::respond(&seed);
    }
}

#[test]
fn sketch_seeds_do_not_panic() {
    for seed in corpus("sketch_decode") {
        fuzzing::decode_sketch(&seed);
    }
}
