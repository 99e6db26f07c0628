//! Journal event schema version 1, pinned: `tests/vectors/journal-v1-events.txt` at the top of
//! the workspace holds three events of one chain (a write, a tombstone, a grant change) made
//! from fixed inputs: each one's plaintext, hash and sealed row under a fixed key and nonce.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-store
//! --test journal_vectors` writes the file only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_store::{
    fuzzing,
    journal::{
        self,
        v1::{Event, GrantChange, RecordChange},
    },
};
use redoubt_vault::{Instance, Location, NodeId, Record, Rights, SecretValue, Stamp, hex};

const NONCE: [u8; 24] = [0x5b; 24];

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/journal-v1-events.txt")
}

fn node() -> NodeId {
    NodeId::from_bytes([0x11; 16])
}

/// The three events, their parents chained by v1's hash.
fn events() -> Vec<Event> {
    let seed = Location::new("wallet", "seed").unwrap();
    let stamp = |ms, counter| Stamp {
        wall_ms: ms,
        counter,
        node: node(),
    };
    let write = Record::live(
        seed.clone(),
        stamp(1_700_000_000_000, 0),
        SecretValue::new(b"correct horse battery staple".to_vec()),
    )
    .unwrap();
    let tomb = Record::tombstone(seed, stamp(1_700_000_000_001, 0));
    let mut out = vec![
        Event {
            seq: 1,
            parent: [0; 32],
            writer: node(),
            wall_ms: 1_700_000_000_000,
            counter: 0,
            records: vec![RecordChange {
                client: b"alice".to_vec(),
                record: write,
            }],
            grants: vec![],
        },
        Event {
            seq: 2,
            parent: [0; 32],
            writer: node(),
            wall_ms: 1_700_000_000_001,
            counter: 0,
            records: vec![RecordChange {
                client: b"alice".to_vec(),
                record: tomb,
            }],
            grants: vec![],
        },
        Event {
            seq: 3,
            parent: [0; 32],
            writer: node(),
            wall_ms: 1_700_000_000_001,
            counter: 0,
            records: vec![],
            grants: vec![GrantChange {
                peer: b"peer-one".to_vec(),
                client: b"alice".to_vec(),
                rights: Rights {
                    read: true,
                    write: false,
                },
            }],
        },
    ];
    for i in 1..out.len() {
        out[i].parent = journal::v1::hash(&journal::v1::encode(&out[i - 1]).unwrap());
    }
    out
}

/// The vector's text, made afresh by this build.
fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "# redoubt journal event schema version 1 (docs/journal-format.md): one chain of three\n\
         # events written by node 0x11 x 16, each as event-N (plaintext), hash-N and sealed-N\n\
         # (its `journal` row under journal-key, with nonce)\n\
         # 1: alice wallet/seed = \"correct horse battery staple\" at (1700000000000, 0)\n\
         # 2: alice wallet/seed deleted (a tombstone) at (1700000000001, 0)\n\
         # 3: peer \"peer-one\" granted read on alice; clock still (1700000000001, 0)\n\
         # (the three rows share one nonce only because this is a vector: stores draw a fresh\n\
         # random nonce for every row they seal)\n",
    );
    let mut line = |name: &str, bytes: &[u8]| writeln!(out, "{name} {}", hex(bytes)).unwrap();
    line("journal-key", &fuzzing::KEY);
    line("nonce", &NONCE);
    for e in events() {
        let plain = journal::v1::encode(&e).unwrap();
        line(&format!("event-{}", e.seq), &plain);
        line(&format!("hash-{}", e.seq), &journal::v1::hash(&plain));
        line(
            &format!("sealed-{}", e.seq),
            &fuzzing::seal_event(e.seq, &plain, &NONCE).unwrap(),
        );
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_released_journal_vector_still_holds() {
    let path = path();
    if !path.exists() && std::env::var_os("REDOUBT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, render()).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/journal-v1-events.txt");
    assert_eq!(
        text,
        render(),
        "this build encodes, hashes or seals version 1 differently"
    );

    let field = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        unhex(&line[name.len() + 1..])
    };
    let mut parent = [0u8; 32];
    let mut state = Instance::new(node());
    for seq in 1..=3u64 {
        let plain = field(&format!("event-{seq}"));
        // The hash follows docs/journal-format.md, from the primitive alone.
        let hash = blake3::derive_key("redoubt journal v1 event hash", &plain);
        assert_eq!(field(&format!("hash-{seq}")), hash);
        assert_eq!(&plain[..2], &[1, 0], "schema version 1 comes first");
        assert_eq!(&plain[2..10], &seq.to_le_bytes());
        assert_eq!(&plain[10..42], &parent, "event {seq} names its parent");
        let event = journal::decode(&plain).unwrap();
        assert_eq!(
            journal::encode(&event).unwrap().as_slice(),
            plain.as_slice()
        );
        let sealed = field(&format!("sealed-{seq}"));
        assert_eq!(sealed[0], 1, "the envelope version comes first");
        assert_eq!(fuzzing::open_event(seq, &sealed).unwrap(), plain);
        assert!(
            fuzzing::open_event(seq + 1, &sealed).is_err(),
            "bound to its sequence number"
        );
        journal::apply(&mut state, &event).unwrap();
        parent = hash;
    }
    let seed = Location::new("wallet", "seed").unwrap();
    assert!(state.read(b"alice", &seed).is_none(), "the tombstone won");
    assert_eq!(state.len(), 1);
}
