//! Version 2 reconciliation, whole sessions in memory: it finds exactly the symmetric
//! difference, models deletions and edits, falls back to shapes when it must, and converges.

use std::collections::BTreeSet;

use proptest::prelude::*;
use redoubt_protocol::{
    Mode,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, NodeId, SecretValue, sketch::Element};

fn loc(i: usize) -> Location {
    Location::new(format!("v{}", i % 3), format!("r{i}")).unwrap()
}

/// Writes as a replica of a build before lineage did: the version keeps no parent or history
/// (version 2 sessions carry only such records, [`drop_lineage`]).
fn put(x: &mut Instance, client: &[u8], i: usize, value: &[u8], t: u64) {
    x.write_at(client, &loc(i), SecretValue::new(value.to_vec()), t)
        .unwrap();
    drop_lineage(x, client, i);
}

fn drop_lineage(x: &mut Instance, client: &[u8], i: usize) {
    let rec = x
        .record(&ClientId::from_path(client), loc(i).ids())
        .unwrap()
        .without_lineage();
    x.restore(client, rec).unwrap();
}

fn elements(x: &Instance, client: &[u8]) -> BTreeSet<u64> {
    let c = ClientId::from_path(client);
    x.records(&c)
        .map(|r| Element::of(&c, &r.shape()).key)
        .collect()
}

fn pull(into: &mut Instance, from: &Instance, mode: Mode, readable: &[&[u8]]) -> Meter {
    let readable: Vec<Vec<u8>> = readable.iter().map(|c| c.to_vec()).collect();
    let serving = Serving {
        instance: from,
        readable: &readable,
    };
    let mut meter = Meter::default();
    loopback::pull(into, &serving, mode, 2, &mut meter).unwrap();
    meter
}

fn full(client: &[u8]) -> Mode {
    Mode::Full {
        client: client.to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the common part, the records each side adds, the common records the
    /// responder edits and the ones the requester deletes: the responder sends exactly the
    /// versions the requester lacks and names exactly the ones it lacks itself; an edit and a
    /// deletion count as two differences each (old version here, new one there).
    #[test]
    fn reconciliation_finds_exactly_the_symmetric_difference(
        common in 200usize..400,
        only_a in 0usize..30,
        only_b in 0usize..30,
        edits in 0usize..15,
        deletes in 0usize..15,
    ) {
        let mut a = Instance::new(NodeId::from_bytes([1; 16]));
        for i in 0..common {
            put(&mut a, b"alice", i, b"same", 1);
        }
        let mut b = a.clone();
        for k in 0..only_a {
            put(&mut a, b"alice", 10_000 + k, b"a", 2);
        }
        for k in 0..only_b {
            put(&mut b, b"alice", 20_000 + k, b"b", 2);
        }
        for k in 0..edits {
            put(&mut b, b"alice", k, b"edited", 3);
        }
        for k in 0..deletes {
            a.delete_at(b"alice", &loc(common - 1 - k), 3).unwrap();
            drop_lineage(&mut a, b"alice", common - 1 - k);
        }
        let (ea, eb) = (elements(&a, b"alice"), elements(&b, b"alice"));
        let want_sent: BTreeSet<u64> = eb.difference(&ea).copied().collect();
        let want_lacking: BTreeSet<u64> = ea.difference(&eb).copied().collect();
        prop_assert_eq!(want_sent.len(), only_b + edits + deletes);
        prop_assert_eq!(want_lacking.len(), only_a + edits + deletes);

        let before = a.clone();
        let meter = pull(&mut a, &b, full(b"alice"), &[b"alice"]);
        prop_assert_eq!(meter.fell_back, None);
        prop_assert_eq!(meter.records as usize, want_sent.len());
        prop_assert_eq!(meter.lacking.iter().copied().collect::<BTreeSet<u64>>(), want_lacking);
        prop_assert!(meter.round_trips_to_complement <= 2);
        // Everything of b's is now in a, merged by the convergent policy.
        let c = ClientId::from_path(b"alice");
        for rec in b.records(&c) {
            let ours = a.record(&c, rec.location().ids()).unwrap();
            prop_assert!(ours.stamp() >= rec.stamp());
        }
        prop_assert!(a.len() >= before.len());
    }
}

/// A version 2 session refuses a record with lineage, which it cannot carry; version 4 carries
/// it and the replicas converge, histories included.
#[test]
fn lineage_needs_version_4() {
    let mut b = Instance::new(NodeId::from_bytes([2; 16]));
    for t in 1..4 {
        b.write_at(b"alice", &loc(1), SecretValue::new(vec![t as u8]), t)
            .unwrap();
    }
    let readable = vec![b"alice".to_vec()];
    let serving = Serving {
        instance: &b,
        readable: &readable,
    };
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    let err =
        loopback::pull(&mut a, &serving, full(b"alice"), 2, &mut Meter::default()).unwrap_err();
    assert!(
        matches!(err, redoubt_protocol::Error::LineageUnsupported),
        "{err}"
    );
    assert!(err.to_string().contains("/redoubt/sync/4"));
    assert!(a.is_empty(), "nothing merged");
    loopback::pull(&mut a, &serving, full(b"alice"), 4, &mut Meter::default()).unwrap();
    assert_eq!(a.state_digest(), b.state_digest());
    let c = ClientId::from_path(b"alice");
    assert_eq!(a.record(&c, loc(1).ids()).unwrap().history().len(), 2);
}

#[test]
fn equal_sets_settle_in_one_round_trip_under_128_bytes() {
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..5000 {
        put(&mut a, b"alice", i, b"x", 1);
    }
    let mut b = a.clone();
    let meter = pull(&mut b, &a, full(b"alice"), &[b"alice"]);
    assert_eq!((meter.records, meter.round_trips), (0, 1));
    assert!(meter.bytes <= 128, "{} bytes", meter.bytes);
    assert!(meter.lacking.is_empty());
}

#[test]
fn a_small_requester_is_sent_to_shapes_and_still_converges() {
    let mut big = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..3000 {
        put(&mut big, b"alice", i, b"x", 1);
    }
    let mut small = Instance::new(NodeId::from_bytes([2; 16]));
    put(&mut small, b"alice", 1, b"mine", 5);
    let meter = pull(&mut small, &big, full(b"alice"), &[b"alice"]);
    assert!(
        meter
            .fell_back
            .as_deref()
            .is_some_and(|r| r.contains("shapes are cheaper")),
        "{:?}",
        meter.fell_back
    );
    assert_eq!(small.len(), 3000);
}

#[test]
fn imports_and_partial_pulls_reconcile_their_own_scope() {
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..300 {
        put(&mut a, b"alice", i, b"x", 1);
        put(&mut a, b"bob", i, b"y", 1);
    }
    let mut b = a.clone();
    put(&mut b, b"alice", 7, b"new", 2);
    put(&mut b, b"bob", 8, b"new", 2);
    put(&mut b, b"carol", 9, b"hidden", 2);
    // An import of alice, bob and carol, of which we may read alice and bob.
    let mut a1 = a.clone();
    let meter = pull(
        &mut a1,
        &b,
        Mode::Import {
            clients: vec![b"alice".to_vec(), b"bob".to_vec(), b"carol".to_vec()],
        },
        &[b"alice", b"bob"],
    );
    assert_eq!(meter.fell_back, None, "{meter:?}");
    assert_eq!(meter.records, 2, "{meter:?}");
    assert_eq!(meter.lacking.len(), 2, "the two old versions: {meter:?}");
    assert!(a1.client_path(&ClientId::from_path(b"carol")).is_none());
    // A partial pull of vault v1 of alice: record 7 lives in v1 (7 % 3), 8 in v2.
    let mut a2 = a.clone();
    let meter = pull(
        &mut a2,
        &b,
        Mode::Partial {
            client: b"alice".to_vec(),
            vaults: vec![b"v1".to_vec()],
            records: vec![],
        },
        &[b"alice"],
    );
    assert_eq!((meter.records, meter.fell_back), (1, None));
    assert_eq!(
        a2.read(b"alice", &loc(7)).map(|v| v.expose().to_vec()),
        Some(b"new".to_vec())
    );
}

/// A responder that lies in its answer (a wrong digest, or naming a version we do not hold as
/// lacking) fails the requester's final check, which falls back instead of trusting it.
#[test]
fn a_wrong_digest_or_lacking_key_fails_the_final_check() {
    use redoubt_protocol::{Error, Event, Requester, Response, ScopeSketch};
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    put(&mut a, b"alice", 1, b"x", 1);
    for (digest, lacking) in [([7u8; 32], vec![]), ([0u8; 32], vec![42u64])] {
        let mut req = Requester::new(full(b"alice"), None, None, None).unwrap();
        let scope = ScopeSketch::new(&a, &req.sketch_scope(None)).unwrap();
        req.open_sketch(Some((scope.summary(), scope.digest())))
            .unwrap();
        let answer = Response::Settled { digest, lacking }.encode().unwrap();
        let Event::Reconciled { lacking, .. } = req.handle(&answer).unwrap() else {
            panic!("not reconciled")
        };
        let err = req
            .account_lacking(scope.hash_sum(&a, &lacking).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::SketchMismatch(_)), "{err}");
    }
}

/// A requester cannot make the responder hold or decode more than the cap: symbols beyond
/// it, or out of order, are refused.
#[test]
fn symbols_beyond_the_cap_or_out_of_order_are_refused() {
    use redoubt_protocol::{Request, Responder, Scope, SessionId, crypto::EphemeralSecret};
    use redoubt_vault::sketch::{MAX_SYMBOLS, Symbol};
    let mut b = Instance::new(NodeId::from_bytes([2; 16]));
    for i in 0..100 {
        put(&mut b, b"alice", i, b"x", 1);
    }
    let a = b.clone();
    for i in 100..110 {
        put(&mut b, b"alice", i, b"new", 2);
    }
    let start = || {
        let mut req = redoubt_protocol::Requester::new(full(b"alice"), None, None, None).unwrap();
        let scope = redoubt_protocol::ScopeSketch::new(&a, &req.sketch_scope(None)).unwrap();
        let frame = req
            .open_sketch(Some((scope.summary(), scope.digest())))
            .unwrap();
        let Request::OpenSketch(open) = Request::decode(&frame).unwrap() else {
            panic!()
        };
        let scope = Scope::resolve(&open.mode, &b, &[b"alice".to_vec()]).unwrap();
        let fixed = (SessionId([1; 16]), EphemeralSecret::from_bytes([3; 32]));
        let opening = redoubt_protocol::Opening::Sketch(open);
        Responder::start_with(&frame, opening, scope, &b, None, Some(fixed))
            .unwrap()
            .0
    };
    let too_many = Request::Symbols {
        session: SessionId([1; 16]),
        from: 1,
        symbols: vec![Symbol::default(); MAX_SYMBOLS],
    };
    assert!(too_many.encode().is_err(), "the encoder refuses it");
    let out_of_range = |e: redoubt_protocol::Error| e.to_string().contains("out of the range");
    let mut r = start();
    assert!(out_of_range(
        r.symbols(b"", 5, vec![Symbol::default(); 10], &b)
            .unwrap_err()
    ));
    let mut r = start();
    assert!(out_of_range(
        r.symbols(b"", 1, vec![Symbol::default(); MAX_SYMBOLS], &b)
            .unwrap_err()
    ));
    // The right range is taken (and, being garbage, does not decode: more is asked for).
    let mut r = start();
    let answer = r.symbols(b"", 1, vec![Symbol::default(); 40], &b).unwrap();
    assert!(matches!(
        answer,
        redoubt_protocol::Response::More { want: 82, .. }
    ));
}
