//! The grant rule of [`redoubt_sync::grants`], for peers named by their libp2p [`PeerId`]:
//! our grants decide what leaves us and what enters us, whoever dialed.

use libp2p::PeerId;
use redoubt_protocol::Mode;
pub use redoubt_sync::Direction;
use redoubt_vault::AccessTable;

use crate::Error;

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
    Ok(redoubt_sync::granted_mode(
        access,
        &peer.to_base58(),
        mode,
        direction,
    )?)
}

/// Every client `access` lets records of move in `direction` with `peer`, ordered by path.
pub fn granted_clients(access: &AccessTable, peer: &PeerId, direction: Direction) -> Vec<Vec<u8>> {
    redoubt_sync::granted_clients(access, &peer.to_base58(), direction)
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;
    use redoubt_vault::Rights;

    use super::*;

    #[test]
    fn a_refusal_is_the_nodes_not_granted_naming_the_peer_in_base58() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let mut t = AccessTable::default();
        let r = Rights {
            read: true,
            write: false,
        };
        t.grant(peer.to_base58().as_bytes(), b"c1", r).unwrap();
        let c1 = Mode::Full {
            client: b"c1".to_vec(),
        };
        assert!(granted_mode(&t, &peer, c1.clone(), Direction::Out).is_ok());
        let err = granted_mode(&t, &peer, c1, Direction::In).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted { right: "write", peer: p, client }
                if *p == peer.to_base58() && client == "c1"),
            "{err}"
        );
        assert_eq!(granted_clients(&t, &peer, Direction::Out), [b"c1".to_vec()]);
        assert!(granted_clients(&t, &peer, Direction::In).is_empty());
    }
}
