//! Which peer may read from or write into which client. Default deny.

use std::collections::BTreeMap;

use crate::{Error, MAX_PEER_ID_LEN, id::check_path};

/// Rights of one peer on one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// The peer may pull this client's records from us.
    pub read: bool,
    /// The peer may push records of this client into us.
    pub write: bool,
}

impl Rights {
    /// Encodes as bits: 1 = read, 2 = write.
    pub fn bits(self) -> u8 {
        u8::from(self.read) | (u8::from(self.write) << 1)
    }

    /// Decodes from bits; `None` if unknown bits are set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !3 == 0).then_some(Self {
            read: bits & 1 != 0,
            write: bits & 2 != 0,
        })
    }
}

/// The table of grants: (peer id bytes, client path) → rights. Absent means no rights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessTable {
    grants: BTreeMap<(Vec<u8>, Vec<u8>), Rights>,
}

impl AccessTable {
    /// Adds `rights` to whatever `peer` already holds on `client`.
    pub fn grant(&mut self, peer: &[u8], client: &[u8], rights: Rights) -> Result<(), Error> {
        check_peer(peer)?;
        check_path("client path", client)?;
        let entry = self
            .grants
            .entry((peer.to_vec(), client.to_vec()))
            .or_default();
        entry.read |= rights.read;
        entry.write |= rights.write;
        if entry.bits() == 0 {
            self.grants.remove(&(peer.to_vec(), client.to_vec()));
        }
        Ok(())
    }

    /// Removes the peer's rights on `client`, or on every client when `client` is `None`.
    /// Returns how many grants were removed.
    pub fn revoke(&mut self, peer: &[u8], client: Option<&[u8]>) -> usize {
        let before = self.grants.len();
        self.grants
            .retain(|(p, c), _| p != peer || client.is_some_and(|client| client != c.as_slice()));
        before - self.grants.len()
    }

    /// The rights `peer` holds on `client` (none by default).
    pub fn rights(&self, peer: &[u8], client: &[u8]) -> Rights {
        self.grants
            .get(&(peer.to_vec(), client.to_vec()))
            .copied()
            .unwrap_or_default()
    }

    /// The clients `peer` holds any grant on, with its rights there, ordered by client.
    pub fn clients_of<'a>(&'a self, peer: &'a [u8]) -> impl Iterator<Item = (&'a [u8], Rights)> {
        self.grants
            .range((peer.to_vec(), Vec::new())..)
            .take_while(move |((p, _), _)| p.as_slice() == peer)
            .map(|((_, c), r)| (c.as_slice(), *r))
    }

    /// Every grant, as (peer, client, rights), ordered by peer then client.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Rights)> {
        self.grants
            .iter()
            .map(|((p, c), r)| (p.as_slice(), c.as_slice(), *r))
    }

    /// Number of grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether there are no grants.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

fn check_peer(peer: &[u8]) -> Result<(), Error> {
    if peer.is_empty() || peer.len() > MAX_PEER_ID_LEN {
        return Err(Error::InvalidPeerId { len: peer.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rights = Rights {
        read: true,
        write: false,
    };
    const W: Rights = Rights {
        read: false,
        write: true,
    };

    #[test]
    fn default_deny_and_grants_accumulate() {
        let mut t = AccessTable::default();
        assert_eq!(t.rights(b"peer", b"c"), Rights::default());
        t.grant(b"peer", b"c", R).unwrap();
        t.grant(b"peer", b"c", W).unwrap();
        assert_eq!(
            t.rights(b"peer", b"c"),
            Rights {
                read: true,
                write: true
            }
        );
        assert_eq!(t.rights(b"peer", b"other"), Rights::default());
        assert_eq!(t.rights(b"other", b"c"), Rights::default());
    }

    #[test]
    fn clients_of_lists_one_peers_grants_only() {
        let mut t = AccessTable::default();
        t.grant(b"peer", b"b", W).unwrap();
        t.grant(b"peer", b"a", R).unwrap();
        t.grant(b"peerx", b"c", R).unwrap();
        t.grant(b"pee", b"d", R).unwrap();
        let got: Vec<_> = t.clients_of(b"peer").collect();
        assert_eq!(got, vec![(&b"a"[..], R), (&b"b"[..], W)]);
        assert_eq!(t.clients_of(b"nobody").count(), 0);
    }

    #[test]
    fn revoke_one_client_or_all() {
        let mut t = AccessTable::default();
        t.grant(b"p", b"a", R).unwrap();
        t.grant(b"p", b"b", R).unwrap();
        t.grant(b"q", b"a", R).unwrap();
        assert_eq!(t.revoke(b"p", Some(b"a")), 1);
        assert_eq!(t.rights(b"p", b"b"), R);
        assert_eq!(t.revoke(b"p", None), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn rights_bits_round_trip_and_reject_unknown() {
        for bits in 0..4 {
            assert_eq!(Rights::from_bits(bits).unwrap().bits(), bits);
        }
        assert_eq!(Rights::from_bits(4), None);
    }
}
