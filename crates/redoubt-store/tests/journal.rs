//! The journal end to end: one event per commit in the commit itself, a chain that verifies
//! after a reopen, a replay of the events onto an old base that gives today's state, folding
//! that deletes journal rows only, and clear errors naming the event for a broken chain.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use redb::ReadableDatabase;
use redoubt_store::{
    Error, KdfLimits, KdfParams, Password, Store,
    journal::{self, Entry, Limits},
    tables,
};
use redoubt_vault::{
    AccessTable, Instance, Location, MergeBounds, MergePolicy, NodeId, Record, Rights, SecretValue,
    Stamp,
};

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 24 * 60 * 60 * 1000;

fn password() -> Password {
    Password::new(b"journal test".to_vec())
}

fn loc(r: &str) -> Location {
    Location::new("v", r).unwrap()
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

fn v1(entry: &Entry) -> &journal::v1::Event {
    entry.event.content()
}

fn foreign(r: &str, ms: u64, value: Option<&str>) -> Record {
    let stamp = Stamp {
        wall_ms: ms,
        counter: 0,
        node: NodeId::from_bytes([9; 16]),
    };
    Record::from_parts(loc(r), stamp, value.map(secret)).unwrap()
}

/// A few commits of every kind.
fn history(store: &mut Store) {
    let rw = Rights {
        read: true,
        write: true,
    };
    store.put_at(b"alice", &loc("a"), secret("1"), NOW).unwrap();
    store
        .put_at(b"alice", &loc("b"), secret("2"), NOW + 1)
        .unwrap();
    store.delete_at(b"alice", &loc("a"), NOW + 2).unwrap();
    store.set_rights(b"peer-1", b"alice", rw).unwrap();
    let batch = vec![
        foreign("b", NOW + 3, Some("theirs")),
        foreign("c", NOW + 4, None),
    ];
    store
        .merge_records(
            b"bob",
            batch,
            MergePolicy::Newest,
            &MergeBounds::at(NOW + 10),
        )
        .unwrap();
    store
        .put_at(b"bob", &loc("a"), secret("3"), NOW + 5)
        .unwrap();
    store.revoke(b"peer-1", None).unwrap();
}

#[test]
fn every_commit_appends_one_event_that_chains_to_the_last() {
    let (_dir, path, mut store) = fresh();
    assert_eq!(store.journal_head(), (0, [0; 32]));
    assert!(store.journal(0).unwrap().is_empty());
    history(&mut store);
    let events = store.journal(0).unwrap();
    assert_eq!(events.len(), 7);
    assert_eq!(store.journal_head(), (7, events[6].hash));
    let mut parent = [0; 32];
    for (i, e) in events.iter().enumerate() {
        assert_eq!((e.seq, e.event.seq()), (i as u64 + 1, i as u64 + 1));
        assert_eq!(e.event.parent(), &parent);
        assert_eq!(e.event.writer(), store.node());
        // The deletion replaced a version, so it names it (lineage: schema version 2); the
        // other commits wrote parentless versions or grants (version 1, as before).
        assert_eq!(e.event.version(), if i == 2 { 2 } else { 1 }, "event {i}");
        parent = e.hash;
    }
    let put = v1(&events[0]);
    assert_eq!((put.wall_ms, put.records.len()), (NOW, 1));
    assert_eq!(put.records[0].client, b"alice");
    assert_eq!(put.records[0].record.stamp().wall_ms, NOW);
    assert!(v1(&events[2]).records[0].record.is_tombstone());
    let grant = v1(&events[3]);
    assert!(grant.records.is_empty());
    assert_eq!(grant.grants[0].peer, b"peer-1");
    assert!(grant.grants[0].rights.write);
    let merge = v1(&events[4]);
    assert_eq!(merge.records.len(), 2);
    assert_eq!(
        (merge.wall_ms, merge.counter),
        (NOW + 4, 0),
        "the clock observed both"
    );
    assert_eq!(v1(&events[6]).grants[0].rights, Rights::default());

    // Reading from the middle checks the link to the event before it; pages are bounded.
    let tail = store.journal(5).unwrap();
    assert_eq!(tail.len(), 3);
    assert_eq!(tail[0].event.parent(), &events[3].hash);
    let page = store.journal_page(2, 2).unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(store.journal_page(8, 5).unwrap().is_empty());

    // After a reopen: the same chain, and the next commit continues it.
    drop(store);
    let mut store = reopen(&path);
    assert_eq!(store.journal_head(), (7, events[6].hash));
    let again = store.journal(1).unwrap();
    assert_eq!(
        again.iter().map(|e| e.hash).collect::<Vec<_>>(),
        events.iter().map(|e| e.hash).collect::<Vec<_>>()
    );
    store
        .put_at(b"alice", &loc("d"), secret("4"), NOW + 6)
        .unwrap();
    let last = store.journal(8).unwrap();
    assert_eq!(last[0].event.parent(), &events[6].hash);
}

#[test]
fn replaying_the_journal_onto_an_old_base_gives_todays_state() {
    let (_dir, path, mut store) = fresh();
    store
        .put_at(b"alice", &loc("x"), secret("old"), NOW - 1)
        .unwrap();
    // The base: the store's instance and grants as of event k.
    let base = store.load_instance().unwrap();
    let base_grants = store.grants().clone();
    let k = store.journal_head().0;
    history(&mut store);
    store
        .set_rights(
            b"peer-2",
            b"bob",
            Rights {
                read: true,
                write: false,
            },
        )
        .unwrap();
    drop(store);
    let store = reopen(&path);
    let mut state = base;
    let mut grants: AccessTable = base_grants;
    let events = store.journal(k + 1).unwrap();
    assert_eq!(events.len(), 8);
    for e in &events {
        journal::apply(&mut state, &e.event).unwrap();
        journal::apply_grants(&mut grants, &e.event).unwrap();
    }
    assert_eq!(state.state_digest(), store.state_digest().unwrap());
    assert_eq!(&grants, store.grants());
    // From an empty base, the whole journal gives the same.
    let mut state = Instance::new(store.node());
    for e in store.journal(0).unwrap() {
        journal::apply(&mut state, &e.event).unwrap();
    }
    assert_eq!(state.state_digest(), store.state_digest().unwrap());
}

#[test]
fn folding_deletes_old_events_only_and_keeps_the_chain_verifiable() {
    let (_dir, path, mut store) = fresh();
    store.set_journal_limits(Limits {
        retention_ms: 30 * DAY,
        max_events: 64,
    });
    for i in 0..64u64 {
        let r = format!("r{}", i % 5);
        store
            .put_at(b"c", &loc(&r), secret("v"), NOW + i * DAY)
            .unwrap();
    }
    assert_eq!((store.journal_oldest(), store.journal_head().0), (1, 64));
    // One over the count folds the oldest 64/64 + 1 = 2 in the same commit.
    store
        .put_at(b"c", &loc("r0"), secret("w"), NOW + 64 * DAY)
        .unwrap();
    assert_eq!(store.journal_oldest(), 3);
    let digest = store.state_digest().unwrap();
    let kept = store.journal(0).unwrap();
    assert_eq!(kept.len(), 63);
    assert_eq!(kept[0].seq, 3);

    // By retention: events more than 30 days before `now` go (seq 1 + i was written on day
    // i, so seq 3 to 34, days 2 to 33).
    let now = NOW + 64 * DAY;
    assert_eq!(store.fold(now).unwrap(), 32);
    assert_eq!(store.journal_oldest(), 35);
    assert_eq!(store.fold(now).unwrap(), 0, "nothing more to fold");
    assert_eq!(store.state_digest().unwrap(), digest, "records untouched");
    let kept = store.journal(0).unwrap();
    assert_eq!(kept.first().map(|e| e.seq), Some(35));
    drop(store);

    // The folded-through hash survives the reopen: the oldest kept still verifies.
    let mut store = reopen(&path);
    assert_eq!(store.journal_oldest(), 35);
    assert_eq!(store.journal(0).unwrap().len(), kept.len());
    assert_eq!(store.state_digest().unwrap(), digest);
    // Folding everything keeps the head, and the next event still chains to it.
    let head = store.journal_head();
    assert_eq!(store.fold(now + 365 * DAY).unwrap(), kept.len() as u64);
    assert!(store.journal(0).unwrap().is_empty());
    drop(store);
    let mut store = reopen(&path);
    assert_eq!(store.journal_head(), head);
    store
        .put_at(b"c", &loc("r9"), secret("z"), now + 366 * DAY)
        .unwrap();
    let next = store.journal(0).unwrap();
    assert_eq!((next.len(), next[0].seq), (1, head.0 + 1));
    assert_eq!(next[0].event.parent(), &head.1);
    // The count alone folds down to exactly max_events.
    store.set_journal_limits(Limits {
        retention_ms: u64::MAX,
        max_events: 1,
    });
    assert_eq!(store.fold(0).unwrap(), 0);
    store
        .put_at(b"c", &loc("r9"), secret("y"), now + 367 * DAY)
        .unwrap();
    assert_eq!(store.journal(0).unwrap().len(), 1, "folded on commit");
}

fn journal_row(path: &Path, seq: u64) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(tables::JOURNAL).unwrap();
    table.get(seq).unwrap().unwrap().value().to_vec()
}

fn set_journal_row(path: &Path, seq: u64, value: Option<&[u8]>) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(tables::JOURNAL).unwrap();
        match value {
            Some(v) => {
                table.insert(seq, v).unwrap();
            }
            None => {
                table.remove(seq).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

#[test]
fn a_flipped_byte_a_moved_or_missing_event_is_an_error_naming_its_sequence_number() {
    let (_dir, path, mut store) = fresh();
    history(&mut store);
    drop(store);
    let broken = |path: &Path| {
        let store = reopen(path);
        match store.journal(0) {
            Err(Error::JournalBroken { seq, reason }) => (seq, reason),
            other => panic!("read a broken journal: {other:?}"),
        }
    };
    let row = journal_row(&path, 3);
    for at in [0, 1, 30, row.len() - 1] {
        let mut bad = row.clone();
        bad[at] ^= 0x10;
        set_journal_row(&path, 3, Some(&bad));
        let (seq, _) = broken(&path);
        assert_eq!(seq, 3, "byte {at}");
        let err = reopen(&path).journal(0).unwrap_err().to_string();
        assert!(err.starts_with("journal event 3 is broken"), "{err}");
    }
    // Moved to another sequence number: its AAD names the old one.
    set_journal_row(&path, 3, Some(&journal_row(&path, 4)));
    assert_eq!(broken(&path).0, 3);
    set_journal_row(&path, 3, Some(&row));
    assert!(reopen(&path).journal(0).is_ok(), "restored");
    // Missing in the middle.
    set_journal_row(&path, 4, None);
    assert_eq!(broken(&path), (4, "the event is missing"));
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8, u8),
    Merge(u8, Vec<(u8, u64, bool)>),
    Grant(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2u8, 0..4u8).prop_map(|(c, r)| Op::Put(c, r)),
        (0..2u8, 0..4u8).prop_map(|(c, r)| Op::Delete(c, r)),
        (
            0..2u8,
            prop::collection::vec((0..4u8, 0..80u64, any::<bool>()), 1..4)
        )
            .prop_map(|(c, rs)| Op::Merge(c, rs)),
        (0..2u8, 0..4u8).prop_map(|(c, bits)| Op::Grant(c, bits)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Property: whatever the commits, the state as of any event k plus the events after it,
    /// applied with v1 apply, is the store's state (records and grants), after a reopen too.
    #[test]
    fn any_base_plus_the_events_after_it_is_todays_state(
        ops in prop::collection::vec(op(), 1..24),
        k in 0..24usize,
    ) {
        let (_dir, path, mut store) = fresh();
        let client = |c: u8| format!("client-{c}").into_bytes();
        let mut base = None;
        for (i, op) in ops.iter().enumerate() {
            if i == k {
                base = Some((store.journal_head().0, store.load_instance().unwrap(), store.grants().clone()));
            }
            let now = NOW + i as u64;
            match op {
                Op::Put(c, r) => {
                    store.put_at(&client(*c), &loc(&r.to_string()), secret("x"), now).unwrap();
                }
                Op::Delete(c, r) => {
                    // Refused (and no event) when nothing is there.
                    let _ = store.delete_at(&client(*c), &loc(&r.to_string()), now);
                }
                Op::Merge(c, rs) => {
                    let batch = rs
                        .iter()
                        .map(|(r, ms, live)| {
                            foreign(&r.to_string(), NOW - 40 + ms, live.then_some("theirs"))
                        })
                        .collect();
                    store
                        .merge_records(&client(*c), batch, MergePolicy::Newest, &MergeBounds::at(now))
                        .unwrap();
                }
                Op::Grant(c, bits) => {
                    store
                        .set_rights(b"peer", &client(*c), Rights::from_bits(*bits).unwrap())
                        .unwrap();
                }
            }
        }
        let (k_seq, mut state, mut grants) = base.unwrap_or_else(|| {
            (store.journal_head().0, store.load_instance().unwrap(), store.grants().clone())
        });
        drop(store);
        let store = reopen(&path);
        for e in store.journal(k_seq + 1).unwrap() {
            journal::apply(&mut state, &e.event).unwrap();
            journal::apply_grants(&mut grants, &e.event).unwrap();
        }
        prop_assert_eq!(state.state_digest(), store.state_digest().unwrap());
        prop_assert_eq!(&grants, store.grants());
    }
}
