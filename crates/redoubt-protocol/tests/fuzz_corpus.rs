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

/// The committed version 4 chunk seed is the sample (a live record and a tombstone naming its
/// parent), and decodes as version 4 only; every chunk seed goes through the target.
#[test]
fn the_version_4_chunk_seed_is_committed_and_decodes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/sync_chunk/two-entries-v4");
    if !path.exists() && std::env::var_os("REDOUBT_WRITE_SEEDS").is_some() {
        std::fs::write(&path, fuzzing::sample_chunk_v4()).unwrap();
    }
    let seed = std::fs::read(&path).unwrap();
    assert_eq!(seed, fuzzing::sample_chunk_v4());
    assert!(fuzzing::decodes_as_chunk_v4(&seed));
    assert!(!fuzzing::decodes_as_chunk_v4(&fuzzing::sample_chunk()));
    for seed in corpus("sync_chunk") {
        fuzzing::decode_chunk(&seed);
    }
}
