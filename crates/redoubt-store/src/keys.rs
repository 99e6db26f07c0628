//! The key hierarchy (age's file-key pattern): a random data key, wrapped under the
//! Argon2id password key; every other key is derived from the data key under a versioned label.
//!
//! ```text
//! password ──Argon2id(salt, params)──▶ password key ──▶ check   ("redoubt store v1 password check")
//!                                            └──wraps──▶ data key (random, 256 bits)
//! data key ──derive──▶ record id key    ("redoubt store v1 record id key")
//!          ──derive──▶ grant id key     ("redoubt store v1 grant id key")
//!          ──derive──▶ record seal key  ("redoubt store v1 record key")
//!          ──derive──▶ state seal key   ("redoubt store v1 state key")
//!          ──derive──▶ journal seal key ("redoubt store v1 journal key")
//!          ──derive──▶ sketch id key    ("redoubt store v1 sketch id key", format 2)
//! ```

use redoubt_crypto::{Key, derive, is_versioned};
use redoubt_snapshot::{KdfLimits, KdfParams};
use redoubt_vault::{ClientId, RecordId, VaultId};
use zeroize::Zeroizing;

use crate::Error;

/// Label of the password check value stored in `meta`.
pub const PASSWORD_CHECK_LABEL: &str = "redoubt store v1 password check";
/// Label of the key the `records` table's keyed ids are computed under.
pub const RECORD_ID_KEY_LABEL: &str = "redoubt store v1 record id key";
/// Label of the key the `grants` table's keyed ids are computed under.
pub const GRANT_ID_KEY_LABEL: &str = "redoubt store v1 grant id key";
/// Label of the key record envelopes are sealed under.
pub const RECORD_KEY_LABEL: &str = "redoubt store v1 record key";
/// Label of the key the identity, clock and grant rows are sealed under.
pub const STATE_KEY_LABEL: &str = "redoubt store v1 state key";
/// Label of the key journal events are sealed under.
pub const JOURNAL_KEY_LABEL: &str = "redoubt store v1 journal key";
/// Label of the key the `clients` and `sketch index` tables' keyed ids are computed under
/// (format 2).
pub const SKETCH_ID_KEY_LABEL: &str = "redoubt store v1 sketch id key";
/// Associated-data prefix of the wrapped data key ([`DATA_KEY_AAD_VERSION`] follows, u16 LE).
pub const DATA_KEY_AAD: &[u8] = b"redoubt store v1 data key";
/// The version in the wrapped data key's associated data: 1, the format that introduced the
/// wrap. Format 2 wraps the key the same way, so a store migrated from format 1 keeps its row.
pub const DATA_KEY_AAD_VERSION: u16 = 1;

const _: () = assert!(
    is_versioned(PASSWORD_CHECK_LABEL)
        && is_versioned(RECORD_ID_KEY_LABEL)
        && is_versioned(GRANT_ID_KEY_LABEL)
        && is_versioned(RECORD_KEY_LABEL)
        && is_versioned(STATE_KEY_LABEL)
        && is_versioned(JOURNAL_KEY_LABEL)
        && is_versioned(SKETCH_ID_KEY_LABEL)
);

/// A password: wiped on drop, never printed.
///
/// The store runs Argon2id itself: `redoubt_snapshot::Password` keeps its bytes to its own
/// crate, so it cannot be handed to a second KDF call site.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The Argon2id output for one password, salt and parameters. Wiped on drop, never printed.
pub(crate) struct PasswordKey(Key);

impl PasswordKey {
    /// Runs Argon2id (version 0x13, 32-byte output), as the snapshot file does.
    pub(crate) fn derive(
        password: &Password,
        params: KdfParams,
        salt: &[u8; 16],
    ) -> Result<Self, Error> {
        let invalid = |e: argon2::Error| Error::InvalidKdfParams(e.to_string());
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(invalid)?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(&password.0, salt, out.as_mut())
            .map_err(invalid)?;
        Ok(Self(Key::from_bytes(*out)))
    }

    /// The check value stored in `meta`: tells a wrong password apart from a damaged key row.
    pub(crate) fn check(&self) -> [u8; 32] {
        *derive(PASSWORD_CHECK_LABEL, self.0.expose()).expose()
    }

    /// Seals the data key: `nonce (24) ‖ XChaCha20-Poly1305(data key) (48)`.
    pub(crate) fn wrap(&self, data: &DataKey, nonce: &[u8; 24]) -> Result<Vec<u8>, Error> {
        let sealed = redoubt_crypto::seal_x(&self.0, nonce, &data_key_aad(), data.0.expose())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`Self::wrap`] made.
    pub(crate) fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, Error> {
        let bad = Error::Corrupted("the wrapped data key does not open");
        if wrapped.len() != WRAPPED_LEN {
            return Err(bad);
        }
        let (nonce, sealed) = wrapped.split_at(24);
        let nonce: &[u8; 24] = nonce.try_into().map_err(|_| Error::Corrupted("nonce"))?;
        let key =
            redoubt_crypto::open_x(&self.0, nonce, &data_key_aad(), sealed).map_err(|_| bad)?;
        let bytes: [u8; 32] = key[..]
            .try_into()
            .map_err(|_| Error::Corrupted("the data key has the wrong length"))?;
        Ok(DataKey(Key::from_bytes(bytes)))
    }
}

/// Length of the wrapped data key row: nonce, key, tag.
pub(crate) const WRAPPED_LEN: usize = 24 + 32 + 16;

fn data_key_aad() -> Vec<u8> {
    [DATA_KEY_AAD, &DATA_KEY_AAD_VERSION.to_le_bytes()].concat()
}

/// The random 256-bit data key every other key of the store derives from.
pub(crate) struct DataKey(Key);

impl DataKey {
    pub(crate) fn random() -> Result<Self, Error> {
        Ok(Self(Key::random()?))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Key::from_bytes(bytes))
    }

    /// The subkeys.
    pub(crate) fn keys(&self) -> Keys {
        let k = self.0.expose();
        Keys {
            record_ids: derive(RECORD_ID_KEY_LABEL, k),
            grant_ids: derive(GRANT_ID_KEY_LABEL, k),
            records: derive(RECORD_KEY_LABEL, k),
            state: derive(STATE_KEY_LABEL, k),
            journal: derive(JOURNAL_KEY_LABEL, k),
            sketch_ids: derive(SKETCH_ID_KEY_LABEL, k),
        }
    }
}

/// The keys a store works with once open. Each wiped on drop; `Debug` prints `..`.
pub(crate) struct Keys {
    pub(crate) record_ids: Key,
    pub(crate) grant_ids: Key,
    pub(crate) records: Key,
    pub(crate) state: Key,
    pub(crate) journal: Key,
    pub(crate) sketch_ids: Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// The `records` table key of a location: blake3 keyed by the record id key over
    /// `client id ‖ vault id ‖ record id` (32 bytes each).
    pub(crate) fn record_row(
        &self,
        client: &ClientId,
        (vault, record): (VaultId, RecordId),
    ) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.record_ids.expose());
        h.update(client.as_bytes());
        h.update(vault.as_bytes());
        h.update(record.as_bytes());
        *h.finalize().as_bytes()
    }

    /// The `clients` table key of a client: blake3 keyed by the sketch id key over
    /// `"client" ‖ client id`.
    pub(crate) fn client_row(&self, client: &ClientId) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.sketch_ids.expose());
        h.update(b"client");
        h.update(client.as_bytes());
        *h.finalize().as_bytes()
    }

    /// The `sketch index` table key of an element key of a client: blake3 keyed by the sketch
    /// id key over `"index" ‖ client id ‖ key (u64 LE)`.
    pub(crate) fn index_row(&self, client: &ClientId, key: u64) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.sketch_ids.expose());
        h.update(b"index");
        h.update(client.as_bytes());
        h.update(&key.to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// The `grants` table key of (peer, client): blake3 keyed by the grant id key over
    /// `peer length (u16 LE) ‖ peer ‖ client path`.
    pub(crate) fn grant_row(&self, peer: &[u8], client: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(self.grant_ids.expose());
        h.update(&u16::try_from(peer.len()).unwrap_or(u16::MAX).to_le_bytes());
        h.update(peer);
        h.update(client);
        *h.finalize().as_bytes()
    }
}

/// Checks `params` against `limits` and Argon2's minimums, by the snapshot file's rule (at
/// least 8 KiB per lane), before any KDF runs.
pub(crate) fn check_params(params: &KdfParams, limits: &KdfLimits) -> Result<(), Error> {
    params.check_within(limits).map_err(|e| match e {
        redoubt_snapshot::Error::InvalidKdfParams(why) => Error::InvalidKdfParams(why),
        other => Error::InvalidKdfParams(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_the_check_tells_passwords_apart() {
        let params = KdfParams::insecure_fast();
        let pk = PasswordKey::derive(&Password::new(b"pw".to_vec()), params, &[1; 16]).unwrap();
        let other = PasswordKey::derive(&Password::new(b"pW".to_vec()), params, &[1; 16]).unwrap();
        assert_ne!(pk.check(), other.check());
        let data = DataKey::from_bytes([9; 32]);
        let wrapped = pk.wrap(&data, &[2; 24]).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(pk.unwrap_key(&wrapped).unwrap().0.expose(), &[9; 32]);
        assert!(other.unwrap_key(&wrapped).is_err());
        let mut bad = wrapped.clone();
        bad[30] ^= 1;
        assert!(matches!(pk.unwrap_key(&bad), Err(Error::Corrupted(_))));
        assert!(pk.unwrap_key(&wrapped[1..]).is_err());
    }

    #[test]
    fn subkeys_and_row_ids_are_separated() {
        let keys = DataKey::from_bytes([3; 32]).keys();
        let all = [
            keys.record_ids.expose(),
            keys.grant_ids.expose(),
            keys.records.expose(),
            keys.state.expose(),
            keys.journal.expose(),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
        let c = ClientId::from_path(b"c");
        let ids = (VaultId::from_path(b"v"), RecordId::from_path(b"r"));
        let other = DataKey::from_bytes([4; 32]).keys();
        assert_ne!(keys.record_row(&c, ids), other.record_row(&c, ids));
        assert_ne!(keys.grant_row(b"ab", b"c"), keys.grant_row(b"a", b"bc"));
        assert_eq!(format!("{keys:?}"), "Keys(..)");
        assert_eq!(
            format!("{:?}", Password::new(b"x".to_vec())),
            "Password(..)"
        );
    }

    #[test]
    fn limits_are_checked_before_the_kdf() {
        let limits = KdfLimits::default();
        assert!(check_params(&KdfParams::default(), &limits).is_ok());
        let huge = KdfParams {
            memory_kib: u32::MAX,
            ..KdfParams::default()
        };
        assert!(matches!(
            check_params(&huge, &limits),
            Err(Error::InvalidKdfParams(_))
        ));
        let zero = KdfParams {
            parallelism: 0,
            ..KdfParams::default()
        };
        assert!(check_params(&zero, &limits).is_err());
    }
}
