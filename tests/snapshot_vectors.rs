//! Snapshot format test vectors: files under `tests/vectors/` that every future build must open.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-tests
//! --test snapshot_vectors -- --ignored` writes a vector only if it does not exist yet.

use std::path::PathBuf;

use redoubt_snapshot::{Identity, KdfParams, Password, SealKey, Snapshot};
use redoubt_vault::{ClientId, Location, NodeId, Record, Rights, SecretValue, Stamp};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn password() -> Password {
    let text = std::fs::read_to_string(vectors().join("snapshot-v1.password")).unwrap();
    Password::new(text.trim_end_matches('\n').as_bytes().to_vec())
}

const SEED: [u8; 32] = [0x42; 32];
const WRITER: NodeId = NodeId::from_bytes([0x11; 16]);

fn stamp(wall_ms: u64, counter: u32) -> Stamp {
    Stamp {
        wall_ms,
        counter,
        node: WRITER,
    }
}

/// The content of `snapshot-v1.rdb`, also described in `tests/vectors/README.md`.
fn expected() -> Snapshot {
    let mut s = Snapshot::new(Identity::from_seed(SEED));
    let live = |v: &str, r: &str, st: Stamp, value: &[u8]| {
        Record::live(
            Location::new(v, r).unwrap(),
            st,
            SecretValue::new(value.to_vec()),
        )
        .unwrap()
    };
    let i = &mut s.instance;
    i.restore(
        b"alice",
        live(
            "wallet",
            "seed",
            stamp(1_700_000_000_000, 0),
            b"correct horse battery staple",
        ),
    )
    .unwrap();
    i.restore(
        b"alice",
        live("wallet", "pin", stamp(1_700_000_000_001, 3), b"4921"),
    )
    .unwrap();
    i.restore(
        b"alice",
        Record::tombstone(
            Location::new("mail", "password").unwrap(),
            stamp(1_700_000_000_002, 0),
        ),
    )
    .unwrap();
    i.restore(
        b"bob",
        live(
            "vpn",
            "key",
            stamp(1_700_000_000_003, 0),
            &[0, 1, 2, 254, 255],
        ),
    )
    .unwrap();
    s.access
        .grant(
            b"\x00\x24\x08\x01\x12\x20peer-one-peer-one-peer-one-peer",
            b"alice",
            Rights {
                read: true,
                write: false,
            },
        )
        .unwrap();
    s.access
        .grant(
            b"\x00\x24\x08\x01\x12\x20peer-two-peer-two-peer-two-peer",
            b"bob",
            Rights {
                read: true,
                write: true,
            },
        )
        .unwrap();
    s
}

#[test]
#[ignore = "writes a new vector; run only when adding a format version"]
fn write_snapshot_v1_vector() {
    if std::env::var_os("REDOUBT_WRITE_VECTORS").is_none() {
        return;
    }
    let path = vectors().join("snapshot-v1.rdb");
    assert!(!path.exists(), "released vectors are never rewritten");
    let key = SealKey::generate(&password(), KdfParams::insecure_fast()).unwrap();
    std::fs::write(path, expected().seal(&key).unwrap()).unwrap();
}

#[test]
fn snapshot_v1_vector_opens_with_its_content() {
    let bytes = std::fs::read(vectors().join("snapshot-v1.rdb")).unwrap();
    assert_eq!(&bytes[..10], b"RDBTSNAP\x01\x00");
    let (loaded, key) = Snapshot::open(&bytes, &password()).unwrap();
    assert_eq!(key.params(), KdfParams::insecure_fast());
    let want = expected();
    assert_eq!(loaded.identity.public_key(), want.identity.public_key());
    assert_eq!(loaded.instance.node(), want.instance.node());
    assert_eq!(loaded.instance.clock().last(), (1_700_000_000_003, 0));
    assert_eq!(loaded.access, want.access);
    assert_eq!(loaded.instance.state_digest(), want.instance.state_digest());
    let alice = ClientId::from_path(b"alice");
    let seed = loaded
        .instance
        .record(&alice, Location::new("wallet", "seed").unwrap().ids())
        .unwrap();
    assert_eq!(
        seed.value().unwrap().expose(),
        b"correct horse battery staple"
    );
    assert_eq!(*seed.stamp(), stamp(1_700_000_000_000, 0));
    let gone = loaded
        .instance
        .record(&alice, Location::new("mail", "password").unwrap().ids())
        .unwrap();
    assert!(gone.is_tombstone());
    assert_eq!(
        loaded
            .instance
            .read(b"bob", &Location::new("vpn", "key").unwrap())
            .unwrap()
            .expose(),
        &[0, 1, 2, 254, 255]
    );
    // Re-sealing and reopening keeps the same state.
    let again = Snapshot::open(&loaded.seal(&key).unwrap(), &password())
        .unwrap()
        .0;
    assert_eq!(again.instance.state_digest(), want.instance.state_digest());
}

#[test]
fn snapshot_v1_vector_refuses_the_wrong_password() {
    let bytes = std::fs::read(vectors().join("snapshot-v1.rdb")).unwrap();
    let err = Snapshot::open(&bytes, &Password::new(b"not it".to_vec())).unwrap_err();
    assert!(
        matches!(err, redoubt_snapshot::Error::WrongPassword),
        "{err}"
    );
}
