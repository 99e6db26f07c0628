//! Changing the password: one rewrap of the data key.

use redb::{Durability, ReadableTable};
use redoubt_crypto::ct_eq;
use redoubt_snapshot::{KdfLimits, KdfParams};

use super::{Store, decode_kdf, encode_kdf};
use crate::{
    Error,
    envelope::random_nonce,
    keys::{Password, PasswordKey, check_params},
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
}
