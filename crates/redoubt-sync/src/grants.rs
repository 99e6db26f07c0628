//! Our grants decide what leaves us and what enters us, whoever dialed: a node sends records
//! of client C to peer P only if its own table grants P `read` on C, and merges records of C
//! received from P only if its table grants P `write` on C.
//!
//! A peer is named by its text id, as the access table stores it (base58 for a libp2p peer).

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

/// The refusal of `client` to `peer` in `direction`.
pub(crate) fn not_granted(peer: &str, client: &[u8], direction: Direction) -> Error {
    Error::NotGranted {
        right: direction.right(),
        peer: peer.to_string(),
        client: String::from_utf8_lossy(client).into_owned(),
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
    peer: &str,
    mode: Mode,
    direction: Direction,
) -> Result<Option<Mode>, Error> {
    let allowed = |client: &[u8]| direction.allows(access.rights(peer.as_bytes(), client));
    match mode {
        Mode::Full { ref client } | Mode::Partial { ref client, .. } => {
            if allowed(client) {
                Ok(Some(mode))
            } else {
                Err(not_granted(peer, client, direction))
            }
        }
        Mode::Import { clients } if clients.is_empty() => {
            let clients: Vec<Vec<u8>> = granted_clients(access, peer, direction);
            Ok((!clients.is_empty()).then_some(Mode::Import { clients }))
        }
        Mode::Import { clients } => match clients.iter().find(|c| !allowed(c)) {
            Some(missing) => Err(not_granted(peer, missing, direction)),
            None => Ok(Some(Mode::Import { clients })),
        },
    }
}

/// Every client `access` lets records of move in `direction` with `peer`, ordered by path.
pub fn granted_clients(access: &AccessTable, peer: &str, direction: Direction) -> Vec<Vec<u8>> {
    access
        .clients_of(peer.as_bytes())
        .filter(|(_, r)| direction.allows(*r))
        .map(|(c, _)| c.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWPeer";
    const OTHER: &str = "12D3KooWOther";

    fn table() -> AccessTable {
        let mut t = AccessTable::default();
        let rw = Rights {
            read: true,
            write: true,
        };
        let w = Rights {
            read: false,
            write: true,
        };
        t.grant(PEER.as_bytes(), b"c1", rw).unwrap();
        t.grant(PEER.as_bytes(), b"c2", w).unwrap();
        t
    }

    #[test]
    fn an_empty_import_becomes_exactly_the_granted_clients() {
        let t = table();
        let all = Mode::Import { clients: vec![] };
        assert_eq!(
            granted_mode(&t, PEER, all.clone(), Direction::Out).unwrap(),
            Some(Mode::Import {
                clients: vec![b"c1".to_vec()]
            })
        );
        assert_eq!(
            granted_mode(&t, PEER, all.clone(), Direction::In).unwrap(),
            Some(Mode::Import {
                clients: vec![b"c1".to_vec(), b"c2".to_vec()]
            })
        );
        assert_eq!(granted_mode(&t, OTHER, all, Direction::In).unwrap(), None);
    }

    #[test]
    fn a_named_client_without_the_grant_is_refused_by_name() {
        let t = table();
        let c2 = Mode::Full {
            client: b"c2".to_vec(),
        };
        let err = granted_mode(&t, PEER, c2.clone(), Direction::Out).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted { right: "read", client, peer } if client == "c2" && peer == PEER),
            "{err}"
        );
        assert!(granted_mode(&t, PEER, c2, Direction::In).is_ok());
        let listed = Mode::Import {
            clients: vec![b"c1".to_vec(), b"c3".to_vec()],
        };
        let err = granted_mode(&t, PEER, listed, Direction::In).unwrap_err();
        assert!(err.to_string().contains("\"c3\""), "{err}");
    }
}
