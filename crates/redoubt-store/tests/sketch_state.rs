//! The kept sketch state (format 2): every commit updates the sums and the index, an open
//! reads them back without rebuilding them, and a format 1 store migrates to them.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use redoubt_store::{KdfLimits, KdfParams, Password, Store, tables};
use redoubt_vault::{
    ClientId, Instance, Location, MergeBounds, MergePolicy, NodeId, Record, SecretValue,
    sketch::{Element, Lookup, MATERIALIZE_AT, SketchSums},
};

fn password() -> Password {
    Password::new(b"correct horse battery staple".to_vec())
}

fn reopen(path: &Path) -> Store {
    Store::open(path, &password(), &KdfLimits::default()).unwrap()
}

fn loc(i: usize) -> Location {
    Location::new("v", format!("r{i}")).unwrap()
}

fn secret(s: String) -> SecretValue {
    SecretValue::new(s.into_bytes())
}

/// The sums an in-memory replica of the same records keeps.
fn instance_sums(store: &Store, client: &[u8]) -> SketchSums {
    store
        .load_instance()
        .unwrap()
        .sketch(&ClientId::from_path(client))
        .unwrap()
        .sums()
        .clone()
}

fn assert_kept(store: &Store, clients: &[&[u8]]) {
    assert!(store.sketches_match_records().unwrap());
    for c in clients {
        let kept = store.sketch_sums(&ClientId::from_path(c)).unwrap();
        let want = instance_sums(store, c);
        assert_eq!((kept.len(), kept.digest()), (want.len(), want.digest()));
    }
}

/// `n` records of `client` written by another node, merged in one commit.
fn merge_many(store: &mut Store, client: &[u8], n: usize, tag: &str) {
    let mut other = Instance::new(NodeId::from_bytes([9; 16]));
    for i in 0..n {
        other
            .write_at(client, &loc(i), secret(format!("{tag}{i}")), 10)
            .unwrap();
    }
    let id = ClientId::from_path(client);
    let records: Vec<Record> = other.records(&id).cloned().collect();
    store
        .merge_records(
            client,
            records,
            MergePolicy::Newest,
            &MergeBounds::at(redoubt_vault::now_ms()),
        )
        .unwrap();
}

#[test]
fn every_change_keeps_sums_and_index_and_an_open_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    // A client past the point where symbols are kept, and a small one.
    let big: &[u8] = b"big";
    let small: &[u8] = b"small";
    merge_many(&mut store, big, MATERIALIZE_AT as usize + 50, "a");
    for i in 0..20 {
        store.put(small, &loc(i), secret(format!("s{i}"))).unwrap();
    }
    assert_kept(&store, &[big, small]);
    assert!(
        store
            .sketch_sums(&ClientId::from_path(big))
            .unwrap()
            .kept_symbols()
            .is_some()
    );
    // Overwrites, deletions, a revert, a merge over existing records.
    for i in (0..40).step_by(3) {
        store.put(big, &loc(i), secret(format!("b{i}"))).unwrap();
        store.delete(small, &loc(i % 20)).ok();
    }
    let old = store.record(small, &loc(1)).unwrap().unwrap();
    store.put(small, &loc(1), secret("new".into())).unwrap();
    store.revert(small, &loc(1), old.version_hash()).unwrap();
    merge_many(&mut store, big, 100, "z");
    assert_kept(&store, &[big, small]);
    let before = (
        store.sketch_sums(&ClientId::from_path(big)).cloned(),
        store.sketch_sums(&ClientId::from_path(small)).cloned(),
    );
    drop(store);
    let store = reopen(&path);
    assert_eq!(
        (
            store.sketch_sums(&ClientId::from_path(big)).cloned(),
            store.sketch_sums(&ClientId::from_path(small)).cloned(),
        ),
        before
    );
    assert_kept(&store, &[big, small]);
}

#[test]
fn deltas_are_folded_into_a_checkpoint_and_an_open_after_it_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    let count_deltas = |path: &Path| {
        let db = redb::Database::open(path).unwrap();
        let tx = db.begin_read().unwrap();
        tx.open_table(tables::SKETCH_DELTAS).unwrap().len().unwrap()
    };
    for i in 0..300 {
        store
            .put(b"alice", &loc(i % 50), secret(format!("{i}")))
            .unwrap();
    }
    assert_kept(&store, &[b"alice"]);
    let kept = store.sketch_sums(&ClientId::from_path(b"alice")).cloned();
    drop(store);
    // 300 commits: one checkpoint at the 256th, so 44 deltas are left to replay.
    assert_eq!(count_deltas(&path), 300 - 256);
    let store = reopen(&path);
    assert_eq!(
        store.sketch_sums(&ClientId::from_path(b"alice")).cloned(),
        kept
    );
    assert_kept(&store, &[b"alice"]);
}

#[test]
fn the_index_locates_each_version_and_a_tampered_index_never_names_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    for i in 0..5 {
        store
            .put(b"alice", &loc(i), secret(format!("{i}")))
            .unwrap();
    }
    let id = ClientId::from_path(b"alice");
    let r0 = store.record(b"alice", &loc(0)).unwrap().unwrap();
    let key = Element::of(&id, &r0.shape()).key;
    assert_eq!(
        store.locate(&id, key).unwrap(),
        Lookup::One(r0.location().ids().0, r0.location().ids().1)
    );
    assert_eq!(store.locate(&id, key ^ 1).unwrap(), Lookup::Absent);
    assert_eq!(
        store.locate(&ClientId::from_path(b"bob"), key).unwrap(),
        Lookup::Absent
    );
    // The replaced version's key no longer locates anything.
    store
        .put(b"alice", &loc(0), secret("again".into()))
        .unwrap();
    assert_eq!(store.locate(&id, key).unwrap(), Lookup::Absent);
    drop(store);
    // Point every index row at one record row: the index and the records disagree.
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut index = tx.open_table(tables::SKETCH_INDEX).unwrap();
            let keys: Vec<[u8; 32]> = index
                .iter()
                .unwrap()
                .map(|r| *r.unwrap().0.value())
                .collect();
            let first = index.get(&keys[0]).unwrap().unwrap().value().to_vec();
            for k in &keys {
                index.insert(k, first.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let store = reopen(&path);
    // Each key now finds the one row every entry names only if that row holds its version:
    // the others find nothing, never another record.
    let mut found = 0;
    for i in 1..5 {
        let r = store.record(b"alice", &loc(i)).unwrap().unwrap();
        match store.locate(&id, Element::of(&id, &r.shape()).key).unwrap() {
            Lookup::Absent => {}
            Lookup::One(v, rec) => {
                assert_eq!((v, rec), r.location().ids(), "only its own record");
                found += 1;
            }
            Lookup::Ambiguous => panic!("one row cannot be ambiguous"),
        }
    }
    assert!(found <= 1, "{found}");
    assert!(!store.sketches_match_records().unwrap());
}

#[test]
fn a_format_1_store_migrates_on_first_open_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    merge_many(&mut store, b"alice", 30, "x");
    store.put(b"bob", &loc(1), secret("b".into())).unwrap();
    let digest = store.state_digest().unwrap();
    drop(store);
    // Make it what a format 1 build wrote: no sketch tables, format row version 1.
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.delete_table(tables::CLIENTS).unwrap();
        tx.delete_table(tables::SKETCH_DELTAS).unwrap();
        tx.delete_table(tables::SKETCH_INDEX).unwrap();
        {
            let mut meta = tx.open_table(tables::META).unwrap();
            let format = [tables::STORE_MAGIC.as_slice(), &1u16.to_le_bytes()].concat();
            meta.insert(tables::META_FORMAT, format.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let store = reopen(&path);
    assert_eq!(store.state_digest().unwrap(), digest);
    assert_kept(&store, &[b"alice", b"bob"]);
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let format = tx
        .open_table(tables::META)
        .unwrap()
        .get(tables::META_FORMAT)
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(&format[13..], &2u16.to_le_bytes());
    drop(tx);
    drop(db);
    // And a later open reads the kept state as written.
    assert_kept(&reopen(&path), &[b"alice", b"bob"]);
}

/// The seed corpus of `fuzz/fuzz_targets/sketch_rows.rs`: one row of each kind, made by the
/// encoders. `REDOUBT_WRITE_SEEDS=1` writes the files when the directory is empty.
fn sketch_seeds() -> Vec<Vec<u8>> {
    use redoubt_store::sketch_rows::{ClientRow, DeltaEntry, encode_delta, encode_index};
    let mut sums = SketchSums::default();
    for n in 0..3u64 {
        sums.insert(n * 7919, &[n as u8; 32]);
    }
    let client = ClientRow {
        path: b"alice".to_vec(),
        through: 9,
        bytes: 1234,
        sums,
    };
    let entry = |insert, key| DeltaEntry {
        client: ClientId::from_path(b"alice"),
        insert,
        key,
        hash: [0xab; 32],
        stored: 77,
    };
    vec![
        client.encode().unwrap(),
        encode_delta(&[entry(false, 1), entry(true, 2)]).unwrap(),
        encode_index(&[[1; 32]]).unwrap(),
        encode_index(&[[1; 32], [2; 32]]).unwrap(),
        vec![0; 16],
    ]
}

#[test]
fn the_sketch_rows_seed_corpus_is_committed_and_mutations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sketch_rows");
    let seeds = sketch_seeds();
    if std::env::var_os("REDOUBT_WRITE_SEEDS").is_some() && !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    let mut committed: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    committed.sort();
    let mut want = seeds.clone();
    want.sort();
    assert_eq!(
        committed, want,
        "the committed corpus is what the encoders make"
    );
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in seeds {
        redoubt_store::fuzzing::sketch_rows(&seed);
        for _ in 0..300 {
            let mut data = seed.clone();
            let i = (next() as usize) % data.len();
            match next() % 3 {
                0 => data[i] = next() as u8,
                1 => data.truncate(i),
                _ => data.insert(i, next() as u8),
            }
            redoubt_store::fuzzing::sketch_rows(&data);
        }
    }
}

#[test]
fn a_write_over_a_damaged_row_rebuilds_its_clients_sums() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.redb");
    let mut store = Store::create(&path, &password(), KdfParams::insecure_fast()).unwrap();
    for i in 0..6 {
        store
            .put(b"alice", &loc(i), secret(format!("{i}")))
            .unwrap();
    }
    drop(store);
    let row = {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let row = {
            let mut records = tx.open_table(tables::RECORDS).unwrap();
            let (row, mut value) = {
                let first = records.iter().unwrap().next().unwrap().unwrap();
                (*first.0.value(), first.1.value().to_vec())
            };
            value[40] ^= 1;
            records.insert(&row, value.as_slice()).unwrap();
            row
        };
        tx.commit().unwrap();
        row
    };
    let mut store = reopen(&path);
    assert_eq!(store.verify().unwrap(), 1);
    // Which location it was is not known without the key: write every one again.
    for i in 0..6 {
        store
            .put(b"alice", &loc(i), secret(format!("again {i}")))
            .unwrap();
    }
    assert_eq!(
        store.damaged_rows().count(),
        0,
        "{}",
        redoubt_vault::hex(&row)
    );
    assert!(store.sketches_match_records().unwrap());
    assert_eq!(store.len(), 6);
    drop(store);
    assert!(reopen(&path).sketches_match_records().unwrap());
}
