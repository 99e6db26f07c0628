use redoubt_vault::{AccessTable, Instance, NodeId, Rights};

use super::*;
use crate::{Vault, book::with_peer};

const RW: Rights = Rights {
    read: true,
    write: true,
};

fn a(text: &str) -> Multiaddr {
    text.parse().unwrap()
}

fn lan(n: u16) -> Multiaddr {
    a(&format!("/ip4/192.168.1.5/tcp/{n}"))
}

/// A learner over an in-memory vault where `paired` holds a grant, and the app's events.
fn learner(paired: &[PeerId]) -> (Learner, Owner, mpsc::Receiver<NodeEvent>) {
    let mut vault = Vault::in_memory(
        Instance::new(NodeId::from_bytes([1; 16])),
        AccessTable::default(),
    )
    .unwrap();
    for peer in paired {
        vault.set_rights(peer, b"alice", RW).unwrap();
    }
    let owner = Owner::new(vault);
    let (tx, rx) = mpsc::channel(64);
    (Learner::new(owner.clone(), Some(tx)), owner, rx)
}

/// What the vault's book holds for `peer`, most recent first.
fn stored(owner: &Owner, peer: PeerId) -> Vec<Multiaddr> {
    owner
        .read(|v| v.address_book())
        .unwrap()
        .into_iter()
        .filter(|(p, _)| *p == peer)
        .flat_map(|(_, addrs)| addrs.into_iter().map(|(a, _)| a))
        .collect()
}

/// The probes `l` starts now, each given connection id `next..`.
fn probes(
    l: &mut Learner,
    now: Instant,
    next: &mut usize,
) -> Vec<(ConnectionId, PeerId, Multiaddr)> {
    let mut started = Vec::new();
    l.probe(now, |peer, addr| {
        let id = ConnectionId::new_unchecked(*next);
        *next += 1;
        started.push((id, peer, addr));
        Some(id)
    });
    started
}

#[test]
fn an_mdns_answer_is_kept_only_once_a_dial_reached_the_peer_there() {
    let peer = PeerId::random();
    let (mut l, owner, mut events) = learner(&[peer]);
    let now = Instant::now();
    l.discovered(peer, &lan(4001));
    l.tick(now);
    assert!(
        stored(&owner, peer).is_empty(),
        "an unsigned answer is not kept"
    );
    assert!(events.try_recv().is_err(), "nor told to the app");
    let mut next = 1;
    let started = probes(&mut l, now, &mut next);
    let full = with_peer(lan(4001), peer);
    assert_eq!(started.len(), 1);
    assert_eq!((started[0].1, &started[0].2), (peer, &full));
    // The probe reached the peer (the handshake proved its id): kept.
    l.opened(started[0].0, peer, &full, true, now);
    assert_eq!(stored(&owner, peer), std::slice::from_ref(&full));
    assert!(
        matches!(events.try_recv(), Ok(NodeEvent::Addresses { peer: p, addrs }) if p == peer && addrs == [full])
    );
}

#[test]
fn a_probe_that_failed_keeps_nothing_and_is_not_tried_again_soon() {
    let peer = PeerId::random();
    let (mut l, owner, _events) = learner(&[peer]);
    let now = Instant::now();
    let mut next = 1;
    l.discovered(peer, &lan(1));
    let started = probes(&mut l, now, &mut next);
    assert_eq!(started.len(), 1);
    assert!(probes(&mut l, now, &mut next).is_empty(), "one at a time");
    l.dial_failed(started[0].0);
    l.discovered(peer, &lan(1));
    assert!(probes(&mut l, now, &mut next).is_empty(), "tried lately");
    l.discovered(peer, &lan(1));
    assert_eq!(probes(&mut l, now + PROBE_AGAIN_AFTER, &mut next).len(), 1);
    assert!(stored(&owner, peer).is_empty());
}

#[test]
fn claims_never_push_out_verified_addresses_and_probes_are_budgeted() {
    let peer = PeerId::random();
    let stranger = PeerId::random();
    let (mut l, owner, _events) = learner(&[peer]);
    let mut now = Instant::now();
    // Eight addresses our dials reached it at, over a few minutes (within the write budget).
    for n in 0..8u16 {
        let id = ConnectionId::new_unchecked(1000 + usize::from(n));
        l.opened(id, peer, &with_peer(lan(100 + n), peer), true, now);
        now += WRITE_EVERY;
    }
    let verified = stored(&owner, peer);
    assert_eq!(verified.len(), 8);
    // Over an authenticated connection and by mDNS, it (or anyone) claims many more.
    let inbound = ConnectionId::new_unchecked(1);
    l.opened(inbound, peer, &a("/ip4/192.168.1.9/tcp/5"), false, now);
    let claims: Vec<Multiaddr> = (0..40).map(|n| lan(2000 + n)).collect();
    l.claimed(inbound, peer, &claims);
    for n in 0..40 {
        l.discovered(peer, &lan(3000 + n));
        l.discovered(stranger, &lan(3000 + n));
    }
    let mut next = 1;
    let mut started = 0;
    for i in 0..40 {
        l.discovered(peer, &lan(4000 + i));
        for (id, _, _) in probes(&mut l, now, &mut next) {
            started += 1;
            l.dial_failed(id);
        }
        l.tick(now);
    }
    assert_eq!(
        started, PROBE_BURST as usize,
        "a burst, then one per {PROBE_EVERY:?}"
    );
    assert_eq!(
        stored(&owner, peer),
        verified,
        "no claim replaced a verified address"
    );
    assert!(stored(&owner, stranger).is_empty());
}

#[test]
fn a_peers_row_is_written_within_its_budget_and_what_waits_is_written_later() {
    let peer = PeerId::random();
    let (mut l, owner, _events) = learner(&[peer]);
    let now = Instant::now();
    for n in 0..WRITE_BURST as u16 + 2 {
        let id = ConnectionId::new_unchecked(usize::from(n) + 1);
        l.opened(id, peer, &with_peer(lan(n + 1), peer), true, now);
    }
    let written = stored(&owner, peer);
    assert_eq!(
        written.len(),
        WRITE_BURST as usize,
        "new addresses, still bounded"
    );
    l.tick(now + WRITE_EVERY / 2);
    assert_eq!(stored(&owner, peer).len(), WRITE_BURST as usize);
    l.tick(now + WRITE_EVERY);
    let later = stored(&owner, peer);
    assert_eq!(later.len(), WRITE_BURST as usize + 2, "{later:?}");
    assert_eq!(later[0], with_peer(lan(WRITE_BURST as u16 + 2), peer));
}

#[test]
fn a_peer_that_dialed_us_is_checked_where_it_says_it_listens_then_kept() {
    let peer = PeerId::random();
    let (mut l, owner, _events) = learner(&[]);
    let now = Instant::now();
    // It dialed us from loopback before it was paired, and said where it listens.
    let inbound = ConnectionId::new_unchecked(1);
    l.opened(inbound, peer, &a("/ip4/127.0.0.1/tcp/50000"), false, now);
    l.claimed(
        inbound,
        peer,
        &[a("/ip4/127.0.0.1/tcp/4001"), a("/ip4/0.0.0.0/tcp/1")],
    );
    let mut next = 10;
    assert!(probes(&mut l, now, &mut next).is_empty(), "not paired yet");
    owner.write(|v| v.set_rights(&peer, b"alice", RW)).unwrap();
    let started = probes(&mut l, now, &mut next);
    let full = with_peer(a("/ip4/127.0.0.1/tcp/4001"), peer);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].2, full);
    assert!(stored(&owner, peer).is_empty(), "claimed, not kept yet");
    l.opened(started[0].0, peer, &full, true, now);
    assert_eq!(stored(&owner, peer), [full]);
}

#[test]
fn an_address_reached_before_pairing_is_kept_once_paired() {
    let peer = PeerId::random();
    let (mut l, owner, mut events) = learner(&[]);
    let now = Instant::now();
    let addr = with_peer(lan(7), peer);
    l.opened(ConnectionId::new_unchecked(1), peer, &addr, true, now);
    l.tick(now);
    assert!(events.try_recv().is_err());
    owner.write(|v| v.set_rights(&peer, b"alice", RW)).unwrap();
    l.tick(now);
    assert_eq!(stored(&owner, peer), std::slice::from_ref(&addr));
    assert!(matches!(events.try_recv(), Ok(NodeEvent::Addresses { addrs, .. }) if addrs == [addr]));
}

#[test]
fn an_address_our_dial_reached_is_not_checked_again_when_claimed() {
    let peer = PeerId::random();
    let (mut l, _owner, _events) = learner(&[peer]);
    let now = Instant::now();
    let dialed = ConnectionId::new_unchecked(1);
    l.opened(dialed, peer, &with_peer(lan(9), peer), true, now);
    l.claimed(dialed, peer, &[lan(9), lan(10)]);
    let mut next = 10;
    let started = probes(&mut l, now, &mut next);
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0].2,
        with_peer(lan(10), peer),
        "only the one not reached"
    );
}
