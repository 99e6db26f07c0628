//! The address book, the node's side: which addresses of a peer are worth keeping (what a
//! remote claims is filtered), and the event loop's [`Learner`], which notes what pairing,
//! mDNS, our own dials and identify taught it into the vault's book (`addresses` table of
//! the store, `docs/store-format.md` section "Address book"), and tells the app.
//!
//! Only paired peers are kept. A peer met before it was paired (the connection that pairs it
//! comes first) is remembered here for a while, and noted once its grants are recorded.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant, SystemTime},
};

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol, swarm::ConnectionId};
use redoubt_store::{Store, addresses::MAX_ADDRESSES};
use tokio::sync::mpsc;
use tracing::debug;

use crate::{Error, NodeEvent, Vault, vault::Owner};

/// One peer's addresses in the book, most recent first, each with when it was last seen
/// (Unix seconds).
pub type BookEntry = (PeerId, Vec<(Multiaddr, u64)>);

/// How long a peer met before it was paired is remembered, waiting for its grants.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Peers (and connections) remembered at most.
const MAX_PENDING: usize = 256;
const MAX_CONNECTIONS: usize = 1024;

/// Where an address came from, for the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// We dialed it and the connection authenticated the peer: kept as it is.
    Dialed,
    /// The peer (identify, over a connection from loopback or not) or the local network (mDNS)
    /// claims it.
    Claimed {
        /// The claim came over a connection from a loopback address.
        from_loopback: bool,
    },
}

/// `addr` as the book keeps it (ending with `/p2p/PEER`), or `None` when it is not worth
/// keeping: not a TCP address over IP or DNS, with any other part, port 0, an unspecified IP
/// (`0.0.0.0`, `::`), a loopback IP claimed over a connection that did not come from loopback,
/// another peer's id, or too long.
pub(crate) fn dialable(addr: &Multiaddr, peer: PeerId, source: Source) -> Option<Multiaddr> {
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => None,
        _ => return None,
    };
    if !matches!(parts.next()?, Protocol::Tcp(port) if port != 0) {
        return None;
    }
    match parts.next() {
        None => {}
        Some(Protocol::P2p(id)) if id == peer && parts.next().is_none() => {}
        Some(_) => return None,
    }
    if let Some(ip) = ip {
        let claimed_loopback = matches!(
            source,
            Source::Claimed {
                from_loopback: false
            }
        );
        if ip.is_unspecified() || (ip.is_loopback() && claimed_loopback) {
            return None;
        }
    }
    let full = if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.clone()
    } else {
        addr.clone().with(Protocol::P2p(peer))
    };
    (full.len() <= redoubt_store::addresses::MAX_ADDRESS_LEN).then_some(full)
}

/// Whether `addr`'s IP (if it names one) is a loopback address.
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// The address book of `store`: every paired peer with its addresses. Rows naming no libp2p
/// peer or no multiaddr (none this node writes) are left out.
pub fn address_book_of(store: &Store) -> Result<Vec<BookEntry>, Error> {
    Ok(store
        .address_book()?
        .into_iter()
        .filter_map(|row| {
            let peer: PeerId = std::str::from_utf8(&row.peer).ok()?.parse().ok()?;
            let addrs = row
                .addresses
                .into_iter()
                .filter_map(|a| Some((a.addr.parse().ok()?, a.last_seen)))
                .collect();
            Some((peer, addrs))
        })
        .collect())
}

/// Now, in Unix seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Vault {
    /// The address book: every paired peer with where it was seen, most recent first.
    pub fn address_book(&self) -> Result<Vec<BookEntry>, Error> {
        address_book_of(self.store())
    }

    /// Notes that `peer` was seen at `addrs` now (the first most recent; at most 8 are taken,
    /// each as [`dialable`] keeps it). Kept only when `peer` is paired; a row is written at
    /// most once a minute unless an address is new to it. Whether a row was written.
    pub fn note_peer_addresses(
        &mut self,
        peer: PeerId,
        addrs: &[Multiaddr],
    ) -> Result<bool, Error> {
        let text: Vec<String> = addrs
            .iter()
            .take(MAX_ADDRESSES)
            .map(ToString::to_string)
            .collect();
        let refs: Vec<&str> = text.iter().map(String::as_str).collect();
        Ok(self
            .store_mut()
            .note_addresses(peer.to_base58().as_bytes(), &refs, unix_now())?)
    }

    /// Whether `peer` holds a grant on some client.
    pub fn is_paired(&self, peer: &PeerId) -> bool {
        let key = peer.to_base58();
        self.grants().clients_of(key.as_bytes()).next().is_some()
    }
}

/// What the event loop learns of peers' addresses, and where it goes.
pub(crate) struct Learner {
    vault: Owner,
    events: Option<mpsc::Sender<NodeEvent>>,
    /// Open connections, and whether each came from a loopback address.
    connections: HashMap<ConnectionId, bool>,
    /// Peers met before they were paired: their addresses, and since when.
    pending: HashMap<PeerId, (Vec<Multiaddr>, Instant)>,
}

impl Learner {
    pub(crate) fn new(vault: Owner, events: Option<mpsc::Sender<NodeEvent>>) -> Self {
        Self {
            vault,
            events,
            connections: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// A connection opened, from (or to) `remote`.
    pub(crate) fn opened(&mut self, id: ConnectionId, remote: &Multiaddr) {
        if self.connections.len() < MAX_CONNECTIONS {
            self.connections.insert(id, is_loopback(remote));
        }
    }

    /// A connection closed.
    pub(crate) fn closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
    }

    /// What `peer` claimed over connection `id` (identify's listen addresses).
    pub(crate) fn claimed(&mut self, id: ConnectionId, peer: PeerId, addrs: &[Multiaddr]) {
        let from_loopback = self.connections.get(&id).copied().unwrap_or(false);
        self.learn(peer, addrs, Source::Claimed { from_loopback });
    }

    /// `peer` was seen at `addrs` (the first most recent), from `source`.
    pub(crate) fn learn(&mut self, peer: PeerId, addrs: &[Multiaddr], source: Source) {
        let mut keep: Vec<Multiaddr> = Vec::new();
        for addr in addrs.iter().take(4 * MAX_ADDRESSES) {
            if let Some(a) = dialable(addr, peer, source)
                && !keep.contains(&a)
                && keep.len() < MAX_ADDRESSES
            {
                keep.push(a);
            }
        }
        if keep.is_empty() {
            return;
        }
        if !self.vault.read(|v| v.is_paired(&peer)) {
            if self.pending.len() < MAX_PENDING || self.pending.contains_key(&peer) {
                let entry = self
                    .pending
                    .entry(peer)
                    .or_insert_with(|| (Vec::new(), Instant::now()));
                entry.0.retain(|a| !keep.contains(a));
                let old = std::mem::replace(&mut entry.0, keep);
                entry.0.extend(old);
                entry.0.truncate(MAX_ADDRESSES);
            }
            return;
        }
        self.note(peer, keep);
    }

    /// Peers met before they were paired and paired since are noted now; those waited for too
    /// long are forgotten.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        self.pending
            .retain(|_, (_, since)| now.saturating_duration_since(*since) < PENDING_FOR);
        let paired: Vec<PeerId> = self.vault.read(|v| {
            self.pending
                .keys()
                .filter(|p| v.is_paired(p))
                .copied()
                .collect()
        });
        for peer in paired {
            if let Some((addrs, _)) = self.pending.remove(&peer) {
                self.note(peer, addrs);
            }
        }
    }

    fn note(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if let Err(e) = self.vault.write(|v| v.note_peer_addresses(peer, &addrs)) {
            debug!(%peer, "keeping its addresses failed: {e}");
        }
        if let Some(events) = &self.events {
            let _ = events.try_send(NodeEvent::Addresses { peer, addrs });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn what_a_remote_claims_is_filtered() {
        let peer = PeerId::random();
        let other = PeerId::random();
        let lan = Source::Claimed {
            from_loopback: false,
        };
        let local = Source::Claimed {
            from_loopback: true,
        };
        let kept = dialable(&a("/ip4/192.168.1.5/tcp/4001"), peer, lan).unwrap();
        assert_eq!(
            kept,
            a("/ip4/192.168.1.5/tcp/4001").with(Protocol::P2p(peer))
        );
        assert_eq!(dialable(&kept, peer, lan), Some(kept.clone()));
        for bad in [
            "/ip4/0.0.0.0/tcp/4001",
            "/ip6/::/tcp/4001",
            "/ip4/127.0.0.1/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip4/192.168.1.5/tcp/0",
            "/ip4/192.168.1.5/udp/4001/quic-v1",
            "/ip4/192.168.1.5/tcp/4001/ws",
        ] {
            assert_eq!(dialable(&a(bad), peer, lan), None, "{bad}");
        }
        let theirs = a("/ip4/192.168.1.5/tcp/4001").with(Protocol::P2p(other));
        assert_eq!(dialable(&theirs, peer, lan), None, "another peer's id");
        assert!(dialable(&a("/ip4/127.0.0.1/tcp/4001"), peer, local).is_some());
        assert!(dialable(&a("/ip4/127.0.0.1/tcp/4001"), peer, Source::Dialed).is_some());
        assert!(dialable(&a("/ip4/0.0.0.0/tcp/4001"), peer, local).is_none());
        assert!(dialable(&a("/dns4/example.org/tcp/1"), peer, lan).is_some());
    }
}
