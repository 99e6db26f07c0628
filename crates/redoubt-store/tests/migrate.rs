//! Password change, migration from a format-1 snapshot, and export back to one.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use redoubt_snapshot::{SealKey, Snapshot};
use redoubt_store::{Error, KdfLimits, KdfParams, Password, Store, tables};
use redoubt_vault::{Location, MergeBounds, MergePolicy, Record, Rights, SecretValue, Stamp};

const R: Rights = Rights {
    read: true,
    write: false,
};
const RW: Rights = Rights {
    read: true,
    write: true,
};
const PEER: &[u8] = b"12D3KooWPeerOneTextIdAsItWouldBeGrantedXXXXXXXXXXXX";

fn password() -> Password {
    Password::new(b"correct horse battery staple".to_vec())
}

fn loc(v: &str, r: &str) -> Location {
    Location::new(v, r).unwrap()
}

fn secret(s: &str) -> SecretValue {
    SecretValue::new(s.as_bytes().to_vec())
}

fn open(path: &Path, pw: &Password) -> Result<Store, Error> {
    Store::open(path, pw, &KdfLimits::default())
}

/// Raw rows of a `[u8; 32]`-keyed table.
type Rows = Vec<([u8; 32], Vec<u8>)>;

/// Every row of a `[u8; 32]`-keyed table, raw, read through redb (the store must be closed).
fn rows32(path: &Path, table: TableDefinition<&[u8; 32], &[u8]>) -> Rows {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(table).unwrap();
    let rows = table.iter().unwrap().map(|row| {
        let (k, v) = row.unwrap();
        (*k.value(), v.value().to_vec())
    });
    rows.collect()
}

/// Every raw row of the tables a password change must not touch.
fn untouched_rows(path: &Path) -> (Rows, Vec<Vec<u8>>) {
    let records = rows32(path, tables::RECORDS);
    let mut other = rows32(path, tables::GRANTS)
        .into_iter()
        .map(|(k, v)| [k.as_slice(), &v].concat())
        .collect::<Vec<_>>();
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    for row in tx.open_table(tables::IDENTITY).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        other.push([k.value().as_bytes(), v.value()].concat());
    }
    for row in tx.open_table(tables::JOURNAL).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        other.push([k.value().to_le_bytes().as_slice(), v.value()].concat());
    }
    (records, other)
}

fn meta(path: &Path, row: &str) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(tables::META).unwrap();
    table.get(row).unwrap().unwrap().value().to_vec()
}

/// A store with live records, a tombstone, a foreign version, grants and journal events.
fn populated(dir: &Path) -> (PathBuf, Store) {
    let path = dir.join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    store
        .put_at(b"alice", &loc("wallet", "seed"), secret("s3cret"), 1_000)
        .unwrap();
    store
        .put_at(b"alice", &loc("mail", "pw"), secret("hunter2"), 1_001)
        .unwrap();
    store
        .delete_at(b"alice", &loc("mail", "pw"), 1_002)
        .unwrap();
    let stamp = Stamp {
        wall_ms: 5_000,
        counter: 2,
        node: redoubt_vault::NodeId::from_bytes([9; 16]),
    };
    let foreign = Record::from_parts(loc("vpn", "key"), stamp, Some(secret("k"))).unwrap();
    store
        .merge_record(
            b"bob",
            foreign,
            MergePolicy::Newest,
            &MergeBounds::at(10_000),
        )
        .unwrap();
    store.set_rights(PEER, b"alice", R).unwrap();
    store.set_rights(PEER, b"bob", RW).unwrap();
    (path, store)
}

/// The snapshot holds the store's current versions (format 1 carries no lineage).
fn assert_same_state(store: &Store, snapshot: &Snapshot) {
    assert_eq!(
        store
            .load_instance()
            .unwrap()
            .without_lineage()
            .state_digest(),
        snapshot.instance.without_lineage().state_digest()
    );
    assert_eq!(store.clock(), snapshot.instance.clock());
    assert_eq!(store.grants(), &snapshot.access);
    assert_eq!(
        store.identity().expose_seed(),
        snapshot.identity.expose_seed()
    );
    assert_eq!(store.node(), snapshot.identity.node_id());
}

#[test]
fn a_password_change_rewraps_the_key_and_rewrites_no_record_or_journal_row() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = populated(dir.path());
    let digest = store.state_digest().unwrap();
    let head = store.journal_head();
    drop(store);
    let before = untouched_rows(&path);
    let (kdf, wrapped) = (
        meta(&path, tables::META_KDF),
        meta(&path, tables::META_DATA_KEY),
    );

    let new = Password::new(b"a new and longer passphrase".to_vec());
    let mut store = open(&path, &password()).unwrap();
    store
        .change_password(&password(), &new, KdfParams::insecure_fast())
        .unwrap();
    // The handle keeps working under the same data key.
    assert_eq!(store.state_digest().unwrap(), digest);
    drop(store);

    assert_eq!(
        untouched_rows(&path),
        before,
        "records, grants, identity, journal"
    );
    assert_ne!(meta(&path, tables::META_KDF), kdf, "a fresh salt");
    assert_ne!(
        meta(&path, tables::META_DATA_KEY),
        wrapped,
        "the key is rewrapped"
    );
    assert!(matches!(
        open(&path, &password()),
        Err(Error::WrongPassword)
    ));
    let store = open(&path, &new).unwrap();
    assert_eq!(store.state_digest().unwrap(), digest);
    assert_eq!(
        store.journal_head(),
        head,
        "no journal event for a password change"
    );
    assert_eq!(store.journal(1).unwrap().len(), 6);
    assert_eq!(
        store
            .get(b"alice", &loc("wallet", "seed"))
            .unwrap()
            .map(|v| v.expose().to_vec()),
        Some(b"s3cret".to_vec())
    );
    assert_eq!(store.rights(PEER, b"bob"), RW);
    assert!(store.damaged_rows().next().is_none());
}

#[test]
fn a_wrong_old_password_or_bad_parameters_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut store) = populated(dir.path());
    let new = Password::new(b"new".to_vec());
    assert!(matches!(
        store.change_password(
            &Password::new(b"guess".to_vec()),
            &new,
            KdfParams::insecure_fast()
        ),
        Err(Error::WrongPassword)
    ));
    let huge = KdfParams {
        memory_kib: u32::MAX,
        ..KdfParams::default()
    };
    assert!(matches!(
        store.change_password(&password(), &new, huge),
        Err(Error::InvalidKdfParams(_))
    ));
    drop(store);
    let kdf = meta(&path, tables::META_KDF);
    let check = meta(&path, tables::META_CHECK);
    assert!(matches!(open(&path, &new), Err(Error::WrongPassword)));
    let store = open(&path, &password()).unwrap();
    drop(store);
    assert_eq!(
        (
            meta(&path, tables::META_KDF),
            meta(&path, tables::META_CHECK)
        ),
        (kdf, check)
    );
}

#[test]
fn a_snapshot_migrates_with_its_identity_clock_grants_and_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = Snapshot::generate().unwrap();
    let i = &mut snapshot.instance;
    i.write_at(b"alice", &loc("wallet", "seed"), secret("s3cret"), 1_000)
        .unwrap();
    i.write_at(b"alice", &loc("mail", "pw"), secret("x"), 1_001)
        .unwrap();
    i.delete_at(b"alice", &loc("mail", "pw"), 1_002).unwrap();
    i.write_at(b"bob", &loc("vpn", "key"), secret("k"), 1_003)
        .unwrap();
    snapshot.access.grant(PEER, b"alice", R).unwrap();

    let path = dir.path().join("vault.redb");
    let store =
        Store::create_from_snapshot(&path, &snapshot, &password(), KdfParams::insecure_fast())
            .unwrap();
    assert_same_state(&store, &snapshot);
    assert_eq!(
        store.journal_head(),
        (0, [0; 32]),
        "the records are the base state"
    );
    drop(store);
    let mut store = open(&path, &password()).unwrap();
    assert_same_state(&store, &snapshot);
    let tomb = store.record(b"alice", &loc("mail", "pw")).unwrap().unwrap();
    assert!(tomb.value().is_none(), "the tombstone migrated");
    // The clock resumes past the snapshot's, and the journal starts at event 1.
    let stamp = store
        .put_at(b"alice", &loc("wallet", "new"), secret("n"), 0)
        .unwrap();
    assert!((stamp.wall_ms, stamp.counter) > snapshot.instance.clock().last());
    assert_eq!(store.journal_head().0, 1);
}

#[test]
fn migration_never_overwrites_and_leaves_no_file_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = Snapshot::generate().unwrap();
    let path = dir.path().join("vault.redb");
    std::fs::write(&path, b"precious").unwrap();
    assert!(matches!(
        Store::create_from_snapshot(&path, &snapshot, &password(), KdfParams::insecure_fast()),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");

    let other = dir.path().join("other.redb");
    let bad = KdfParams {
        parallelism: 0,
        ..KdfParams::insecure_fast()
    };
    assert!(Store::create_from_snapshot(&other, &snapshot, &password(), bad).is_err());
    assert!(!other.exists());
    // A failure after the file exists is covered by the crate's own
    // `a_creation_that_fails_midway_leaves_no_file`.
}

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name)
}

#[test]
fn the_released_snapshot_vector_migrates() {
    let bytes = std::fs::read(vector("snapshot-v1.rdb")).unwrap();
    let pw = std::fs::read_to_string(vector("snapshot-v1.password")).unwrap();
    let pw = pw.lines().next().unwrap().as_bytes().to_vec();
    let (snapshot, _) = Snapshot::open(&bytes, &redoubt_snapshot::Password::new(pw)).unwrap();
    assert_eq!(snapshot.identity.expose_seed(), &[0x42; 32]);
    assert_eq!(snapshot.instance.len(), 4);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let store =
        Store::create_from_snapshot(&path, &snapshot, &password(), KdfParams::insecure_fast())
            .unwrap();
    drop(store);
    let store = open(&path, &password()).unwrap();
    assert_same_state(&store, &snapshot);
    assert_eq!(store.grants().len(), 2);
    assert_eq!(
        store
            .get(b"alice", &loc("wallet", "seed"))
            .unwrap()
            .map(|v| v.expose().to_vec()),
        Some(b"correct horse battery staple".to_vec())
    );
    assert!(
        store
            .get(b"alice", &loc("mail", "password"))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .record(b"alice", &loc("mail", "password"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_export_seals_and_opens_as_a_snapshot_with_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, store) = populated(dir.path());
    let exported = store.export().unwrap();
    assert_same_state(&store, &exported);

    let pw = redoubt_snapshot::Password::new(b"export password".to_vec());
    let key = SealKey::generate(&pw, KdfParams::insecure_fast()).unwrap();
    let bytes = exported.seal(&key).unwrap();
    let (opened, _) = Snapshot::open(&bytes, &pw).unwrap();
    assert_same_state(&store, &opened);

    // And back: export, then migrate, is the same store state under the same identity.
    let again = dir.path().join("again.redb");
    let migrated =
        Store::create_from_snapshot(&again, &opened, &password(), KdfParams::insecure_fast())
            .unwrap();
    assert_same_state(&migrated, &opened);
    assert_eq!(migrated.node(), store.node());
}

#[test]
fn an_export_refuses_to_leave_a_damaged_record_out() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = populated(dir.path());
    drop(store);
    let (row, mut value) = rows32(&path, tables::RECORDS).remove(0);
    value[30] ^= 1;
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(tables::RECORDS)
            .unwrap()
            .insert(&row, value.as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let mut store = open(&path, &password()).unwrap();
    // An open reads no record row; a verify opens them all.
    assert_eq!(store.damaged_rows().count(), 0);
    assert_eq!(store.verify().unwrap(), 1);
    assert_eq!(store.damaged_rows().count(), 1);
    match store.export() {
        Err(Error::RecordCorrupted { row: named, .. }) => {
            assert_eq!(named, redoubt_vault::hex(&row))
        }
        other => panic!("expected RecordCorrupted, got {other:?}"),
    }
}

/// A snapshot of arbitrary versions (live and tombstones, by several writers) and grants.
fn snapshot_of(versions: &[(u8, u8, u64, u32, u8, bool)], grants: &[(u8, u8, u8)]) -> Snapshot {
    let mut snapshot = Snapshot::new(redoubt_snapshot::Identity::from_seed([5; 32]));
    for &(client, record, wall_ms, counter, node, live) in versions {
        let stamp = Stamp {
            wall_ms,
            counter,
            node: redoubt_vault::NodeId::from_bytes([node; 16]),
        };
        let value = live.then(|| secret(&format!("{client}/{record}/{wall_ms}")));
        let record = Record::from_parts(loc("v", &format!("r{record}")), stamp, value).unwrap();
        let client = format!("client-{client}");
        snapshot
            .instance
            .restore(client.as_bytes(), record)
            .unwrap();
    }
    for &(peer, client, bits) in grants {
        let rights = Rights::from_bits(bits).unwrap();
        let (peer, client) = (format!("peer-{peer}"), format!("client-{client}"));
        snapshot
            .access
            .grant(peer.as_bytes(), client.as_bytes(), rights)
            .unwrap();
    }
    snapshot
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
    #[test]
    fn any_snapshot_migrates_and_exports_back_to_the_same_state(
        versions in proptest::collection::vec(
            (0..3u8, 0..5u8, 0..100u64, 0..3u32, 0..3u8, proptest::bool::ANY),
            0..12,
        ),
        grants in proptest::collection::vec((0..3u8, 0..3u8, 1..4u8), 0..4),
    ) {
        let snapshot = snapshot_of(&versions, &grants);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let fast = KdfParams::insecure_fast();
        drop(Store::create_from_snapshot(&path, &snapshot, &password(), fast).unwrap());
        let store = open(&path, &password()).unwrap();
        assert_same_state(&store, &snapshot);
        let pw = redoubt_snapshot::Password::new(b"p".to_vec());
        let sealed = store.export().unwrap().seal(&SealKey::generate(&pw, fast).unwrap()).unwrap();
        let (back, _) = Snapshot::open(&sealed, &pw).unwrap();
        assert_same_state(&store, &back);
    }
}
