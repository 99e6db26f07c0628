//! The requester's checks against hostile responders that know the session key.

use redoubt_vault::{Instance, Location, NodeId, SecretValue};

use super::*;
use crate::{
    Request, Scope, SessionId,
    chunk::ChunkWriter,
    crypto::{SessionKey, SessionKeys, seal_chunk},
};

/// A responder that knows the session key but lies about a record's shape, or sends a
/// record of a client that was not asked for, is caught before anything is merged.
#[test]
fn lying_shapes_and_unasked_records_are_rejected() {
    let mut src = Instance::new(NodeId::from_bytes([2; 16]));
    let loc = Location::new("v", "r").unwrap();
    src.write_at(b"alice", &loc, SecretValue::new(b"x".to_vec()), 1)
        .unwrap();
    src.write_at(b"bob", &loc, SecretValue::new(b"y".to_vec()), 1)
        .unwrap();
    let alice = ClientId::from_path(b"alice");
    let bob = ClientId::from_path(b"bob");
    // offsets inside an entry: count (4), client id, vault id, record id, size, hash
    let cases: [(&ClientId, &[u8], Option<usize>, &str); 4] = [
        (&alice, b"alice", Some(4 + 96 + 4), "hash differs"),
        (&alice, b"alice", Some(4 + 96), "size differs"),
        (&alice, b"alice", Some(4 + 40), "location ids"),
        (&bob, b"bob", None, "outside what was asked"),
    ];
    for (client_id, path, flip, want) in cases {
        let secret = EphemeralSecret::from_bytes([5; 32]);
        let mut req = Requester::new(
            Mode::Full {
                client: b"alice".to_vec(),
            },
            None,
            None,
            Some(secret),
        )
        .unwrap();
        let frame = req.open(Vec::new(), true).unwrap();
        let Request::Open(open) = Request::decode(&frame).unwrap() else {
            panic!()
        };
        let scope = Scope::resolve(&open.mode, &src, &[b"alice".to_vec()]).unwrap();
        let theirs = EphemeralSecret::from_bytes([6; 32]);
        let session = SessionId([1; 16]);
        let (_, ready) = crate::Responder::start_with(
            &frame,
            crate::Opening::Shapes(open),
            scope,
            &src,
            None,
            Some((session, theirs)),
        )
        .unwrap();
        req.handle(&ready.encode().unwrap()).unwrap();
        // The malicious responder's own view of the key.
        let mut t = Transcript::default();
        t.absorb(&frame);
        let theirs = EphemeralSecret::from_bytes([6; 32]);
        let keys = SessionKeys {
            requester: EphemeralSecret::from_bytes([5; 32]).public_key(),
            responder: theirs.public_key(),
        };
        let key = SessionKey::agree(&theirs, &keys.requester, keys, session, &t.hash()).unwrap();
        let mut w = ChunkWriter::new();
        w.push(client_id, path, src.record(client_id, loc.ids()).unwrap())
            .unwrap();
        let mut pt = w.finish();
        if let Some(at) = flip {
            pt[at] ^= 1;
        }
        let sealed = seal_chunk(&key, session, 0, true, &pt).unwrap();
        req.next_chunk().unwrap();
        let err = req
            .handle(&Response::Chunk { sealed }.encode().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains(want), "{err} / {want}");
    }
}

/// A requester of `mode` that opened with no shapes (`last`) and took a hand-made `Ready`
/// announcing `records` and `bytes`, and the key the responder derived.
fn after_ready(mode: Mode, records: u64, bytes: u64) -> (Requester, SessionKey, SessionId) {
    let mut req =
        Requester::new(mode, None, None, Some(EphemeralSecret::from_bytes([5; 32]))).unwrap();
    let frame = req.open(Vec::new(), true).unwrap();
    let theirs = EphemeralSecret::from_bytes([6; 32]);
    let session = SessionId([1; 16]);
    let ready = Response::Ready {
        session,
        key: theirs.public_key(),
        records,
        bytes,
    };
    assert!(matches!(
        req.handle(&ready.encode().unwrap()).unwrap(),
        Event::Ready { .. }
    ));
    let mut t = Transcript::default();
    t.absorb(&frame);
    let keys = SessionKeys {
        requester: EphemeralSecret::from_bytes([5; 32]).public_key(),
        responder: theirs.public_key(),
    };
    let key = SessionKey::agree(&theirs, &keys.requester, keys, session, &t.hash()).unwrap();
    (req, key, session)
}

fn alice() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

/// Alice's records `r0`, `r1`, … with values of `sizes` bytes.
fn source(sizes: &[usize]) -> (Instance, Vec<Location>) {
    let mut src = Instance::new(NodeId::from_bytes([2; 16]));
    let mut locs = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let loc = Location::new("v", format!("r{i}")).unwrap();
        src.write_at(b"alice", &loc, SecretValue::new(vec![7; *n]), 1)
            .unwrap();
        locs.push(loc);
    }
    (src, locs)
}

/// Chunk `index` holding `locs` of alice, sealed under `key`.
fn chunk(
    key: &SessionKey,
    session: SessionId,
    (index, last): (u64, bool),
    src: &Instance,
    locs: &[&Location],
) -> Vec<u8> {
    let alice = ClientId::from_path(b"alice");
    let mut w = ChunkWriter::new();
    for loc in locs {
        w.push(&alice, b"alice", src.record(&alice, loc.ids()).unwrap())
            .unwrap();
    }
    let sealed = seal_chunk(key, session, index, last, &w.finish()).unwrap();
    Response::Chunk { sealed }.encode().unwrap()
}

/// More records than `Ready` announced fail the chunk that brings one too many.
#[test]
fn more_records_than_announced_are_refused() {
    let (src, locs) = source(&[1, 1, 1]);
    let (mut req, key, s) = after_ready(alice(), 2, 3);
    req.next_chunk().unwrap();
    let first = chunk(&key, s, (0, false), &src, &[&locs[0], &locs[1]]);
    assert!(matches!(
        req.handle(&first).unwrap(),
        Event::Records { ref records, last: false } if records.len() == 2
    ));
    req.next_chunk().unwrap();
    let err = req
        .handle(&chunk(&key, s, (1, true), &src, &[&locs[2]]))
        .unwrap_err();
    assert!(
        matches!(err, Error::OverAnnounced { index: 1, .. }),
        "{err}"
    );
}

/// Value bytes may pass what was announced by one largest value (a record grown since the
/// announcement), not more.
#[test]
fn value_bytes_beyond_the_announcement_and_its_slack_are_refused() {
    let big = redoubt_vault::MAX_VALUE_LEN;
    let (src, locs) = source(&[big, 10, 11]);
    // Announced 10 bytes: the 1 MiB record fits in the slack, 10 more bytes exactly too.
    let (mut req, key, s) = after_ready(alice(), 3, 10);
    req.next_chunk().unwrap();
    req.handle(&chunk(&key, s, (0, false), &src, &[&locs[0]]))
        .unwrap();
    req.next_chunk().unwrap();
    req.handle(&chunk(&key, s, (1, true), &src, &[&locs[1]]))
        .unwrap();
    assert!(req.is_done());
    let (mut req, key, s) = after_ready(alice(), 3, 10);
    req.next_chunk().unwrap();
    req.handle(&chunk(&key, s, (0, false), &src, &[&locs[0]]))
        .unwrap();
    req.next_chunk().unwrap();
    let err = req
        .handle(&chunk(&key, s, (1, true), &src, &[&locs[2]]))
        .unwrap_err();
    assert!(
        matches!(err, Error::OverAnnounced { index: 1, .. }),
        "{err}"
    );
}

/// A location sent twice (or records out of key order) fails: a responder that replays stale
/// versions chunk after chunk cannot keep a session going.
#[test]
fn a_location_sent_twice_is_refused() {
    let (src, locs) = source(&[1, 1, 1]);
    let (mut req, key, s) = after_ready(alice(), 3, 3);
    req.next_chunk().unwrap();
    req.handle(&chunk(&key, s, (0, false), &src, &[&locs[0]]))
        .unwrap();
    req.next_chunk().unwrap();
    let err = req
        .handle(&chunk(&key, s, (1, false), &src, &[&locs[0]]))
        .unwrap_err();
    assert!(
        matches!(err, Error::OverAnnounced { index: 1, what } if what.contains("repeated")),
        "{err}"
    );
}

/// An empty chunk that is not the last fails (a responder never sends one, so a stream of
/// them could run forever); an empty last chunk is an empty complement.
#[test]
fn empty_chunks_but_the_last_are_refused() {
    let (src, _) = source(&[]);
    let (mut req, key, s) = after_ready(alice(), 5, 5);
    req.next_chunk().unwrap();
    let err = req
        .handle(&chunk(&key, s, (0, false), &src, &[]))
        .unwrap_err();
    assert!(matches!(err, Error::EmptyChunk { index: 0 }), "{err}");
    let (mut req, key, s) = after_ready(alice(), 0, 0);
    req.next_chunk().unwrap();
    req.handle(&chunk(&key, s, (0, true), &src, &[])).unwrap();
    assert!(req.is_done());
}

/// An import names its clients; its records, summaries and shapes never reach past them.
#[test]
fn imports_name_their_clients_and_keep_to_them() {
    assert!(matches!(
        Requester::new(Mode::Import { clients: vec![] }, None, None, None),
        Err(Error::EmptyImport)
    ));
    let import = Mode::Import {
        clients: vec![b"alice".to_vec(), b"bob".to_vec()],
    };
    let req = Requester::new(import.clone(), None, None, None).unwrap();
    let (alice, bob, carol) = (
        ClientId::from_path(b"alice"),
        ClientId::from_path(b"bob"),
        ClientId::from_path(b"carol"),
    );
    let scope = req.sketch_scope(Some(&[carol, bob, alice, bob]));
    let mut want = vec![alice, bob];
    want.sort();
    assert_eq!(scope.iter().map(|(c, _)| *c).collect::<Vec<_>>(), want);
    // Shapes of a client not asked for never go out, whatever `Accepted` lists.
    let mut held = Instance::new(NodeId::from_bytes([3; 16]));
    let loc = Location::new("v", "r").unwrap();
    for c in [&b"alice"[..], b"carol"] {
        held.write_at(c, &loc, SecretValue::new(b"x".to_vec()), 1)
            .unwrap();
    }
    let mut cursor = crate::ShapeCursor::new(&req, &held).unwrap();
    cursor.keep_only(&[carol, alice]);
    let (groups, last) = cursor.next_batch(&held).unwrap();
    assert!(last);
    assert_eq!(groups.iter().map(|g| g.client).collect::<Vec<_>>(), [alice]);
    let mut req = Requester::new(import, None, None, None).unwrap();
    let stray = ShapeGroup {
        client: carol,
        shapes: Vec::new(),
    };
    assert!(req.open(vec![stray], true).is_err());
}
