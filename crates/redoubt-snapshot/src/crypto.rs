//! Every cryptographic step of the snapshot, each a short function: the password KDF
//! (Argon2id), its subkeys, sealing and opening the body. The primitives (XChaCha20-Poly1305,
//! blake3 key derivation, randomness, constant-time comparison) are [`redoubt_crypto`]'s.

use redoubt_crypto::{Key, derive, is_versioned};
use zeroize::Zeroizing;

use crate::{Error, KdfParams};

/// Subkey context: the body encryption key.
pub const BODY_KEY_CONTEXT: &str = "redoubt snapshot v1 body key";
/// Subkey context: the password check value stored in the header.
pub const PASSWORD_CHECK_CONTEXT: &str = "redoubt snapshot v1 password check";

const _: () = assert!(is_versioned(BODY_KEY_CONTEXT) && is_versioned(PASSWORD_CHECK_CONTEXT));

/// A password: wiped on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Keys derived from a password: kept after a load so that saving needs no second KDF run.
#[derive(Clone)]
pub struct SealKey {
    pub(crate) params: KdfParams,
    pub(crate) salt: [u8; 16],
    pub(crate) body_key: Key,
    pub(crate) check: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl SealKey {
    /// Runs Argon2id over the password with a fresh random salt.
    pub fn generate(password: &Password, params: KdfParams) -> Result<Self, Error> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Self::derive(password, params, salt)
    }

    /// Runs Argon2id (version 0x13, 32-byte output) and derives the subkeys.
    pub fn derive(password: &Password, params: KdfParams, salt: [u8; 16]) -> Result<Self, Error> {
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut master = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password.expose(), &salt, master.as_mut())
            .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        Ok(Self {
            params,
            salt,
            body_key: derive(BODY_KEY_CONTEXT, master.as_ref()),
            check: *derive(PASSWORD_CHECK_CONTEXT, master.as_ref()).expose(),
        })
    }

    /// The KDF parameters this key was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }
}

/// Seals `plaintext` with XChaCha20-Poly1305, binding `aad` ([`redoubt_crypto::seal_x`]).
pub(crate) fn seal(
    key: &Key,
    nonce: &[u8; 24],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    redoubt_crypto::seal_x(key, nonce, aad, plaintext)
        .map_err(|_| Error::Corrupted("encryption failed"))
}

/// Opens what [`seal`] made; any change to key, nonce, `aad` or ciphertext fails.
pub(crate) fn open(
    key: &Key,
    nonce: &[u8; 24],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    redoubt_crypto::open_x(key, nonce, aad, ciphertext)
        .map_err(|_| Error::Corrupted("body authentication failed"))
}

/// Fills `buf` from the operating system's random number generator
/// ([`redoubt_crypto::fill_random`]).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    redoubt_crypto::fill_random(buf).map_err(|e| match e {
        redoubt_crypto::Error::Random(source) => Error::Random(source.to_string()),
        other => Error::Random(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn subkeys_are_the_labelled_derivations_of_the_argon2id_output() {
        let password = Password::new(b"pw".to_vec());
        let key = SealKey::derive(&password, tiny(), [3; 16]).unwrap();
        let again = SealKey::derive(&password, tiny(), [3; 16]).unwrap();
        assert_eq!(key.body_key.expose(), again.body_key.expose());
        assert_ne!(key.body_key.expose(), &key.check, "two labels, two keys");
        let other_salt = SealKey::derive(&password, tiny(), [4; 16]).unwrap();
        assert_ne!(key.check, other_salt.check);
        let other_password = SealKey::derive(&Password::new(b"pW".to_vec()), tiny(), [3; 16]);
        assert_ne!(key.check, other_password.unwrap().check);
    }

    #[test]
    fn the_body_opens_only_under_its_key_nonce_and_header() {
        let key = Key::from_bytes([5; 32]);
        let sealed = seal(&key, &[1; 24], b"header", b"body").unwrap();
        assert_eq!(
            &open(&key, &[1; 24], b"header", &sealed).unwrap()[..],
            b"body"
        );
        let mut tag = sealed.clone();
        *tag.last_mut().unwrap() ^= 1;
        for bad in [
            open(&key, &[1; 24], b"header", &tag),
            open(&key, &[1; 24], b"heade2", &sealed),
            open(&key, &[2; 24], b"header", &sealed),
            open(&Key::from_bytes([6; 32]), &[1; 24], b"header", &sealed),
        ] {
            assert!(matches!(
                bad,
                Err(Error::Corrupted("body authentication failed"))
            ));
        }
    }
}
