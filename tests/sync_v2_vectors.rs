//! Sync protocol version 2 test vectors: a pull whose sketch must grow (summary, More with
//! fine probes, Symbols, Decoded carrying the only chunk), then a second pull of the same
//! replicas that settles at once, both made with fixed keys and replayed byte for byte.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-tests
//! --test sync_v2_vectors -- --ignored` writes the file only if it does not exist yet.

use std::{fmt::Write as _, path::PathBuf};

use redoubt_tests::vectors::{self, Frames};

use redoubt_protocol::{
    Mode, Pull, PullConfig, SessionId,
    crypto::EphemeralSecret,
    loopback::{self, Meter, Serving},
};
use redoubt_vault::{ClientId, Instance, Location, NodeId, SecretValue};

const FILE: &str = "sync-v2-session.txt";
const REQUESTER_SECRET: [u8; 32] = [0x31; 32];
const RESPONDER_SECRET: [u8; 32] = [0x32; 32];
const SESSION: [u8; 16] = [0x6e; 16];

fn path() -> PathBuf {
    vectors::path(FILE)
}

fn write(i: &mut Instance, v: &str, r: &str, value: &[u8], t: u64) {
    let loc = Location::new(v, r).unwrap();
    i.write_at(b"alice", &loc, SecretValue::new(value.to_vec()), t)
        .unwrap();
}

/// The replicas of `tests/vectors/README.md`: the version 1 vector's two, plus 40 records both
/// hold, so that the difference (3 versions) needs more than the first symbol.
fn replicas() -> (Instance, Instance) {
    let mut requester = Instance::new(NodeId::from_bytes([0xaa; 16]));
    let mut responder = Instance::new(NodeId::from_bytes([0xbb; 16]));
    for k in 0..40u64 {
        write(
            &mut responder,
            "shared",
            &format!("r{k}"),
            &k.to_le_bytes(),
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
    write(&mut requester, "wallet", "pin", b"0000", 1_699_999_999_000);
    // Made as a build before record lineage made them: current versions only.
    (requester.without_lineage(), responder.without_lineage())
}

fn mode() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

/// One session from `from` into `into` with the fixed keys, through the loopback driver:
/// appends its frames.
fn session(into: &mut Instance, from: &Instance, frames: &mut Frames) {
    let config = PullConfig {
        secret: Some(EphemeralSecret::from_bytes(REQUESTER_SECRET)),
        ..PullConfig::new(mode(), None)
    };
    let pull = Pull::new(config, into).unwrap();
    let readable = [b"alice".to_vec()];
    let serving = Serving {
        instance: from,
        readable: &readable,
    };
    let mut meter = Meter {
        frames: Some(Vec::new()),
        ..Meter::default()
    };
    let fixed = Some((SessionId(SESSION), RESPONDER_SECRET));
    let merge = vectors::merge_without_lineage;
    let pull = loopback::run(pull, into, &serving, fixed, &mut meter, merge).unwrap();
    assert!(pull.is_done());
    assert!(meter.fell_back.is_none());
    assert!(
        pull.chunks_received() <= 1,
        "the vector's complement fits in one chunk"
    );
    frames.extend(meter.frames.unwrap_or_default());
}

/// Runs both sessions; returns the frames of each and both final digests.
fn run() -> (Frames, Frames, [u8; 32], [u8; 32]) {
    let (mut into, from) = replicas();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    session(&mut into, &from, &mut first);
    session(&mut into, &from, &mut second);
    (first, second, into.state_digest(), from.state_digest())
}

fn render(first: &Frames, second: &Frames, digest: &[u8; 32]) -> String {
    let mut s = String::new();
    let hex = redoubt_vault::hex;
    writeln!(
        s,
        "# redoubt sync protocol version 2: two full pulls of client \"alice\""
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
    for (name, frames) in [("pull 1", first), ("pull 2", second)] {
        writeln!(s, "# {name}").unwrap();
        s.push_str(&vectors::frame_lines(frames));
    }
    writeln!(s, "digest {}", hex(digest)).unwrap();
    s
}

/// The stored frames of each pull, and the digest.
fn load() -> (Frames, Frames, Vec<u8>) {
    let text = std::fs::read_to_string(path()).unwrap();
    let (mut first, mut second, mut digest) = (Vec::new(), Vec::new(), Vec::new());
    let mut current = 0;
    for line in text.lines() {
        if line == "# pull 1" || line == "# pull 2" {
            current = if line.ends_with('1') { 1 } else { 2 };
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (tag, hex) = line.split_once(' ').unwrap();
        let frames = if current == 1 {
            &mut first
        } else {
            &mut second
        };
        match tag {
            ">" => frames.push((true, vectors::unhex(hex))),
            "<" => frames.push((false, vectors::unhex(hex))),
            "digest" => digest = vectors::unhex(hex),
            _ => {}
        }
    }
    (first, second, digest)
}

#[test]
fn the_session_vector_replays_byte_for_byte() {
    let (stored_first, stored_second, digest) = load();
    let (first, second, requester_digest, responder_digest) = run();
    assert_eq!(first, stored_first, "pull 1 differs from the vector");
    assert_eq!(second, stored_second, "pull 2 differs from the vector");
    assert_eq!(requester_digest.to_vec(), digest);
    assert_eq!(requester_digest, responder_digest, "the pull converged");
    // Pull 1 grew its sketch: Open, More, Symbols, Decoded. Pull 2 settled: Open, Settled.
    let tags = |f: &Frames| f.iter().map(|(_, x)| (x[0], x[1])).collect::<Vec<_>>();
    assert_eq!(tags(&first), [(2, 0x05), (2, 0x87), (2, 0x07), (2, 0x89)]);
    assert_eq!(tags(&second), [(2, 0x05), (2, 0x88)]);
}

#[test]
#[ignore = "writes the vector file; run once per new protocol version"]
fn write_vector() {
    if std::env::var_os("REDOUBT_WRITE_VECTORS").is_none() || path().exists() {
        return;
    }
    let (first, second, digest, _) = run();
    std::fs::write(path(), render(&first, &second, &digest)).unwrap();
}

#[test]
#[ignore = "writes fuzz seeds from this vector; run when adding a fuzz target"]
fn write_fuzz_seeds() {
    if std::env::var_os("REDOUBT_WRITE_SEEDS").is_none() {
        return;
    }
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let (first, second, _) = load();
    for (i, (out, frame)) in first.iter().chain(&second).enumerate() {
        let targets: &[&str] = if *out {
            &["sync_request", "sync_respond", "sketch_decode"]
        } else {
            &["sync_response"]
        };
        for t in targets {
            let dir = corpus.join(t);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("v2-frame-{i}")), frame).unwrap();
        }
    }
}
