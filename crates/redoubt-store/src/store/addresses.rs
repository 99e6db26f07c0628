//! The address book: where each paired peer was last seen, one sealed row per peer in table
//! [`ADDRESSES`], under a keyed id of its peer id (never the id itself).
//!
//! ```text
//! row key   = BLAKE3-keyed(address id key, peer id)   address id key = derive("redoubt store
//!                                                      v1 address id key", state seal key)
//! value     = state envelope (version 1 ‖ nonce ‖ XChaCha20-Poly1305) under the state seal key
//! AAD       = "redoubt store v1 address" ‖ 0x00 ‖ 0x01 ‖ row key
//! plaintext = crate::addresses::PeerAddresses::encode
//! ```
//!
//! Only paired peers (holding a grant on some client) are kept; a peer's row goes with its last
//! grant, in the same commit ([`super::grants`]). Writing a row is one durable commit of its
//! own and appends no journal event: it is this device's bookkeeping, never sent to peers.

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use redoubt_crypto::{Key, ct_eq, derive, is_versioned};

use super::Store;
use crate::{
    Error,
    addresses::{
        AddressBook, MAX_ADDRESSES, MAX_PEERS, PeerAddresses, UnreadableRow, check_address,
    },
    envelope::{open_state, random_nonce, seal_state},
    keys::Keys,
    tables::ADDRESSES,
};

/// Associated-data label of an `addresses` row.
pub(crate) const ADDRESS_AAD_LABEL: &[u8] = b"redoubt store v1 address";
/// Label of the key the `addresses` table's keyed ids are computed under (derived from the
/// state seal key).
const ADDRESS_ID_KEY_LABEL: &str = "redoubt store v1 address id key";

const _: () = assert!(is_versioned(ADDRESS_ID_KEY_LABEL));
const _: () = assert!(
    crate::addresses::MAX_ROW_PLAINTEXT + crate::envelope::OVERHEAD
        <= crate::envelope::MAX_STATE_ENVELOPE
);

impl Store {
    /// Every paired peer's row of the address book, in peer id order. A row whose peer holds no
    /// grant any more is left out; a row that does not open or decode (a damaged file) is
    /// skipped and named in [`AddressBook::unreadable`], so one bad row costs only itself.
    pub fn address_book(&self) -> Result<AddressBook, Error> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(ADDRESSES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(AddressBook::default()),
            Err(e) => return Err(e.into()),
        };
        let mut book = AddressBook::default();
        for row in table.iter()? {
            let (key, value) = row?;
            match read_address_row(&self.keys, key.value(), value.value()) {
                Ok(peer) if self.paired(&peer.peer) => book.rows.push(peer),
                Ok(_) => {}
                Err(bad) => book.unreadable.push(bad),
            }
        }
        book.rows.sort_by(|a, b| a.peer.cmp(&b.peer));
        Ok(book)
    }

    /// Notes that `peer` was seen at `addrs` (at most 8, the most recent first) at `now` (Unix
    /// seconds). Kept only for a paired peer, and written (one durable commit) only when an
    /// address is new to its row or the row is a minute old, so a burst of sightings costs one
    /// commit. A peer beyond the book's 1024 is not kept. Whether a row was written.
    pub fn note_addresses(&mut self, peer: &[u8], addrs: &[&str], now: u64) -> Result<bool, Error> {
        if addrs.len() > MAX_ADDRESSES {
            return Err(Error::Malformed("more than 8 addresses noted at once"));
        }
        for a in addrs {
            check_address(a)?;
        }
        if addrs.is_empty() || !self.paired(peer) {
            return Ok(false);
        }
        let row = address_row(&self.keys, peer);
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut table = tx.open_table(ADDRESSES)?;
            let old = match table.get(&row)? {
                Some(v) => Some(open_address_row(&self.keys, &row, v.value())?),
                None => None,
            };
            if old.is_none() && table.len()? >= MAX_PEERS as u64 {
                return Ok(false);
            }
            let mut entry = old.unwrap_or_else(|| PeerAddresses {
                peer: peer.to_vec(),
                addresses: Vec::new(),
            });
            if !entry.note(addrs, now) {
                return Ok(false);
            }
            let sealed = seal_state(
                &self.keys.state,
                ADDRESS_AAD_LABEL,
                &row,
                &entry.encode()?,
                &random_nonce()?,
            )?;
            table.insert(&row, sealed.as_slice())?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Whether `peer` holds a grant on some client.
    fn paired(&self, peer: &[u8]) -> bool {
        self.access.clients_of(peer).next().is_some()
    }
}

/// Removes `peer`'s address book row in `tx` (its last grant goes in the same commit).
pub(super) fn forget_addresses(
    keys: &Keys,
    tx: &WriteTransaction,
    peer: &[u8],
) -> Result<(), Error> {
    let mut table = tx.open_table(ADDRESSES)?;
    table.remove(&address_row(keys, peer))?;
    Ok(())
}

fn address_row(keys: &Keys, peer: &[u8]) -> [u8; 32] {
    let id_key: Key = derive(ADDRESS_ID_KEY_LABEL, keys.state.expose());
    *blake3::keyed_hash(id_key.expose(), peer).as_bytes()
}

/// Opens row `row`: its envelope (size checked first, AAD bound to the row), its plaintext,
/// and that the peer it names belongs under this key.
pub(crate) fn open_address_row(
    keys: &Keys,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<PeerAddresses, Error> {
    read_address_row(keys, row, bytes).map_err(|bad| bad.error)
}

/// [`open_address_row`], naming the peer of a row that opened but is not right, when its
/// plaintext names one.
fn read_address_row(
    keys: &Keys,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<PeerAddresses, UnreadableRow> {
    let unnamed = |error| UnreadableRow { peer: None, error };
    let plain = open_state(
        &keys.state,
        ADDRESS_AAD_LABEL,
        row,
        bytes,
        "an address book row does not open",
    )
    .map_err(unnamed)?;
    let entry = PeerAddresses::decode(&plain).map_err(|error| UnreadableRow {
        peer: PeerAddresses::peer_of(&plain),
        error,
    })?;
    if !ct_eq(&address_row(keys, &entry.peer), row) {
        return Err(UnreadableRow {
            peer: Some(entry.peer),
            error: Error::Corrupted("an address book row does not belong under its key"),
        });
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;
    use redoubt_vault::Rights;

    use super::*;
    use crate::{KdfParams, Password};

    const RW: Rights = Rights {
        read: true,
        write: true,
    };

    fn store(dir: &tempfile::TempDir) -> Store {
        let pw = Password::new(b"pw".to_vec());
        Store::create(&dir.path().join("v.redb"), &pw, KdfParams::insecure_fast()).unwrap()
    }

    /// `entry` sealed as the row under key `row` (whichever peer it names).
    fn sealed_under(s: &Store, row: &[u8; 32], entry: &PeerAddresses) -> Vec<u8> {
        seal_state(
            &s.keys.state,
            ADDRESS_AAD_LABEL,
            row,
            &entry.encode().unwrap(),
            &[0; 24],
        )
        .unwrap()
    }

    #[test]
    fn only_paired_peers_are_kept_sealed_and_their_rows_go_with_their_grants() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let a = "/ip4/192.0.2.7/tcp/4001/p2p/peer-one";
        assert!(
            !s.note_addresses(b"peer-one", &[a], 1000).unwrap(),
            "not paired"
        );
        assert!(s.address_book().unwrap().rows.is_empty());
        s.set_rights(b"peer-one", b"alice", RW).unwrap();
        s.set_rights(b"peer-one", b"bob", RW).unwrap();
        assert!(s.note_addresses(b"peer-one", &[a], 1000).unwrap());
        assert!(
            !s.note_addresses(b"peer-one", &[a], 1030).unwrap(),
            "bounded"
        );
        let book = s.address_book().unwrap().rows;
        assert_eq!(book.len(), 1);
        assert_eq!(
            (book[0].peer.as_slice(), book[0].addresses[0].last_seen),
            (&b"peer-one"[..], 1000)
        );
        assert_eq!(s.journal_head().0, 2, "bookkeeping appends no event");
        let raw = std::fs::read(s.path()).unwrap();
        assert!(
            !raw.windows(12).any(|w| w == b"192.0.2.7/tc"),
            "sealed on disk"
        );
        assert!(
            !raw.windows(8).any(|w| w == b"peer-one"),
            "keyed, never plain"
        );
        s.revoke(b"peer-one", Some(b"alice")).unwrap();
        assert_eq!(
            s.address_book().unwrap().rows.len(),
            1,
            "still paired on bob"
        );
        s.set_rights(b"peer-one", b"bob", Rights::default())
            .unwrap();
        assert!(s.address_book().unwrap().rows.is_empty());
        let tx = s.db.begin_read().unwrap();
        assert_eq!(
            tx.open_table(ADDRESSES).unwrap().len().unwrap(),
            0,
            "row removed"
        );
    }

    #[test]
    fn a_row_moved_or_altered_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        for peer in [&b"peer-one"[..], b"peer-two"] {
            s.set_rights(peer, b"alice", RW).unwrap();
            s.note_addresses(peer, &["/ip4/192.0.2.7/tcp/1"], 5)
                .unwrap();
        }
        let (one, two) = (
            address_row(&s.keys, b"peer-one"),
            address_row(&s.keys, b"peer-two"),
        );
        let tx = s.db.begin_read().unwrap();
        let value = tx
            .open_table(ADDRESSES)
            .unwrap()
            .get(&one)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert!(open_address_row(&s.keys, &one, &value).is_ok());
        assert!(
            open_address_row(&s.keys, &two, &value).is_err(),
            "wrong AAD"
        );
        let mut flipped = value.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open_address_row(&s.keys, &one, &flipped).is_err());
        assert!(
            open_address_row(&s.keys, &one, &vec![1; 5000]).is_err(),
            "over the cap"
        );
        // A row sealed under its own key but naming another peer is refused too.
        let other = PeerAddresses {
            peer: b"peer-two".to_vec(),
            addresses: Vec::new(),
        };
        let sealed = sealed_under(&s, &one, &other);
        assert!(open_address_row(&s.keys, &one, &sealed).is_err());
    }

    #[test]
    fn the_book_holds_at_most_1024_peers() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::in_memory_from(
            redoubt_vault::Instance::new(redoubt_vault::NodeId::from_bytes([1; 16])),
            &Default::default(),
        )
        .unwrap();
        drop(dir);
        let mut tx = s.db.begin_write().unwrap();
        tx.set_durability(Durability::None).unwrap();
        {
            let mut table = tx.open_table(ADDRESSES).unwrap();
            for i in 0..MAX_PEERS as u32 {
                let mut row = [0u8; 32];
                row[..4].copy_from_slice(&i.to_le_bytes());
                table.insert(&row, &[0u8][..]).unwrap();
            }
        }
        tx.commit().unwrap();
        s.set_rights(b"peer-new", b"alice", RW).unwrap();
        assert!(
            !s.note_addresses(b"peer-new", &["/ip4/192.0.2.7/tcp/1"], 5)
                .unwrap()
        );
        assert!(s.note_addresses(b"peer-new", &["x"; 9], 5).is_err());
        assert!(s.note_addresses(b"peer-new", &[""], 5).is_err());
    }

    #[test]
    fn a_damaged_row_is_skipped_and_named_the_others_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        for peer in [&b"peer-one"[..], b"peer-two", b"peer-six"] {
            s.set_rights(peer, b"alice", RW).unwrap();
            assert!(
                s.note_addresses(peer, &["/ip4/192.0.2.7/tcp/1"], 5)
                    .unwrap()
            );
        }
        let (one, two) = (
            address_row(&s.keys, b"peer-one"),
            address_row(&s.keys, b"peer-two"),
        );
        // peer-one's row no longer opens; peer-two's row holds peer-six's (it opens, but names
        // a peer that does not belong under its key).
        let six = {
            let tx = s.db.begin_read().unwrap();
            let table = tx.open_table(ADDRESSES).unwrap();
            let six = table
                .get(&address_row(&s.keys, b"peer-six"))
                .unwrap()
                .unwrap();
            open_address_row(&s.keys, &address_row(&s.keys, b"peer-six"), six.value()).unwrap()
        };
        let resealed = sealed_under(&s, &two, &six);
        let tx = s.db.begin_write().unwrap();
        {
            let mut table = tx.open_table(ADDRESSES).unwrap();
            table.insert(&one, &[7u8; 60][..]).unwrap();
            table.insert(&two, resealed.as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let book = s.address_book().unwrap();
        let peers: Vec<&[u8]> = book.rows.iter().map(|r| r.peer.as_slice()).collect();
        assert_eq!(peers, [&b"peer-six"[..]], "the readable row is still read");
        assert_eq!(book.unreadable.len(), 2);
        let mut named: Vec<Option<&[u8]>> =
            book.unreadable.iter().map(|u| u.peer.as_deref()).collect();
        named.sort();
        assert_eq!(named, [None, Some(&b"peer-six"[..])]);
    }
}
