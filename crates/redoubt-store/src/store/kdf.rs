//! Reading the store's KDF settings back: what `passwd` keeps and `export` seals with.

use redb::ReadableDatabase;
use redoubt_snapshot::KdfParams;

use super::{Store, decode_kdf};
use crate::{
    Error,
    tables::{META, META_KDF, read_row},
};

impl Store {
    /// The Argon2id parameters the password is stretched with now (the `meta` KDF row; the
    /// salt is not returned). A password change or an export that should cost a guesser as
    /// much as this store does uses them.
    pub fn kdf_params(&self) -> Result<KdfParams, Error> {
        let tx = self.db.begin_read()?;
        let kdf =
            read_row(&tx, META, META_KDF)?.ok_or(Error::Corrupted("the KDF row is missing"))?;
        Ok(decode_kdf(&kdf)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Password;

    #[test]
    fn kdf_params_follow_create_and_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let old = Password::new(b"old".to_vec());
        let fast = KdfParams::insecure_fast();
        let mut store = Store::create(&dir.path().join("s.redb"), &old, fast).unwrap();
        assert_eq!(store.kdf_params().unwrap(), fast);
        let more = KdfParams {
            memory_kib: 16,
            iterations: 2,
            parallelism: 1,
        };
        store
            .change_password(&old, &Password::new(b"new".to_vec()), more)
            .unwrap();
        assert_eq!(store.kdf_params().unwrap(), more);
    }
}
