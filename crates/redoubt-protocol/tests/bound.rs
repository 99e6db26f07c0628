//! Version 3, bound sessions, driven in memory: both sides agree when honest; a session
//! relayed between other peers, or any changed frame of either side before the key, fails at
//! chunk 0. Also what a requester takes from a responder's scope (issue 11, points 1 and 4).

use redoubt_protocol::{
    Error, Event, FallbackReason, Mode, Opening, Peers, Pull, PullConfig, PullEvent, Request,
    Requester, Responder, Response, Scope, ScopeSketch, Serve as Session, ShapeCursor,
    ShapeFallback,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, MergePolicy, NodeId, SecretValue};

fn put(x: &mut Instance, client: &str, r: usize, value: &[u8], t: u64) {
    let loc = Location::new("v", format!("r{r}")).unwrap();
    x.write_at(client.as_bytes(), &loc, SecretValue::new(value.to_vec()), t)
        .unwrap();
}

fn peers(requester: &str, responder: &str) -> Peers {
    Peers::new(requester.as_bytes(), responder.as_bytes()).unwrap()
}

fn full(client: &str) -> Mode {
    Mode::Full {
        client: client.as_bytes().to_vec(),
    }
}

fn import(clients: &[&str]) -> Mode {
    Mode::Import {
        clients: clients.iter().map(|c| c.as_bytes().to_vec()).collect(),
    }
}

/// A requester holding 60 versions of alice and bob, and a responder holding those and three
/// more of each client (so the summary alone does not decode).
fn replicas() -> (Instance, Instance) {
    let mut a = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..30 {
        put(&mut a, "alice", i, b"x", 1);
        put(&mut a, "bob", i, b"y", 1);
    }
    let mut b = a.clone();
    for i in 30..33 {
        put(&mut b, "alice", i, b"new", 2);
        put(&mut b, "bob", i, b"new", 2);
    }
    (a, b)
}

/// The responder's side of [`drive`].
struct Serve<'a> {
    instance: &'a Instance,
    readable: Vec<Vec<u8>>,
    /// The peers its bound sessions are bound to.
    peers: Peers,
    /// Resolves the scope from this mode instead of the opening's (a hostile responder).
    scope_of: Option<Mode>,
}

impl<'a> Serve<'a> {
    fn honest(instance: &'a Instance, peers: Peers) -> Self {
        Self {
            instance,
            readable: vec![b"alice".to_vec(), b"bob".to_vec()],
            peers,
            scope_of: None,
        }
    }

    fn open(&self, frame: &[u8]) -> Result<(Session, Vec<u8>), Error> {
        let instance = self.instance;
        let scope = |mode: &Mode| {
            let mode = self.scope_of.as_ref().unwrap_or(mode);
            Scope::resolve(mode, instance, &self.readable).unwrap()
        };
        let Ok(opening) = Opening::from_request(Request::decode(frame)?) else {
            panic!("not an opening")
        };
        let s = scope(opening.mode());
        Session::open(frame, opening, s, instance, Some(self.peers.clone()))
    }
}

/// What [`drive`] saw: every frame (`true` for a request), and the records merged.
#[derive(Debug, Default)]
struct Seen {
    frames: Vec<(bool, Vec<u8>)>,
    records: usize,
    fell_back: Option<FallbackReason>,
}

/// Runs one pull of `mode` (bound to `peers` when given; a sketch when `sketch`, else every
/// shape) from `serve` into `into`, passing each response frame through `relay` (a party in the
/// middle) on its way back. A fallback ends it: the responder's recorded in [`Seen`], one after
/// our failed final check as [`Error::SketchMismatch`].
fn drive(
    into: &mut Instance,
    (mode, peers): (Mode, Option<Peers>),
    serve: &Serve<'_>,
    sketch: bool,
    mut relay: impl FnMut(&mut Vec<u8>),
) -> (Seen, Result<(), Error>) {
    let mut config = PullConfig::new(mode, peers);
    config.sketch = sketch;
    config.fallback = loopback::POLICY;
    drive_with(into, config, serve, &mut relay)
}

/// [`drive`] of the pull `config` describes.
fn drive_with(
    into: &mut Instance,
    config: PullConfig,
    serve: &Serve<'_>,
    relay: &mut dyn FnMut(&mut Vec<u8>),
) -> (Seen, Result<(), Error>) {
    let mut seen = Seen::default();
    let result = drive_inner(into, config, serve, relay, &mut seen);
    (seen, result)
}

fn drive_inner(
    into: &mut Instance,
    config: PullConfig,
    serve: &Serve<'_>,
    relay: &mut dyn FnMut(&mut Vec<u8>),
    seen: &mut Seen,
) -> Result<(), Error> {
    let mut pull = Pull::new(config, into)?;
    let mut session: Option<Session> = None;
    while let Some(frame) = pull.poll_transmit() {
        seen.frames.push((true, frame.clone()));
        let mut answer = match session.as_mut() {
            None => {
                let (s, answer) = serve.open(&frame)?;
                session = Some(s);
                answer
            }
            Some(s) => s.handle(&frame, serve.instance)?,
        };
        relay(&mut answer);
        seen.frames.push((false, answer.clone()));
        pull.handle(&answer, into)?;
        while let Some(event) = pull.poll_event() {
            match event {
                PullEvent::Records { records } => {
                    seen.records += records.len();
                    for r in records {
                        into.merge_record(&r.client, r.record, MergePolicy::Newest)?;
                    }
                }
                // Our final check failed: the session would go on by shapes; here it ends.
                PullEvent::FellBack { reason: None, .. } => {
                    return Err(Error::SketchMismatch("the final check failed"));
                }
                PullEvent::FellBack { reason, .. } => {
                    seen.fell_back = reason;
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn pass(_: &mut Vec<u8>) {}

/// Honest peers agree on the bound key in every flow: a full sketch that grows, an import
/// (Accepted, Sketch), and every shape (bound Open, Ready, chunks); the pull converges.
#[test]
fn honest_bound_sessions_converge() {
    for (mode, sketch) in [
        (full("alice"), true),
        (import(&["alice", "bob"]), true),
        (full("alice"), false),
        (import(&["alice", "bob"]), false),
    ] {
        let (mut a, b) = replicas();
        let req = (mode.clone(), Some(peers("A", "B")));
        assert!(req.1.is_some());
        let (seen, result) = drive(
            &mut a,
            req,
            &Serve::honest(&b, peers("A", "B")),
            sketch,
            pass,
        );
        result.unwrap_or_else(|e| panic!("{mode:?} sketch {sketch}: {e}"));
        assert_eq!(seen.frames[0].1[0], 3, "the opening carries version byte 3");
        let want = if matches!(mode, Mode::Full { .. }) {
            3
        } else {
            6
        };
        assert_eq!(seen.records, want, "{mode:?} sketch {sketch}");
        if !matches!(mode, Mode::Full { .. }) {
            assert_eq!(a.state_digest(), b.state_digest());
        }
    }
    // The loopback runs version 3 the same way.
    let (mut a, b) = replicas();
    let readable = [b"alice".to_vec(), b"bob".to_vec()];
    let from = Serving {
        instance: &b,
        readable: &readable,
    };
    let mut meter = Meter::default();
    loopback::pull(&mut a, &from, import(&["alice", "bob"]), 3, &mut meter).unwrap();
    assert_eq!((meter.records, meter.fell_back), (6, None));
    assert_eq!(a.state_digest(), b.state_digest());
}

/// A peer M in the middle that relays A's session to B unchanged (A bound it to (A, M), B to
/// (M, B)) cannot make it work: chunk 0 fails to open, nothing is merged. Without binding
/// (version 2) the same relay went through.
#[test]
fn a_relayed_session_fails_at_chunk_0() {
    for sketch in [true, false] {
        let (mut a, b) = replicas();
        let before = a.state_digest();
        let req = (full("alice"), Some(peers("A", "M")));
        let (seen, result) = drive(
            &mut a,
            req,
            &Serve::honest(&b, peers("M", "B")),
            sketch,
            pass,
        );
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Tampered { index: 0 }), "{err}");
        assert_eq!((seen.records, a.state_digest()), (0, before));

        let (mut a, b) = replicas();
        let req = (full("alice"), None);
        let (seen, result) = drive(
            &mut a,
            req,
            &Serve::honest(&b, peers("M", "B")),
            sketch,
            pass,
        );
        result.unwrap();
        assert_eq!(seen.records, 3, "an unbound session is relayed unnoticed");
    }
}

/// A change a party in the middle makes to a response.
type Change = fn(Response) -> Response;

/// Rewrites the first response with `tag` by `change`.
fn rewrite(tag: u8, change: Change) -> impl FnMut(&mut Vec<u8>) {
    let mut done = false;
    move |frame: &mut Vec<u8>| {
        if !done && frame.get(1) == Some(&tag) {
            done = true;
            *frame = change(Response::decode(frame).unwrap()).encode().unwrap();
        }
    }
}

/// Changes that an unbound session does not notice (the requester sorts the scope it is given;
/// probes only size the next batch; the announced counts are for progress), in `Accepted`,
/// `More` and `Ready`: a bound session's key changes, so chunk 0 fails.
#[test]
fn a_changed_accepted_more_or_ready_changes_the_key() {
    let reorder = |r| match r {
        Response::Accepted {
            session,
            mut clients,
        } => {
            clients.reverse();
            clients.push(clients[0]);
            Response::Accepted { session, clients }
        }
        r => r,
    };
    let probes = |r| match r {
        Response::More {
            session,
            want,
            mut probes,
        } => {
            probes[0] ^= 1;
            Response::More {
                session,
                want,
                probes,
            }
        }
        r => r,
    };
    let records = |r| match r {
        Response::Ready {
            session,
            key,
            records,
            bytes,
        } => Response::Ready {
            session,
            key,
            records: records + 1,
            bytes,
        },
        r => r,
    };
    let cases: [(Mode, bool, u8, Change); 3] = [
        (import(&["alice", "bob"]), true, 0x81, reorder),
        (full("alice"), true, 0x87, probes),
        (full("alice"), false, 0x83, records),
    ];
    for (mode, sketch, tag, change) in cases {
        let (mut a, b) = replicas();
        let req = (mode.clone(), None);
        let serve = Serve::honest(&b, peers("A", "B"));
        let (seen, result) = drive(&mut a, req, &serve, sketch, rewrite(tag, change));
        result.unwrap_or_else(|e| panic!("unbound, tag {tag:#x}: {e}"));
        assert!(seen.records > 0);

        let (mut a, b) = replicas();
        let req = (mode, Some(peers("A", "B")));
        let serve = Serve::honest(&b, peers("A", "B"));
        let (seen, result) = drive(&mut a, req, &serve, sketch, rewrite(tag, change));
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::Tampered { index: 0 }),
            "tag {tag:#x}: {err}"
        );
        assert_eq!(seen.records, 0);
    }
}

/// The digest and lacking keys in `Decoded` are covered too: a changed digest fails chunk 0
/// in a bound session instead of failing the final check (and falling back).
#[test]
fn a_changed_decoded_digest_fails_chunk_0() {
    let digest = |r| match r {
        Response::Decoded {
            session,
            key,
            records,
            bytes,
            mut digest,
            lacking,
            sealed,
        } => {
            digest[0] ^= 1;
            Response::Decoded {
                session,
                key,
                records,
                bytes,
                digest,
                lacking,
                sealed,
            }
        }
        r => r,
    };
    for bound in [false, true] {
        let (mut a, b) = replicas();
        let req = (full("alice"), bound.then(|| peers("A", "B")));
        let serve = Serve::honest(&b, peers("A", "B"));
        let (_, result) = drive(&mut a, req, &serve, true, rewrite(0x89, digest));
        if bound {
            assert!(
                matches!(result, Err(Error::Tampered { index: 0 })),
                "{result:?}"
            );
        } else {
            assert!(
                matches!(result, Err(Error::SketchMismatch(_))),
                "{result:?}"
            );
        }
    }
}

/// Bound and unbound constructors take only their own openings.
#[test]
fn constructors_refuse_openings_of_the_other_kind() {
    let (a, b) = replicas();
    let scope = || Scope::resolve(&full("alice"), &b, &[b"alice".to_vec()]).unwrap();
    let mut bound = Requester::new(full("alice"), None, Some(peers("A", "B")), None).unwrap();
    let frame = bound.open(Vec::new(), true).unwrap();
    let Request::Open(open) = Request::decode(&frame).unwrap() else {
        panic!()
    };
    assert!(open.bound);
    let err = Responder::start(&frame, Opening::Shapes(open), scope(), &b, None).unwrap_err();
    assert!(matches!(err, Error::Binding(_)), "{err}");
    let mut plain = Requester::new(full("alice"), None, None, None).unwrap();
    let s = ScopeSketch::new(&a, &plain.sketch_scope(None)).unwrap();
    let frame = plain.open_sketch(Some((s.summary(), s.digest()))).unwrap();
    let Request::OpenSketch(open) = Request::decode(&frame).unwrap() else {
        panic!()
    };
    assert!(!open.bound);
    let opening = Opening::Sketch(open);
    let err = Responder::start(&frame, opening, scope(), &b, Some(peers("A", "B"))).unwrap_err();
    assert!(matches!(err, Error::Binding(_)), "{err}");
}

/// A responder whose `Accepted` names a client the import did not ask for fails the session
/// there: no summary, no symbols, no shapes go out, for that client or any other.
#[test]
fn an_accepted_client_not_asked_for_fails_the_session() {
    for sketch in [true, false] {
        let (mut a, b) = replicas();
        let mut serve = Serve::honest(&b, peers("A", "B"));
        serve.scope_of = Some(import(&["alice", "bob"]));
        let req = (import(&["alice"]), Some(peers("A", "B")));
        let (seen, result) = drive(&mut a, req, &serve, sketch, pass);
        let err = result.unwrap_err();
        assert!(matches!(err, Error::NotAsked), "{err}");
        let tags: Vec<u8> = seen.frames.iter().map(|(_, f)| f[1]).collect();
        let open = if sketch { 0x05 } else { 0x01 };
        assert_eq!(tags, [open, 0x81], "only the opening went out");
        assert_eq!(seen.records, 0);
    }
}

/// A responder that streams records of a client the import did not ask for (it resolved a
/// wider scope, and the import sent its shapes in the opening, so no `Accepted` came): the
/// chunk is refused and nothing of it is merged.
#[test]
fn records_of_a_client_not_asked_for_are_refused() {
    let (a, b) = replicas();
    let mut serve = Serve::honest(&b, peers("A", "B"));
    serve.scope_of = Some(import(&["alice", "bob"]));
    let mut req = Requester::new(import(&["alice"]), None, Some(peers("A", "B")), None).unwrap();
    let (groups, last) = ShapeCursor::new(&req, &a).unwrap().next_batch(&a).unwrap();
    assert!(
        groups
            .iter()
            .all(|g| g.client == ClientId::from_path(b"alice"))
    );
    let frame = req.open(groups, last).unwrap();
    let (mut resp, ready) = serve.open(&frame).unwrap();
    req.handle(&ready).unwrap();
    let chunk = resp.handle(&req.next_chunk().unwrap(), &b).unwrap();
    let err = req.handle(&chunk).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadRecord {
                index: 0,
                reason: "record outside what was asked for"
            }
        ),
        "{err}"
    );
    assert!(req.next_chunk().is_err(), "the session is over");
}

/// A sketched requester falls back to every shape on the responder's word only within the
/// local policy, and "shapes cheaper" only for a scope small enough for it to be true.
#[test]
fn fallback_is_bounded_by_the_local_policy() {
    let mut big = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..5_000 {
        put(&mut big, "alice", i, b"x", 1);
    }
    let fallback = |reason| {
        let mut req = Requester::new(full("alice"), None, Some(peers("A", "B")), None).unwrap();
        let s = ScopeSketch::new(&big, &req.sketch_scope(None)).unwrap();
        req.open_sketch(Some((s.summary(), s.digest()))).unwrap();
        let answer = Response::Fallback { reason }.encode().unwrap();
        assert!(matches!(
            req.handle(&answer).unwrap(),
            Event::Fallback { .. }
        ));
        assert_eq!(
            (req.fallback_reason(), req.summarized_len()),
            (Some(reason), Some(5_000))
        );
        req
    };
    let policy = ShapeFallback::default();
    assert!(
        fallback(FallbackReason::TooLarge)
            .may_fall_back(&policy)
            .is_ok()
    );
    let err = fallback(FallbackReason::ShapesCheaper)
        .may_fall_back(&policy)
        .unwrap_err();
    assert!(
        matches!(err, Error::FallbackRefused { shapes: 5_000, .. }),
        "{err}"
    );
    let strict = ShapeFallback { max_shapes: 4_999 };
    let err = fallback(FallbackReason::KeyCollision)
        .may_fall_back(&strict)
        .unwrap_err();
    assert!(matches!(err, Error::FallbackRefused { .. }), "{err}");
}

/// The shapes exchange in several batches (Open, Accepted, Shapes, Continue, …, Ready): both
/// sides hash every frame alike, `Continue` included, and agree on the key.
#[test]
fn a_bound_shapes_exchange_in_batches_agrees() {
    let (mut a, b) = replicas();
    let serve = Serve::honest(&b, peers("A", "B"));
    let mut config = PullConfig::new(import(&["alice", "bob"]), Some(peers("A", "B")));
    config.sketch = false;
    config.shape_batch = 7;
    let (seen, result) = drive_with(&mut a, config, &serve, &mut pass);
    result.unwrap();
    let tags: Vec<u8> = seen.frames.iter().map(|(_, f)| f[1]).collect();
    let continues = tags.iter().filter(|t| **t == 0x82).count();
    assert!(continues >= 8, "{continues} batches continued");
    assert_eq!(seen.records, 6);
    assert_eq!(a.state_digest(), b.state_digest());
}
