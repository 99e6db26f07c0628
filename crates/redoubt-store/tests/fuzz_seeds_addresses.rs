//! The committed seed corpus of `fuzz/fuzz_targets/address_row.rs`, and a few thousand cheap
//! mutations of it, through the fuzz entry point: no panic, and every row that decodes
//! re-encodes as it was. (The real fuzzing is `scripts/fuzz.sh`.)

use std::path::PathBuf;

use redoubt_store::{addresses::PeerAddresses, fuzzing};

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/address_row");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn the_seed_corpus_reaches_the_decoder() {
    let seeds = seeds();
    let decoded: Vec<PeerAddresses> = seeds
        .iter()
        .filter_map(|s| PeerAddresses::decode(s).ok())
        .collect();
    assert_eq!(decoded.len(), 5, "every seed but the zeros decodes");
    assert!(decoded.iter().any(|r| r.addresses.len() == 8));
    for seed in &seeds {
        fuzzing::address_row(seed);
    }
}

#[test]
fn mutated_seeds_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in seeds() {
        for _ in 0..500 {
            let mut data = seed.clone();
            for _ in 0..1 + next() % 4 {
                if data.is_empty() {
                    break;
                }
                let i = (next() as usize) % data.len();
                match next() % 3 {
                    0 => data[i] = next() as u8,
                    1 => data.truncate(i),
                    _ => data.insert(i, next() as u8),
                }
            }
            fuzzing::address_row(&data);
        }
    }
}
