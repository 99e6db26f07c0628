//! The agent syncs by itself: with every paired peer it can reach when it starts (or is
//! unlocked), and after each local change it pushes to every peer it shares the changed
//! client with, dialing the peer at the last address it was reached at, or over a connection
//! the peer opened; a peer that cannot be reached is tried again with backoff, and at once when
//! it connects. (A peer that connects to sync runs its own pull and push; an agent dialing at
//! its start does.)
//!
//! When a change goes out to a peer (leading edge, then batches):
//! - to a peer that is idle (no sync with it running, no burst on), at once: after [`SETTLE`],
//!   so that the few changes one command makes go together;
//! - changes made while a sync with it runs wait for that sync, then go out as one batch: at
//!   once if that is a single change;
//! - if several came meanwhile, changes come faster than syncs carry them (a burst): what
//!   waits goes out once the burst has settled for [`DEBOUNCE`], held back at most
//!   [`MAX_HOLD`] from its first change, so a long burst costs a sync per second, not one per
//!   change.
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

/// How long a change to an idle peer waits for others made with it before it goes out.
const SETTLE: Duration = Duration::from_millis(5);
/// During a burst, how long it has to settle before what it made goes out.
const DEBOUNCE: Duration = Duration::from_millis(100);
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
    /// When the first change not carried by a sync yet came.
    burst_from: Option<Instant>,
    /// When the last local change came.
    last_change: Option<Instant>,
    /// A sync with it runs now (from [`Book::started`] to [`Book::done`]).
    running: bool,
    /// Changes come faster than syncs carry them: what waits is held until they settle.
    bursting: bool,
    /// Syncs with it that succeeded since the agent started.
    sessions: u64,
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

    /// A local change to a client shared with `peers`: an idle peer is due at once (after
    /// [`SETTLE`]); one a sync runs with gets it when that sync ends ([`Book::done`]); during
    /// a burst, once the burst settles.
    pub(crate) fn changed(&mut self, peers: &[PeerId], now: Instant) {
        for peer in peers {
            let p = self.peers.entry(*peer).or_default();
            p.waiting += 1;
            p.last_change = Some(now);
            let from = *p.burst_from.get_or_insert(now);
            if p.running {
                continue;
            }
            p.due = Some(if p.bursting {
                (now + DEBOUNCE).min(from + MAX_HOLD)
            } else {
                // A backoff after a failure is cut short: there is something new to send; a
                // sync due sooner stays due.
                let settle = from + SETTLE;
                p.due.map_or(settle, |d| d.min(settle))
            });
        }
    }

    /// A sync with `peer` starts now (the one [`Book::next`] named): changes made from now on
    /// wait for it to end.
    pub(crate) fn started(&mut self, peer: PeerId) {
        let p = self.peers.entry(peer).or_default();
        p.running = true;
        p.burst_from = None;
    }

    /// The peer due first at `now`, with what to do and where: the address it was last
    /// reached at; or, for one with changes waiting and no address, `/p2p/PEER_ID` alone,
    /// which reaches it over a connection it opened to us, if one is open (a full sync waits
    /// for an address: a peer that connected is syncing itself).
    pub(crate) fn next(&self, now: Instant) -> Option<(PeerId, Kind, Multiaddr, u64)> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.running && p.due.is_some_and(|d| d <= now))
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
            .filter(|(id, p)| !p.running && p.plan(**id).is_some())
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
        p.running = false;
        match result {
            Ok(()) => {
                p.reachable = Some(true);
                p.last_sync = Some(SystemTime::now());
                p.last_error = None;
                p.waiting = p.waiting.saturating_sub(sent);
                p.failures = 0;
                p.sessions = p.sessions.saturating_add(1);
                if kind == Kind::Full {
                    p.want_full = false;
                }
                // What came while it ran goes out now as one batch; several changes mean a
                // burst, held until it settles.
                p.bursting = p.waiting > 1;
                p.due = if p.bursting {
                    let from = p.burst_from.unwrap_or(now);
                    let settled = p.last_change.unwrap_or(now) + DEBOUNCE;
                    Some(settled.min(from + MAX_HOLD).max(now))
                } else {
                    (p.waiting > 0 || p.want_full).then_some(now)
                };
                if p.waiting == 0 {
                    p.burst_from = None;
                }
            }
            Err(e) => {
                p.reachable = Some(false);
                p.last_error = Some(e);
                p.failures = p.failures.saturating_add(1);
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << p.failures.saturating_sub(1).min(16))
                    .min(MAX_BACKOFF);
                p.burst_from = None;
                p.bursting = false;
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
                    "sessions": p.sessions,
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
        agent.book().started(peer);
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A book with one peer, reached at one address, and the time it starts at.
    fn one_peer() -> (Book, PeerId, Instant) {
        let mut book = Book::default();
        let (p, t0) = (peer(), Instant::now());
        book.learn(p, addr(1), t0);
        (book, p, t0)
    }

    /// Drives `book` with one peer `p` as the agent's run loop does: each sync takes
    /// `session`; a local change comes at each of `changes` (sorted). Returns, per sync, when
    /// it started and how many changes it carried.
    fn drive(
        book: &mut Book,
        p: PeerId,
        t0: Instant,
        changes: &[Instant],
        session: Duration,
    ) -> Vec<(Instant, u64)> {
        let mut syncs = Vec::new();
        let mut pending = changes.iter().copied().peekable();
        let mut now = t0;
        loop {
            while let Some(at) = pending.next_if(|at| *at <= now) {
                book.changed(&[p], at);
            }
            if let Some((who, kind, _, sent)) = book.next(now) {
                assert_eq!(who, p);
                book.started(p);
                syncs.push((now, sent));
                let end = now + session;
                // Changes made while it runs.
                while let Some(at) = pending.next_if(|at| *at <= end) {
                    book.changed(&[p], at);
                }
                book.done(p, kind, sent, Ok(()), end);
                now = end;
                continue;
            }
            // Idle until the next change or the next deadline, whichever comes first.
            match (pending.peek().copied(), book.deadline()) {
                (None, None) => return syncs,
                (Some(c), Some(d)) => now = c.min(d),
                (Some(c), None) => now = c,
                (None, Some(d)) => now = d,
            }
        }
    }

    #[test]
    fn a_change_to_an_idle_peer_goes_out_at_once() {
        let (mut book, p, t0) = one_peer();
        assert_eq!(book.next(t0), None, "nothing to do yet");
        book.changed(&[p], t0);
        assert_eq!(book.next(t0), None, "settling for a moment");
        // A second change of the same command joins it, and does not put it off.
        book.changed(&[p], t0 + ms(1));
        assert_eq!(book.deadline(), Some(t0 + SETTLE));
        let (who, kind, at, sent) = book.next(t0 + SETTLE).unwrap();
        assert_eq!((who, kind, at, sent), (p, Kind::Push, addr(1), 2));
        book.started(p);
        book.done(p, kind, sent, Ok(()), t0 + ms(20));
        assert_eq!(book.deadline(), None, "all sent");
        assert_eq!(book.status()[0]["changes_waiting"], 0);
        assert_eq!(book.status()[0]["reachable"], true);
        assert_eq!(book.status()[0]["sessions"], 1);
    }

    #[test]
    fn changes_one_after_another_each_go_out_at_once() {
        // As a user (or the latency benchmark) does: each change once the last arrived.
        let (mut book, p, t0) = one_peer();
        let changes: Vec<_> = (0..50).map(|i| t0 + ms(30 * i)).collect();
        let syncs = drive(&mut book, p, t0, &changes, ms(20));
        assert_eq!(syncs.len(), 50, "{syncs:?}");
        for ((started, sent), changed) in syncs.iter().zip(&changes) {
            assert_eq!(*sent, 1);
            assert_eq!(*started, *changed + SETTLE);
        }
        assert_eq!(book.status()[0]["sessions"], 50);
    }

    #[test]
    fn a_change_made_during_a_sync_goes_out_when_it_ends() {
        let (mut book, p, t0) = one_peer();
        book.changed(&[p], t0);
        let (_, kind, _, sent) = book.next(t0 + SETTLE).unwrap();
        book.started(p);
        book.changed(&[p], t0 + ms(10));
        assert_eq!(book.next(t0 + ms(15)), None, "one sync at a time");
        assert_eq!(book.deadline(), None, "it waits for the sync to end");
        book.done(p, kind, sent, Ok(()), t0 + ms(20));
        assert_eq!(book.status()[0]["changes_waiting"], 1);
        let (_, _, _, sent) = book.next(t0 + ms(20)).unwrap();
        assert_eq!(sent, 1);
    }

    #[test]
    fn a_burst_goes_out_in_a_few_syncs_once_it_settles() {
        // 1 000 changes 1 ms apart, syncs of 20 ms: the first goes at once (with the few made
        // while it settles), what comes during it is held until the burst settles, at most a
        // second.
        let (mut book, p, t0) = one_peer();
        let changes: Vec<_> = (0..1000).map(|i| t0 + ms(i)).collect();
        let syncs = drive(&mut book, p, t0, &changes, ms(20));
        assert_eq!(syncs.iter().map(|s| s.1).sum::<u64>(), 1000, "{syncs:?}");
        assert!(syncs.len() <= 3, "{syncs:?}");
        assert_eq!(syncs[0].0, t0 + SETTLE);
        // The last change went out no later than once the burst had settled.
        assert!(syncs.last().unwrap().0 <= changes[999] + DEBOUNCE);
        assert_eq!(book.deadline(), None);
    }

    #[test]
    fn a_long_burst_is_held_back_at_most_a_second() {
        // Changes every 10 ms for 5 s never settle for DEBOUNCE; each batch still goes out
        // within MAX_HOLD of its first change.
        let (mut book, p, t0) = one_peer();
        let changes: Vec<_> = (0..500).map(|i| t0 + ms(10 * i)).collect();
        let syncs = drive(&mut book, p, t0, &changes, ms(20));
        assert_eq!(syncs.iter().map(|s| s.1).sum::<u64>(), 500);
        assert!(syncs.len() <= 9, "{syncs:?}");
        let mut carried = 0;
        for (started, sent) in &syncs {
            let oldest = changes[carried];
            assert!(*started - oldest <= MAX_HOLD + ms(20), "{syncs:?}");
            carried += *sent as usize;
        }
        // Once it is over, a change goes out at once again.
        let later = t0 + ms(10_000);
        book.changed(&[p], later);
        assert_eq!(book.deadline(), Some(later + SETTLE));
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
        let (_, kind, at, _) = book.next(t0 + SETTLE).unwrap();
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
        assert_eq!(
            book.status()[0]["sessions"],
            0,
            "a failed sync is no session"
        );
        // A new change cuts the backoff short.
        book.changed(&[p], now);
        assert!(book.next(now + SETTLE).is_some());
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
