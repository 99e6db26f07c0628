//! Sync protocol version 3 test vectors: three bound pulls between two fixed peer ids, made with
//! fixed keys and replayed byte for byte. Pull 1 grows its sketch (summary, More with fine
//! probes, Symbols, Decoded carrying the only chunk); pull 2 is a sketched import (Accepted,
//! Sketch, Decoded); pull 3 is the shapes exchange inside version 3 (a bound Open, Accepted,
//! Shapes, Ready, one chunk). Together they put every frame kind the bound key schedule
//! covers into a key.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-tests
//! --test sync_v3_vectors -- --ignored` writes the file only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_tests::vectors::{self, Frames};

use redoubt_protocol::{
    Error, Mode, Peers, Pull, PullConfig, PullEvent, Received, SessionId,
    crypto::EphemeralSecret,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, NodeId, SecretValue};

const FILE: &str = "sync-v3-session.txt";
const REQUESTER_SECRET: [u8; 32] = [0x41; 32];
const RESPONDER_SECRET: [u8; 32] = [0x42; 32];
const SESSION: [u8; 16] = [0x7e; 16];
/// The prefix of an ed25519 libp2p peer id in bytes (identity multihash of a protobuf key).
const PEER_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

fn peer_id(fill: u8) -> Vec<u8> {
    let mut id = PEER_PREFIX.to_vec();
    id.extend([fill; 32]);
    id
}

/// The requester's peer id, then the responder's.
fn peers() -> Peers {
    Peers::new(peer_id(0xa1), peer_id(0xb2)).unwrap()
}

fn path() -> PathBuf {
    vectors::path(FILE)
}

fn write(i: &mut Instance, client: &str, v: &str, r: &str, value: &[u8], t: u64) {
    let loc = Location::new(v, r).unwrap();
    i.write_at(client.as_bytes(), &loc, SecretValue::new(value.to_vec()), t)
        .unwrap();
}

/// The replicas of `tests/vectors/README.md`: the version 2 vector's two, plus client `bob`
/// on the responder only.
fn replicas() -> (Instance, Instance) {
    let mut requester = Instance::new(NodeId::from_bytes([0xaa; 16]));
    let mut responder = Instance::new(NodeId::from_bytes([0xbb; 16]));
    for k in 0..40u64 {
        let (r, value) = (format!("r{k}"), k.to_le_bytes());
        write(
            &mut responder,
            "alice",
            "shared",
            &r,
            &value,
            1_600_000_000_000 + k,
        );
    }
    for rec in responder
        .records(&ClientId::from_path(b"alice"))
        .cloned()
        .collect::<Vec<_>>()
    {
        requester.restore(b"alice", rec).unwrap();
    }
    write(
        &mut responder,
        "alice",
        "wallet",
        "pin",
        b"4921",
        1_700_000_000_001,
    );
    write(
        &mut responder,
        "alice",
        "mail",
        "password",
        b"old",
        1_700_000_000_002,
    );
    responder
        .delete_at(
            b"alice",
            &Location::new("mail", "password").unwrap(),
            1_700_000_000_003,
        )
        .unwrap();
    write(
        &mut requester,
        "alice",
        "wallet",
        "pin",
        b"0000",
        1_699_999_999_000,
    );
    write(
        &mut responder,
        "bob",
        "vpn",
        "key",
        &[0, 1, 2, 0xfe, 0xff],
        1_700_000_000_004,
    );
    // Made as a build before record lineage made them: current versions only.
    (requester.without_lineage(), responder.without_lineage())
}

/// What the responder lets the requester read.
fn readable() -> [Vec<u8>; 2] {
    [b"alice".to_vec(), b"bob".to_vec()]
}

/// The three pulls' modes, and whether each runs the sketch exchange.
fn pulls() -> [(Mode, bool); 3] {
    let import = Mode::Import {
        clients: vec![b"alice".to_vec(), b"bob".to_vec()],
    };
    let full = Mode::Full {
        client: b"alice".to_vec(),
    };
    [(full, true), (import.clone(), true), (import, false)]
}

/// What changes on the responder before pull `n` (counting from 1): pull 3 has a new seed.
fn before_pull(n: usize, responder: &mut Instance) {
    if n == 3 {
        write(
            responder,
            "alice",
            "wallet",
            "seed",
            b"correct horse",
            1_700_000_000_005,
        );
    }
}

/// The pull of `mode` (by sketch when `sketch`): bound to `peers`, with the fixed key.
fn config((mode, sketch): (Mode, bool), peers: Peers) -> PullConfig {
    let mut config = PullConfig::new(mode, Some(peers));
    config.sketch = sketch;
    config.secret = Some(EphemeralSecret::from_bytes(REQUESTER_SECRET));
    config
}

fn merge(into: &mut Instance, records: Vec<Received>) -> Result<(), Error> {
    vectors::merge_without_lineage(into, records)
}

/// The requester's side of one pull into `into`, bound to `peers`, by hand: takes each
/// response from `answer` (which sees the request frame) and merges what it verifies.
fn pull(
    into: &mut Instance,
    pull_of: (Mode, bool),
    peers: Peers,
    answer: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Result<(), Error> {
    let mut pull = Pull::new(config(pull_of, peers), into)?;
    while let Some(request) = pull.poll_transmit() {
        pull.handle(&answer(&request), into)?;
        while let Some(event) = pull.poll_event() {
            match event {
                PullEvent::Records { records } => merge(into, records)?,
                PullEvent::FellBack { why, .. } => panic!("fell back: {why}"),
                _ => {}
            }
        }
    }
    assert!(pull.is_done());
    assert_eq!(
        pull.chunks_received(),
        1,
        "the complements fit in one chunk"
    );
    Ok(())
}

/// Both sides of one pull, through the loopback driver with the fixed session and keys:
/// appends its frames.
fn session(into: &mut Instance, from: &Instance, pull_of: (Mode, bool), frames: &mut Frames) {
    let pull = Pull::new(config(pull_of, peers()), into).unwrap();
    let readable = readable();
    let serving = Serving {
        instance: from,
        readable: &readable,
    };
    let mut meter = Meter {
        frames: Some(Vec::new()),
        ..Meter::default()
    };
    let fixed = Some((SessionId(SESSION), RESPONDER_SECRET));
    let pull = loopback::run(pull, into, &serving, fixed, &mut meter, merge).unwrap();
    assert_eq!(
        pull.chunks_received(),
        1,
        "the complements fit in one chunk"
    );
    assert!(meter.fell_back.is_none());
    frames.extend(meter.frames.unwrap_or_default());
}

/// Runs the three pulls; returns the frames of each and both final digests.
fn run() -> (Vec<Frames>, [u8; 32], [u8; 32]) {
    let (mut into, mut from) = replicas();
    let mut all = Vec::new();
    for (i, p) in pulls().into_iter().enumerate() {
        before_pull(i + 1, &mut from);
        let mut frames = Vec::new();
        session(&mut into, &from, p, &mut frames);
        all.push(frames);
    }
    (all, into.state_digest(), from.state_digest())
}

fn render(pulls: &[Frames], digest: &[u8; 32]) -> String {
    let mut s = String::new();
    let hex = redoubt_vault::hex;
    writeln!(
        s,
        "# redoubt sync protocol version 3: three bound pulls (full sketch, sketched import, \
         import by shapes)"
    )
    .unwrap();
    writeln!(
        s,
        "# see tests/vectors/README.md; '>' requester to responder, '<' back"
    )
    .unwrap();
    writeln!(s, "requester-secret {}", hex(&REQUESTER_SECRET)).unwrap();
    writeln!(s, "responder-secret {}", hex(&RESPONDER_SECRET)).unwrap();
    writeln!(s, "session {}", hex(&SESSION)).unwrap();
    writeln!(s, "requester-peer {}", hex(peers().requester())).unwrap();
    writeln!(s, "responder-peer {}", hex(peers().responder())).unwrap();
    for (i, frames) in pulls.iter().enumerate() {
        writeln!(s, "# pull {}", i + 1).unwrap();
        s.push_str(&vectors::frame_lines(frames));
    }
    writeln!(s, "digest {}", hex(digest)).unwrap();
    s
}

/// The stored frames of each pull, the peer ids and the digest.
struct Stored {
    pulls: Vec<Frames>,
    peers: (Vec<u8>, Vec<u8>),
    digest: Vec<u8>,
}

fn load() -> Stored {
    let text = std::fs::read_to_string(path()).unwrap();
    let mut stored = Stored {
        pulls: Vec::new(),
        peers: (Vec::new(), Vec::new()),
        digest: Vec::new(),
    };
    for line in text.lines() {
        if line.starts_with("# pull ") {
            stored.pulls.push(Vec::new());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (tag, hex) = line.split_once(' ').unwrap();
        let frame = vectors::unhex(hex);
        match (tag, stored.pulls.last_mut()) {
            (">", Some(frames)) => frames.push((true, frame)),
            ("<", Some(frames)) => frames.push((false, frame)),
            ("requester-peer", _) => stored.peers.0 = frame,
            ("responder-peer", _) => stored.peers.1 = frame,
            ("digest", _) => stored.digest = frame,
            _ => {}
        }
    }
    stored
}

#[test]
fn the_session_vector_replays_byte_for_byte() {
    let stored = load();
    let (pulls, requester_digest, responder_digest) = run();
    assert_eq!(pulls.len(), stored.pulls.len());
    for (i, (ours, theirs)) in pulls.iter().zip(&stored.pulls).enumerate() {
        assert_eq!(ours, theirs, "pull {} differs from the vector", i + 1);
    }
    assert_eq!(
        stored.peers,
        (peers().requester().to_vec(), peers().responder().to_vec())
    );
    assert_eq!(requester_digest.to_vec(), stored.digest);
    assert_eq!(requester_digest, responder_digest, "the pulls converged");
    // Every opening carries version byte 3; the other frames keep their own versions.
    let tags = |f: &Frames| f.iter().map(|(_, x)| (x[0], x[1])).collect::<Vec<_>>();
    assert_eq!(
        tags(&pulls[0]),
        [(3, 0x05), (2, 0x87), (2, 0x07), (2, 0x89)]
    );
    assert_eq!(
        tags(&pulls[1]),
        [(3, 0x05), (1, 0x81), (2, 0x06), (2, 0x89)]
    );
    assert_eq!(
        tags(&pulls[2]),
        [
            (3, 0x01),
            (1, 0x81),
            (1, 0x02),
            (1, 0x83),
            (1, 0x03),
            (1, 0x84)
        ]
    );
}

/// Replays the stored responses to a requester bound to `peers`, checking its requests
/// against the stored ones as long as they match.
fn replay(peers: Peers) -> Result<(), Error> {
    let stored = load();
    let (mut into, _) = replicas();
    for (p, frames) in pulls().into_iter().zip(&stored.pulls) {
        let mut at = 0;
        let mut answer = |request: &[u8]| {
            assert_eq!(request, &frames[at].1[..], "request {at}");
            at += 2;
            frames[at - 1].1.clone()
        };
        pull(&mut into, p, peers.clone(), &mut answer)?;
    }
    assert_eq!(into.state_digest().to_vec(), stored.digest);
    Ok(())
}

#[test]
fn the_requester_accepts_the_stored_responses_bound_to_the_stored_peers() {
    replay(peers()).unwrap();
}

/// The same frames, to a requester that thinks it talks to another peer (a relay, or roles
/// swapped): the first chunk fails to open, so nothing is merged.
#[test]
fn the_stored_session_fails_for_any_other_pair_of_peers() {
    let relay = Peers::new(peer_id(0xa1), peer_id(0xcc)).unwrap();
    let swapped = Peers::new(peer_id(0xb2), peer_id(0xa1)).unwrap();
    for other in [relay, swapped] {
        let err = replay(other).unwrap_err();
        assert!(matches!(err, Error::Tampered { index: 0 }), "{err}");
    }
}

#[test]
#[ignore = "writes the vector file; run once per new protocol version"]
fn write_vector() {
    if std::env::var_os("REDOUBT_WRITE_VECTORS").is_none() || path().exists() {
        return;
    }
    let (pulls, digest, _) = run();
    std::fs::write(path(), render(&pulls, &digest)).unwrap();
}

#[test]
#[ignore = "writes fuzz seeds from this vector; run when adding a fuzz target"]
fn write_fuzz_seeds() {
    if std::env::var_os("REDOUBT_WRITE_SEEDS").is_none() {
        return;
    }
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let stored = load();
    for (i, (out, frame)) in stored.pulls.iter().flatten().enumerate() {
        let targets: &[&str] = match (out, frame.first()) {
            (true, Some(3)) => &["sync_request", "sync_respond"],
            (true, _) => &["sync_request"],
            (false, _) => &["sync_response"],
        };
        for t in targets {
            let dir = corpus.join(t);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("v3-frame-{i}")), frame).unwrap();
        }
    }
}
