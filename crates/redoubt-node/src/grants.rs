//! Our grants decide what leaves us and what enters us, whoever dialed: a node sends records
//! of client C to peer P only if its own table grants P `read` on C, and merges records of C
//! received from P only if its table grants P `write` on C.

use libp2p::PeerId;
use redoubt_protocol::Mode;
use redoubt_vault::{AccessTable, Rights};

use crate::Error;

/// Which way records move between us and a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the peer into us (our pull, or the pull a peer's push invites): needs our `write`
    /// grant for the peer.
    In,
    /// From us to the peer (serving its pull, or offering in our push): needs our `read` grant
    /// for the peer.
    Out,
}

impl Direction {
    fn allows(self, rights: Rights) -> bool {
        match self {
            Self::In => rights.write,
            Self::Out => rights.read,
        }
    }

    /// The grant this direction needs, as `redoubt allow` names it.
    pub fn right(self) -> &'static str {
        match self {
            Self::In => "write",
            Self::Out => "read",
        }
    }
}

/// Narrows `mode` to what `access` lets records of move in `direction` with `peer`.
///
/// A mode that names clients (full, partial, an import with a list) must be granted on every
/// one of them, or it fails with [`Error::NotGranted`] naming the first that is not. An import
/// with an empty list means "every client we may": it becomes an import of exactly the granted
/// clients, or `None` when there are none.
pub fn granted_mode(
    access: &AccessTable,
    peer: &PeerId,
    mode: Mode,
    direction: Direction,
) -> Result<Option<Mode>, Error> {
    let key = peer.to_base58();
    let allowed = |client: &[u8]| direction.allows(access.rights(key.as_bytes(), client));
    let refuse = |client: &[u8]| Error::NotGranted {
        right: direction.right(),
        peer: key.clone(),
        client: String::from_utf8_lossy(client).into_owned(),
    };
    match mode {
        Mode::Full { ref client } | Mode::Partial { ref client, .. } => {
            if allowed(client) {
                Ok(Some(mode))
            } else {
                Err(refuse(client))
            }
        }
        Mode::Import { clients } if clients.is_empty() => {
            let clients: Vec<Vec<u8>> = granted_clients(access, peer, direction);
            Ok((!clients.is_empty()).then_some(Mode::Import { clients }))
        }
        Mode::Import { clients } => match clients.iter().find(|c| !allowed(c)) {
            Some(missing) => Err(refuse(missing)),
            None => Ok(Some(Mode::Import { clients })),
        },
    }
}

/// Every client `access` lets records of move in `direction` with `peer`, ordered by path.
pub fn granted_clients(access: &AccessTable, peer: &PeerId, direction: Direction) -> Vec<Vec<u8>> {
    let key = peer.to_base58();
    access
        .clients_of(key.as_bytes())
        .filter(|(_, r)| direction.allows(*r))
        .map(|(c, _)| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use super::*;

    fn table(peer: &PeerId) -> AccessTable {
        let mut t = AccessTable::default();
        let key = peer.to_base58();
        let rw = Rights {
            read: true,
            write: true,
        };
        let w = Rights {
            read: false,
            write: true,
        };
        t.grant(key.as_bytes(), b"c1", rw).unwrap();
        t.grant(key.as_bytes(), b"c2", w).unwrap();
        t
    }

    #[test]
    fn an_empty_import_becomes_exactly_the_granted_clients() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let other = Keypair::generate_ed25519().public().to_peer_id();
        let t = table(&peer);
        let all = Mode::Import { clients: vec![] };
        assert_eq!(
            granted_mode(&t, &peer, all.clone(), Direction::Out).unwrap(),
            Some(Mode::Import {
                clients: vec![b"c1".to_vec()]
            })
        );
        assert_eq!(
            granted_mode(&t, &peer, all.clone(), Direction::In).unwrap(),
            Some(Mode::Import {
                clients: vec![b"c1".to_vec(), b"c2".to_vec()]
            })
        );
        assert_eq!(granted_mode(&t, &other, all, Direction::In).unwrap(), None);
    }

    #[test]
    fn a_named_client_without_the_grant_is_refused_by_name() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let t = table(&peer);
        let c2 = Mode::Full {
            client: b"c2".to_vec(),
        };
        let err = granted_mode(&t, &peer, c2.clone(), Direction::Out).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted { right: "read", client, .. } if client == "c2"),
            "{err}"
        );
        assert!(granted_mode(&t, &peer, c2, Direction::In).is_ok());
        let listed = Mode::Import {
            clients: vec![b"c1".to_vec(), b"c3".to_vec()],
        };
        let err = granted_mode(&t, &peer, listed, Direction::In).unwrap_err();
        assert!(err.to_string().contains("\"c3\""), "{err}");
    }
}
