//! The committed seed corpus of `fuzz/fuzz_targets/journal_event.rs`, and a few thousand cheap
//! mutations of it, through the fuzz entry point: no panic, and every event that decodes
//! re-encodes as it was. (The real fuzzing is `scripts/fuzz.sh`.)

use std::path::PathBuf;

use redoubt_store::{fuzzing, journal};

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/journal_event");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn the_seed_corpus_reaches_the_decoder_and_the_envelope() {
    let seeds = seeds();
    assert!(seeds.len() >= 5);
    let decoded = seeds.iter().filter(|s| journal::decode(s).is_ok()).count();
    assert_eq!(
        decoded, 5,
        "the version 1 vector's three events and version 2's two decode"
    );
    let opened = seeds
        .iter()
        .filter(|s| fuzzing::open_event(1, s).is_ok())
        .count();
    assert_eq!(opened, 1, "the vector's first sealed row opens");
    for seed in &seeds {
        fuzzing::journal_event(seed);
    }
}

#[test]
fn mutated_seeds_never_panic() {
    let seeds = seeds();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5000 {
        let mut input = seeds[(next() as usize) % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            match next() % 3 {
                0 if !input.is_empty() => {
                    let i = (next() as usize) % input.len();
                    input[i] ^= 1 << (next() % 8);
                }
                1 if !input.is_empty() => {
                    input.truncate((next() as usize) % input.len());
                }
                _ => input.push(next() as u8),
            }
        }
        fuzzing::journal_event(&input);
    }
}
