//! Property tests: `Newest` merge is a state-based CRDT, so replicas converge whatever the order.

use proptest::prelude::*;
use redoubt_vault::{
    ClientId, Instance, Location, MAX_HISTORY, MergePolicy, NodeId, SecretValue, Shape, SyncConfig,
    VaultId, history,
};

#[derive(Clone, Debug)]
enum Op {
    Write {
        replica: usize,
        client: u8,
        vault: u8,
        record: u8,
        value: Vec<u8>,
        advance_ms: u64,
    },
    Delete {
        replica: usize,
        client: u8,
        vault: u8,
        record: u8,
        advance_ms: u64,
    },
    Pull {
        into: usize,
        from: usize,
    },
    /// A pull through a format without lineage (a snapshot file): current versions only.
    PullStripped {
        into: usize,
        from: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3usize, 0..2u8, 0..2u8, 0..4u8, prop::collection::vec(any::<u8>(), 0..8), 0..3u64)
            .prop_map(|(replica, client, vault, record, value, advance_ms)| Op::Write {
                replica, client, vault, record, value, advance_ms
            }),
        2 => (0..3usize, 0..2u8, 0..2u8, 0..4u8, 0..3u64)
            .prop_map(|(replica, client, vault, record, advance_ms)| Op::Delete {
                replica, client, vault, record, advance_ms
            }),
        1 => (0..3usize, 0..3usize).prop_map(|(into, from)| Op::Pull { into, from }),
        1 => (0..3usize, 0..3usize).prop_map(|(into, from)| Op::PullStripped { into, from }),
    ]
}

fn location(vault: u8, record: u8) -> Location {
    Location::new(format!("vault-{vault}"), format!("record-{record}")).unwrap()
}

fn client(c: u8) -> Vec<u8> {
    format!("client-{c}").into_bytes()
}

/// Applies ops to three replicas. Each replica's wall clock advances on its own, so writes
/// within the same millisecond on different replicas (concurrent edits) happen often.
fn replay(ops: &[Op]) -> [Instance; 3] {
    let mut replicas = [1u8, 2, 3].map(|n| Instance::new(NodeId::from_bytes([n; 16])));
    let mut wall = [1000u64; 3];
    for op in ops {
        match op {
            Op::Write {
                replica,
                client: c,
                vault,
                record,
                value,
                advance_ms,
            } => {
                wall[*replica] += advance_ms;
                replicas[*replica]
                    .write_at(
                        &client(*c),
                        &location(*vault, *record),
                        SecretValue::new(value.clone()),
                        wall[*replica],
                    )
                    .unwrap();
            }
            Op::Delete {
                replica,
                client: c,
                vault,
                record,
                advance_ms,
            } => {
                wall[*replica] += advance_ms;
                // Deleting what is not there is an error and changes nothing.
                let _ = replicas[*replica].delete_at(
                    &client(*c),
                    &location(*vault, *record),
                    wall[*replica],
                );
            }
            Op::Pull { into, from } if into != from => {
                let source = replicas[*from].clone();
                replicas[*into]
                    .sync_from(&source, &SyncConfig::full())
                    .unwrap();
            }
            Op::PullStripped { into, from } if into != from => {
                let source = replicas[*from].without_lineage();
                replicas[*into]
                    .sync_from(&source, &SyncConfig::full())
                    .unwrap();
            }
            Op::Pull { .. } | Op::PullStripped { .. } => {}
        }
    }
    replicas
}

/// Everything that must agree between converged replicas: every version's shape per client.
fn state(i: &Instance) -> Vec<(ClientId, Vec<Shape>)> {
    i.clients()
        .map(|(id, _)| (*id, i.records(id).map(|r| r.shape()).collect()))
        .collect()
}

/// Every record's version hash, parent and history hashes, per client.
#[allow(clippy::type_complexity)]
fn lineage(i: &Instance) -> Vec<(ClientId, Vec<([u8; 32], Option<[u8; 32]>, Vec<[u8; 32]>)>)> {
    i.clients()
        .map(|(id, _)| {
            let records = i
                .records(id)
                .map(|r| {
                    let history = r.history().iter().map(|v| *v.hash()).collect();
                    (*r.version_hash(), r.parent().copied(), history)
                })
                .collect();
            (*id, records)
        })
        .collect()
}

fn merged(a: &Instance, b: &Instance) -> Instance {
    let mut out = a.clone();
    out.sync_from(b, &SyncConfig::full().policy(MergePolicy::Newest))
        .unwrap();
    out
}

proptest! {
    #[test]
    fn replicas_converge_after_every_pair_syncs(
        ops in prop::collection::vec(op(), 0..60),
        order in Just([(0usize, 1usize), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]).prop_shuffle(),
    ) {
        let mut replicas = replay(&ops);
        for (into, from) in order {
            let source = replicas[from].clone();
            replicas[into].sync_from(&source, &SyncConfig::full()).unwrap();
        }
        prop_assert_eq!(state(&replicas[0]), state(&replicas[1]));
        prop_assert_eq!(state(&replicas[1]), state(&replicas[2]));
    }

    #[test]
    fn merge_is_commutative_associative_and_idempotent(ops in prop::collection::vec(op(), 0..60)) {
        let [a, b, c] = replay(&ops);
        prop_assert_eq!(state(&merged(&a, &b)), state(&merged(&b, &a)));
        prop_assert_eq!(
            state(&merged(&merged(&a, &b), &c)),
            state(&merged(&a, &merged(&b, &c)))
        );
        prop_assert_eq!(state(&merged(&a, &a)), state(&a));
        let ab = merged(&a, &b);
        prop_assert_eq!(state(&merged(&ab, &b)), state(&ab));
    }

    /// Any order of pairwise syncs among three replicas, repeated until nothing changes,
    /// converges to identical records: current versions, parents and histories alike.
    #[test]
    fn any_order_of_pairwise_syncs_converges_histories_included(
        ops in prop::collection::vec(op(), 0..80),
        pairs in prop::collection::vec((0..3usize, 0..3usize), 0..12),
    ) {
        let mut replicas = replay(&ops);
        for (into, from) in pairs.into_iter().filter(|(a, b)| a != b) {
            let source = replicas[from].clone();
            replicas[into].sync_from(&source, &SyncConfig::full()).unwrap();
        }
        // Then a ring, twice round: every replica has seen every other.
        for _ in 0..2 {
            for (into, from) in [(1, 0), (2, 1), (0, 2)] {
                let source = replicas[from].clone();
                replicas[into].sync_from(&source, &SyncConfig::full()).unwrap();
            }
        }
        prop_assert_eq!(lineage(&replicas[0]), lineage(&replicas[1]));
        prop_assert_eq!(lineage(&replicas[1]), lineage(&replicas[2]));
        prop_assert_eq!(replicas[0].state_digest(), replicas[2].state_digest());
    }

    /// Every record's history stays canonical and bounded whatever happens.
    #[test]
    fn histories_stay_bounded_and_canonical(ops in prop::collection::vec(op(), 0..120)) {
        for replica in replay(&ops) {
            for (id, _) in replica.clients() {
                for r in replica.records(id) {
                    prop_assert!(r.history().len() <= MAX_HISTORY);
                    prop_assert!(history::check_canonical(r.current(), r.history()).is_ok());
                }
            }
        }
    }

    /// Restoring a version makes a new current version whose parent is the previous current
    /// one and whose value is the restored version's.
    #[test]
    fn restore_makes_a_child_of_the_current_version(ops in prop::collection::vec(op(), 1..80)) {
        let [mut a, _, _] = replay(&ops);
        let picked = a.clients().next().map(|(id, path)| (*id, path.to_vec()));
        let Some((id, path)) = picked else { return Ok(()) };
        let Some(rec) = a.records(&id).find(|r| !r.history().is_empty()).cloned() else {
            return Ok(());
        };
        let old = rec.history().last().unwrap().clone();
        a.revert_at(&path, rec.location(), old.hash(), 0).unwrap();
        let now = a.record(&id, rec.location().ids()).unwrap();
        prop_assert_eq!(now.parent(), Some(rec.version_hash()));
        prop_assert_eq!(now.value().map(|v| v.expose().to_vec()), old.value().map(|v| v.expose().to_vec()));
        prop_assert!(now.stamp() > rec.newest_stamp());
        prop_assert!(history::descends(now, rec.version_hash()));
    }

    #[test]
    fn a_second_sync_changes_nothing(ops in prop::collection::vec(op(), 0..60)) {
        let [mut a, b, _] = replay(&ops);
        a.sync_from(&b, &SyncConfig::full()).unwrap();
        let again = a.sync_from(&b, &SyncConfig::full()).unwrap();
        prop_assert!(!again.changed());
    }
}

#[test]
fn a_stale_copy_never_brings_a_deleted_record_back() {
    let loc = location(0, 0);
    let mut desktop = Instance::new(NodeId::from_bytes([1; 16]));
    let mut phone = Instance::new(NodeId::from_bytes([2; 16]));
    desktop
        .write_at(b"c", &loc, SecretValue::new(b"old".to_vec()), 10)
        .unwrap();
    phone.sync_from(&desktop, &SyncConfig::full()).unwrap();
    let stale = phone.clone();
    desktop.delete_at(b"c", &loc, 11).unwrap();
    let report = desktop.sync_from(&stale, &SyncConfig::full()).unwrap();
    assert_eq!(report.unchanged, 1);
    assert!(desktop.read(b"c", &loc).is_none());
    phone.sync_from(&desktop, &SyncConfig::full()).unwrap();
    assert!(phone.read(b"c", &loc).is_none(), "the deletion propagates");
}

#[test]
fn policies_decide_conflicts_and_reports_count_them() {
    let loc = location(0, 0);
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    let mut b = Instance::new(NodeId::from_bytes([2; 16]));
    a.write_at(b"c", &loc, SecretValue::new(b"from a, newer".to_vec()), 20)
        .unwrap();
    b.write_at(b"c", &loc, SecretValue::new(b"from b, older".to_vec()), 10)
        .unwrap();

    let mut keep = b.clone();
    let r = keep
        .sync_from(&a, &SyncConfig::full().policy(MergePolicy::KeepOld))
        .unwrap();
    assert_eq!((r.unchanged, r.conflicts_resolved), (1, 1));
    assert_eq!(keep.read(b"c", &loc).unwrap().expose(), b"from b, older");

    let mut newest = b.clone();
    let r = newest.sync_from(&a, &SyncConfig::full()).unwrap();
    assert_eq!((r.updated, r.conflicts_resolved), (1, 1));
    assert_eq!(newest.read(b"c", &loc).unwrap().expose(), b"from a, newer");

    let mut replace = a.clone();
    let r = replace
        .sync_from(&b, &SyncConfig::full().policy(MergePolicy::Replace))
        .unwrap();
    assert_eq!((r.updated, r.conflicts_resolved), (1, 1));
    assert_eq!(replace.read(b"c", &loc).unwrap().expose(), b"from b, older");

    // Under Newest the older incoming version loses (and joins the history).
    let r = a.sync_from(&b, &SyncConfig::full()).unwrap();
    assert_eq!(
        (r.unchanged, r.conflicts_resolved, r.history_merged),
        (1, 1, 1)
    );
    assert_eq!(r.conflicts.len(), 1);

    // A fast-forward of five changed records is no conflict at all.
    let mut c = a.clone();
    for k in 0..5 {
        let loc = location(1, k);
        a.write_at(b"c", &loc, SecretValue::new(vec![k]), 30)
            .unwrap();
    }
    c.sync_from(&a, &SyncConfig::full()).unwrap();
    for k in 0..5 {
        a.write_at(b"c", &location(1, k), SecretValue::new(vec![k, k]), 40)
            .unwrap();
    }
    let r = c.sync_from(&a, &SyncConfig::full()).unwrap();
    assert_eq!((r.updated, r.conflicts_resolved), (5, 0));
    assert_eq!(
        r.to_string(),
        "added 0, updated 5, deleted 0, unchanged 1, conflicts resolved 0"
    );
}

#[test]
fn partial_sync_and_mappings() {
    let mut src = Instance::new(NodeId::from_bytes([1; 16]));
    for (c, v, r) in [
        ("alice", "wallet", "seed"),
        ("alice", "wallet", "pin"),
        ("alice", "mail", "pw"),
        ("bob", "wallet", "seed"),
    ] {
        src.write_at(
            c.as_bytes(),
            &Location::new(v, r).unwrap(),
            SecretValue::new(r.as_bytes().to_vec()),
            5,
        )
        .unwrap();
    }
    // Partial: one client, one vault.
    let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
    let r = dst
        .sync_from(
            &src,
            &SyncConfig::full()
                .client(b"alice")
                .unwrap()
                .vault(b"wallet")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(r.added, 2);
    assert!(
        dst.read(b"alice", &Location::new("mail", "pw").unwrap())
            .is_none()
    );
    assert!(
        dst.read(b"bob", &Location::new("wallet", "seed").unwrap())
            .is_none()
    );

    // Partial: one record.
    let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
    let only = Location::new("wallet", "pin").unwrap();
    let r = dst
        .sync_from(
            &src,
            &SyncConfig::full().client(b"alice").unwrap().record(&only),
        )
        .unwrap();
    assert_eq!(r.added, 1);
    assert!(dst.read(b"alice", &only).is_some());

    // Mapping: alice/wallet becomes carol/cold.
    let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
    let config = SyncConfig::full()
        .client(b"alice")
        .unwrap()
        .map_client(b"alice", b"carol")
        .unwrap()
        .map_vault(b"wallet", b"cold")
        .unwrap();
    let r = dst.sync_from(&src, &config).unwrap();
    assert_eq!(r.added, 3);
    let moved = Location::new("cold", "seed").unwrap();
    assert_eq!(dst.read(b"carol", &moved).unwrap().expose(), b"seed");
    assert!(
        dst.read(b"carol", &Location::new("mail", "pw").unwrap())
            .is_some()
    );
    assert!(dst.read(b"alice", &moved).is_none());
    // A second mapped sync finds everything already there.
    assert!(!dst.sync_from(&src, &config).unwrap().changed());

    // Two source vaults mapped onto one target vault: the policy picks between them.
    let mut two = Instance::new(NodeId::from_bytes([4; 16]));
    let seed = Location::new("cold", "seed").unwrap();
    // Written in this order, so the clock stamps "older" before "newer".
    two.write_at(b"alice", &seed, SecretValue::new(b"older".to_vec()), 1)
        .unwrap();
    two.write_at(
        b"alice",
        &Location::new("wallet", "seed").unwrap(),
        SecretValue::new(b"newer".to_vec()),
        9,
    )
    .unwrap();
    for policy in [
        MergePolicy::Newest,
        MergePolicy::KeepOld,
        MergePolicy::Replace,
    ] {
        let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
        let config = SyncConfig::full()
            .policy(policy)
            .map_vault(b"wallet", b"cold")
            .unwrap();
        let r = dst.sync_from(&two, &config).unwrap();
        assert_eq!(r.conflicts_resolved, 1, "{policy:?}");
        let expected: &[u8] = match policy {
            MergePolicy::Newest => b"newer",
            // "cold" is walked before "wallet" (vault ids order them so): the first one planned
            // is what KeepOld keeps and what Replace replaces.
            _ if VaultId::from_path(b"cold") < VaultId::from_path(b"wallet") => {
                if policy == MergePolicy::KeepOld {
                    b"older"
                } else {
                    b"newer"
                }
            }
            _ => {
                if policy == MergePolicy::KeepOld {
                    b"newer"
                } else {
                    b"older"
                }
            }
        };
        assert_eq!(
            dst.read(b"alice", &seed).unwrap().expose(),
            expected,
            "{policy:?}"
        );
    }

    // Import: every client into a fresh instance.
    let mut fresh = Instance::new(NodeId::from_bytes([3; 16]));
    let r = fresh.sync_from(&src, &SyncConfig::full()).unwrap();
    assert_eq!(r.added, 4);
    assert_eq!(fresh.clients().count(), 2);

    // A selected client the source lacks is an error, and nothing changes.
    let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
    assert!(
        dst.sync_from(&src, &SyncConfig::full().client(b"nobody").unwrap())
            .is_err()
    );
    assert!(dst.is_empty());
}
