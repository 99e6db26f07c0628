//! The store end to end: stamps and merges as the in-memory vault makes them, durability
//! across reopen, grants, and every error the file can give.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable};
use redoubt_store::{Error, KdfLimits, KdfParams, Password, Store, tables};
use redoubt_vault::{
    ClientId, Instance, Location, MergeBounds, MergePolicy, NodeId, Record, Rights, SecretValue,
    Stamp,
};

fn password() -> Password {
    Password::new(b"correct horse battery staple".to_vec())
}

fn loc(v: &str, r: &str) -> Location {
    Location::new(v, r).unwrap()
}

fn secret(s: &str) -> SecretValue {
    SecretValue::new(s.as_bytes().to_vec())
}

fn fresh() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    (dir, path, store)
}

fn reopen(path: &Path) -> Store {
    Store::open(path, &password(), &KdfLimits::default()).unwrap()
}

fn value(store: &Store, client: &[u8], l: &Location) -> Option<Vec<u8>> {
    store.get(client, l).unwrap().map(|v| v.expose().to_vec())
}

/// Changes the raw redb file outside the store (the store must be closed).
fn with_raw_db(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

fn record_rows(path: &Path) -> Vec<([u8; 32], Vec<u8>)> {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(tables::RECORDS).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            (*k.value(), v.value().to_vec())
        })
        .collect()
}

#[test]
fn writes_are_stamped_as_the_vault_stamps_them_and_survive_reopen() {
    let (_dir, path, mut store) = fresh();
    let node = store.node();
    let mut model = Instance::new(node);
    let a = loc("wallet", "seed");
    let b = loc("mail", "password");
    let ops: [(u64, &Location, Option<&str>); 6] = [
        (1000, &a, Some("one")),
        (1000, &b, Some("two")),
        (999, &a, Some("three")),
        (2000, &b, None),
        (2000, &b, Some("four")),
        (10, &a, None),
    ];
    for (now, l, v) in ops {
        let (ours, theirs) = match v {
            Some(v) => (
                store.put_at(b"alice", l, secret(v), now).unwrap(),
                model.write_at(b"alice", l, secret(v), now).unwrap(),
            ),
            None => (
                store.delete_at(b"alice", l, now).unwrap(),
                model.delete_at(b"alice", l, now).unwrap(),
            ),
        };
        assert_eq!(ours, theirs);
    }
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    assert!(matches!(
        store.delete_at(b"alice", &a, 3000),
        Err(Error::Vault(redoubt_vault::Error::RecordNotFound { .. }))
    ));
    drop(store);

    let mut store = reopen(&path);
    assert_eq!(store.node(), node, "the identity is kept");
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    assert_eq!(store.clock(), model.clock(), "the clock is kept");
    assert_eq!(value(&store, b"alice", &a), None);
    assert_eq!(value(&store, b"alice", &b), Some(b"four".to_vec()));
    assert!(store.record(b"alice", &a).unwrap().unwrap().is_tombstone());
    let clients: Vec<_> = store.clients().map(|(_, p)| p.to_vec()).collect();
    assert_eq!(clients, vec![b"alice".to_vec()]);
    assert_eq!(
        store.records(&ClientId::from_path(b"alice")).unwrap().len(),
        2
    );
    // After reopen the clock goes on from where it was, as the vault's does.
    let next = store.put_at(b"alice", &a, secret("five"), 5).unwrap();
    assert_eq!(
        next,
        model.write_at(b"alice", &a, secret("five"), 5).unwrap()
    );
    assert!(
        store.put(b"", &a, secret("x")).is_err(),
        "client paths are checked"
    );
    assert_eq!(store.damaged_rows().count(), 0);
}

#[test]
fn merges_follow_the_vaults_rule_and_commit_in_one_batch() {
    let (_dir, path, mut store) = fresh();
    let mut model = Instance::new(store.node());
    let now = 1_700_000_000_000;
    let bounds = MergeBounds::at(now);
    let l = loc("wallet", "seed");
    store.put_at(b"c", &l, secret("mine"), now - 10).unwrap();
    model.write_at(b"c", &l, secret("mine"), now - 10).unwrap();
    let other = |ms: u64, counter: u32, v: Option<&str>, at: &Location| {
        let stamp = Stamp {
            wall_ms: ms,
            counter,
            node: NodeId::from_bytes([9; 16]),
        };
        Record::from_parts(at.clone(), stamp, v.map(secret)).unwrap()
    };
    let batch = vec![
        other(now - 20, 0, Some("older"), &l),
        other(now - 5, 0, Some("newer"), &l),
        other(now - 6, 0, Some("between"), &l),
        other(now - 1, 0, None, &loc("w", "gone")),
        other(u64::MAX, 0, Some("far ahead"), &loc("w", "x")),
        other(now - 1, 7, Some("fresh"), &loc("w", "new")),
    ];
    let report = store
        .merge_records(b"c", batch.clone(), MergePolicy::Newest, &bounds)
        .unwrap();
    let mut expected = redoubt_vault::MergeReport::default();
    for r in batch {
        expected.add(
            &model
                .merge_record_within(b"c", r, MergePolicy::Newest, &bounds)
                .unwrap(),
        );
    }
    assert_eq!(report, expected);
    assert_eq!(report.refused_ahead, 1);
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    let one = store
        .merge_record(
            b"c",
            other(now, 0, Some("last"), &l),
            MergePolicy::KeepOld,
            &bounds,
        )
        .unwrap();
    assert_eq!((one.unchanged, one.conflicts_resolved), (1, 1));
    model
        .merge_record_within(
            b"c",
            other(now, 0, Some("last"), &l),
            MergePolicy::KeepOld,
            &bounds,
        )
        .unwrap();
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    assert_eq!(store.clock(), model.clock(), "observed stamps are kept");
    assert_eq!(value(&store, b"c", &l), Some(b"newer".to_vec()));
}

#[test]
fn a_batch_over_several_clients_merges_as_each_record_would_in_one_commit() {
    let (_dir, path, mut store) = fresh();
    let mut model = Instance::new(store.node());
    let now = 1_700_000_000_000;
    let bounds = MergeBounds::at(now);
    let l = loc("wallet", "seed");
    store
        .put_at(b"alice", &l, secret("mine"), now - 10)
        .unwrap();
    model
        .write_at(b"alice", &l, secret("mine"), now - 10)
        .unwrap();
    let head = store.journal_head().0;
    let other = |ms: u64, v: Option<&str>, at: &Location| {
        let stamp = Stamp {
            wall_ms: ms,
            counter: 0,
            node: NodeId::from_bytes([9; 16]),
        };
        Record::from_parts(at.clone(), stamp, v.map(secret)).unwrap()
    };
    // The same location in two clients is two rows: bob's version does not replace alice's.
    let batch: Vec<(Vec<u8>, Record)> = vec![
        (b"alice".to_vec(), other(now - 5, Some("newer"), &l)),
        (b"bob".to_vec(), other(now - 20, Some("bob's"), &l)),
        (b"alice".to_vec(), other(now - 6, Some("older"), &l)),
        (
            b"bob".to_vec(),
            other(u64::MAX, Some("far ahead"), &loc("w", "x")),
        ),
        (b"carol".to_vec(), other(now - 1, None, &loc("w", "gone"))),
    ];
    let report = store
        .merge_batch(batch.clone(), MergePolicy::Newest, &bounds)
        .unwrap();
    let mut expected = redoubt_vault::MergeReport::default();
    for (client, r) in batch {
        expected.add(
            &model
                .merge_record_within(&client, r, MergePolicy::Newest, &bounds)
                .unwrap(),
        );
    }
    assert_eq!(report, expected);
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    assert_eq!(store.journal_head().0, head + 1, "one commit, one event");
    let events = store.journal(head + 1).unwrap();
    assert_eq!(events.len(), 1);
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.state_digest().unwrap(), model.state_digest());
    assert_eq!(value(&store, b"alice", &l), Some(b"newer".to_vec()));
    assert_eq!(value(&store, b"bob", &l), Some(b"bob's".to_vec()));
}

#[test]
fn grants_are_set_revoked_and_kept() {
    let (_dir, path, mut store) = fresh();
    let rw = Rights {
        read: true,
        write: true,
    };
    let r = Rights {
        read: true,
        write: false,
    };
    store.set_rights(b"peer-1", b"alice", rw).unwrap();
    store.set_rights(b"peer-1", b"bob", r).unwrap();
    store.set_rights(b"peer-2", b"alice", r).unwrap();
    store.set_rights(b"peer-1", b"alice", r).unwrap();
    assert!(store.set_rights(b"", b"alice", r).is_err());
    drop(store);
    let mut store = reopen(&path);
    assert_eq!(
        store.rights(b"peer-1", b"alice"),
        r,
        "set replaces, not adds"
    );
    assert_eq!(store.grants().len(), 3);
    assert_eq!(store.revoke(b"peer-1", None).unwrap(), 2);
    store
        .set_rights(b"peer-2", b"alice", Rights::default())
        .unwrap();
    drop(store);
    let store = reopen(&path);
    assert!(store.grants().is_empty());
}

/// A peer named by raw bytes (what `PeerId::to_bytes()` gives: a multihash, starting 0x00
/// 0x24 for an ed25519 key) is refused with a clear error, not recorded as a grant that no
/// connecting peer's text id would ever match.
#[test]
fn a_grant_to_a_peer_named_by_raw_bytes_is_refused() {
    let (_dir, path, mut store) = fresh();
    let rw = Rights {
        read: true,
        write: true,
    };
    let head = store.journal_head().0;
    let raw: Vec<u8> = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]
        .into_iter()
        .chain([7u8; 32])
        .collect();
    let err = store.set_rights(&raw, b"alice", rw).unwrap_err();
    assert!(matches!(err, Error::PeerIdNotText), "{err}");
    assert!(err.to_string().contains("text form"), "{err}");
    let err = store.set_rights(b"two words", b"alice", rw).unwrap_err();
    assert!(matches!(err, Error::PeerIdNotText), "{err}");
    assert!(store.grants().is_empty());
    assert_eq!(store.journal_head().0, head, "nothing journaled");
    drop(store);
    assert!(reopen(&path).grants().is_empty());
}

#[test]
fn several_grants_are_one_commit_all_or_nothing() {
    let (_dir, path, mut store) = fresh();
    let rw = Rights {
        read: true,
        write: true,
    };
    let head = store.journal_head().0;
    // One bad client path among good ones: nothing is recorded, nothing is journaled.
    let too_long = vec![b'c'; 10_000];
    let bad: [(&[u8], Rights); 3] = [(b"alice", rw), (&too_long, rw), (b"bob", rw)];
    assert!(store.set_rights_many(b"peer-1", &bad).is_err());
    assert!(
        store.grants().is_empty(),
        "no grant of a refused batch is held"
    );
    assert_eq!(
        store.journal_head().0,
        head,
        "a refused batch is not journaled"
    );
    let good: [(&[u8], Rights); 2] = [(b"alice", rw), (b"bob", rw)];
    store.set_rights_many(b"peer-1", &good).unwrap();
    assert_eq!(store.journal_head().0, head + 1, "two grants, one event");
    drop(store);
    let store = reopen(&path);
    assert_eq!(store.rights(b"peer-1", b"alice"), rw);
    assert_eq!(store.rights(b"peer-1", b"bob"), rw);
    assert_eq!(store.grants().len(), 2);
}

#[test]
fn create_never_overwrites_and_a_store_is_opened_once() {
    let (_dir, path, store) = fresh();
    assert!(matches!(
        Store::create(&path, &password(), KdfParams::insecure_fast()),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        Store::open(&path, &password(), &KdfLimits::default()),
        Err(Error::Locked(_))
    ));
    drop(store);
    let other = path.with_file_name("other.redb");
    std::fs::write(&other, b"precious").unwrap();
    assert!(matches!(
        Store::create(&other, &password(), KdfParams::insecure_fast()),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(std::fs::read(&other).unwrap(), b"precious");
    let weak = KdfParams {
        memory_kib: 1,
        ..KdfParams::insecure_fast()
    };
    let refused = path.with_file_name("refused.redb");
    assert!(matches!(
        Store::create(&refused, &password(), weak),
        Err(Error::InvalidKdfParams(_))
    ));
    assert!(!refused.exists(), "a refused create leaves nothing");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the store is readable by its owner only");
    }
    assert!(matches!(
        Store::open(&refused, &password(), &KdfLimits::default()),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn a_wrong_password_and_excessive_kdf_demands_are_told_apart() {
    let (_dir, path, store) = fresh();
    drop(store);
    let err = Store::open(
        &path,
        &Password::new(b"guess".to_vec()),
        &KdfLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::WrongPassword));
    assert_eq!(err.to_string(), "wrong password");
    let tight = KdfLimits {
        max_memory_kib: 4,
        ..KdfLimits::default()
    };
    assert!(matches!(
        Store::open(&path, &password(), &tight),
        Err(Error::InvalidKdfParams(_))
    ));
    // A damaged wrapped key is corruption, not a wrong password.
    with_raw_db(&path, |tx| {
        let mut meta = tx.open_table(tables::META).unwrap();
        let mut key = meta
            .get(tables::META_DATA_KEY)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        key[40] ^= 1;
        meta.insert(tables::META_DATA_KEY, key.as_slice()).unwrap();
    });
    assert!(matches!(
        Store::open(&path, &password(), &KdfLimits::default()),
        Err(Error::Corrupted(_))
    ));
}

#[test]
fn foreign_truncated_and_future_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &Path| Store::open(p, &password(), &KdfLimits::default());
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(open(&empty), Err(Error::NotAStore { .. })));
    let text = dir.path().join("text");
    std::fs::write(&text, b"RDBTSNAP not a redb file at all, just some bytes").unwrap();
    let err = open(&text).unwrap_err();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("not a Redoubt store"));

    let other_redb = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other_redb).unwrap();
        let tx = db.begin_write().unwrap();
        let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("things");
        tx.open_table(def).unwrap().insert(1, 2).unwrap();
        tx.commit().unwrap();
    }
    assert!(matches!(open(&other_redb), Err(Error::NotAStore { .. })));

    let (_d, path, mut store) = fresh();
    for k in 0..200 {
        store
            .put(b"c", &loc("v", &k.to_string()), secret("value"))
            .unwrap();
    }
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [3, 100, 4096, bytes.len() / 2, bytes.len() - 1] {
        let truncated = dir.path().join(format!("cut-{cut}"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let err = open(&truncated).unwrap_err();
        eprintln!("cut {cut}: {err}");
        assert!(
            matches!(err, Error::Damaged { .. } | Error::NotAStore { .. }),
            "cut {cut}: {err}"
        );
    }

    with_raw_db(&path, |tx| {
        let mut meta = tx.open_table(tables::META).unwrap();
        let format = [tables::STORE_MAGIC.as_slice(), &3u16.to_le_bytes()].concat();
        meta.insert(tables::META_FORMAT, format.as_slice()).unwrap();
    });
    assert!(matches!(open(&path), Err(Error::UnsupportedVersion(3))));
}

#[test]
fn an_altered_or_moved_record_row_fails_to_read_naming_its_row_not_its_path() {
    let (_dir, path, mut store) = fresh();
    let (a, b) = (loc("wallet", "seed"), loc("wallet", "pin"));
    store.put(b"alice", &a, secret("alpha")).unwrap();
    store.put(b"alice", &b, secret("bravo")).unwrap();
    drop(store);
    let rows = record_rows(&path);
    assert_eq!(rows.len(), 2, "one row per record");

    // One byte of one sealed row, changed through redb (so its page checksums still hold).
    with_raw_db(&path, |tx| {
        let mut records = tx.open_table(tables::RECORDS).unwrap();
        let mut bad = rows[0].1.clone();
        bad[40] ^= 0x01;
        records.insert(&rows[0].0, bad.as_slice()).unwrap();
    });
    let mut store = reopen(&path);
    assert_eq!(
        store.damaged_rows().count(),
        0,
        "an open reads no record row"
    );
    assert_eq!(store.verify().unwrap(), 1);
    let damaged: Vec<String> = store.damaged_rows().collect();
    assert_eq!(damaged, vec![redoubt_vault::hex(&rows[0].0)]);
    let results = [store.get(b"alice", &a), store.get(b"alice", &b)];
    let (mut failed, mut read) = (0, 0);
    for result in results {
        match result {
            Err(Error::RecordCorrupted { row, .. }) => {
                assert_eq!(row, damaged[0]);
                failed += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(v) => {
                let v = v.unwrap().expose().to_vec();
                assert!(v == b"alpha" || v == b"bravo");
                read += 1;
            }
        }
    }
    assert_eq!((failed, read), (1, 1));
    let message = Error::RecordCorrupted {
        row: damaged[0].clone(),
        reason: "x",
    }
    .to_string();
    assert!(!message.contains("wallet") && !message.contains("seed"));
    // A new write at the damaged location replaces the row.
    store.put(b"alice", &a, secret("alpha 2")).unwrap();
    store.put(b"alice", &b, secret("bravo 2")).unwrap();
    assert_eq!(store.damaged_rows().count(), 0);
    drop(store);

    // A sealed row moved under another row's key fails too: both rows swapped.
    let rows = record_rows(&path);
    with_raw_db(&path, |tx| {
        let mut records = tx.open_table(tables::RECORDS).unwrap();
        records.insert(&rows[0].0, rows[1].1.as_slice()).unwrap();
        records.insert(&rows[1].0, rows[0].1.as_slice()).unwrap();
    });
    let mut store = reopen(&path);
    assert_eq!(store.verify().unwrap(), 2);
    assert!(
        store.load_instance().unwrap().is_empty(),
        "no wrong data is loaded"
    );
    assert!(matches!(
        store.get(b"alice", &a),
        Err(Error::RecordCorrupted { .. })
    ));
}

#[test]
fn a_flipped_byte_in_the_file_fails_what_reads_it_without_a_panic() {
    let (_dir, path, mut store) = fresh();
    store
        .put(b"alice", &loc("wallet", "seed"), secret("alpha"))
        .unwrap();
    drop(store);
    let (_, sealed) = record_rows(&path).remove(0);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(sealed.len())
        .position(|w| w == sealed.as_slice())
        .expect("the sealed row is in the file");
    bytes[at + 30] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    // An open checks no record page; reading the record does, and fails with a clear error.
    let err = match Store::open(&path, &password(), &KdfLimits::default()) {
        Err(e) => e,
        Ok(store) => store
            .get(b"alice", &loc("wallet", "seed"))
            .expect_err("a flipped byte never reads as data"),
    };
    eprintln!("{err}");
    assert!(
        matches!(err, Error::Damaged { .. } | Error::RecordCorrupted { .. }),
        "{err}"
    );
}

#[test]
fn no_canary_secret_or_path_reaches_the_file() {
    let (_dir, path, mut store) = fresh();
    let canary_value = b"CANARY-VALUE-5f1d2c3b";
    let l = loc("canary-vault-77aa", "canary-record-88bb");
    store
        .put(
            b"canary-client-99cc",
            &l,
            SecretValue::new(canary_value.to_vec()),
        )
        .unwrap();
    store
        .set_rights(
            b"canary-peer-11dd",
            b"canary-client-99cc",
            Rights {
                read: true,
                write: false,
            },
        )
        .unwrap();
    store
        .put(b"canary-client-99cc", &l, secret("overwritten"))
        .unwrap();
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    for needle in [
        &canary_value[..],
        b"CANARY-VALUE",
        b"canary-vault-77aa",
        b"canary-record-88bb",
        b"canary-client-99cc",
        b"canary-peer-11dd",
        b"correct horse",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} found in the file",
            String::from_utf8_lossy(needle)
        );
    }
}

/// Parents and histories are committed with the rows (envelope version 2) and survive a
/// reopen; a merge stores the joined history; a restore is a new write whose parent is the
/// current version; the journal replays to the same lineage.
#[test]
fn lineage_is_durable_and_restore_is_a_new_write() {
    let (_dir, path, mut store) = fresh();
    let l = loc("wallet", "seed");
    store.put_at(b"c", &l, secret("one"), 1_000).unwrap();
    store.put_at(b"c", &l, secret("two"), 1_001).unwrap();
    let before = store.record(b"c", &l).unwrap().unwrap();
    assert_eq!(before.history().len(), 1);
    let first = *before.history()[0].hash();
    assert_eq!(before.parent(), Some(&first));
    // A concurrent version from elsewhere loses (older) but joins the history, on disk too.
    let theirs = Record::live(
        l.clone(),
        Stamp {
            wall_ms: 999,
            counter: 0,
            node: NodeId::from_bytes([9; 16]),
        },
        secret("theirs"),
    )
    .unwrap();
    let bounds = MergeBounds::at(2_000);
    let r = store
        .merge_record(b"c", theirs, MergePolicy::Newest, &bounds)
        .unwrap();
    assert_eq!(
        (r.unchanged, r.conflicts_resolved, r.history_merged),
        (1, 1, 1)
    );
    assert_eq!(r.conflicts[0].location, l);
    let digest = store.state_digest().unwrap();
    drop(store);
    let mut store = reopen(&path);
    assert_eq!(store.state_digest().unwrap(), digest);
    let merged = store.record(b"c", &l).unwrap().unwrap();
    assert_eq!(merged.history().len(), 2);
    store.revert_at(b"c", &l, &first, 1_002).unwrap();
    assert_eq!(value(&store, b"c", &l), Some(b"one".to_vec()));
    let now = store.record(b"c", &l).unwrap().unwrap();
    assert_eq!(now.parent(), Some(merged.version_hash()));
    assert!(matches!(
        store.revert_at(b"c", &l, &[7; 32], 1_003),
        Err(Error::Vault(redoubt_vault::Error::VersionNotFound { .. }))
    ));
    // The journal alone rebuilds the same records, lineage included.
    let mut replay = Instance::new(store.node());
    for e in store.journal(0).unwrap() {
        redoubt_store::journal::apply(&mut replay, &e.event).unwrap();
    }
    assert_eq!(replay.state_digest(), store.state_digest().unwrap());
    // A fast-forward merged from a copy that saw it all is no conflict.
    let mut copy = store.load_instance().unwrap();
    copy.write_at(b"c", &l, secret("three"), 1_010).unwrap();
    let newer = copy
        .record(&ClientId::from_path(b"c"), l.ids())
        .unwrap()
        .clone();
    let r = store
        .merge_record(b"c", newer, MergePolicy::Newest, &bounds)
        .unwrap();
    assert_eq!((r.updated, r.conflicts_resolved), (1, 0));
}
