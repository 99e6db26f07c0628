//! The event loop's [`Learner`]: what it learns of peers' addresses, and what of it reaches the
//! vault's book.
//!
//! Only an address one of our own dials reached the peer at is kept (the connection's Noise
//! handshake proved the peer's id there). What others claim, a peer through identify or anyone
//! on the local network through mDNS (whose answers nobody signs), is a candidate: kept here
//! (bounded), dialed once to check it (a probe, budgeted per peer, a few at once), and kept in
//! the book only if that dial reached the peer. So no claim can push a verified address out,
//! and a claim costs no write to the vault.
//!
//! Only paired peers are kept. A peer met before it was paired (the connection that pairs it
//! comes first) is remembered here for a while, and noted once its grants are recorded. Each
//! peer's row is written at most [`WRITE_BURST`] times in a row, then once per
//! [`WRITE_EVERY`], even when its addresses are new; what waits is written later.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use libp2p::{Multiaddr, PeerId, swarm::ConnectionId};
use redoubt_store::addresses::MAX_ADDRESSES;
use tokio::sync::mpsc;
use tracing::debug;

use super::{Source, dialable, is_loopback};
use crate::{NodeEvent, vault::Owner};

/// How long a peer met before it was paired is remembered, waiting for its grants; and how
/// long a candidate waits for its probe.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Peers remembered at most (with verified addresses not kept yet; with candidates), and
/// connections.
const MAX_PENDING: usize = 256;
const MAX_CONNECTIONS: usize = 1024;
/// Probes running at once, over all peers (one per peer).
const MAX_PROBES: usize = 8;
/// A candidate probed is not probed again for this long.
const PROBE_AGAIN_AFTER: Duration = Duration::from_secs(600);
/// Candidates probed remembered at most.
const MAX_TRIED: usize = 4096;
/// Probes per peer in a row, then one per [`PROBE_EVERY`].
const PROBE_BURST: u32 = 8;
const PROBE_EVERY: Duration = Duration::from_secs(15);
/// Writes of one peer's row in a row, then one per [`WRITE_EVERY`].
pub(crate) const WRITE_BURST: u32 = 3;
pub(crate) const WRITE_EVERY: Duration = Duration::from_secs(20);
/// Peers whose budgets are remembered at most (as many as the book holds).
const MAX_BUDGETS: usize = redoubt_store::addresses::MAX_PEERS;

/// A token bucket: `burst` at first, one more each `every`.
#[derive(Clone, Copy, Debug)]
struct Budget {
    tokens: u32,
    since: Instant,
}

impl Budget {
    fn refill(&mut self, burst: u32, every: Duration, now: Instant) {
        let gained = now.saturating_duration_since(self.since).as_millis() / every.as_millis();
        let gained = u32::try_from(gained).unwrap_or(u32::MAX);
        if self.tokens.saturating_add(gained) >= burst {
            self.tokens = burst;
            self.since = now;
        } else {
            self.tokens += gained;
            self.since += every * gained;
        }
    }
}

/// Per-peer budgets, bounded.
struct Budgets {
    burst: u32,
    every: Duration,
    peers: HashMap<PeerId, Budget>,
}

impl Budgets {
    fn new(burst: u32, every: Duration) -> Self {
        Self {
            burst,
            every,
            peers: HashMap::new(),
        }
    }

    /// Takes one of `peer`'s tokens, if it has one.
    fn take(&mut self, peer: PeerId, now: Instant) -> bool {
        let (burst, every) = (self.burst, self.every);
        if self.peers.len() >= MAX_BUDGETS && !self.peers.contains_key(&peer) {
            // Those with every token back are the same as forgotten.
            self.peers.retain(|_, b| {
                b.refill(burst, every, now);
                b.tokens < burst
            });
            if self.peers.len() >= MAX_BUDGETS {
                return false;
            }
        }
        let b = self.peers.entry(peer).or_insert(Budget {
            tokens: burst,
            since: now,
        });
        b.refill(burst, every, now);
        let took = b.tokens > 0;
        b.tokens = b.tokens.saturating_sub(1);
        took
    }

    /// Gives back the token just taken (it was not used).
    fn give_back(&mut self, peer: PeerId) {
        if let Some(b) = self.peers.get_mut(&peer) {
            b.tokens = (b.tokens + 1).min(self.burst);
        }
    }
}

/// Addresses of one peer, most recent first, and since when they wait.
type Waiting = (Vec<Multiaddr>, Instant);

/// Puts `addrs` in front of what `peer` has in `map` (at most [`MAX_ADDRESSES`]; a new peer
/// only while the map holds fewer than `cap`).
fn push_front(
    map: &mut HashMap<PeerId, Waiting>,
    cap: usize,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    now: Instant,
) {
    if map.len() >= cap && !map.contains_key(&peer) {
        return;
    }
    let entry = map.entry(peer).or_insert_with(|| (Vec::new(), now));
    entry.0.retain(|a| !addrs.contains(a));
    let old = std::mem::replace(&mut entry.0, addrs);
    entry.0.extend(old);
    entry.0.truncate(MAX_ADDRESSES);
}

/// An open connection.
struct Connection {
    peer: PeerId,
    /// It came from (or went to) a loopback address.
    loopback: bool,
}

/// What the event loop learns of peers' addresses, and where it goes.
pub(crate) struct Learner {
    vault: Owner,
    events: Option<mpsc::Sender<NodeEvent>>,
    connections: HashMap<ConnectionId, Connection>,
    /// Addresses our dials reached peers at that are not in the book yet: the peer is not
    /// paired yet, or its writes wait for their budget.
    unsaved: HashMap<PeerId, Waiting>,
    /// Peers whose `unsaved` addresses were told to the app already.
    told: HashSet<PeerId>,
    /// Addresses claimed and not checked yet.
    candidates: HashMap<PeerId, Waiting>,
    /// Probes running: the connection each dials, and the peer it expects.
    probes: HashMap<ConnectionId, PeerId>,
    /// Candidates probed, and when.
    tried: HashMap<(PeerId, Multiaddr), Instant>,
    probe_budget: Budgets,
    write_budget: Budgets,
}

impl Learner {
    pub(crate) fn new(vault: Owner, events: Option<mpsc::Sender<NodeEvent>>) -> Self {
        Self {
            vault,
            events,
            connections: HashMap::new(),
            unsaved: HashMap::new(),
            told: HashSet::new(),
            candidates: HashMap::new(),
            probes: HashMap::new(),
            tried: HashMap::new(),
            probe_budget: Budgets::new(PROBE_BURST, PROBE_EVERY),
            write_budget: Budgets::new(WRITE_BURST, WRITE_EVERY),
        }
    }

    /// A connection with `peer` opened, from (or, `dialed`, to) `remote`: an address we dialed
    /// reached it, and is kept. (A probe's connection is a connection like any other: sessions
    /// may use it at once, so it is left to close when idle.)
    pub(crate) fn opened(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        dialed: bool,
        now: Instant,
    ) {
        if self.connections.len() < MAX_CONNECTIONS {
            let loopback = is_loopback(remote);
            self.connections.insert(id, Connection { peer, loopback });
        }
        self.probes.remove(&id);
        if dialed {
            self.reached(peer, remote, now);
        }
    }

    /// A connection closed.
    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// A dial of ours failed (a probe, maybe: its candidate was wrong).
    pub(crate) fn dial_failed(&mut self, id: ConnectionId) {
        self.probes.remove(&id);
    }

    /// What `peer` claimed over connection `id` (identify's listen addresses): candidates.
    pub(crate) fn claimed(&mut self, id: ConnectionId, peer: PeerId, addrs: &[Multiaddr]) {
        // A claim over a connection not known here (one past the bound) is taken as from
        // elsewhere than loopback: its loopback addresses are refused.
        let from_loopback = self
            .connections
            .get(&id)
            .is_some_and(|c| c.peer == peer && c.loopback);
        self.candidate(peer, addrs, Source::Claimed { from_loopback });
    }

    /// What an mDNS answer says of `peer` (anyone on the local network may answer):
    /// candidates.
    pub(crate) fn discovered(&mut self, peer: PeerId, addr: &Multiaddr) {
        let claim = Source::Claimed {
            from_loopback: false,
        };
        self.candidate(peer, std::slice::from_ref(addr), claim);
    }

    fn candidate(&mut self, peer: PeerId, addrs: &[Multiaddr], source: Source) {
        let keep = filtered(peer, addrs, source);
        if !keep.is_empty() {
            push_front(
                &mut self.candidates,
                MAX_PENDING,
                peer,
                keep,
                Instant::now(),
            );
        }
    }

    /// Our dial reached `peer` at `addr` (the Noise handshake proved its id): kept.
    fn reached(&mut self, peer: PeerId, addr: &Multiaddr, now: Instant) {
        let keep = filtered(peer, std::slice::from_ref(addr), Source::Dialed);
        if keep.is_empty() {
            return;
        }
        if let Some((waiting, _)) = self.candidates.get_mut(&peer) {
            waiting.retain(|a| !keep.contains(a));
        }
        // Reached: no need to check it when it is claimed next (not for a while).
        if self.tried.len() < MAX_TRIED {
            self.tried.insert((peer, keep[0].clone()), now);
        }
        push_front(&mut self.unsaved, 4 * MAX_PENDING, peer, keep, now);
        self.told.remove(&peer);
        if self.vault.read(|v| v.is_paired(&peer)) {
            self.save(peer, now);
        }
    }

    /// Writes `peer`'s unsaved addresses to the vault, if its budget allows (else they wait for
    /// [`Learner::tick`]); tells the app once.
    fn save(&mut self, peer: PeerId, now: Instant) {
        let Some((addrs, _)) = self.unsaved.get(&peer) else {
            return;
        };
        let addrs = addrs.clone();
        if self.told.insert(peer)
            && let Some(events) = &self.events
        {
            let addrs = addrs.clone();
            let _ = events.try_send(NodeEvent::Addresses { peer, addrs });
        }
        if !self.write_budget.take(peer, now) {
            return;
        }
        match self.vault.write(|v| v.note_peer_addresses(peer, &addrs)) {
            // Nothing to write (known addresses, written less than a minute ago): the token
            // was not spent.
            Ok(false) => self.write_budget.give_back(peer),
            Ok(true) => {}
            Err(e) => debug!(%peer, "keeping its addresses failed: {e}"),
        }
        self.unsaved.remove(&peer);
        self.told.remove(&peer);
    }

    /// Probes to start now, within the bounds: for each paired peer with candidates and no
    /// probe running, its most recent candidate not tried lately. `dial` dials one (expecting
    /// the peer) and says with which connection, or `None` if it could not.
    pub(crate) fn probe(
        &mut self,
        now: Instant,
        mut dial: impl FnMut(PeerId, Multiaddr) -> Option<ConnectionId>,
    ) {
        if self.candidates.is_empty() || self.probes.len() >= MAX_PROBES {
            return;
        }
        let peers: Vec<PeerId> = self.vault.read(|v| {
            self.candidates
                .keys()
                .filter(|p| v.is_paired(p))
                .copied()
                .collect()
        });
        for peer in peers {
            if self.probes.len() >= MAX_PROBES {
                break;
            }
            if self.probes.values().any(|p| *p == peer) {
                continue;
            }
            let Some((waiting, _)) = self.candidates.get_mut(&peer) else {
                continue;
            };
            let tried = &self.tried;
            waiting.retain(|a| {
                tried
                    .get(&(peer, a.clone()))
                    .is_none_or(|t| now.saturating_duration_since(*t) >= PROBE_AGAIN_AFTER)
            });
            let Some(addr) = waiting.first().cloned() else {
                self.candidates.remove(&peer);
                continue;
            };
            if self.tried.len() >= MAX_TRIED {
                self.tried
                    .retain(|_, t| now.saturating_duration_since(*t) < PROBE_AGAIN_AFTER);
                if self.tried.len() >= MAX_TRIED {
                    return;
                }
            }
            if !self.probe_budget.take(peer, now) {
                continue;
            }
            waiting.remove(0);
            self.tried.insert((peer, addr.clone()), now);
            debug!(%peer, %addr, "checking an address it was said to be at");
            if let Some(id) = dial(peer, addr) {
                self.probes.insert(id, peer);
            }
        }
    }

    /// Peers met before they were paired and paired since are noted now, and writes that
    /// waited for their budget are made; what waited too long is forgotten.
    pub(crate) fn tick(&mut self, now: Instant) {
        let fresh = |since: &Instant| now.saturating_duration_since(*since) < PENDING_FOR;
        self.candidates.retain(|_, (_, since)| fresh(since));
        if self.unsaved.is_empty() {
            return;
        }
        let (paired, stale): (Vec<PeerId>, Vec<PeerId>) = self.vault.read(|v| {
            self.unsaved
                .iter()
                .filter(|(p, (_, since))| v.is_paired(p) || !fresh(since))
                .map(|(p, _)| *p)
                .partition(|p| v.is_paired(p))
        });
        for peer in stale {
            self.unsaved.remove(&peer);
            self.told.remove(&peer);
        }
        for peer in paired {
            self.save(peer, now);
        }
    }
}

/// The addresses of `addrs` worth keeping (at most [`MAX_ADDRESSES`], each once), as
/// [`dialable`] keeps them.
fn filtered(peer: PeerId, addrs: &[Multiaddr], source: Source) -> Vec<Multiaddr> {
    let mut keep: Vec<Multiaddr> = Vec::new();
    for addr in addrs.iter().take(4 * MAX_ADDRESSES) {
        if let Some(a) = dialable(addr, peer, source)
            && !keep.contains(&a)
            && keep.len() < MAX_ADDRESSES
        {
            keep.push(a);
        }
    }
    keep
}

#[cfg(test)]
mod tests;
