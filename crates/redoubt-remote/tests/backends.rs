//! Sync through real backends started on loopback by the tests: a folder, S3 (moto) and Azure
//! Blob (Azurite). A server that cannot be started or reached FAILS its test (never skips).

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "support/vaults.rs"]
mod vaults;

use object_store::{ObjectMeta, ObjectStoreExt};
use redoubt_remote::{
    Backend, Error, Remote,
    faults::{Fault, Request, wrap as counting},
};
use redoubt_store::{KdfLimits, KdfParams, Password, Store};
use redoubt_vault::SecretValue;
use servers::{azure_backend, azurite, moto, s3_backend};
use vaults::{PASSPHRASE, Vault, add, folder, join, loc, put, read, rounds, vault};

// ---------------------------------------------------------------------------------------------
// Scenarios, run on each backend.

/// Three devices (two first, then a third) converge: distinct writes, one conflict, a delete.
async fn converge(make: impl Fn() -> Backend) {
    let (mut a, mut b, mut c) = (vault(), vault(), vault());
    put(&mut a, b"alice", "a1", "from a");
    put(&mut a, b"alice", "shared", "a's version");
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    put(&mut b, b"bob", "b1", "from b");
    put(&mut b, b"alice", "shared", "b's later version");
    rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 2).await;
    assert_eq!(read(&a, b"bob", "b1").as_deref(), Some(&b"from b"[..]));
    assert_eq!(read(&b, b"alice", "a1").as_deref(), Some(&b"from a"[..]));
    assert_eq!(
        a.store.state_digest().unwrap(),
        b.store.state_digest().unwrap()
    );

    let mut rc = join(&mut c, make(), None).await;
    put(&mut c, b"carol", "c1", "from c");
    a.store.delete(b"alice", &loc("a1")).unwrap();
    rounds(
        &mut [(&mut a, &mut ra), (&mut b, &mut rb), (&mut c, &mut rc)],
        2,
    )
    .await;
    let digest = a.store.state_digest().unwrap();
    assert_eq!(b.store.state_digest().unwrap(), digest);
    assert_eq!(c.store.state_digest().unwrap(), digest);
    assert_eq!(read(&c, b"alice", "a1"), None, "the delete travelled");
    assert_eq!(
        read(&c, b"alice", "shared").as_deref(),
        Some(&b"b's later version"[..])
    );
    assert_eq!(read(&a, b"carol", "c1").as_deref(), Some(&b"from c"[..]));
}

/// Two devices upload at the same moment: neither overwrites the other; both converge.
async fn concurrent(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    for i in 0..3 {
        put(&mut a, b"alice", &format!("a{i}"), "a");
        put(&mut b, b"alice", &format!("b{i}"), "b");
        let (x, y) = tokio::join!(ra.sync(&mut a.store), rb.sync(&mut b.store));
        assert!(x.unwrap().failed.is_empty() && y.unwrap().failed.is_empty());
    }
    rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 1).await;
    for i in 0..3 {
        assert_eq!(
            read(&a, b"alice", &format!("b{i}")).as_deref(),
            Some(&b"b"[..])
        );
        assert_eq!(
            read(&b, b"alice", &format!("a{i}")).as_deref(),
            Some(&b"a"[..])
        );
    }
    assert_eq!(
        a.store.state_digest().unwrap(),
        b.store.state_digest().unwrap()
    );
    // Every segment either device wrote is still there, under its own device's prefix.
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(make().store.list(None))
        .await
        .unwrap();
    for r in [&ra, &rb] {
        let own = r.state().own;
        let mine = listed
            .iter()
            .filter(|m| m.location.as_ref().starts_with(&format!("{}/", r.device())))
            .count() as u64;
        assert_eq!(mine, own.seq, "every segment of {} kept", r.device());
    }
}

/// After convergence, a sync with nothing new makes one LIST and no GET or PUT.
async fn nothing_new(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    let (ba, ca) = counting(make());
    let mut ra = add(&mut a, ba, None).await;
    let mut rb = join(&mut b, make(), None).await;
    put(&mut a, b"alice", "x", "1");
    put(&mut b, b"alice", "y", "2");
    rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 2).await;
    ca.take();
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(ca.take(), [0, 0, 1, 0], "one LIST, nothing else");
    assert!(report.uploaded.is_empty() && report.segments_fetched == 0);
    // One change on b: a fetches exactly b's head and one segment, uploads nothing.
    put(&mut b, b"alice", "y", "3");
    let up = rb.sync(&mut b.store).await.unwrap();
    // One small record: one 512-byte bucket plus the 42-byte seal.
    assert_eq!(up.uploaded.len(), 1);
    assert_eq!((up.uploaded[0].events, up.uploaded[0].bytes), (1, 554));
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(ca.take(), [2, 0, 1, 0], "LIST, b's head, b's one segment");
    assert_eq!((report.segments_fetched, report.merge.updated), (1, 1));
    assert!(
        report.uploaded.is_empty(),
        "what came from the remote is not sent back"
    );
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(ca.take(), [0, 0, 1, 0]);
    assert!(report.uploaded.is_empty());
}

/// A wrong passphrase fails cleanly and writes nothing, to the vault or the storage.
async fn wrong_passphrase(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    add(&mut a, make(), None).await;
    let (bb, cb) = counting(make());
    let head = b.store.journal_head();
    let err = Remote::join(
        &mut b.store,
        "r",
        "test://",
        bb,
        None,
        b"wrong",
        &KdfLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err}");
    assert_eq!(cb.take(), [1, 0, 0, 0], "read the key object only");
    assert!(
        b.store.remote_names().unwrap().is_empty(),
        "nothing written to the vault"
    );
    assert_eq!(b.store.journal_head(), head);
    // The right passphrase then works; setting up twice is refused.
    join(&mut b, make(), None).await;
    let err = Remote::add(
        &mut a.store,
        "other",
        "x",
        make(),
        None,
        PASSPHRASE,
        KdfParams::insecure_fast(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AlreadySetUp), "{err}");
}

/// A segment altered on the storage is refused and named; the other devices still sync.
async fn tampered(make: impl Fn() -> Backend) {
    let (mut a, mut b, mut c) = (vault(), vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    let mut rc = join(&mut c, make(), None).await;
    put(&mut a, b"alice", "x", "from a");
    put(&mut b, b"alice", "y", "from b");
    ra.sync(&mut a.store).await.unwrap();
    rb.sync(&mut b.store).await.unwrap();
    // Flip one byte of a's segment, in place.
    let store = make().store;
    let listed: Vec<ObjectMeta> = futures::TryStreamExt::try_collect(store.list(None))
        .await
        .unwrap();
    let seg = listed
        .iter()
        .find(|m| {
            m.location
                .as_ref()
                .starts_with(&format!("{}/", ra.device()))
        })
        .unwrap()
        .location
        .clone();
    let mut bytes = store
        .get(&seg)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[40] ^= 1;
    store.put(&seg, bytes.into()).await.unwrap();

    let report = rc.sync(&mut c.store).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    let (device, err) = &report.failed[0];
    assert_eq!(device, &ra.device().to_string());
    match err {
        Error::Tampered { name, .. } => assert_eq!(name, seg.as_ref()),
        other => panic!("expected Tampered, got {other}"),
    }
    assert!(
        err.to_string().contains(seg.as_ref()),
        "the error names the object"
    );
    assert_eq!(
        read(&c, b"alice", "y").as_deref(),
        Some(&b"from b"[..]),
        "b still synced"
    );
    assert_eq!(
        read(&c, b"alice", "x"),
        None,
        "nothing of the tampered segment taken"
    );
}

/// A copy of a vault (same identity) syncing to the same remote is detected.
async fn cloned(make: impl Fn() -> Backend) {
    let mut a = vault();
    put(&mut a, b"alice", "x", "1");
    let mut ra = add(&mut a, make(), None).await;
    ra.sync(&mut a.store).await.unwrap();
    let path = a.store.path().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.redb");
    drop(ra);
    let Vault { store, _dir } = a;
    drop(store);
    std::fs::copy(&path, &copy).unwrap();
    let pw = Password::new(b"pw".to_vec());
    let mut one = Store::open(&path, &pw, &KdfLimits::default()).unwrap();
    let mut two = Store::open(&copy, &pw, &KdfLimits::default()).unwrap();
    let mut r1 = Remote::open(&one, "r", Some(make())).unwrap();
    let mut r2 = Remote::open(&two, "r", Some(make())).unwrap();
    one.put(b"alice", &loc("one"), SecretValue::new(b"1".to_vec()))
        .unwrap();
    two.put(b"alice", &loc("two"), SecretValue::new(b"2".to_vec()))
        .unwrap();
    r1.sync(&mut one).await.unwrap();
    let err = r2.sync(&mut two).await.unwrap_err();
    assert!(matches!(err, Error::HeadConflict { .. }), "{err}");
}

/// Records of clients not chosen for the remote are neither uploaded nor taken.
async fn clients_chosen(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    put(&mut a, b"alice", "x", "1");
    put(&mut a, b"secret-client", "y", "2");
    let mut ra = add(&mut a, make(), Some(vec![b"alice".to_vec()])).await;
    let mut rb = join(&mut b, make(), None).await;
    put(&mut b, b"bob", "z", "3");
    rounds(&mut [(&mut a, &mut ra), (&mut b, &mut rb)], 2).await;
    assert_eq!(read(&b, b"alice", "x").as_deref(), Some(&b"1"[..]));
    assert_eq!(read(&b, b"secret-client", "y"), None, "not uploaded");
    assert_eq!(read(&a, b"bob", "z"), None, "refused");
    put(&mut b, b"bob", "z", "4");
    rb.sync(&mut b.store).await.unwrap();
    let report = ra.sync(&mut a.store).await.unwrap();
    assert!(report.refused_records >= 1);
    assert_eq!(read(&a, b"bob", "z"), None);
}

// ---------------------------------------------------------------------------------------------
// The folder backend.

#[tokio::test]
async fn folder_converges() {
    let (_d, make) = folder();
    converge(make).await;
}
#[tokio::test]
async fn folder_concurrent_uploads_do_not_overwrite() {
    let (_d, make) = folder();
    concurrent(make).await;
}
#[tokio::test]
async fn folder_nothing_new_moves_nothing() {
    let (_d, make) = folder();
    nothing_new(make).await;
}
#[tokio::test]
async fn folder_wrong_passphrase_writes_nothing() {
    let (_d, make) = folder();
    wrong_passphrase(make).await;
}
#[tokio::test]
async fn folder_tampered_segment_is_refused_and_named() {
    let (_d, make) = folder();
    tampered(make).await;
}
#[tokio::test]
async fn folder_cloned_identity_is_detected() {
    let (_d, make) = folder();
    cloned(make).await;
}
#[tokio::test]
async fn folder_refuses_clients_not_chosen() {
    let (_d, make) = folder();
    clients_chosen(make).await;
}

// ---------------------------------------------------------------------------------------------
// S3 (moto).

#[tokio::test]
async fn s3_converges() {
    let server = moto();
    converge(|| s3_backend(&server, "conv")).await;
}
#[tokio::test]
async fn s3_concurrent_uploads_do_not_overwrite() {
    let server = moto();
    concurrent(|| s3_backend(&server, "conc")).await;
}
#[tokio::test]
async fn s3_nothing_new_moves_nothing() {
    let server = moto();
    nothing_new(|| s3_backend(&server, "idle")).await;
}
#[tokio::test]
async fn s3_wrong_passphrase_writes_nothing() {
    let server = moto();
    wrong_passphrase(|| s3_backend(&server, "pass")).await;
}
#[tokio::test]
async fn s3_tampered_segment_is_refused_and_named() {
    let server = moto();
    tampered(|| s3_backend(&server, "tamper")).await;
}
#[tokio::test]
async fn s3_cloned_identity_is_detected_by_compare_and_swap() {
    let server = moto();
    cloned(|| s3_backend(&server, "clone")).await;
}

// ---------------------------------------------------------------------------------------------
// Azure Blob (Azurite).

#[tokio::test]
async fn azure_converges() {
    let server = azurite();
    converge(|| azure_backend(&server, "conv")).await;
}
#[tokio::test]
async fn azure_concurrent_uploads_do_not_overwrite() {
    let server = azurite();
    concurrent(|| azure_backend(&server, "conc")).await;
}
#[tokio::test]
async fn azure_nothing_new_moves_nothing() {
    let server = azurite();
    nothing_new(|| azure_backend(&server, "idle")).await;
}
#[tokio::test]
async fn azure_tampered_segment_is_refused_and_named() {
    let server = azurite();
    tampered(|| azure_backend(&server, "tamper")).await;
}
#[tokio::test]
async fn azure_cloned_identity_is_detected_by_compare_and_swap() {
    let server = azurite();
    cloned(|| azure_backend(&server, "clone")).await;
}

// ---------------------------------------------------------------------------------------------
// Folder-only behaviour checks.

#[tokio::test]
async fn folder_folded_journal_uploads_a_base() {
    let (_d, make) = folder();
    let (mut a, mut b) = (vault(), vault());
    a.store.set_journal_limits(redoubt_store::journal::Limits {
        retention_ms: u64::MAX,
        max_events: 2,
    });
    for i in 0..10 {
        put(&mut a, b"alice", &format!("r{i}"), &format!("v{i}"));
    }
    a.store.fold(0).unwrap();
    assert!(a.store.journal_oldest() > 1, "the journal was folded");
    let mut ra = add(&mut a, make(), None).await;
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(report.uploaded.len(), 1);
    assert_eq!(
        report.uploaded[0].kind,
        redoubt_remote::format::SegmentKind::Base
    );
    let mut rb = join(&mut b, make(), None).await;
    let report = rb.sync(&mut b.store).await.unwrap();
    assert_eq!(report.merge.added, 10);
    assert_eq!(
        a.store.state_digest().unwrap(),
        b.store.state_digest().unwrap()
    );
    // Later changes travel as events again.
    put(&mut a, b"alice", "r0", "new");
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(
        report.uploaded[0].kind,
        redoubt_remote::format::SegmentKind::Events
    );
}

/// A commit holding records of a chosen and an unchosen client, with lineage (histories),
/// carries the chosen one's records and their histories, and the other client's not at all;
/// a device joining from the base gets the histories too.
#[tokio::test]
async fn folder_mixed_commit_with_histories_carries_the_chosen_client() {
    let (_d, make) = folder();
    let (mut a, mut b, mut c, mut src) = (vault(), vault(), vault(), vault());
    for v in ["1", "2"] {
        put(&mut src, b"alice", "x", v);
        put(&mut src, b"bob", "y", v);
    }
    let batch: Vec<(Vec<u8>, redoubt_vault::Record)> = [&b"alice"[..], &b"bob"[..]]
        .iter()
        .zip(["x", "y"])
        .map(|(client, record)| {
            let r = src.store.record(client, &loc(record)).unwrap().unwrap();
            assert_eq!(r.history().len(), 1, "the source record has a history");
            (client.to_vec(), r)
        })
        .collect();
    let mut ra = add(&mut a, make(), Some(vec![b"alice".to_vec()])).await;
    a.store
        .merge_batch(
            batch,
            redoubt_vault::MergePolicy::Newest,
            &redoubt_vault::MergeBounds::now(),
        )
        .unwrap();
    ra.sync(&mut a.store).await.unwrap();
    let mut rb = join(&mut b, make(), None).await;
    rb.sync(&mut b.store).await.unwrap();
    let got = b.store.record(b"alice", &loc("x")).unwrap().unwrap();
    let ours = a.store.record(b"alice", &loc("x")).unwrap().unwrap();
    assert_eq!(got.hash(), ours.hash(), "the same record, history included");
    assert_eq!(got.history().len(), 1, "the history travelled");
    assert_eq!(read(&b, b"bob", "y"), None, "bob is not chosen");
    // Compacted into a base, the histories still travel.
    ra.compact(&mut a.store).await.unwrap();
    let mut rc = join(&mut c, make(), None).await;
    rc.sync(&mut c.store).await.unwrap();
    let got = c.store.record(b"alice", &loc("x")).unwrap().unwrap();
    assert_eq!(got.history().len(), 1, "the base carries the history");
    assert_eq!(read(&c, b"bob", "y"), None);
}

#[tokio::test]
async fn folder_rolled_back_head_is_refused_and_named() {
    let (dir, make) = folder();
    let (mut a, mut b) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    put(&mut a, b"alice", "x", "1");
    ra.sync(&mut a.store).await.unwrap();
    let head = dir
        .path()
        .join("remote")
        .join(format!("{}.head", ra.device()));
    let old = std::fs::read(&head).unwrap();
    put(&mut a, b"alice", "x", "2");
    ra.sync(&mut a.store).await.unwrap();
    rb.sync(&mut b.store).await.unwrap();
    assert_eq!(read(&b, b"alice", "x").as_deref(), Some(&b"2"[..]));
    std::fs::write(&head, old).unwrap();
    let report = rb.sync(&mut b.store).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(
        matches!(&report.failed[0].1, Error::ChainBroken { device, .. } if *device == ra.device().to_string()),
        "{:?}",
        report.failed
    );
}

/// A sync cut between its segment upload and its head update (the head PUT failed, or landed
/// with its answer lost) loses nothing and uploads nothing twice.
async fn cut_head_update(make: impl Fn() -> Backend) {
    let (mut a, mut b) = (vault(), vault());
    let (ba, ca) = counting(make());
    let mut ra = add(&mut a, ba, None).await;
    let mut rb = join(&mut b, make(), None).await;

    // The head PUT fails before reaching the storage: the segment is an orphan, retried.
    put(&mut a, b"alice", "x", "1");
    ca.inject(Request::PutHeadCreate, Fault::Fail);
    assert!(ra.sync(&mut a.store).await.is_err());
    assert!(ra.state().pending.is_some());
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(report.uploaded.len(), 1, "uploaded again");
    assert!(ra.state().pending.is_none());
    assert_eq!(ra.state().own.seq, 1);

    // The head PUT lands but its answer is lost: the next sync adopts it, uploads nothing.
    put(&mut a, b"alice", "y", "2");
    ca.inject(Request::PutHeadUpdate, Fault::LandThenFail);
    assert!(ra.sync(&mut a.store).await.is_err());
    let report = ra.sync(&mut a.store).await.unwrap();
    assert!(report.uploaded.is_empty(), "adopted, not uploaded twice");
    assert_eq!(ra.state().own.seq, 2);
    // And the head keeps working afterwards (a compare-and-swap against the adopted version).
    put(&mut a, b"alice", "z", "3");
    assert_eq!(ra.sync(&mut a.store).await.unwrap().uploaded.len(), 1);

    let report = rb.sync(&mut b.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for (r, v) in [("x", "1"), ("y", "2"), ("z", "3")] {
        assert_eq!(read(&b, b"alice", r).as_deref(), Some(v.as_bytes()));
    }
}

#[tokio::test]
async fn folder_cut_head_update_loses_nothing() {
    let (_d, make) = folder();
    cut_head_update(make).await;
}
#[tokio::test]
async fn s3_cut_head_update_loses_nothing() {
    let server = moto();
    cut_head_update(|| s3_backend(&server, "cut")).await;
}
#[tokio::test]
async fn azure_cut_head_update_loses_nothing() {
    let server = azurite();
    cut_head_update(|| azure_backend(&server, "cut")).await;
}

#[tokio::test]
async fn folder_vault_migrated_from_a_snapshot_uploads_its_records() {
    let (_d, make) = folder();
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = redoubt_snapshot::Snapshot::generate().unwrap();
    for i in 0..5 {
        snapshot
            .instance
            .write(
                b"alice",
                &loc(&format!("r{i}")),
                SecretValue::new(b"v".to_vec()),
            )
            .unwrap();
    }
    let pw = Password::new(b"pw".to_vec());
    let store = Store::create_from_snapshot(
        &dir.path().join("m.redb"),
        &snapshot,
        &pw,
        KdfParams::insecure_fast(),
    )
    .unwrap();
    assert_eq!(store.journal_head().0, 0, "the migration wrote no event");
    let mut a = Vault { store, _dir: dir };
    let mut b = vault();
    let mut ra = add(&mut a, make(), None).await;
    let up = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(
        up.uploaded[0].kind,
        redoubt_remote::format::SegmentKind::Base
    );
    let mut rb = join(&mut b, make(), None).await;
    assert_eq!(rb.sync(&mut b.store).await.unwrap().merge.added, 5);
}
