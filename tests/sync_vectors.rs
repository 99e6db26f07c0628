//! Sync protocol test vectors: a complete `/redoubt/sync/1` session made with fixed keys,
//! replayed byte for byte from both sides.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-tests
//! --test sync_vectors -- --ignored` writes a vector only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_tests::vectors::{self, Frames};

use redoubt_protocol::{
    Mode, Pull, PullConfig, PullEvent, Received, Request, SessionId,
    crypto::EphemeralSecret,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, NodeId, SecretValue};

const FILE: &str = "sync-v1-session.txt";
const REQUESTER_SECRET: [u8; 32] = [0x21; 32];
const RESPONDER_SECRET: [u8; 32] = [0x22; 32];
const SESSION: [u8; 16] = [0x5e; 16];

fn path() -> PathBuf {
    vectors::path(FILE)
}

fn write(i: &mut Instance, v: &str, r: &str, value: &[u8], t: u64) {
    let loc = Location::new(v, r).unwrap();
    i.write_at(b"alice", &loc, SecretValue::new(value.to_vec()), t)
        .unwrap();
}

/// The two replicas described in `tests/vectors/README.md`.
fn replicas() -> (Instance, Instance) {
    let mut requester = Instance::new(NodeId::from_bytes([0xaa; 16]));
    let mut responder = Instance::new(NodeId::from_bytes([0xbb; 16]));
    write(
        &mut responder,
        "wallet",
        "seed",
        b"correct horse battery staple",
        1_700_000_000_000,
    );
    write(&mut responder, "wallet", "pin", b"4921", 1_700_000_000_001);
    write(
        &mut responder,
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
    // The requester already holds the seed (same version) and an older pin.
    let seed = responder
        .record(
            &ClientId::from_path(b"alice"),
            Location::new("wallet", "seed").unwrap().ids(),
        )
        .unwrap()
        .clone();
    requester.restore(b"alice", seed).unwrap();
    write(&mut requester, "wallet", "pin", b"0000", 1_699_999_999_000);
    // Made as a build before record lineage made them: current versions only.
    (requester.without_lineage(), responder.without_lineage())
}

fn mode() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

/// The requester's pull: by shapes, unbound, with the fixed key.
fn config() -> PullConfig {
    let mut config = PullConfig::new(mode(), None);
    config.sketch = false;
    config.secret = Some(EphemeralSecret::from_bytes(REQUESTER_SECRET));
    config
}

fn merge(into: &mut Instance, records: Vec<Received>) -> Result<(), redoubt_protocol::Error> {
    vectors::merge_without_lineage(into, records)
}

/// Runs the session; returns the frames and both final digests.
fn run() -> (Frames, [u8; 32], [u8; 32]) {
    let (mut into, from) = replicas();
    let pull = Pull::new(config(), &into).unwrap();
    let serving = Serving {
        instance: &from,
        readable: &[b"alice".to_vec()],
    };
    let mut meter = Meter {
        frames: Some(Vec::new()),
        ..Meter::default()
    };
    let fixed = Some((SessionId(SESSION), RESPONDER_SECRET));
    loopback::run(pull, &mut into, &serving, fixed, &mut meter, merge).unwrap();
    let frames = meter.frames.unwrap_or_default();
    (frames, into.state_digest(), from.state_digest())
}

fn render(frames: &[(bool, Vec<u8>)], digest: &[u8; 32]) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "# redoubt sync protocol version 1: one full pull of client \"alice\""
    )
    .unwrap();
    writeln!(
        s,
        "# see tests/vectors/README.md; '>' requester to responder, '<' back"
    )
    .unwrap();
    writeln!(
        s,
        "requester-secret {}",
        redoubt_vault::hex(&REQUESTER_SECRET)
    )
    .unwrap();
    writeln!(
        s,
        "responder-secret {}",
        redoubt_vault::hex(&RESPONDER_SECRET)
    )
    .unwrap();
    writeln!(s, "session {}", redoubt_vault::hex(&SESSION)).unwrap();
    s.push_str(&vectors::frame_lines(frames));
    writeln!(s, "digest {}", redoubt_vault::hex(digest)).unwrap();
    s
}

fn load() -> (Frames, Vec<u8>) {
    let text = std::fs::read_to_string(path()).unwrap();
    let mut frames = Vec::new();
    let mut digest = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (tag, hex) = line.split_once(' ').unwrap();
        match tag {
            ">" => frames.push((true, vectors::unhex(hex))),
            "<" => frames.push((false, vectors::unhex(hex))),
            "digest" => digest = vectors::unhex(hex),
            _ => {}
        }
    }
    (frames, digest)
}

#[test]
fn the_session_vector_replays_byte_for_byte() {
    let (stored, digest) = load();
    let (frames, requester_digest, responder_digest) = run();
    assert_eq!(frames.len(), stored.len());
    for (i, (ours, theirs)) in frames.iter().zip(&stored).enumerate() {
        assert_eq!(ours, theirs, "frame {i} differs from the vector");
    }
    assert_eq!(requester_digest.to_vec(), digest);
    assert_eq!(requester_digest, responder_digest, "the pull converged");
}

#[test]
fn the_requester_accepts_the_stored_responses() {
    let (stored, digest) = load();
    let (mut into, _) = replicas();
    let mut pull = Pull::new(config(), &into).unwrap();
    let mut done = false;
    for (out, frame) in &stored {
        if *out {
            assert_eq!(pull.poll_transmit().as_ref(), Some(frame));
            continue;
        }
        pull.handle(frame, &into).unwrap();
        while let Some(event) = pull.poll_event() {
            match event {
                PullEvent::Records { records } => merge(&mut into, records).unwrap(),
                PullEvent::Done => done = true,
                _ => {}
            }
        }
    }
    assert!(done && pull.is_done());
    assert_eq!(into.state_digest().to_vec(), digest);
}

#[test]
#[ignore = "writes the vector file; run once per new protocol version"]
fn write_vector() {
    if std::env::var_os("REDOUBT_WRITE_VECTORS").is_none() || path().exists() {
        return;
    }
    let (frames, digest, _) = run();
    std::fs::write(path(), render(&frames, &digest)).unwrap();
}

#[test]
#[ignore = "writes fuzz seeds from this vector; run when adding a fuzz target"]
fn write_fuzz_seeds() {
    if std::env::var_os("REDOUBT_WRITE_SEEDS").is_none() {
        return;
    }
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let (frames, _) = load();
    for (i, (out, frame)) in frames.iter().enumerate() {
        let targets: &[&str] = if *out {
            &["sync_request", "sync_respond"]
        } else {
            &["sync_response"]
        };
        for t in targets {
            let dir = corpus.join(t);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("vector-frame-{i}")), frame).unwrap();
        }
    }
    let dir = corpus.join("sync_chunk");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("two-entries"),
        redoubt_protocol::fuzzing::sample_chunk(),
    )
    .unwrap();
    // A partial Open and an import, for the responder's other paths.
    let partial = Request::Open(redoubt_protocol::Open {
        mode: Mode::Partial {
            client: b"alice".to_vec(),
            vaults: vec![b"v".to_vec()],
            records: vec![Location::new("w", "r0").unwrap()],
        },
        invite: Some([1; 16]),
        key: [9; 32],
        groups: vec![],
        last: true,
        bound: false,
        lineage: false,
    });
    let import = Request::Open(redoubt_protocol::Open {
        mode: Mode::Import { clients: vec![] },
        invite: None,
        key: [9; 32],
        groups: vec![],
        last: false,
        bound: false,
        lineage: false,
    });
    for (name, req) in [("partial-open", partial), ("import-open", import)] {
        for t in ["sync_request", "sync_respond"] {
            std::fs::write(corpus.join(t).join(name), req.encode().unwrap()).unwrap();
        }
    }
}
