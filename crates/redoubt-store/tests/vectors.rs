//! Store format version 1, pinned: `tests/vectors/store-v1-envelope.txt` at the top of the
//! workspace holds a record envelope and a tombstone sealed with a fixed key and nonce, a
//! record row id and the `meta` rows of a fixed password, salt and data key.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-store
//! --test vectors` writes the file only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_store::{KdfParams, Password, fuzzing};
use redoubt_vault::{Location, NodeId, Record, SecretValue, Stamp, hex};

const NONCE: [u8; 24] = [0x5a; 24];
const DATA_KEY: [u8; 32] = [0x33; 32];
const SALT: [u8; 16] = [0x77; 16];
const WRAP_NONCE: [u8; 24] = [0x66; 24];

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/store-v1-envelope.txt")
}

fn records() -> (Record, Record) {
    let node = NodeId::from_bytes([0x11; 16]);
    let live = Record::live(
        Location::new("wallet", "seed").unwrap(),
        Stamp {
            wall_ms: 1_700_000_000_000,
            counter: 3,
            node,
        },
        SecretValue::new(b"correct horse battery staple".to_vec()),
    )
    .unwrap();
    let tomb = Record::tombstone(
        Location::new("mail", "password").unwrap(),
        Stamp {
            wall_ms: 1_700_000_000_002,
            counter: 0,
            node,
        },
    );
    (live, tomb)
}

/// The vector's text, made afresh by this build.
fn render() -> String {
    let (live, tomb) = records();
    let mut out = String::new();
    out.push_str(
        "# redoubt store format version 1 (docs/store-format.md): fixed keys and nonces\n\
         # record-key, row, nonce: the seal key, the row (keyed id) and nonce of both envelopes\n\
         # live: client alice, wallet/seed, stamp (1700000000000, 3, 0x11 x 16),\n\
         #       value \"correct horse battery staple\"\n\
         # tombstone: client alice, mail/password, stamp (1700000000002, 0, 0x11 x 16)\n\
         # data-key, record-row: the row of alice/wallet/seed under that data key's subkeys\n\
         # password, kdf, salt, wrap-nonce, check, wrapped: the meta rows for that data key\n\
         # (both envelopes share one nonce only because this is a vector: stores draw a fresh\n\
         # random nonce for every row they seal)\n",
    );
    let mut line = |name: &str, bytes: &[u8]| writeln!(out, "{name} {}", hex(bytes)).unwrap();
    line("record-key", &fuzzing::KEY);
    line("row", &fuzzing::ROW);
    line("nonce", &NONCE);
    line("live", &fuzzing::seal(b"alice", &live, &NONCE).unwrap());
    line(
        "tombstone",
        &fuzzing::seal(b"alice", &tomb, &NONCE).unwrap(),
    );
    line("data-key", &DATA_KEY);
    let row = fuzzing::record_row(DATA_KEY, b"alice", live.location());
    line("record-row", &row);
    let password = b"redoubt test vector v1";
    line("password", password);
    let params = KdfParams::insecure_fast();
    let (check, wrapped) = fuzzing::wrap(
        &Password::new(password.to_vec()),
        params,
        &SALT,
        DATA_KEY,
        &WRAP_NONCE,
    )
    .unwrap();
    writeln!(
        out,
        "kdf argon2id memory_kib={} iterations={} parallelism={}",
        params.memory_kib, params.iterations, params.parallelism
    )
    .unwrap();
    let mut line = |name: &str, bytes: &[u8]| writeln!(out, "{name} {}", hex(bytes)).unwrap();
    line("salt", &SALT);
    line("wrap-nonce", &WRAP_NONCE);
    line("check", &check);
    line("wrapped", &wrapped);
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_released_envelope_vector_still_holds() {
    let path = path();
    if !path.exists() && std::env::var_os("REDOUBT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, render()).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/store-v1-envelope.txt");
    assert_eq!(text, render(), "this build seals version 1 differently");

    // And the released envelopes open to what they hold.
    let field = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        unhex(&line[name.len() + 1..])
    };
    let (live, tomb) = records();
    let (client, opened) = fuzzing::open(&field("live")).unwrap();
    assert_eq!(client, b"alice");
    assert_eq!(opened.location(), live.location());
    assert_eq!(opened.hash(), live.hash());
    let (_, opened) = fuzzing::open(&field("tombstone")).unwrap();
    assert!(opened.is_tombstone());
    assert_eq!(opened.shape(), tomb.shape());
    assert_eq!(field("live")[0], 1, "the envelope version comes first");

    // The row id follows docs/store-format.md, computed here from the primitives alone.
    let id_key = blake3::derive_key(redoubt_store::RECORD_ID_KEY_LABEL, &DATA_KEY);
    let (vault, record) = live.location().ids();
    let ids = [
        redoubt_vault::ClientId::from_path(b"alice")
            .as_bytes()
            .as_slice(),
        vault.as_bytes(),
        record.as_bytes(),
    ]
    .concat();
    assert_eq!(
        field("record-row"),
        blake3::keyed_hash(&id_key, &ids).as_bytes()
    );
}
