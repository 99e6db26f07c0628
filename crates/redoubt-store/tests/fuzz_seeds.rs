//! The committed seed corpus of `fuzz/fuzz_targets/store_envelope.rs`, and a few thousand
//! cheap mutations of it, through the fuzz entry point: no panic, and every plaintext that
//! decodes re-encodes as it was. (The real fuzzing is `scripts/fuzz.sh`.)

use std::path::PathBuf;

use redoubt_store::fuzzing;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/store_envelope");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn the_seed_corpus_reaches_both_decoders() {
    let seeds = seeds();
    assert!(seeds.len() >= 5);
    let opened = seeds.iter().filter(|s| fuzzing::open(s).is_ok()).count();
    assert_eq!(
        opened, 2,
        "the live and tombstone envelopes of the vector open"
    );
    let v2 = seeds
        .iter()
        .filter(|s| redoubt_store::fuzzing::decodes_as_v2_plaintext(s))
        .count();
    assert_eq!(
        v2, 1,
        "the version 2 plaintext seed (a record with lineage) decodes"
    );
    for seed in &seeds {
        fuzzing::envelope(seed);
    }
}

#[test]
fn mutated_seeds_never_panic() {
    let seeds = seeds();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
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
        fuzzing::envelope(&input);
    }
}
