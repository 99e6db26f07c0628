//! Compaction (docs/storage-format.md section 8): a device folds its segments into one base,
//! deletes the older ones after the grace period; a device that was behind converges from the
//! base; devices compacting while another reads lose nothing.

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "support/vaults.rs"]
mod vaults;

use std::{sync::Arc, time::Duration};

use redoubt_remote::{
    Backend, Compaction, Remote,
    faults::{Fault, Gate, Request, wrap},
    format::{SegmentKind, parse_segment_name},
};
use servers::{azure_backend, azurite, moto, s3_backend};
use vaults::{Vault, add, folder, join, put, read, rounds, vault};

const NOW: Compaction = Compaction {
    every: 0,
    ratio: 0,
    grace: Duration::ZERO,
    pack_every: 64,
};

/// The sequence numbers of `r`'s segments on the storage.
async fn segments(make: &impl Fn() -> Backend, r: &Remote) -> Vec<u64> {
    let mut seqs: Vec<u64> = make()
        .list_all(&format!("{}/", r.device()))
        .await
        .unwrap()
        .iter()
        .filter_map(|m| parse_segment_name(m.location.as_ref()).map(|(_, seq, _)| seq))
        .collect();
    seqs.sort_unstable();
    seqs
}

/// `count` changes on `v`, each synced alone (one segment each).
async fn changes(v: &mut Vault, r: &mut Remote, tag: &str, count: usize) {
    for i in 0..count {
        put(v, b"alice", &format!("{tag}{i}"), tag);
        r.sync(&mut v.store).await.unwrap();
    }
}

fn same(vaults: &[&Vault]) {
    let digest = vaults[0].store.state_digest().unwrap();
    for v in vaults {
        assert_eq!(v.store.state_digest().unwrap(), digest);
    }
}

/// A device behind by many segments, all deleted by a compaction, converges from the base
/// in one segment GET; a delete before the base travels in it.
async fn behind_converges_from_base(make: impl Fn() -> Backend) {
    let (mut a, mut c) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rc = join(&mut c, make(), None).await;
    changes(&mut a, &mut ra, "early", 2).await;
    rc.sync(&mut c.store).await.unwrap();
    changes(&mut a, &mut ra, "late", 10).await;
    a.store.delete(b"alice", &vaults::loc("early0")).unwrap();
    ra.set_compaction(NOW);
    let report = ra.compact(&mut a.store).await.unwrap();
    let base = report.uploaded.last().unwrap();
    assert_eq!(base.kind, SegmentKind::Base);
    // 12 changes, then the delete uploaded by this sync before its base.
    assert_eq!(report.segments_deleted, 13, "every segment before the base");
    assert_eq!(segments(&make, &ra).await, vec![base.seq]);
    // One change after the base: c reads the head, that segment, the base, and stops.
    put(&mut a, b"alice", "after", "x");
    ra.sync(&mut a.store).await.unwrap();
    let report = rc.sync(&mut c.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.segments_fetched, 2);
    same(&[&a, &c]);
    assert_eq!(read(&c, b"alice", "early0"), None, "the delete travelled");
    assert_eq!(read(&c, b"alice", "late9").as_deref(), Some(&b"late"[..]));
    // A device joining afterwards converges from the base too.
    let mut d = vault();
    let mut rd = join(&mut d, make(), None).await;
    assert_eq!(rd.sync(&mut d.store).await.unwrap().segments_fetched, 2);
    same(&[&a, &d]);
}

#[tokio::test]
async fn folder_behind_device_converges_from_base() {
    let (_d, make) = folder();
    behind_converges_from_base(make).await;
}

#[tokio::test]
async fn s3_behind_device_converges_from_base() {
    let server = moto();
    behind_converges_from_base(|| s3_backend(&server, "compact")).await;
}

#[tokio::test]
async fn azure_behind_device_converges_from_base() {
    let server = azurite();
    behind_converges_from_base(|| azure_backend(&server, "compact")).await;
}

/// A sync compacts by itself past the threshold, and deletes only after the grace period.
#[tokio::test]
async fn folder_sync_compacts_past_the_threshold_and_keeps_the_grace_period() {
    let (_d, make) = folder();
    let mut a = vault();
    let mut ra = add(&mut a, make(), None).await;
    ra.set_compaction(Compaction {
        every: 4,
        ratio: 0,
        grace: Duration::from_secs(3600),
        pack_every: 64,
    });
    changes(&mut a, &mut ra, "r", 4).await;
    assert_eq!(ra.state().base, 1, "the first upload of records is a base");
    assert_eq!(
        ra.state().own.seq,
        4,
        "three segments since: below the threshold"
    );
    put(&mut a, b"alice", "r4", "r");
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(report.uploaded.len(), 2, "the change, then a base");
    assert_eq!(report.uploaded[1].kind, SegmentKind::Base);
    assert_eq!(report.segments_deleted, 0, "the grace period holds");
    assert_eq!(segments(&make, &ra).await, vec![1, 2, 3, 4, 5, 6]);
    // With the grace period over, the next sync deletes what the base replaced.
    ra.set_compaction(Compaction {
        every: 4,
        ratio: 0,
        grace: Duration::ZERO,
        pack_every: 64,
    });
    let report = ra.sync(&mut a.store).await.unwrap();
    assert_eq!(report.segments_deleted, 5, "the earlier base too");
    assert_eq!(segments(&make, &ra).await, vec![6]);
    assert!(
        ra.sync(&mut a.store).await.unwrap().segments_deleted == 0,
        "done once"
    );
}

/// A reader that read a head before its device compacted and deleted finds the segment gone,
/// reads the head again, and converges from the base.
#[tokio::test]
async fn folder_reader_mid_walk_when_segments_are_deleted_converges() {
    let (_d, make) = folder();
    let (mut a, mut c) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let (bc, counts) = wrap(make());
    let mut rc = join(&mut c, bc, None).await;
    changes(&mut a, &mut ra, "r", 5).await;
    ra.set_compaction(NOW);
    let gate = Arc::new(Gate::default());
    counts.inject(Request::GetSegment, Fault::Pause(gate.clone()));
    counts.take();
    let (read_, ()) = tokio::join!(rc.sync(&mut c.store), async {
        gate.reached().await;
        let r = ra.compact(&mut a.store).await.unwrap();
        assert_eq!(r.segments_deleted, 5);
        gate.release();
    });
    let report = read_.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // The head, the segment it named (gone), the head again, the base.
    assert_eq!(counts.take()[0], 4);
    assert_eq!(report.segments_fetched, 1);
    same(&[&a, &c]);
}

/// Two devices compacting (and deleting) while a third reads, paused in the middle of its
/// walk, then all of them racing with compaction on every sync: nothing lost.
async fn two_compact_while_third_reads(make: impl Fn() -> Backend) {
    let (mut a, mut b, mut c) = (vault(), vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    let (bc, counts) = wrap(make());
    let mut rc = join(&mut c, bc, None).await;
    changes(&mut a, &mut ra, "a", 4).await;
    changes(&mut b, &mut rb, "b", 4).await;
    ra.set_compaction(NOW);
    rb.set_compaction(NOW);
    let gate = Arc::new(Gate::default());
    counts.inject(Request::GetSegment, Fault::Pause(gate.clone()));
    let (read_, ()) = tokio::join!(rc.sync(&mut c.store), async {
        gate.reached().await;
        put(&mut a, b"alice", "a-more", "a");
        put(&mut b, b"alice", "b-more", "b");
        let (x, y) = tokio::join!(ra.compact(&mut a.store), rb.compact(&mut b.store));
        assert!(x.unwrap().segments_deleted > 0 && y.unwrap().segments_deleted > 0);
        gate.release();
    });
    let report = read_.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let every = Compaction {
        every: 2,
        ratio: 0,
        grace: Duration::ZERO,
        pack_every: 64,
    };
    ra.set_compaction(every);
    rb.set_compaction(every);
    for i in 0..20 {
        put(&mut a, b"alice", &format!("ra{i}"), "a");
        put(&mut b, b"alice", &format!("rb{i}"), "b");
        let (x, y, z) = tokio::join!(
            ra.sync(&mut a.store),
            rb.sync(&mut b.store),
            rc.sync(&mut c.store)
        );
        for r in [x, y, z] {
            let r = r.unwrap();
            assert!(r.failed.is_empty(), "round {i}: {:?}", r.failed);
        }
    }
    rounds(
        &mut [(&mut a, &mut ra), (&mut b, &mut rb), (&mut c, &mut rc)],
        2,
    )
    .await;
    same(&[&a, &b, &c]);
    for v in [&a, &b, &c] {
        for i in 0..4 {
            assert!(read(v, b"alice", &format!("a{i}")).is_some());
            assert!(read(v, b"alice", &format!("b{i}")).is_some());
        }
        for i in 0..20 {
            assert!(read(v, b"alice", &format!("ra{i}")).is_some());
            assert!(read(v, b"alice", &format!("rb{i}")).is_some());
        }
        assert!(read(v, b"alice", "a-more").is_some() && read(v, b"alice", "b-more").is_some());
    }
}

#[tokio::test]
async fn folder_two_devices_compacting_while_a_third_reads_lose_nothing() {
    let (_d, make) = folder();
    two_compact_while_third_reads(make).await;
}

#[tokio::test]
async fn s3_two_devices_compacting_while_a_third_reads_lose_nothing() {
    let server = moto();
    two_compact_while_third_reads(|| s3_backend(&server, "three")).await;
}

#[tokio::test]
async fn azure_two_devices_compacting_while_a_third_reads_lose_nothing() {
    let server = azurite();
    two_compact_while_third_reads(|| azure_backend(&server, "three")).await;
}

/// A vault holding `n` records of client `alice`, `len`-byte values (migrated from a
/// snapshot: its journal is empty, so its first upload is a base).
fn seeded(n: usize, len: usize) -> Vault {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = redoubt_snapshot::Snapshot::generate().unwrap();
    for i in 0..n {
        snapshot
            .instance
            .write(
                b"alice",
                &vaults::loc(&format!("r{i}")),
                redoubt_vault::SecretValue::new(vec![7; len]),
            )
            .unwrap();
    }
    let store = redoubt_store::Store::create_from_snapshot(
        &dir.path().join("seeded.redb"),
        &snapshot,
        &redoubt_store::Password::new(b"pw".to_vec()),
        redoubt_store::KdfParams::insecure_fast(),
    )
    .unwrap();
    Vault { store, _dir: dir }
}

/// A base over 8 MiB is written in parts; a reader reads every part (it stops only at the
/// first). A base cut after its first part is written whole by the next sync, and a reader
/// that saw the partial one still converges.
#[tokio::test]
async fn folder_base_in_parts_cut_after_the_first_is_finished() {
    let (_d, make) = folder();
    // 9 000 records of 1 KiB: over the 8 MiB a segment is closed at.
    let mut a = seeded(9_000, 1024);
    let mut c = vault();
    let (ba, counts) = wrap(make());
    let mut ra2 = add(&mut a, ba, None).await;
    let mut rc = join(&mut c, make(), None).await;
    // The second part's upload fails: the head names the first part only.
    counts.inject(Request::PutSegment, Fault::Pass);
    counts.inject(Request::PutSegment, Fault::Fail);
    let err = ra2.sync(&mut a.store).await.unwrap_err();
    assert!(
        matches!(
            &err,
            redoubt_remote::Error::Storage {
                request: "put-create",
                ..
            }
        ),
        "{err}"
    );
    assert!(ra2.state().base_open && ra2.state().own.seq == 1);
    // A reader now sees a partial base: it takes what it holds.
    let partial = rc.sync(&mut c.store).await.unwrap();
    assert!(partial.failed.is_empty(), "{:?}", partial.failed);
    assert!(partial.merge.added > 0 && partial.merge.added < 9_000);
    // The next sync writes a whole base (two parts); the reader converges.
    let report = ra2.sync(&mut a.store).await.unwrap();
    assert_eq!(report.uploaded.len(), 2, "{:?}", report.uploaded);
    assert!(!ra2.state().base_open);
    assert_eq!(ra2.state().base, 2, "the first part of the whole base");
    let report = rc.sync(&mut c.store).await.unwrap();
    assert_eq!(report.segments_fetched, 2, "both parts, then it stops");
    same(&[&a, &c]);
    let mut d = vault();
    let mut rd = join(&mut d, make(), None).await;
    assert_eq!(rd.sync(&mut d.store).await.unwrap().merge.added, 9_000);
}
