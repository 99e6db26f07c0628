//! Journal event schema version 2, pinned: `tests/vectors/journal-v2-events.txt` at the top of
//! the workspace holds two events of one chain whose records carry lineage (an edit naming its
//! parent, then a deletion with a two-version history beside a parentless record), made from
//! fixed inputs: each one's plaintext, hash and sealed row under a fixed key and nonce.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-store
//! --test journal_vectors_v2` writes the file only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_store::{
    fuzzing,
    journal::{
        self,
        v2::{self, Event, RecordChange},
    },
};
use redoubt_vault::{ClientId, Instance, Location, NodeId, Record, SecretValue, Stamp, hex};

const NONCE: [u8; 24] = [0x5c; 24];

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/journal-v2-events.txt")
}

fn node() -> NodeId {
    NodeId::from_bytes([0x11; 16])
}

fn stamp(ms: u64) -> Stamp {
    Stamp {
        wall_ms: ms,
        counter: 0,
        node: node(),
    }
}

/// The two events, the second's parent the first's v2 hash.
fn events() -> Vec<Event> {
    let seed = Location::new("wallet", "seed").unwrap();
    let value = |v: &[u8]| Some(SecretValue::new(v.to_vec()));
    let one = Record::live(
        seed.clone(),
        stamp(1_700_000_000_000),
        SecretValue::new(b"one".to_vec()),
    )
    .unwrap();
    let two = Record::successor(
        seed.clone(),
        stamp(1_700_000_000_001),
        value(b"two"),
        Some(&one),
    )
    .unwrap();
    let gone = Record::successor(seed, stamp(1_700_000_000_002), None, Some(&two)).unwrap();
    let pin = Record::live(
        Location::new("wallet", "pin").unwrap(),
        stamp(1_700_000_000_002),
        SecretValue::new(b"4921".to_vec()),
    )
    .unwrap();
    let change = |record| RecordChange {
        client: b"alice".to_vec(),
        record,
    };
    let mut out = vec![
        Event {
            seq: 1,
            parent: [0; 32],
            writer: node(),
            wall_ms: 1_700_000_000_001,
            counter: 0,
            records: vec![change(two)],
            grants: vec![],
        },
        Event {
            seq: 2,
            parent: [0; 32],
            writer: node(),
            wall_ms: 1_700_000_000_002,
            counter: 0,
            records: vec![change(gone), change(pin)],
            grants: vec![],
        },
    ];
    out[1].parent = v2::hash(&v2::encode(&out[0]).unwrap());
    out
}

/// The vector's text, made afresh by this build.
fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "# redoubt journal event schema version 2 (docs/journal-format.md): one chain of two\n\
         # events written by node 0x11 x 16, each as event-N (plaintext), hash-N and sealed-N\n\
         # (its `journal` row under journal-key, with nonce)\n\
         # 1: alice wallet/seed = \"two\" at (1700000000001, 0), parent: \"one\" at\n\
         #    (1700000000000, 0), which is its history\n\
         # 2: alice wallet/seed deleted at (1700000000002, 0), parent \"two\", history \"two\"\n\
         #    then \"one\"; alice wallet/pin = \"4921\" at (1700000000002, 0), parentless\n",
    );
    let mut line = |name: &str, bytes: &[u8]| writeln!(out, "{name} {}", hex(bytes)).unwrap();
    line("journal-key", &fuzzing::KEY);
    line("nonce", &NONCE);
    for e in events() {
        let plain = v2::encode(&e).unwrap();
        line(&format!("event-{}", e.seq), &plain);
        line(&format!("hash-{}", e.seq), &v2::hash(&plain));
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
fn the_released_journal_v2_vector_still_holds() {
    let path = path();
    if !path.exists() && std::env::var_os("REDOUBT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, render()).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/journal-v2-events.txt");
    assert_eq!(
        text,
        render(),
        "this build encodes, hashes or seals version 2 differently"
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
    for seq in 1..=2u64 {
        let plain = field(&format!("event-{seq}"));
        let hash = blake3::derive_key("redoubt journal v2 event hash", &plain);
        assert_eq!(field(&format!("hash-{seq}")), hash);
        assert_eq!(&plain[..2], &[2, 0], "schema version 2 comes first");
        // The version 1 event inside names the chain's parent.
        let inner_len = u32::from_le_bytes(plain[2..6].try_into().unwrap()) as usize;
        let inner = &plain[6..6 + inner_len];
        assert_eq!(&inner[..2], &[1, 0]);
        assert_eq!(&inner[10..42], &parent, "event {seq} names its parent");
        let event = journal::decode(&plain).unwrap();
        assert_eq!(event.version(), 2);
        assert_eq!(
            journal::encode(&event).unwrap().as_slice(),
            plain.as_slice()
        );
        let sealed = field(&format!("sealed-{seq}"));
        assert_eq!(fuzzing::open_event(seq, &sealed).unwrap(), plain);
        journal::apply(&mut state, &event).unwrap();
        parent = hash;
    }
    let alice = ClientId::from_path(b"alice");
    let seed = Location::new("wallet", "seed").unwrap();
    let gone = state.record(&alice, seed.ids()).unwrap();
    assert!(gone.is_tombstone());
    assert_eq!(gone.history().len(), 2);
    assert_eq!(gone.history()[0].value().unwrap().expose(), b"two");
    assert_eq!(gone.parent(), Some(gone.history()[0].hash()));
    assert_eq!(gone.history()[0].parent(), Some(gone.history()[1].hash()));
    assert_eq!(state.len(), 2);
}
