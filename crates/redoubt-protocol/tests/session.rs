//! Whole sessions driven in memory: both state machines, no transport.

use proptest::prelude::*;
use redoubt_protocol::{
    Error, Event, Mode, Opening, Pull, RefusalCode, Request, Requester, Responder, Response, Scope,
    SessionId, ShapeGroup,
    crypto::EphemeralSecret,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, MergeReport, NodeId, SecretValue, Selection};

fn node(n: u8) -> Instance {
    Instance::new(NodeId::from_bytes([n; 16]))
}

fn put(i: &mut Instance, client: &str, v: &str, r: &str, value: &[u8], t: u64) {
    i.write_at(
        client.as_bytes(),
        &Location::new(v, r).unwrap(),
        SecretValue::new(value.to_vec()),
        t,
    )
    .unwrap();
}

/// Runs one pull of `mode` from `from` into `into` by shapes (version 1's exchange, in a
/// version 4 session so that edits travel with their lineage), sending `batch` shapes per
/// frame; returns the merge report and chunk count.
fn pull(
    into: &mut Instance,
    from: &Instance,
    mode: Mode,
    readable: &[&str],
    batch: usize,
) -> Result<(MergeReport, u64), Error> {
    let readable: Vec<Vec<u8>> = readable.iter().map(|c| c.as_bytes().to_vec()).collect();
    let mut config = loopback::config(mode, 4)?;
    config.sketch = false;
    config.shape_batch = batch;
    let pull = Pull::new(config, into)?;
    let from = Serving {
        instance: from,
        readable: &readable,
    };
    let mut report = MergeReport::default();
    let pull = loopback::run(pull, into, &from, None, &mut Meter::default(), |i, r| {
        loopback::merge_newest(i, r, &mut report)
    })?;
    Ok((report, pull.chunks_received()))
}

fn full(c: &str) -> Mode {
    Mode::Full {
        client: c.as_bytes().to_vec(),
    }
}

fn import(clients: &[&str]) -> Mode {
    Mode::Import {
        clients: clients.iter().map(|c| c.as_bytes().to_vec()).collect(),
    }
}

#[test]
fn a_full_pull_brings_exactly_the_complement() {
    let mut a = node(1);
    let mut b = node(2);
    for i in 0..50 {
        put(&mut b, "alice", "v", &format!("r{i}"), b"x", 10);
    }
    let (report, _) = pull(&mut a, &b, full("alice"), &["alice"], 7).unwrap();
    assert_eq!(report.added, 50);
    assert_eq!(a.state_digest(), b.state_digest());
    put(&mut b, "alice", "v", "r3", b"edited", 20);
    b.delete_at(b"alice", &Location::new("v", "r4").unwrap(), 20)
        .unwrap();
    let (report, _) = pull(&mut a, &b, full("alice"), &["alice"], 7).unwrap();
    assert_eq!((report.updated, report.deleted, report.added), (1, 1, 0));
    assert_eq!(a.state_digest(), b.state_digest());
    let (report, chunks) = pull(&mut a, &b, full("alice"), &["alice"], 7).unwrap();
    assert_eq!(
        (report.changed(), chunks),
        (false, 1),
        "nothing left: one empty final chunk"
    );
}

#[test]
fn partial_and_import_pull_only_what_they_name() {
    let mut b = node(2);
    put(&mut b, "alice", "keep", "1", b"k", 1);
    put(&mut b, "alice", "skip", "1", b"s", 1);
    put(&mut b, "alice", "skip", "2", b"s2", 1);
    put(&mut b, "bob", "v", "1", b"b", 1);
    put(&mut b, "carol", "v", "1", b"c", 1);
    let mut a = node(1);
    let mode = Mode::Partial {
        client: b"alice".to_vec(),
        vaults: vec![b"keep".to_vec()],
        records: vec![Location::new("skip", "2").unwrap()],
    };
    let (report, _) = pull(&mut a, &b, mode, &["alice"], 100).unwrap();
    assert_eq!(report.added, 2);
    assert!(
        a.read(b"alice", &Location::new("skip", "1").unwrap())
            .is_none()
    );

    let mut fresh = node(3);
    let (report, _) = pull(
        &mut fresh,
        &b,
        import(&["alice", "bob", "carol"]),
        &["alice", "bob"],
        2,
    )
    .unwrap();
    assert_eq!(report.added, 4, "alice (3) and bob (1), never carol");
    assert_eq!(fresh.clients().count(), 2);
}

#[test]
fn refusals_reach_the_requester_as_errors() {
    let mut b = node(2);
    put(&mut b, "alice", "v", "1", b"x", 1);
    let mut a = node(1);
    let denied = pull(&mut a, &b, full("alice"), &["bob"], 10).unwrap_err();
    assert!(matches!(
        denied,
        Error::Refused {
            code: RefusalCode::PermissionDenied,
            ..
        }
    ));
    assert!(a.is_empty());
    let missing = pull(&mut a, &b, full("zed"), &["zed"], 10).unwrap_err();
    assert!(matches!(
        missing,
        Error::Refused {
            code: RefusalCode::ClientNotFound,
            ..
        }
    ));
    let none = pull(&mut a, &b, import(&["alice"]), &[], 10).unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    assert!(matches!(none, Error::Refused { .. }));
}

/// Sets up a session up to Ready with fixed keys and returns both sides.
fn ready_session(from: &Instance, session: [u8; 16]) -> (Requester, Responder) {
    let mut req = Requester::new(
        full("alice"),
        None,
        None,
        Some(EphemeralSecret::from_bytes([5; 32])),
    )
    .unwrap();
    let frame = req.open(Vec::new(), true).unwrap();
    let Request::Open(open) = Request::decode(&frame).unwrap() else {
        panic!()
    };
    let scope = Scope::resolve(&open.mode, from, &[b"alice".to_vec()]).unwrap();
    let fixed = (SessionId(session), EphemeralSecret::from_bytes([6; 32]));
    let (resp, ready) = Responder::start_with(
        &frame,
        Opening::Shapes(open),
        scope,
        from,
        None,
        Some(fixed),
    )
    .unwrap();
    assert!(matches!(
        req.handle(&ready.encode().unwrap()).unwrap(),
        Event::Ready { .. }
    ));
    (req, resp)
}

fn big_source() -> Instance {
    let mut b = node(2);
    for i in 0..6 {
        put(
            &mut b,
            "alice",
            "v",
            &format!("r{i}"),
            &vec![i; 400 * 1024],
            1,
        );
    }
    b
}

#[test]
fn tampered_reordered_truncated_and_replayed_chunks_fail() {
    let b = big_source();
    // Tampered: every flipped byte position class fails authentication.
    let (mut req, mut resp) = ready_session(&b, [1; 16]);
    req.next_chunk().unwrap();
    let Response::Chunk { mut sealed } = resp.chunk(0, &b).unwrap() else {
        panic!()
    };
    sealed[100] ^= 1;
    let err = req
        .handle(&Response::Chunk { sealed }.encode().unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Tampered { index: 0 }), "{err}");

    // Reordered: chunk 1 offered where chunk 0 is expected.
    let (mut req, mut resp) = ready_session(&b, [2; 16]);
    let _first = resp.chunk(0, &b).unwrap();
    let second = resp.chunk(1, &b).unwrap();
    req.next_chunk().unwrap();
    assert!(matches!(
        req.handle(&second.encode().unwrap()),
        Err(Error::Tampered { index: 0 })
    ));

    // Replayed from another session with the same keys but another session id.
    let (_, mut old) = ready_session(&b, [3; 16]);
    let replay = old.chunk(0, &b).unwrap();
    let (mut req, _) = ready_session(&b, [4; 16]);
    req.next_chunk().unwrap();
    assert!(matches!(
        req.handle(&replay.encode().unwrap()),
        Err(Error::Tampered { index: 0 })
    ));

    // Truncated: the stream stops before the final chunk; the requester is not done and any
    // other answer (here a refusal) fails the session.
    let (mut req, mut resp) = ready_session(&b, [5; 16]);
    req.next_chunk().unwrap();
    req.handle(&resp.chunk(0, &b).unwrap().encode().unwrap())
        .unwrap();
    assert!(!req.is_done());
    assert_eq!(req.chunks_received(), 1);

    // A chunk nobody asked for is refused.
    let (mut req, mut resp) = ready_session(&b, [6; 16]);
    let unasked = resp.chunk(0, &b).unwrap().encode().unwrap();
    assert!(matches!(req.handle(&unasked), Err(Error::Unexpected(_))));
}

#[test]
fn out_of_order_shapes_are_refused() {
    let mut a = node(1);
    let mut b = node(2);
    for i in 0..4 {
        put(&mut a, "alice", "v", &format!("r{i}"), b"x", 1);
        put(&mut b, "alice", "v", &format!("r{i}"), b"x", 1);
    }
    let c = ClientId::from_path(b"alice");
    let mut shapes = a.shapes(&c, &Selection::all());
    shapes.swap(0, 1);
    let mut req = Requester::new(full("alice"), None, None, None).unwrap();
    let frame = req
        .open(vec![ShapeGroup { client: c, shapes }], true)
        .unwrap();
    let Request::Open(open) = Request::decode(&frame).unwrap() else {
        panic!()
    };
    let scope = Scope::resolve(&open.mode, &b, &[b"alice".to_vec()]).unwrap();
    assert!(matches!(
        Responder::start(&frame, Opening::Shapes(open), scope, &b, None),
        Err(Error::Malformed(_))
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        side: bool,
        client: u8,
        rec: u8,
        val: u8,
    },
    Delete {
        side: bool,
        client: u8,
        rec: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0..3u8, 0..12u8, any::<u8>()).prop_map(|(side, client, rec, val)| {
            Op::Write {
                side,
                client,
                rec,
                val,
            }
        }),
        (any::<bool>(), 0..3u8, 0..12u8).prop_map(|(side, client, rec)| Op::Delete {
            side,
            client,
            rec
        }),
    ]
}

proptest! {
    /// Two replicas that import from each other end equal, whatever the batch size; and the
    /// responder sends exactly the records whose shapes the requester lacks.
    #[test]
    fn pulls_both_ways_converge(ops in proptest::collection::vec(op(), 0..60), batch in 1..9usize) {
        let mut a = node(1);
        let mut b = node(2);
        for (t, op) in ops.iter().enumerate() {
            let (side, client, rec) = match op {
                Op::Write { side, client, rec, .. } | Op::Delete { side, client, rec } => (*side, *client, *rec),
            };
            let inst = if side { &mut a } else { &mut b };
            let c = format!("c{client}");
            let loc = Location::new("v", format!("r{rec}")).unwrap();
            match op {
                Op::Write { val, .. } => {
                    inst.write_at(c.as_bytes(), &loc, SecretValue::new(vec![*val]), t as u64).unwrap();
                }
                Op::Delete { .. } => {
                    let _ = inst.delete_at(c.as_bytes(), &loc, t as u64);
                }
            }
        }
        let all = ["c0", "c1", "c2"];
        let expected: usize = b
            .clients()
            .map(|(id, _)| b.complement(id, &a.shapes(id, &Selection::all()), &Selection::all()).len())
            .sum();
        let (report, _) = pull(&mut a, &b, import(&all), &all, batch).unwrap();
        let received = report.added + report.updated + report.deleted + report.unchanged;
        prop_assert_eq!(received as usize, expected);
        pull(&mut b, &a, import(&all), &all, batch).unwrap();
        prop_assert_eq!(a.state_digest(), b.state_digest());
    }
}

/// The transcript takes the frame and the session acts on the decoded request: a request that
/// is not what its frame decodes to is refused, opening or not.
#[test]
fn a_frame_and_a_decoded_request_that_disagree_are_refused() {
    use redoubt_protocol::Serve;

    let mut b = node(2);
    put(&mut b, "alice", "v", "r", b"x", 1);
    let readable = [b"alice".to_vec()];
    let open = |mode: Mode| {
        let mut req = Requester::new(mode, None, None, None).unwrap();
        let frame = req.open(Vec::new(), true).unwrap();
        let Request::Open(open) = Request::decode(&frame).unwrap() else {
            panic!()
        };
        (frame, open)
    };
    let (frame, _) = open(full("alice"));
    let (_, other) = open(Mode::Partial {
        client: b"alice".to_vec(),
        vaults: vec![b"v".to_vec()],
        records: Vec::new(),
    });
    let scope = Scope::resolve(&other.mode, &b, &readable).unwrap();
    let err = Serve::open(&frame, Opening::Shapes(other), scope, &b, None).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");

    let (frame, open) = open(full("alice"));
    let scope = Scope::resolve(&open.mode, &b, &readable).unwrap();
    let (mut serve, _) = Serve::open(&frame, Opening::Shapes(open), scope, &b, None).unwrap();
    let next = |index| Request::Next {
        session: serve.session(),
        index,
    };
    let (zero, one) = (next(0), next(1).encode().unwrap());
    let err = serve.handle_decoded(&one, zero, &b).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");
}

/// A fallback keeps the pull's shape batch: the shapes exchange that replaces the sketch sends
/// no more shapes per frame than the config asked for.
#[test]
fn a_fallback_keeps_the_configured_shape_batch() {
    use redoubt_protocol::{FallbackReason, PullEvent};

    let mut a = node(1);
    for i in 0..6 {
        put(&mut a, "alice", "v", &format!("r{i}"), b"x", 1);
    }
    let mut config = loopback::config(full("alice"), 2).unwrap();
    config.shape_batch = 2;
    let mut pull = Pull::new(config, &a).unwrap();
    assert!(pull.poll_transmit().is_some());
    let fallback = Response::Fallback {
        reason: FallbackReason::TooLarge,
    };
    pull.handle(&fallback.encode().unwrap(), &a).unwrap();
    assert!(matches!(
        pull.poll_event(),
        Some(PullEvent::FellBack {
            reason: Some(FallbackReason::TooLarge),
            ..
        })
    ));
    let Request::Open(open) = Request::decode(&pull.poll_transmit().unwrap()).unwrap() else {
        panic!("the retry opens by shapes")
    };
    let shapes: usize = open.groups.iter().map(|g| g.shapes.len()).sum();
    assert_eq!((shapes, open.last), (2, false));
    assert!(
        pull.needs_replica(),
        "the shapes exchange reads the replica"
    );
}
