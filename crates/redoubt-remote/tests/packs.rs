//! Packs (docs/storage-format.md 5.6 and section 8): a device writes one every `pack_every`
//! segments (level 1) and every `pack_every²` (level 2); a device behind reads the packs
//! instead of the runs they stand for, and converges; one that saw part of a run walks it; a
//! pack whose run does not match the chain below it is refused.

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "support/vaults.rs"]
mod vaults;

use std::time::Duration;

use object_store::PutMode;
use redoubt_remote::{
    Backend, Compaction, Error, Remote,
    crypto::{Kind, chain, segment_hash},
    format::{self, Head, Segment, SegmentKind, Skip, head_name, segment_name},
};
use servers::{moto, s3_backend};
use vaults::{Vault, add, folder, join, put, read, vault};

/// Packs of 4 segments and of 16, no compaction base.
const PACKS: Compaction = Compaction {
    every: 0,
    ratio: 0,
    grace: Duration::ZERO,
    pack_every: 4,
};

const NO_PACKS: Compaction = Compaction {
    pack_every: 0,
    ..PACKS
};

/// `count` changes on `v`, each synced alone, a delete every tenth.
async fn changes(v: &mut Vault, r: &mut Remote, tag: &str, count: usize) {
    for i in 0..count {
        put(
            v,
            b"alice",
            &format!("{tag}{}", i % 40),
            &format!("{tag}-{i}"),
        );
        if i % 10 == 9 {
            v.store
                .delete(b"alice", &vaults::loc(&format!("{tag}{}", i % 7)))
                .unwrap();
        }
        let report = r.sync(&mut v.store).await.unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    }
}

fn same(a: &Vault, b: &Vault) {
    assert_eq!(
        a.store.state_digest().unwrap(),
        b.store.state_digest().unwrap()
    );
}

/// How many segments a device behind by 200 one-change syncs (and one joining afterwards)
/// fetches to converge, with `compaction` on the writer.
async fn behind(make: impl Fn() -> Backend, compaction: Compaction) -> (usize, usize, u64) {
    let (mut a, mut c) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    ra.set_compaction(compaction);
    let mut rc = join(&mut c, make(), None).await;
    changes(&mut a, &mut ra, "early", 3).await;
    rc.sync(&mut c.store).await.unwrap();
    same(&a, &c);
    changes(&mut a, &mut ra, "late", 200).await;
    let report = rc.sync(&mut c.store).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    same(&a, &c);
    assert_eq!(
        read(&c, b"alice", "late39").as_deref(),
        Some(&b"late-199"[..])
    );
    assert_eq!(
        read(&c, b"alice", "late3"),
        None,
        "a delete in a run travels"
    );
    let mut d = vault();
    let mut rd = join(&mut d, make(), None).await;
    let joined = rd.sync(&mut d.store).await.unwrap();
    assert!(joined.failed.is_empty(), "{:?}", joined.failed);
    same(&a, &d);
    (
        report.segments_fetched,
        joined.segments_fetched,
        ra.state().own.seq,
    )
}

/// The same 203 syncs without packs and with them, each on its own storage.
async fn packs_bound_what_a_device_behind_reads(
    plain: impl Fn() -> Backend,
    packed: impl Fn() -> Backend,
) {
    let (plain, plain_join, plain_seq) = behind(plain, NO_PACKS).await;
    assert_eq!(plain_seq, 203, "one segment per sync");
    assert_eq!(plain, 200, "without packs: every segment");
    assert_eq!(plain_join, 203);
    let (packed, packed_join, seq) = behind(packed, PACKS).await;
    // Packs take sequence numbers too: one after every 3 syncs or so.
    assert!(seq > 203, "packs were written ({seq})");
    // At most 3 newest segments and 3 level-1 packs above the newest level-2 pack, the
    // level-2 packs (one per 16 segments), and near the last one seen at most 15 + 3 walked.
    let bound = 3 + 3 + (seq as usize).div_ceil(16) + 15 + 3;
    assert!(packed <= bound, "{packed} segments read, bound {bound}");
    assert!(
        packed_join <= bound,
        "{packed_join} read to join, bound {bound}"
    );
    assert!(packed * 3 < plain, "{packed} against {plain} without packs");
}

#[tokio::test]
async fn folder_packs_bound_what_a_device_behind_reads() {
    let ((_d1, plain), (_d2, packed)) = (folder(), folder());
    packs_bound_what_a_device_behind_reads(plain, packed).await;
}

#[tokio::test]
async fn s3_packs_bound_what_a_device_behind_reads() {
    let server = moto();
    packs_bound_what_a_device_behind_reads(
        || s3_backend(&server, "plain"),
        || s3_backend(&server, "packed"),
    )
    .await;
}

/// Two devices writing and packing, a third reading after every few of their syncs (so it has
/// often seen part of a run): everyone converges after every read.
#[tokio::test]
async fn readers_that_saw_part_of_a_run_walk_it_and_converge() {
    let (_d, make) = folder();
    let (mut a, mut b, mut c) = (vault(), vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    let mut rb = join(&mut b, make(), None).await;
    let mut rc = join(&mut c, make(), None).await;
    ra.set_compaction(PACKS);
    rb.set_compaction(PACKS);
    let mut packs = 0;
    for i in 0..60 {
        put(&mut a, b"alice", &format!("a{}", i % 9), &format!("a-{i}"));
        put(&mut b, b"alice", &format!("b{}", i % 5), &format!("b-{i}"));
        put(&mut b, b"alice", "both", &format!("b-{i}"));
        for (v, r) in [(&mut a, &mut ra), (&mut b, &mut rb)] {
            let report = r.sync(&mut v.store).await.unwrap();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            packs += report
                .uploaded
                .iter()
                .filter(|u| u.kind == SegmentKind::Pack)
                .count();
        }
        if i % 3 == 1 || i % 7 == 0 {
            let report = rc.sync(&mut c.store).await.unwrap();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
        }
    }
    assert!(packs > 20, "{packs} packs written");
    for (v, r) in [(&mut a, &mut ra), (&mut b, &mut rb), (&mut c, &mut rc)] {
        r.sync(&mut v.store).await.unwrap();
    }
    for (v, r) in [(&mut a, &mut ra), (&mut b, &mut rb), (&mut c, &mut rc)] {
        r.sync(&mut v.store).await.unwrap();
    }
    same(&a, &b);
    same(&a, &c);
}

/// A pack whose run claims a chain that is not the chain below it (sealed under the storage
/// key, so only a faulty writer could make one) is refused and named; the device is read
/// again next time and nothing of it is merged.
#[tokio::test]
async fn a_pack_whose_run_disagrees_with_the_chain_below_is_refused() {
    let (_d, make) = folder();
    let (mut a, mut c) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    ra.set_compaction(NO_PACKS);
    let mut rc = join(&mut c, make(), None).await;
    changes(&mut a, &mut ra, "x", 6).await;
    let before = c.store.state_digest().unwrap();
    // A forged pack at the next sequence number, standing for segments 2 to 6: it links to
    // segment 1 as it is, but claims a wrong chain through it; and a head naming it.
    let backend = make();
    let first = backend
        .list_all(&format!("{}/", ra.device()))
        .await
        .unwrap()
        .iter()
        .find_map(|m| format::parse_segment_name(m.location.as_ref()).filter(|s| s.1 == 1))
        .unwrap()
        .2;
    let own = ra.state().own;
    let key = &ra.state().key;
    let device = ra.device();
    let seq = own.seq + 1;
    let pack = Segment {
        kind: SegmentKind::Pack,
        seq,
        prev: own.latest,
        chain_before: Some(own.chain),
        skip: Some(Skip {
            from: 2,
            hash: first,
            chain: [9; 32],
        }),
        events: Vec::new(),
    };
    let plain = format::encode_segment(&pack).unwrap();
    let sealed = key
        .seal(Kind::Segment, &device, seq, &plain, &[1; 24])
        .unwrap();
    let hash = segment_hash(&sealed);
    backend
        .put(&segment_name(&device, seq, &hash), sealed, PutMode::Create)
        .await
        .unwrap();
    let head = format::encode_head(&Head {
        seq,
        latest: hash,
        chain: chain(&own.chain, seq, &hash),
    });
    let sealed_head = key.seal(Kind::Head, &device, 0, &head, &[2; 24]).unwrap();
    backend
        .put(&head_name(&device), sealed_head, PutMode::Overwrite)
        .await
        .unwrap();
    let report = rc.sync(&mut c.store).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let (who, err) = &report.failed[0];
    assert_eq!(who, &device.to_string());
    assert!(
        matches!(err, Error::ChainBroken { reason, .. } if reason.contains("pack")),
        "{err}"
    );
    assert_eq!(c.store.state_digest().unwrap(), before, "nothing merged");
}

/// Packs together with compaction: bases every 10 segments (their older segments, packs
/// included, deleted at once), packs every 4 and 16; a reader now and then and a device
/// joining at the end converge, and every device reads far fewer segments than were written.
#[tokio::test]
async fn packs_and_compaction_bases_together_lose_nothing() {
    let (_d, make) = folder();
    let (mut a, mut c) = (vault(), vault());
    let mut ra = add(&mut a, make(), None).await;
    ra.set_compaction(Compaction { every: 10, ..PACKS });
    let mut rc = join(&mut c, make(), None).await;
    let mut kinds = Vec::new();
    for i in 0..80 {
        put(&mut a, b"alice", &format!("r{}", i % 13), &format!("v{i}"));
        if i % 9 == 8 {
            a.store
                .delete(b"alice", &vaults::loc(&format!("r{}", i % 5)))
                .unwrap();
        }
        let report = ra.sync(&mut a.store).await.unwrap();
        kinds.extend(report.uploaded.iter().map(|u| u.kind));
        if i % 7 == 3 {
            let report = rc.sync(&mut c.store).await.unwrap();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            same(&a, &c);
        }
    }
    assert!(kinds.contains(&SegmentKind::Pack) && kinds.contains(&SegmentKind::Base));
    rc.sync(&mut c.store).await.unwrap();
    same(&a, &c);
    let mut d = vault();
    let mut rd = join(&mut d, make(), None).await;
    let joined = rd.sync(&mut d.store).await.unwrap();
    assert!(joined.failed.is_empty(), "{:?}", joined.failed);
    assert!(joined.segments_fetched < 15, "{}", joined.segments_fetched);
    same(&a, &d);
}
