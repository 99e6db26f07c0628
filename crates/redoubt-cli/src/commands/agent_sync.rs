//! The agent syncs by itself: with every paired peer it can reach when it starts (or is
//! unlocked), and after each local change it pushes to every peer it shares the changed
//! client with, once a burst of changes has settled ([`DEBOUNCE`]), dialing the peer at the
//! last address it was reached at, or over a connection the peer opened; a peer that cannot be
//! reached is tried again with backoff, and at once when it connects. (A peer that connects
//! to sync runs its own pull and push; an agent dialing at its start does.)
//!
//! [`Book`] is the plan, without I/O: who is due for what and when, and what `status` shows;
//! [`run`] carries it out on the agent's node.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use redoubt_node::{
    Handle, Mode,
    libp2p::{Multiaddr, PeerId, multiaddr::Protocol},
};
use redoubt_sync::{Directions, pull_then_push};
use tokio::time::Instant;
use tracing::{debug, info};

use super::agent::Agent;

/// How long a burst of local changes has to settle before they go out.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);
/// The longest a burst may hold its changes back, however long it lasts.
const MAX_HOLD: Duration = Duration::from_secs(1);
/// The first wait before a failed sync is tried again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Addresses kept per peer, the most recent first.
const MAX_ADDRS: usize = 8;

/// What a sync with one peer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Pull what it has, then let it pull from us.
    Full,
    /// Only let it pull from us (local changes to send).
    Push,
}

/// One peer's sync state.
#[derive(Debug, Default)]
struct PeerState {
    addrs: Vec<Multiaddr>,
    reachable: Option<bool>,
    last_sync: Option<SystemTime>,
    last_error: Option<String>,
    /// Local changes to its clients not yet pushed.
    waiting: u64,
    /// A full sync is wanted (start, it connected, a failed one).
    want_full: bool,
    /// When the first change of the current burst came.
    burst_from: Option<Instant>,
    /// When it is due next; `None`: nothing to do.
    due: Option<Instant>,
    failures: u32,
}

impl PeerState {
    /// What a sync with it would do, and where; `None` when it cannot be reached.
    fn plan(&self, id: PeerId) -> Option<(Kind, Multiaddr)> {
        let kind = if self.want_full {
            Kind::Full
        } else {
            Kind::Push
        };
        match self.addrs.first() {
            Some(addr) => Some((kind, addr.clone())),
            None if self.waiting > 0 => Some((Kind::Push, only_id(id))),
            None => None,
        }
    }
}

/// Every peer's sync state: the plan.
#[derive(Debug, Default)]
pub(crate) struct Book {
    peers: BTreeMap<PeerId, PeerState>,
}

impl Book {
    /// Notes an address `peer` listens on (most recent first).
    pub(crate) fn learn(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        let p = self.peers.entry(peer).or_default();
        let new = p.addrs.first() != Some(&addr);
        p.addrs.retain(|a| a != &addr);
        p.addrs.insert(0, addr);
        p.addrs.truncate(MAX_ADDRS);
        // Something waited for an address: it is due now; so is a retry, at a new first address.
        if (p.want_full || p.waiting > 0) && (p.due.is_none() || new) {
            p.due = Some(now);
        }
    }

    /// Notes addresses `peer` was seen at before this agent started (its stored address book,
    /// the most recent first), behind any it learned since: they are tried only when nothing
    /// fresher is known.
    pub(crate) fn seed(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        let p = self.peers.entry(peer).or_default();
        for addr in addrs {
            if p.addrs.len() < MAX_ADDRS && !p.addrs.contains(&addr) {
                p.addrs.push(addr);
            }
        }
    }

    /// Stops syncing with `peer` (it holds no grant any more).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Where `peer` was last reached.
    pub(crate) fn address(&self, peer: &PeerId) -> Option<Multiaddr> {
        self.peers.get(peer)?.addrs.first().cloned()
    }

    /// Whether `peer` is one this agent syncs with.
    pub(crate) fn knows(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// A connection with `peer` opened: where we reached it, when we dialed it, is kept; what
    /// waits for it goes out now, over that connection. (Nothing more: a peer that dialed us
    /// is syncing itself, and we dial only to sync.)
    pub(crate) fn connected(&mut self, peer: PeerId, dialed: Option<Multiaddr>, now: Instant) {
        if let Some(addr) = dialed {
            self.learn(peer, addr, now);
        }
        let p = self.peers.entry(peer).or_default();
        if p.waiting > 0 || p.want_full {
            p.due = Some(now);
        }
    }

    /// Wants a full sync with `peer` now (at start, at an unlock, when it was granted rights).
    pub(crate) fn want_full(&mut self, peer: PeerId, now: Instant) {
        let p = self.peers.entry(peer).or_default();
        p.want_full = true;
        p.failures = 0;
        p.due = Some(now);
    }

    /// A local change to a client shared with `peers`: each is due once the burst settles.
    pub(crate) fn changed(&mut self, peers: &[PeerId], now: Instant) {
        for peer in peers {
            let p = self.peers.entry(*peer).or_default();
            p.waiting += 1;
            let from = *p.burst_from.get_or_insert(now);
            let settle = (now + DEBOUNCE).min(from + MAX_HOLD);
            // A backoff after a failure is cut short: there is something new to send.
            p.due = Some(settle);
        }
    }

    /// The peer due first at `now`, with what to do and where: the address it was last
    /// reached at; or, for one with changes waiting and no address, `/p2p/PEER_ID` alone,
    /// which reaches it over a connection it opened to us, if one is open (a full sync waits
    /// for an address: a peer that connected is syncing itself).
    pub(crate) fn next(&self, now: Instant) -> Option<(PeerId, Kind, Multiaddr, u64)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.due.is_some_and(|d| d <= now))
            .filter_map(|(id, p)| {
                let (kind, addr) = p.plan(*id)?;
                Some((p.due?, *id, kind, addr, p.waiting))
            })
            .min_by_key(|(due, ..)| *due)
            .map(|(_, id, kind, addr, waiting)| (id, kind, addr, waiting))
    }

    /// When the next peer is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.peers
            .iter()
            .filter(|(id, p)| p.plan(**id).is_some())
            .filter_map(|(_, p)| p.due)
            .min()
    }

    /// A sync with `peer` ended: `sent` changes went out with it if it succeeded.
    pub(crate) fn done(
        &mut self,
        peer: PeerId,
        kind: Kind,
        sent: u64,
        result: Result<(), String>,
        now: Instant,
    ) {
        let p = self.peers.entry(peer).or_default();
        match result {
            Ok(()) => {
                p.reachable = Some(true);
                p.last_sync = Some(SystemTime::now());
                p.last_error = None;
                p.waiting = p.waiting.saturating_sub(sent);
                p.failures = 0;
                if kind == Kind::Full {
                    p.want_full = false;
                }
                // Changes made while it ran go out once they settle.
                p.burst_from = None;
                p.due = (p.waiting > 0 || p.want_full).then(|| now + DEBOUNCE);
            }
            Err(e) => {
                p.reachable = Some(false);
                p.last_error = Some(e);
                p.failures = p.failures.saturating_add(1);
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << p.failures.saturating_sub(1).min(16))
                    .min(MAX_BACKOFF);
                p.burst_from = None;
                p.due = Some(now + backoff);
            }
        }
    }

    /// Every peer's state, for `status --json`.
    pub(crate) fn status(&self) -> serde_json::Value {
        let unix_ms = |t: &SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .ok()
        };
        self.peers
            .iter()
            .map(|(id, p)| {
                serde_json::json!({
                    "peer": id.to_base58(),
                    "addresses": p.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "reachable": p.reachable,
                    "last_sync_ms": p.last_sync.as_ref().and_then(unix_ms),
                    "changes_waiting": p.waiting,
                    "last_error": p.last_error,
                })
            })
            .collect()
    }
}

/// `/p2p/PEER_ID`: no transport, so only an open connection reaches it.
fn only_id(peer: PeerId) -> Multiaddr {
    Multiaddr::empty().with(Protocol::P2p(peer))
}

/// Carries out the agent's [`Book`] until the task is dropped: one sync at a time, woken by
/// changes, connections and deadlines (no polling).
pub(crate) async fn run(agent: Arc<Agent>) {
    loop {
        let now = Instant::now();
        let next = agent.book().next(now);
        let Some((peer, kind, addr, sent)) = next else {
            let deadline = agent.book().deadline();
            match deadline {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(d) => {}
                        () = agent.sync_wake.notified() => {}
                    }
                }
                None => agent.sync_wake.notified().await,
            }
            continue;
        };
        // Locked: nothing can sync until an unlock wakes this again.
        let Some(handle) = agent.handle().await else {
            agent.sync_wake.notified().await;
            continue;
        };
        let result = sync_once(&handle, &addr, kind).await.map_err(|e| {
            if addr == only_id(peer) {
                "no address known for it and no connection open (it is synced with when it \
                 connects)"
                    .to_string()
            } else {
                e
            }
        });
        drop(handle);
        match &result {
            Ok(()) => info!(%peer, ?kind, sent, "synced by itself"),
            Err(e) => debug!(%peer, ?kind, "sync failed: {e}"),
        }
        agent.book().done(peer, kind, sent, result, Instant::now());
    }
}

/// One sync with the peer at `addr` over every client both sides' grants let move.
async fn sync_once(handle: &Handle, addr: &Multiaddr, kind: Kind) -> Result<(), String> {
    let directions = match kind {
        Kind::Full => Directions::Both,
        Kind::Push => Directions::PushOnly,
    };
    let mode = Mode::Import { clients: vec![] };
    match pull_then_push(&mut handle.link(addr, None), mode, directions).await {
        Ok(_) => Ok(()),
        Err(failed) => Err(failed.error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_burst_of_changes_goes_out_once_it_settles() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(1), t0);
        assert_eq!(book.next(t0), None, "nothing to do yet");
        for i in 0..100 {
            book.changed(&[p], t0 + Duration::from_millis(i));
        }
        assert_eq!(
            book.next(t0 + Duration::from_millis(150)),
            None,
            "still settling"
        );
        let (who, kind, at, sent) = book.next(t0 + Duration::from_millis(400)).unwrap();
        assert_eq!((who, kind, at, sent), (p, Kind::Push, addr(1), 100));
        book.done(p, kind, sent, Ok(()), t0 + Duration::from_millis(400));
        assert_eq!(book.deadline(), None, "all sent");
        assert_eq!(book.status()[0]["changes_waiting"], 0);
        assert_eq!(book.status()[0]["reachable"], true);
    }

    #[test]
    fn a_long_burst_is_held_back_at_most_a_second() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(1), t0);
        for i in 0..30 {
            book.changed(&[p], t0 + Duration::from_millis(100 * i));
        }
        assert!(book.next(t0 + MAX_HOLD).is_some());
    }

    #[test]
    fn a_failed_sync_is_tried_again_later_and_later() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.want_full(p, t0);
        // No address yet: a full sync waits for one; a change to push may ride on a
        // connection the peer opened.
        assert_eq!(book.next(t0), None);
        book.changed(&[p], t0);
        let (_, kind, at, _) = book.next(t0 + DEBOUNCE).unwrap();
        assert_eq!((kind, at), (Kind::Push, only_id(p)));
        book.learn(p, addr(1), t0);
        let mut now = t0 + DEBOUNCE;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let (_, kind, _, sent) = book.next(now).unwrap();
            assert_eq!(kind, Kind::Full);
            book.done(p, kind, sent, Err("unreachable".into()), now);
            let due = book.deadline().unwrap();
            waits.push(due - now);
            now = due;
        }
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        assert_eq!(book.status()[0]["last_error"], "unreachable");
        assert_eq!(book.status()[0]["reachable"], false);
        // A new change cuts the backoff short.
        book.changed(&[p], now);
        assert!(book.next(now + DEBOUNCE).is_some());
    }

    #[test]
    fn changes_made_during_a_sync_still_go_out() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(1), t0);
        book.changed(&[p], t0);
        let (_, kind, _, sent) = book.next(t0 + DEBOUNCE).unwrap();
        book.changed(&[p], t0 + DEBOUNCE);
        book.done(p, kind, sent, Ok(()), t0 + DEBOUNCE);
        assert_eq!(book.status()[0]["changes_waiting"], 1);
        assert!(book.next(t0 + DEBOUNCE * 3).is_some());
    }

    #[test]
    fn stored_addresses_go_behind_fresh_ones_and_a_new_address_ends_a_backoff() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(9), t0);
        book.seed(p, [addr(1), addr(9), addr(2)]);
        assert_eq!(
            book.status()[0]["addresses"],
            serde_json::json!([
                addr(9).to_string(),
                addr(1).to_string(),
                addr(2).to_string()
            ])
        );
        book.want_full(p, t0);
        let (_, kind, at, sent) = book.next(t0).unwrap();
        assert_eq!(at, addr(9));
        book.done(p, kind, sent, Err("unreachable".into()), t0);
        book.learn(p, addr(1), t0);
        assert_eq!(
            book.next(t0),
            Some((p, Kind::Full, addr(1), 0)),
            "a new first address"
        );
        book.done(p, kind, sent, Err("unreachable".into()), t0);
        book.learn(p, addr(1), t0);
        assert_eq!(
            book.next(t0),
            None,
            "the same address again waits out the backoff"
        );
    }

    #[test]
    fn a_peer_that_connects_gets_what_waits_for_it_and_nothing_more() {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(1), t0);
        book.want_full(p, t0);
        let (_, kind, _, sent) = book.next(t0).unwrap();
        book.done(p, kind, sent, Ok(()), t0);
        // It dialed us with nothing waiting: it syncs itself; nothing to do here.
        book.connected(p, None, t0 + DEBOUNCE);
        assert_eq!(book.deadline(), None);
        // With a change waiting, the connection carries it at once; an address we dialed is kept.
        book.changed(&[p], t0 + DEBOUNCE);
        book.done(p, Kind::Push, 0, Err("unreachable".into()), t0 + DEBOUNCE);
        book.connected(p, Some(addr(7)), t0 + DEBOUNCE * 2);
        let (_, kind, at, sent) = book.next(t0 + DEBOUNCE * 2).unwrap();
        assert_eq!((kind, at, sent), (Kind::Push, addr(7), 1));
    }
}
