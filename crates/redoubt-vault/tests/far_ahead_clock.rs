//! Regressions of issue 11, point 2: one device whose clock runs 80 years ahead used to freeze
//! every honest clock that merged its write, so a later real edit lost to an earlier one; and an
//! exhausted clock saturated, stamping writes that did not order after the last one.
//!
//! These use only the API that existed before the fix, so they can be run against the old code
//! (where they fail).

use redoubt_vault::{
    ClientId, Clock, Instance, Location, MergePolicy, NodeId, SecretValue, SyncConfig, now_ms,
};

const EIGHTY_YEARS_MS: u64 = 80 * 365 * 24 * 60 * 60 * 1000;

fn value(v: &str) -> SecretValue {
    SecretValue::new(v.as_bytes().to_vec())
}

fn read(i: &Instance, loc: &Location) -> Vec<u8> {
    i.read(b"alice", loc)
        .map(|v| v.expose().to_vec())
        .unwrap_or_default()
}

/// The rogue device writes once, stamped 80 years ahead; the desktop merges it, then makes an
/// edit; a minute later, in real time, the phone (which has not seen the desktop's edit) makes
/// another. Once they exchange, the later edit must win on both, and the desktop's clock must
/// still follow real time.
fn the_later_real_edit_wins(merge: impl Fn(&mut Instance, &Instance)) {
    let now = now_ms();
    let (shared, other) = (
        Location::new("wallet", "seed").unwrap(),
        Location::new("mail", "pw").unwrap(),
    );
    let mut rogue = Instance::new(NodeId::from_bytes([0xee; 16]));
    let mut desktop = Instance::new(NodeId::from_bytes([2; 16]));
    let mut phone = Instance::new(NodeId::from_bytes([1; 16]));
    rogue
        .write_at(
            b"alice",
            &other,
            value("from the future"),
            now + EIGHTY_YEARS_MS,
        )
        .unwrap();
    merge(&mut desktop, &rogue);
    let early = desktop
        .write_at(b"alice", &shared, value("early"), now)
        .unwrap();
    assert!(
        early.wall_ms < now + EIGHTY_YEARS_MS / 2,
        "the desktop's clock was frozen in the future: {early:?}"
    );
    phone
        .write_at(b"alice", &shared, value("late"), now + 60_000)
        .unwrap();
    merge(&mut phone, &desktop);
    merge(&mut desktop, &phone);
    assert_eq!(read(&desktop, &shared), b"late");
    assert_eq!(read(&phone, &shared), b"late");
    assert_eq!(desktop.state_digest(), phone.state_digest());
    assert!(
        desktop.read(b"alice", &other).is_none(),
        "the rogue write is not stored"
    );
}

#[test]
fn a_clock_80_years_ahead_does_not_freeze_local_sync() {
    the_later_real_edit_wins(|into, from| {
        into.sync_from(from, &SyncConfig::full()).unwrap();
    });
}

#[test]
fn a_clock_80_years_ahead_does_not_freeze_live_sync() {
    // Live sync merges one received record at a time.
    the_later_real_edit_wins(|into, from| {
        for (id, path) in from.clients() {
            let path = path.to_vec();
            let id: ClientId = *id;
            for record in from.records(&id) {
                into.merge_record(&path, record.clone(), MergePolicy::Newest)
                    .unwrap();
            }
        }
    });
}

#[test]
fn an_exhausted_clock_never_reissues_or_goes_back() {
    let loc = Location::new("wallet", "seed").unwrap();
    let node = NodeId::from_bytes([1; 16]);
    let mut i = Instance::with_clock(node, Clock::at(u64::MAX, u32::MAX - 1));
    let last = i.write_at(b"alice", &loc, value("last"), 5).unwrap();
    assert_eq!((last.wall_ms, last.counter), (u64::MAX, u32::MAX));
    for now in [5, u64::MAX] {
        if let Ok(next) = i.write_at(b"alice", &loc, value("again"), now) {
            panic!("an exhausted clock stamped {next:?} after {last:?}");
        }
        if let Ok(next) = i.delete_at(b"alice", &loc, now) {
            panic!("an exhausted clock stamped {next:?} after {last:?}");
        }
    }
    assert_eq!(read(&i, &loc), b"last", "the failed writes changed nothing");
    assert_eq!(i.clock().last(), (u64::MAX, u32::MAX));
}
