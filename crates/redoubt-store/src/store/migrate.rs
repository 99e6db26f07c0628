//! Changing the password (one rewrap of the data key), and moving between the store and the
//! format-1 snapshot file: migrating a snapshot into a new store, and exporting a store as a
//! snapshot (what `sync-file` reads, and a backup).

use std::path::Path;

use redb::{Durability, ReadableDatabase, ReadableTable};
use redoubt_crypto::ct_eq;
use redoubt_snapshot::{KdfLimits, KdfParams, Snapshot};
use redoubt_vault::{AccessTable, Instance};

use super::{Store, check_client, decode_kdf, encode_kdf, grants::seal_grant};
use crate::{
    Error,
    envelope::{random_nonce, seal_record},
    keys::{Keys, Password, PasswordKey, check_params},
    tables::{META_CHECK, META_DATA_KEY, META_KDF, Tables},
};

impl Store {
    /// Changes the password: checks `old` against the stored check value, then rewraps the
    /// same data key under the Argon2id key of `new` with a fresh random salt and `params`, in
    /// one durable commit ([`Durability::Immediate`]) that writes three `meta` rows (`kdf`,
    /// `password check`, `data key`) and nothing else: no record, grant, identity or journal
    /// row is rewritten.
    ///
    /// Errors: [`Error::InvalidKdfParams`] (`params` fail the default [`KdfLimits`]),
    /// [`Error::WrongPassword`] (`old` does not open this store), [`Error::Corrupted`] (the
    /// `meta` rows are missing or damaged, or the wrapped key is not this store's). On any
    /// error nothing was written: the old password still opens the store.
    ///
    /// Not recorded in the journal: schema version 1 has no event kind for it (an event names
    /// record versions and grant changes only), and a password is a local matter, not a change
    /// to ship to other devices. The data key itself stays the same (this is a rewrap, not a
    /// rekey): whoever has a copy of the file from before and the old password can still derive
    /// it (see `docs/store-format.md`).
    pub fn change_password(
        &mut self,
        old: &Password,
        new: &Password,
        params: KdfParams,
    ) -> Result<(), Error> {
        check_params(&params, &KdfLimits::default())?;
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut t = Tables::new(&tx)?;
            let missing = |what| move || Error::Corrupted(what);
            let row = |t: &Tables<'_>, name| -> Result<Option<Vec<u8>>, Error> {
                Ok(t.meta.get(name)?.map(|v| v.value().to_vec()))
            };
            let kdf = row(&t, META_KDF)?.ok_or_else(missing("the KDF row is missing"))?;
            let (old_params, old_salt) = decode_kdf(&kdf)?;
            // The stored parameters opened this store, so they are within what it accepts.
            let old_key = PasswordKey::derive(old, old_params, &old_salt)?;
            let check = row(&t, META_CHECK)?
                .and_then(|c| <[u8; 32]>::try_from(c.as_slice()).ok())
                .ok_or_else(missing("the password check row is missing or damaged"))?;
            if !ct_eq(&old_key.check(), &check) {
                return Err(Error::WrongPassword);
            }
            let wrapped = row(&t, META_DATA_KEY)?
                .ok_or_else(missing("the wrapped data key row is missing"))?;
            let data = old_key.unwrap_key(&wrapped)?;
            if !ct_eq(data.keys().state.expose(), self.keys.state.expose()) {
                return Err(Error::Corrupted(
                    "the wrapped data key is not the one this store was opened with",
                ));
            }

            let mut salt = [0u8; 16];
            redoubt_crypto::fill_random(&mut salt)?;
            let new_key = PasswordKey::derive(new, params, &salt)?;
            let rewrapped = new_key.wrap(&data, &random_nonce()?)?;
            t.meta
                .insert(META_KDF, encode_kdf(&params, &salt).as_slice())?;
            t.meta.insert(META_CHECK, new_key.check().as_slice())?;
            t.meta.insert(META_DATA_KEY, rewrapped.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Creates a new store at `path` from a format-1 snapshot, sealed under `password` with
    /// `params`: the snapshot's identity (same ed25519 seed, so the same peer id and node id),
    /// its clock, every grant and every record version (tombstones included), all in the
    /// store's first transaction. Refuses to touch anything already at `path`
    /// ([`Error::AlreadyExists`]); on any other failure nothing is left at `path`.
    ///
    /// The journal starts empty: the migrated records are the base state, as a store's records
    /// table always is, and the first commit after is event 1 (a vault of any size migrates
    /// without one event holding all of it).
    pub fn create_from_snapshot(
        path: &Path,
        snapshot: &Snapshot,
        password: &Password,
        params: KdfParams,
    ) -> Result<Self, Error> {
        let identity = snapshot.identity.clone();
        let mut instance = Instance::with_clock(identity.node_id(), snapshot.instance.clock());
        for (client_id, client) in snapshot.instance.clients() {
            check_client(client)?;
            for record in snapshot.instance.records(client_id) {
                instance.restore(client, record.clone())?;
            }
        }
        debug_assert_eq!(
            instance.state_digest(),
            snapshot.instance.state_digest(),
            "restoring every version holds the same state"
        );
        let grants = &snapshot.access;
        Self::create_with(
            path,
            password,
            params,
            identity,
            instance,
            |t, keys, records| fill(t, keys, records, grants),
        )
    }

    /// The store's whole state as a format-1 snapshot: identity, grants and every record
    /// (tombstones included, histories too while it stays in memory, as a rekey uses it) with
    /// the clock. Format 1 carries no lineage: sealed into a file, it holds each record's
    /// current version, parentless, and histories stay in the store (a merge back recognises
    /// each as the same write, `docs/vault-model.md`). Seal it with [`Snapshot::seal`] (or write
    /// it with `redoubt_snapshot::VaultFile`) for `sync-file` or a backup; it migrates back
    /// with [`Self::create_from_snapshot`].
    ///
    /// Fails with [`Error::RecordCorrupted`], naming the first damaged row, when a record row
    /// does not open: a snapshot that silently left records
    /// out would not be a backup.
    pub fn export(&self) -> Result<Snapshot, Error> {
        let (instance, damaged) =
            super::load_records(&self.db.begin_read()?, &self.keys, self.node, self.clock)?;
        if let Some(row) = damaged.iter().next() {
            return Err(Error::RecordCorrupted {
                row: redoubt_vault::hex(row),
                reason: "the record would be missing from the export",
            });
        }
        Ok(Snapshot {
            identity: self.identity.clone(),
            access: self.access.clone(),
            // Whole records, histories included: a rekey moves them all. Format 1 has no
            // lineage, so sealing the snapshot into a file keeps current versions only.
            instance,
        })
    }
}

/// Writes every record version of `records` and every grant of `grants` into a new store's
/// first transaction; returns the grants as the store holds them.
pub(super) fn fill(
    t: &mut Tables<'_>,
    keys: &Keys,
    records: &Instance,
    grants: &AccessTable,
) -> Result<AccessTable, Error> {
    for (client_id, client) in records.clients() {
        for record in records.records(client_id) {
            let row = keys.record_row(client_id, record.location().ids());
            let sealed = seal_record(&keys.records, &row, client, record, &random_nonce()?)?;
            t.records.insert(&row, sealed.as_slice())?;
        }
    }
    let mut access = AccessTable::default();
    for (peer, client, rights) in grants.iter() {
        access.grant(peer, client, rights)?;
        if rights.bits() == 0 {
            continue;
        }
        let row = keys.grant_row(peer, client);
        t.grants.insert(
            &row,
            seal_grant(keys, &row, peer, client, rights)?.as_slice(),
        )?;
    }
    Ok(access)
}

#[cfg(test)]
mod tests {
    use redoubt_snapshot::Identity;
    use redoubt_vault::{Location, Record, SecretValue, Stamp};

    use super::*;

    #[test]
    fn a_creation_that_fails_midway_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let identity = Identity::from_seed([7; 32]);
        let instance = Instance::new(identity.node_id());
        let made = Store::create_with(
            &path,
            &Password::new(b"pw".to_vec()),
            KdfParams::insecure_fast(),
            identity,
            instance,
            |t, keys, _| {
                // Some rows are written, then the migration fails.
                let loc = Location::new("v", "r")?;
                let stamp = Stamp {
                    wall_ms: 1,
                    counter: 0,
                    node: redoubt_vault::NodeId::from_bytes([1; 16]),
                };
                let record = Record::live(loc, stamp, SecretValue::new(b"x".to_vec()))?;
                let client = redoubt_vault::ClientId::from_path(b"c");
                let row = keys.record_row(&client, record.location().ids());
                let sealed = seal_record(&keys.records, &row, b"c", &record, &random_nonce()?)?;
                t.records.insert(&row, sealed.as_slice())?;
                Err(Error::Corrupted("injected failure"))
            },
        );
        assert!(matches!(made, Err(Error::Corrupted("injected failure"))));
        assert!(!path.exists(), "no half-made store is left behind");
        // And the path is free for a real store.
        Store::create(
            &path,
            &Password::new(b"pw".to_vec()),
            KdfParams::insecure_fast(),
        )
        .unwrap();
    }
}
