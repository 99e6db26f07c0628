//! The address book's row content: where one paired peer was last seen, and when, as table
//! `addresses` keeps it (sealed; [`crate::Store::note_addresses`] writes it,
//! [`crate::Store::address_book`] reads it). `docs/store-format.md`, section "Address book",
//! specifies every byte.
//!
//! ```text
//! plaintext = peer id (u16 ‖ bytes, 1 to 64) ‖ count (u8, 0 to 8)
//!             ‖ count × (address (u16 ‖ UTF-8, 1 to 256 bytes) ‖ last seen (u64, Unix s))
//! ```
//!
//! Addresses are kept most recent first; the store knows nothing of their syntax (the node
//! checks they are multiaddrs it may dial).

use redoubt_vault::{
    MAX_PEER_ID_LEN,
    codec::{Reader, Writer},
};

use crate::Error;

/// Addresses kept per peer, the most recent first.
pub const MAX_ADDRESSES: usize = 8;
/// Peers the book holds at most.
pub const MAX_PEERS: usize = 1024;
/// The longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 256;
/// A row is rewritten at most this often (seconds) unless it gains an address.
pub const REWRITE_AFTER_SECS: u64 = 60;
/// The largest row plaintext, checked before a row is decoded.
pub const MAX_ROW_PLAINTEXT: usize =
    2 + MAX_PEER_ID_LEN + 1 + MAX_ADDRESSES * (2 + MAX_ADDRESS_LEN + 8);

/// One address a peer was seen at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenAddress {
    /// The address (text; a multiaddr ending with `/p2p/PEER_ID` as the node writes it).
    pub addr: String,
    /// When it was last seen, Unix seconds.
    pub last_seen: u64,
}

/// One peer's row: its id and where it was seen, most recent first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddresses {
    /// The peer's id, as its grants name it (base58 text for a libp2p peer).
    pub peer: Vec<u8>,
    /// At most [`MAX_ADDRESSES`], the most recent first.
    pub addresses: Vec<SeenAddress>,
}

/// The address book as [`crate::Store::address_book`] reads it.
#[derive(Debug, Default)]
pub struct AddressBook {
    /// Every paired peer's row, in peer id order.
    pub rows: Vec<PeerAddresses>,
    /// Rows that did not open or decode, skipped.
    pub unreadable: Vec<UnreadableRow>,
}

/// A row of the address book that could not be read.
#[derive(Debug)]
pub struct UnreadableRow {
    /// The peer it names, when its plaintext opened far enough to say.
    pub peer: Option<Vec<u8>>,
    /// What was wrong.
    pub error: Error,
}

impl PeerAddresses {
    /// The peer id a row plaintext starts with, if it starts with one (for naming a row that
    /// does not decode).
    pub(crate) fn peer_of(bytes: &[u8]) -> Option<Vec<u8>> {
        let mut r = Reader::<Error>::new(bytes);
        let peer = r.bytes_u16(MAX_PEER_ID_LEN, "peer id").ok()?;
        check_peer(peer).ok()?;
        Some(peer.to_vec())
    }

    /// Notes `addrs` seen at `now`: each moves to the front (the first given ends first), the
    /// oldest beyond [`MAX_ADDRESSES`] are dropped. Whether the row must be written: an
    /// address is new to it, or its newest sighting is [`REWRITE_AFTER_SECS`] old.
    pub fn note(&mut self, addrs: &[&str], now: u64) -> bool {
        let newest = self.addresses.iter().map(|a| a.last_seen).max();
        let mut new = false;
        for addr in addrs.iter().rev() {
            let before = self.addresses.len();
            self.addresses.retain(|a| a.addr != *addr);
            new |= self.addresses.len() == before;
            self.addresses.insert(
                0,
                SeenAddress {
                    addr: (*addr).to_owned(),
                    last_seen: now,
                },
            );
        }
        self.addresses.truncate(MAX_ADDRESSES);
        new || newest.is_none_or(|t| now.saturating_sub(t) >= REWRITE_AFTER_SECS)
    }

    /// The row plaintext.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::<Error>::new();
        check_peer(&self.peer)?;
        w.checked_bytes_u16(&self.peer, MAX_PEER_ID_LEN, "peer id too long")?;
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(Error::Malformed("more than 8 addresses for one peer"));
        }
        w.u8(self.addresses.len() as u8);
        for a in &self.addresses {
            check_address(&a.addr)?;
            w.bytes_u16(a.addr.as_bytes());
            w.u64(a.last_seen);
        }
        Ok(w.into_bytes())
    }

    /// A row plaintext, its size checked before anything is allocated for it.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_ROW_PLAINTEXT {
            return Err(Error::Corrupted("an address book row is too large"));
        }
        let bad = |_| Error::Corrupted("an address book row is malformed");
        let mut r = Reader::<Error>::new(bytes);
        let peer = r.bytes_u16(MAX_PEER_ID_LEN, "peer id").map_err(bad)?;
        check_peer(peer).map_err(bad)?;
        let count = usize::from(r.u8().map_err(bad)?);
        if count > MAX_ADDRESSES {
            return Err(Error::Corrupted(
                "an address book row holds over 8 addresses",
            ));
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let addr = r.bytes_u16(MAX_ADDRESS_LEN, "address").map_err(bad)?;
            let addr = std::str::from_utf8(addr)
                .map_err(|_| Error::Corrupted("an address book address is not UTF-8"))?;
            check_address(addr).map_err(bad)?;
            if addresses.iter().any(|a: &SeenAddress| a.addr == addr) {
                return Err(Error::Corrupted("an address book row repeats an address"));
            }
            let last_seen = r.u64().map_err(bad)?;
            addresses.push(SeenAddress {
                addr: addr.to_owned(),
                last_seen,
            });
        }
        r.finish().map_err(bad)?;
        Ok(Self {
            peer: peer.to_vec(),
            addresses,
        })
    }
}

fn check_peer(peer: &[u8]) -> Result<(), Error> {
    if peer.is_empty() || peer.len() > MAX_PEER_ID_LEN {
        return Err(Error::Malformed("peer id empty or longer than 64 bytes"));
    }
    Ok(())
}

/// An address is 1 to [`MAX_ADDRESS_LEN`] bytes.
pub(crate) fn check_address(addr: &str) -> Result<(), Error> {
    if addr.is_empty() || addr.len() > MAX_ADDRESS_LEN {
        return Err(Error::Malformed("address empty or longer than 256 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize) -> PeerAddresses {
        let mut p = PeerAddresses {
            peer: b"12D3KooWpeer".to_vec(),
            addresses: Vec::new(),
        };
        for i in 0..n {
            p.note(&[&format!("/ip4/10.0.0.1/tcp/{i}")], 1000 + i as u64);
        }
        p
    }

    #[test]
    fn rows_round_trip_and_keep_the_newest_eight() {
        let p = row(11);
        assert_eq!(p.addresses.len(), MAX_ADDRESSES);
        assert_eq!(p.addresses[0].addr, "/ip4/10.0.0.1/tcp/10");
        assert_eq!(p.addresses[0].last_seen, 1010);
        assert_eq!(p.addresses[7].addr, "/ip4/10.0.0.1/tcp/3");
        let bytes = p.encode().unwrap();
        assert_eq!(PeerAddresses::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn a_known_address_is_rewritten_once_a_minute_a_new_one_at_once() {
        // A row that was not written stays as it was: each note starts from the stored row.
        let mut p = row(1);
        assert!(
            !p.clone()
                .note(&["/ip4/10.0.0.1/tcp/0"], 1000 + REWRITE_AFTER_SECS - 1)
        );
        assert!(p.note(&["/ip4/10.0.0.1/tcp/0"], 1000 + REWRITE_AFTER_SECS));
        assert!(p.note(&["/ip4/10.0.0.2/tcp/1"], 1000 + REWRITE_AFTER_SECS));
        assert_eq!(p.addresses.len(), 2);
    }

    #[test]
    fn malformed_rows_are_refused_before_allocating() {
        let good = row(2).encode().unwrap();
        for cut in 0..good.len() {
            assert!(PeerAddresses::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(PeerAddresses::decode(&trailing).is_err());
        let mut many = good.clone();
        many[2 + 12] = 9;
        assert!(PeerAddresses::decode(&many).is_err());
        assert!(PeerAddresses::decode(&vec![0; MAX_ROW_PLAINTEXT + 1]).is_err());
        let mut twice = row(1);
        twice.addresses.push(twice.addresses[0].clone());
        assert!(PeerAddresses::decode(&twice.encode().unwrap()).is_err());
    }
}
