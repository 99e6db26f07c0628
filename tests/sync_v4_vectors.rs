//! Sync protocol version 4 test vector: two bound pulls whose records carry lineage, made with
//! fixed keys and replayed byte for byte. Pull 1 is sketched (the responder's edit and
//! deletion travel with their parents and histories); pull 2 runs the shapes exchange inside
//! version 4 after a concurrent edit on both sides, and brings the winner with the loser in
//! its history.
//!
//! Released vectors are never edited. `REDOUBT_WRITE_VECTORS=1 cargo test -p redoubt-tests
//! --test sync_v4_vectors -- --ignored` writes the file only if it does not exist yet.

use std::fmt::Write as _;

use redoubt_protocol::{
    Error, Mode, Peers, Pull, PullConfig, Received, SessionId,
    crypto::EphemeralSecret,
    loopback::{self, Meter, Serving},
};
use redoubt_tests::vectors::{self, Frames};
use redoubt_vault::{ClientId, Instance, Location, MergeReport, NodeId, SecretValue};

const FILE: &str = "sync-v4-session.txt";
const REQUESTER_SECRET: [u8; 32] = [0x51; 32];
const RESPONDER_SECRET: [u8; 32] = [0x52; 32];
const SESSION: [u8; 16] = [0x7f; 16];

fn peers() -> Peers {
    let id = |fill: u8| [&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..], &[fill; 32]].concat();
    Peers::new(id(0xa1), id(0xb2)).unwrap()
}

fn write(i: &mut Instance, r: &str, value: &[u8], t: u64) {
    write_in(i, "wallet", r, value, t);
}

fn write_in(i: &mut Instance, v: &str, r: &str, value: &[u8], t: u64) {
    let loc = Location::new(v, r).unwrap();
    i.write_at(b"alice", &loc, SecretValue::new(value.to_vec()), t)
        .unwrap();
}

/// Both replicas start from the same `shared/r0` … `shared/r39` (so the sketch pays), `wallet/seed`
/// and `wallet/pin`; the responder then edits the seed twice and deletes the pin.
fn replicas() -> (Instance, Instance) {
    let mut responder = Instance::new(NodeId::from_bytes([0xbb; 16]));
    for k in 0..40u64 {
        let value = k.to_le_bytes();
        write_in(
            &mut responder,
            "shared",
            &format!("r{k}"),
            &value,
            1_600_000_000_000 + k,
        );
    }
    write(&mut responder, "seed", b"one", 1_700_000_000_000);
    write(&mut responder, "pin", b"4921", 1_700_000_000_001);
    let mut requester = Instance::new(NodeId::from_bytes([0xaa; 16]));
    for rec in responder
        .records(&ClientId::from_path(b"alice"))
        .cloned()
        .collect::<Vec<_>>()
    {
        requester.restore(b"alice", rec).unwrap();
    }
    write(&mut responder, "seed", b"two", 1_700_000_000_002);
    write(&mut responder, "seed", b"three", 1_700_000_000_003);
    responder
        .delete_at(
            b"alice",
            &Location::new("wallet", "pin").unwrap(),
            1_700_000_000_004,
        )
        .unwrap();
    (requester, responder)
}

/// Before pull 2 both sides edit the seed concurrently.
fn before_second(requester: &mut Instance, responder: &mut Instance) {
    write(requester, "seed", b"ours", 1_700_000_000_010);
    write(responder, "seed", b"theirs", 1_700_000_000_011);
}

fn config(sketch: bool) -> PullConfig {
    let mode = Mode::Full {
        client: b"alice".to_vec(),
    };
    let mut config = PullConfig::new(mode, Some(peers()));
    config.sketch = sketch;
    config.lineage = true;
    config.secret = Some(EphemeralSecret::from_bytes(REQUESTER_SECRET));
    config
}

fn session(into: &mut Instance, from: &Instance, sketch: bool) -> (Frames, MergeReport) {
    let pull = Pull::new(config(sketch), into).unwrap();
    let readable = [b"alice".to_vec()];
    let serving = Serving {
        instance: from,
        readable: &readable,
    };
    let mut meter = Meter {
        frames: Some(Vec::new()),
        ..Meter::default()
    };
    let mut report = MergeReport::default();
    let merge = |into: &mut Instance, records: Vec<Received>| -> Result<(), Error> {
        loopback::merge_newest(into, records, &mut report)
    };
    let fixed = Some((SessionId(SESSION), RESPONDER_SECRET));
    let pull = loopback::run(pull, into, &serving, fixed, &mut meter, merge).unwrap();
    assert!(pull.is_done());
    assert!(meter.fell_back.is_none(), "{:?}", meter.fell_back);
    (meter.frames.unwrap_or_default(), report)
}

/// Runs both pulls: the frames of each, the reports, and both final digests.
fn run() -> (Vec<Frames>, Vec<MergeReport>, [u8; 32], [u8; 32]) {
    let (mut into, mut from) = replicas();
    let (first, r1) = session(&mut into, &from, true);
    assert_eq!(
        into.state_digest(),
        from.state_digest(),
        "pull 1 converged, histories included"
    );
    before_second(&mut into, &mut from);
    let (second, r2) = session(&mut into, &from, false);
    (
        vec![first, second],
        vec![r1, r2],
        into.state_digest(),
        from.state_digest(),
    )
}

fn render(pulls: &[Frames], digest: &[u8; 32]) -> String {
    let hex = redoubt_vault::hex;
    let mut s = String::new();
    s.push_str(
        "# redoubt sync protocol version 4: two bound pulls of client alice whose records carry\n\
         # lineage (a sketched pull of two edits and a deletion; then, after a concurrent edit\n\
         # on both sides, the shapes exchange); '>' requester to responder, '<' back\n",
    );
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

#[test]
fn the_session_vector_replays_byte_for_byte() {
    let path = vectors::path(FILE);
    let (pulls, reports, requester, responder) = run();
    if !path.exists() && std::env::var_os("REDOUBT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, render(&pulls, &requester)).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/sync-v4-session.txt");
    assert_eq!(text, render(&pulls, &requester), "version 4 changed");
    assert_ne!(
        requester, responder,
        "pull 2 went one way: the responder lacks our edit"
    );
    // Openings carry version byte 4; the other frames keep their own versions.
    assert_eq!(pulls[0][0].1[..2], [4, 0x05]);
    assert_eq!(pulls[1][0].1[..2], [4, 0x01]);
    assert!(
        pulls
            .iter()
            .flatten()
            .skip(1)
            .all(|(_, f)| f[0] != 4 || f[1] == 0x01)
    );
    // Pull 1 is a fast-forward (no conflict); pull 2 a concurrent edit (one, named).
    assert_eq!((reports[0].updated, reports[0].deleted), (1, 1));
    assert_eq!(reports[0].conflicts_resolved, 0);
    assert_eq!(reports[1].conflicts_resolved, 1);
    assert_eq!(reports[1].conflicts[0].location.record_path(), b"seed");
    // The responder's edit is the later: it won, ours is in its history as the loser.
    let (mut into, mut from) = replicas();
    session(&mut into, &from, true);
    before_second(&mut into, &mut from);
    session(&mut into, &from, false);
    let alice = ClientId::from_path(b"alice");
    let seed = Location::new("wallet", "seed").unwrap();
    let rec = into.record(&alice, seed.ids()).unwrap();
    assert_eq!(rec.value().unwrap().expose(), b"theirs");
    assert_eq!(rec.history()[0].value().unwrap().expose(), b"ours");
    assert_eq!(
        redoubt_vault::history::why_replaced(rec, &rec.history()[0]),
        redoubt_vault::Replaced::LostConflict
    );
}
