//! The address book, the node's side: which addresses of a peer are worth keeping (what a
//! remote claims is filtered), reading the vault's book (`addresses` table of the store,
//! `docs/store-format.md` section "Address book"), and the event loop's [`Learner`]
//! ([`learner`]), which keeps there only addresses our own dials reached the peer at.

mod learner;

use std::{net::IpAddr, time::SystemTime};

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use redoubt_store::{Store, addresses::MAX_ADDRESSES};
use tracing::warn;

pub(crate) use self::learner::Learner;
use crate::{Error, Vault};

/// One peer's addresses in the book, most recent first, each with when it was last seen
/// (Unix seconds).
pub type BookEntry = (PeerId, Vec<(Multiaddr, u64)>);

/// Where an address came from, for the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// We dialed it and the connection authenticated the peer: kept as it is.
    Dialed,
    /// The peer (identify, over a connection from loopback or not) or the local network (mDNS)
    /// claims it: nobody proved it reaches the peer. A claim is only ever dialed to check it,
    /// never kept as it is.
    Claimed {
        /// The claim came over a connection from a loopback address.
        from_loopback: bool,
    },
}

/// `addr` as the book keeps it (ending with `/p2p/PEER`), or `None` when it is not worth
/// keeping: not a TCP address over IP or DNS, with any other part, port 0, an unspecified IP
/// (`0.0.0.0`, `::`, also as `::ffff:0.0.0.0`), a loopback IP (`127.0.0.0/8`, `::1`,
/// `::ffff:127.0.0.1`) claimed over a connection that did not come from loopback, a DNS name
/// claimed (one names any address, `localhost` too: only our own dials may), another peer's
/// id, or too long.
pub(crate) fn dialable(addr: &Multiaddr, peer: PeerId, source: Source) -> Option<Multiaddr> {
    let claimed = matches!(source, Source::Claimed { .. });
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) if !claimed => None,
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
    if let Some(ip) = ip.map(|ip| ip.to_canonical()) {
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
    let full = with_peer(addr.clone(), peer);
    (full.len() <= redoubt_store::addresses::MAX_ADDRESS_LEN).then_some(full)
}

/// `addr` ending with `/p2p/PEER`: `peer` is appended unless it ends with a peer id already.
pub fn with_peer(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr
    } else {
        addr.with(Protocol::P2p(peer))
    }
}

/// Whether `addr`'s IP (if it names one) is a loopback address (an IPv4-mapped IPv6 one too).
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => IpAddr::V6(ip).to_canonical().is_loopback(),
        _ => false,
    })
}

/// The address book of `store`: every paired peer with its addresses. Rows naming no libp2p
/// peer or no multiaddr (none this node writes) are left out; a row that cannot be read (a
/// damaged file) is skipped with a warning logged.
pub fn address_book_of(store: &Store) -> Result<Vec<BookEntry>, Error> {
    let (book, skipped) = read_address_book(store)?;
    for why in skipped {
        warn!("{why}");
    }
    Ok(book)
}

/// [`address_book_of`], and a line for each row that could not be read and was skipped,
/// naming its peer when that much of it was readable (for a command to show).
pub fn read_address_book(store: &Store) -> Result<(Vec<BookEntry>, Vec<String>), Error> {
    let read = store.address_book()?;
    let skipped = read
        .unreadable
        .iter()
        .map(|bad| match &bad.peer {
            Some(peer) => format!(
                "the address book row of {} was skipped: {}",
                String::from_utf8_lossy(peer),
                bad.error
            ),
            None => format!(
                "an address book row (peer unreadable) was skipped: {}",
                bad.error
            ),
        })
        .collect();
    let book = read
        .rows
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
        .collect();
    Ok((book, skipped))
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

    /// Notes that `peer` was reached at `addrs` now (the first most recent; at most 8 are
    /// taken). Kept only when `peer` is paired; the store writes a row at most once a minute
    /// unless an address is new to it (the node's `Learner` bounds new ones too, and gives it
    /// only addresses its own dials reached the peer at). Whether a row was written.
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
        assert!(dialable(&a("/dns4/example.org/tcp/1"), peer, Source::Dialed).is_some());
    }

    #[test]
    fn mapped_ipv6_and_dns_names_do_not_get_past_the_filter() {
        let peer = PeerId::random();
        let lan = Source::Claimed {
            from_loopback: false,
        };
        let local = Source::Claimed {
            from_loopback: true,
        };
        for bad in [
            "/ip6/::ffff:127.0.0.1/tcp/4001",
            "/ip6/::ffff:127.1.2.3/tcp/4001",
            "/ip6/::ffff:0.0.0.0/tcp/4001",
        ] {
            assert_eq!(dialable(&a(bad), peer, lan), None, "{bad}");
        }
        assert_eq!(dialable(&a("/ip6/::ffff:0.0.0.0/tcp/1"), peer, local), None);
        assert!(dialable(&a("/ip6/::ffff:127.0.0.1/tcp/1"), peer, local).is_some());
        assert!(dialable(&a("/ip6/::ffff:192.168.1.5/tcp/1"), peer, lan).is_some());
        // A name may resolve to anything (localhost to loopback): claimed, it is refused from
        // anywhere; our own dial reached the peer there, so it is kept.
        for name in [
            "/dns4/localhost/tcp/4001",
            "/dns6/localhost/tcp/4001",
            "/dns/example.org/tcp/4001",
            "/dns4/example.org/tcp/4001",
        ] {
            assert_eq!(dialable(&a(name), peer, lan), None, "{name}");
            assert_eq!(dialable(&a(name), peer, local), None, "{name}");
            assert!(dialable(&a(name), peer, Source::Dialed).is_some(), "{name}");
        }
        assert!(is_loopback(&a("/ip6/::ffff:127.0.0.1/tcp/1")));
        assert!(!is_loopback(&a("/ip6/::ffff:192.168.1.5/tcp/1")));
    }

    #[test]
    fn with_peer_appends_the_id_once() {
        let peer = PeerId::random();
        let bare = a("/ip4/192.0.2.1/tcp/1");
        let full = with_peer(bare.clone(), peer);
        assert_eq!(full, bare.with(Protocol::P2p(peer)));
        assert_eq!(with_peer(full.clone(), peer), full);
    }
}
