//! The remotes a store syncs with through shared storage (`redoubt-remote`): one row per remote
//! name in table [`REMOTES`], holding that crate's state (URL, chosen clients, the storage key,
//! what was seen and uploaded) as an opaque blob, sealed under the data key as grants are.
//!
//! ```text
//! row key   = BLAKE3-keyed(remote id key, name)   remote id key = derive("redoubt store v1
//!                                                  remote id key", state seal key)
//! value     = envelope (version 1 ‖ nonce ‖ XChaCha20-Poly1305) under the state seal key
//! AAD       = "redoubt store v1 remote" ‖ 0x00 ‖ 0x01 ‖ row key
//! plaintext = name length (u8) ‖ name ‖ state
//! ```
//!
//! Writing a remote's state is one durable commit of its own and appends no journal event: it
//! is this device's bookkeeping, not vault content, and never travels to peers.

use redb::{Durability, ReadableDatabase, ReadableTable};
use redoubt_crypto::{Key, XNONCE_LEN, ct_eq, derive, is_versioned};
use zeroize::Zeroizing;

use super::Store;
use crate::{Error, envelope::random_nonce, keys::Keys, tables::REMOTES};

/// Associated-data label of a `remotes` row.
const REMOTE_AAD_LABEL: &[u8] = b"redoubt store v1 remote";
/// Label of the key the `remotes` table's keyed ids are computed under (derived from the state
/// seal key, so the store's key hierarchy needs no new root).
const REMOTE_ID_KEY_LABEL: &str = "redoubt store v1 remote id key";
/// The longest remote name, in bytes.
const MAX_REMOTE_NAME: usize = 64;
/// The largest remote state, checked before sealing and before opening.
const MAX_REMOTE_STATE: usize = 4 << 20;

const ENVELOPE_VERSION: u8 = 1;
const OVERHEAD: usize = 1 + XNONCE_LEN + redoubt_crypto::TAG_LEN;

const _: () = assert!(is_versioned(REMOTE_ID_KEY_LABEL));

impl Store {
    /// The state stored for remote `name`, opened; `None` when there is no such remote.
    pub fn remote(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        check_name(name)?;
        let row = remote_row(&self.keys, name);
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(REMOTES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(value) = table.get(&row)? else {
            return Ok(None);
        };
        let (_, state) = open_remote(&self.keys, &row, value.value())?;
        Ok(Some(state))
    }

    /// Every remote's name, in name order.
    pub fn remote_names(&self) -> Result<Vec<String>, Error> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(REMOTES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            let (name, _) = open_remote(&self.keys, key.value(), value.value())?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    /// Stores `state` as remote `name`'s (replacing what it held), durable when it returns.
    pub fn set_remote(&mut self, name: &str, state: &[u8]) -> Result<(), Error> {
        check_name(name)?;
        if state.len() > MAX_REMOTE_STATE {
            return Err(Error::Malformed("remote state too large"));
        }
        let row = remote_row(&self.keys, name);
        let mut plain = Zeroizing::new(Vec::with_capacity(1 + name.len() + state.len()));
        plain.push(name.len() as u8);
        plain.extend_from_slice(name.as_bytes());
        plain.extend_from_slice(state);
        let nonce = random_nonce()?;
        let sealed = redoubt_crypto::seal_x(&self.keys.state, &nonce, &aad(&row), &plain)?;
        let value = [&[ENVELOPE_VERSION][..], &nonce, &sealed].concat();
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut table = tx.open_table(REMOTES)?;
            table.insert(&row, value.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes remote `name`; whether it was there. Durable when it returns.
    pub fn remove_remote(&mut self, name: &str) -> Result<bool, Error> {
        check_name(name)?;
        let row = remote_row(&self.keys, name);
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        let removed = {
            let mut table = tx.open_table(REMOTES)?;
            table.remove(&row)?.is_some()
        };
        tx.commit()?;
        Ok(removed)
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_REMOTE_NAME {
        return Err(Error::Malformed(
            "remote name empty or longer than 64 bytes",
        ));
    }
    Ok(())
}

fn remote_row(keys: &Keys, name: &str) -> [u8; 32] {
    let id_key: Key = derive(REMOTE_ID_KEY_LABEL, keys.state.expose());
    *blake3::keyed_hash(id_key.expose(), name.as_bytes()).as_bytes()
}

fn aad(row: &[u8; 32]) -> Vec<u8> {
    [REMOTE_AAD_LABEL, &[0, ENVELOPE_VERSION], row].concat()
}

fn open_remote(
    keys: &Keys,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
    let bad = Error::Corrupted("a remote row does not open");
    if bytes.len() > OVERHEAD + 1 + MAX_REMOTE_NAME + MAX_REMOTE_STATE
        || bytes.len() < OVERHEAD
        || bytes[0] != ENVELOPE_VERSION
    {
        return Err(bad);
    }
    let (nonce, sealed) = bytes[1..].split_at(XNONCE_LEN);
    let nonce: &[u8; XNONCE_LEN] = nonce.try_into().map_err(|_| Error::Corrupted("nonce"))?;
    let plain = redoubt_crypto::open_x(&keys.state, nonce, &aad(row), sealed).map_err(|_| bad)?;
    let malformed = Error::Corrupted("a remote row is malformed");
    let (&len, rest) = plain.split_first().ok_or(malformed)?;
    let len = usize::from(len);
    if len == 0 || len > MAX_REMOTE_NAME || rest.len() < len {
        return Err(Error::Corrupted("a remote row is malformed"));
    }
    let name = std::str::from_utf8(&rest[..len])
        .map_err(|_| Error::Corrupted("a remote row's name is not UTF-8"))?
        .to_owned();
    if !ct_eq(&remote_row(keys, &name), row) {
        return Err(Error::Corrupted(
            "a remote row does not belong under its key",
        ));
    }
    Ok((name, Zeroizing::new(rest[len..].to_vec())))
}

#[cfg(test)]
mod tests {
    use crate::{KdfParams, Password, Store};

    #[test]
    fn remote_state_round_trips_sealed_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.redb");
        let pw = Password::new(b"pw".to_vec());
        {
            let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
            assert_eq!(store.remote("nas").unwrap(), None);
            assert!(store.remote_names().unwrap().is_empty());
            store.set_remote("nas", b"state one").unwrap();
            store.set_remote("s3", b"other").unwrap();
            store.set_remote("nas", b"state two").unwrap();
            assert_eq!(store.journal_head().0, 0, "bookkeeping appends no event");
        }
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(9).any(|w| w == b"state two"), "sealed on disk");
        let mut store = Store::open(&path, &pw, &Default::default()).unwrap();
        assert_eq!(
            store.remote("nas").unwrap().unwrap().as_slice(),
            b"state two"
        );
        assert_eq!(store.remote_names().unwrap(), ["nas", "s3"]);
        assert!(store.remove_remote("s3").unwrap());
        assert!(!store.remove_remote("s3").unwrap());
        assert_eq!(store.remote_names().unwrap(), ["nas"]);
        assert!(store.set_remote("", b"x").is_err());
        assert!(store.set_remote(&"n".repeat(65), b"x").is_err());
    }
}
