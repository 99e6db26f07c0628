//! The grants a store holds: reading, setting and revoking them (each change one durable
//! commit with its journal event), and the sealed form of a `grants` row.

use redb::Durability;
use redoubt_crypto::ct_eq;
use redoubt_vault::{
    AccessTable, MAX_PATH_LEN, Rights,
    codec::{Reader, Writer},
};

use super::{Store, addresses::forget_addresses};
use crate::{
    Error,
    envelope::{GRANT_AAD_LABEL, open_state, random_nonce, seal_state},
    journal::v1::GrantChange,
    keys::Keys,
    tables::Tables,
};

impl Store {
    /// Every grant.
    pub fn grants(&self) -> &AccessTable {
        &self.access
    }

    /// The rights `peer` holds on `client` (none by default).
    pub fn rights(&self, peer: &[u8], client: &[u8]) -> Rights {
        self.access.rights(peer, client)
    }

    /// Sets exactly `rights` for `peer` on `client` (no rights removes the grant); durable
    /// when it returns.
    pub fn set_rights(&mut self, peer: &[u8], client: &[u8], rights: Rights) -> Result<(), Error> {
        self.set_rights_many(peer, &[(client, rights)])
    }

    /// Sets exactly the given rights for `peer` on each client in `grants`, all in ONE commit
    /// with one journal event: every grant is recorded, or (any path refused, any write
    /// failed) none is. Pairing grants a new device its clients this way.
    pub fn set_rights_many(
        &mut self,
        peer: &[u8],
        grants: &[(&[u8], Rights)],
    ) -> Result<(), Error> {
        let mut rows = Vec::with_capacity(grants.len());
        let mut changes = Vec::with_capacity(grants.len());
        // Grants are matched against a connecting peer's text id: raw bytes (a libp2p
        // `PeerId::to_bytes()`) would be recorded, and let no one in.
        if !peer.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::PeerIdNotText);
        }
        for &(client, rights) in grants {
            // The access table checks the peer id and client path, before anything is written.
            AccessTable::default().grant(peer, client, rights)?;
            let row = self.keys.grant_row(peer, client);
            let sealed = if rights.bits() == 0 {
                None
            } else {
                Some(seal_grant(&self.keys, &row, peer, client, rights)?)
            };
            rows.push((row, sealed));
            changes.push(GrantChange {
                peer: peer.to_vec(),
                client: client.to_vec(),
                rights,
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        // A peer left with no grant is no longer paired: its address book row goes too.
        let unpaired = !grants.iter().any(|(_, r)| r.bits() != 0)
            && self
                .access
                .clients_of(peer)
                .all(|(c, _)| grants.iter().any(|(g, _)| *g == c));
        let event = self.next_event(self.clock, Vec::new(), changes)?;
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        if unpaired {
            forget_addresses(&self.keys, &tx, peer)?;
        }
        let folding = {
            let mut t = Tables::new(&tx)?;
            for (row, sealed) in &rows {
                match sealed {
                    Some(sealed) => {
                        t.grants.insert(row, sealed.as_slice())?;
                    }
                    None => {
                        t.grants.remove(row)?;
                    }
                }
            }
            self.append(&mut t, &event)?
        };
        tx.commit()?;
        self.appended(event, folding);
        for &(client, rights) in grants {
            self.access.revoke(peer, Some(client));
            self.access.grant(peer, client, rights)?;
        }
        Ok(())
    }

    /// Removes `peer`'s grant on `client`, or on every client when `None`, in one commit;
    /// returns how many were removed.
    pub fn revoke(&mut self, peer: &[u8], client: Option<&[u8]>) -> Result<usize, Error> {
        let (rows, changes): (Vec<[u8; 32]>, Vec<GrantChange>) = self
            .access
            .clients_of(peer)
            .filter(|(c, _)| client.is_none_or(|want| want == *c))
            .map(|(c, _)| {
                let change = GrantChange {
                    peer: peer.to_vec(),
                    client: c.to_vec(),
                    rights: Rights::default(),
                };
                (self.keys.grant_row(peer, c), change)
            })
            .unzip();
        if rows.is_empty() {
            return Ok(0);
        }
        let unpaired = client.is_none() || self.access.clients_of(peer).count() == rows.len();
        let event = self.next_event(self.clock, Vec::new(), changes)?;
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        if unpaired {
            forget_addresses(&self.keys, &tx, peer)?;
        }
        let folding = {
            let mut t = Tables::new(&tx)?;
            for row in &rows {
                t.grants.remove(row)?;
            }
            self.append(&mut t, &event)?
        };
        tx.commit()?;
        self.appended(event, folding);
        Ok(self.access.revoke(peer, client))
    }
}

pub(super) fn seal_grant(
    keys: &Keys,
    row: &[u8; 32],
    peer: &[u8],
    client: &[u8],
    rights: Rights,
) -> Result<Vec<u8>, Error> {
    let mut w = Writer::<Error>::new();
    w.checked_bytes_u16(peer, redoubt_vault::MAX_PEER_ID_LEN, "peer id too long")?;
    w.checked_bytes_u16(client, MAX_PATH_LEN, "client path too long")?;
    w.u8(rights.bits());
    seal_state(
        &keys.state,
        GRANT_AAD_LABEL,
        row,
        &w.into_bytes(),
        &random_nonce()?,
    )
}

pub(super) fn open_grant(
    keys: &Keys,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, Rights), Error> {
    let plain = open_state(
        &keys.state,
        GRANT_AAD_LABEL,
        row,
        bytes,
        "a grant row does not open",
    )?;
    let bad = |_| Error::Corrupted("a grant row is malformed");
    let mut r = Reader::<Error>::new(&plain);
    let peer = r
        .bytes_u16(redoubt_vault::MAX_PEER_ID_LEN, "peer id too long")
        .map_err(bad)?
        .to_vec();
    let client = r.path().map_err(bad)?.to_vec();
    let rights = Rights::from_bits(r.u8().map_err(bad)?)
        .ok_or(Error::Corrupted("a grant row has unknown rights"))?;
    r.finish().map_err(bad)?;
    if !ct_eq(&keys.grant_row(&peer, &client), row) {
        return Err(Error::Corrupted(
            "a grant row does not belong under its key",
        ));
    }
    Ok((peer, client, rights))
}
