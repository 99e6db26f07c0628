//! Property: any sequence of puts, deletes and merges leaves the store exactly where the
//! in-memory vault (`Instance`) goes with the same operations, before and after a reopen.

use proptest::prelude::*;
use redoubt_store::{KdfLimits, KdfParams, Password, Store};
use redoubt_vault::{
    Instance, Location, MergeBounds, MergePolicy, NodeId, Record, SecretValue, Stamp,
};

#[derive(Clone, Debug)]
enum Op {
    Put {
        client: u8,
        record: u8,
        now: u64,
    },
    Delete {
        client: u8,
        record: u8,
        now: u64,
    },
    Merge {
        client: u8,
        records: Vec<(u8, u64, bool)>,
        policy: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2u8, 0..4u8, 0..50u64).prop_map(|(client, record, now)| Op::Put {
            client,
            record,
            now
        }),
        (0..2u8, 0..4u8, 0..50u64).prop_map(|(client, record, now)| Op::Delete {
            client,
            record,
            now
        }),
        (
            0..2u8,
            prop::collection::vec((0..4u8, 0..80u64, any::<bool>()), 1..4),
            0..3u8
        )
            .prop_map(|(client, records, policy)| Op::Merge {
                client,
                records,
                policy
            }),
    ]
}

fn loc(record: u8) -> Location {
    Location::new("v", format!("r{record}")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_store_moves_as_the_vault_moves(ops in prop::collection::vec(op(), 1..16)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let password = Password::new(b"pw".to_vec());
        let mut store = Store::create(&path, &password, KdfParams::insecure_fast()).unwrap();
        let mut model = Instance::new(store.node());
        // Incoming stamps may run past the bound (60): some merges are refused.
        let bounds = MergeBounds { now_ms: 50, max_ahead_ms: 10 };
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Put { client, record, now } => {
                    let c = [b'c', client];
                    let v = SecretValue::new(vec![i as u8]);
                    let ours = store.put_at(&c, &loc(record), v.clone(), now).unwrap();
                    prop_assert_eq!(ours, model.write_at(&c, &loc(record), v, now).unwrap());
                }
                Op::Delete { client, record, now } => {
                    let c = [b'c', client];
                    let ours = store.delete_at(&c, &loc(record), now).ok();
                    prop_assert_eq!(ours, model.delete_at(&c, &loc(record), now).ok());
                }
                Op::Merge { client, records, policy } => {
                    let c = [b'c', client];
                    let policy = [MergePolicy::Newest, MergePolicy::KeepOld, MergePolicy::Replace]
                        [usize::from(policy)];
                    let batch: Vec<Record> = records
                        .into_iter()
                        .map(|(record, wall_ms, live)| {
                            let stamp = Stamp { wall_ms, counter: 0, node: NodeId::from_bytes([9; 16]) };
                            let value = live.then(|| SecretValue::new(vec![record, i as u8]));
                            Record::from_parts(loc(record), stamp, value).unwrap()
                        })
                        .collect();
                    let ours = store.merge_records(&c, batch.clone(), policy, &bounds).unwrap();
                    let mut theirs = redoubt_vault::MergeReport::default();
                    for r in batch {
                        theirs.add(&model.merge_record_within(&c, r, policy, &bounds).unwrap());
                    }
                    prop_assert_eq!(ours, theirs);
                }
            }
            prop_assert_eq!(store.state_digest().unwrap(), model.state_digest());
            prop_assert_eq!(store.clock(), model.clock());
        }
        drop(store);
        let store = Store::open(&path, &password, &KdfLimits::default()).unwrap();
        prop_assert_eq!(store.state_digest().unwrap(), model.state_digest());
        prop_assert_eq!(store.clock(), model.clock());
    }
}
